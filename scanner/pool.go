package scanner

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// Pool runs at most Workers scans at once, each on its caller's goroutine,
// with at most Queue callers waiting for a turn: memory stays bounded under
// any load, and a scan that finds no place is refused at once with
// ErrOverloaded instead of piling up. Scanning on the caller's goroutine
// (the SMTP session's) saves two goroutine hand-offs per message, which on
// a small machine cost more than the built-in checks themselves.
type Pool struct {
	eng     *engine
	turns   chan *scratch // a token per concurrent scan, carrying its buffers
	waiting atomic.Int64
	busy    atomic.Int64

	base   context.Context // cancelled by Close: aborts running and waiting scans
	cancel context.CancelFunc

	mu       sync.RWMutex // orders Scan's admission against Close
	closed   bool
	inflight sync.WaitGroup
}

var errClosed = errors.New("scanner pool closed")

// NewPool checks the options and compiles the rules. The error lists every
// problem in the options at once.
func NewPool(opts Options) (*Pool, error) {
	eng, err := newEngine(opts)
	if err != nil {
		return nil, err
	}
	return newPool(eng), nil
}

func newPool(eng *engine) *Pool {
	p := &Pool{eng: eng, turns: make(chan *scratch, eng.opts.Workers)}
	for range eng.opts.Workers {
		p.turns <- newScratch()
	}
	p.base, p.cancel = context.WithCancel(context.Background())
	return p
}

// Scan scans m within Options.Timeout (the wait for a turn included). It
// returns ErrOverloaded at once when Workers scans run and Queue wait.
func (p *Pool) Scan(ctx context.Context, m *Message) (Verdict, error) {
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return Verdict{}, errClosed
	}
	p.inflight.Add(1)
	p.mu.RUnlock()
	defer p.inflight.Done()

	ctx, cancel := context.WithTimeout(ctx, p.eng.opts.Timeout)
	defer cancel()
	stop := context.AfterFunc(p.base, cancel)
	defer stop()

	var sc *scratch
	select {
	case sc = <-p.turns:
	default:
		if p.waiting.Add(1) > int64(p.eng.opts.Queue) {
			p.waiting.Add(-1)
			return Verdict{}, ErrOverloaded
		}
		select {
		case sc = <-p.turns:
			p.waiting.Add(-1)
		case <-ctx.Done():
			p.waiting.Add(-1)
			if p.base.Err() != nil {
				return Verdict{}, fmt.Errorf("scan %s: %w", m.ID, errClosed)
			}
			return Verdict{}, fmt.Errorf("scan %s: %w", m.ID, ctx.Err())
		}
	}
	defer func() { p.turns <- sc }()
	v, err := p.run(ctx, m, sc)
	if err != nil && p.base.Err() != nil {
		return Verdict{}, fmt.Errorf("scan %s: %w", m.ID, errClosed)
	}
	return v, err
}

func (p *Pool) run(ctx context.Context, m *Message, sc *scratch) (v Verdict, err error) {
	p.busy.Add(1)
	defer p.busy.Add(-1)
	defer func() {
		if r := recover(); r != nil {
			// A bug in one check must cost one message a tempfail, not
			// the process and every session on it.
			id := ""
			if m != nil {
				id = m.ID
			}
			p.eng.opts.Logger.Error("scan panicked", "id", id, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			v, err = Verdict{}, fmt.Errorf("scan %s: panic: %v", id, r)
		}
	}()
	return p.eng.scan(ctx, m, sc)
}

// Stats reports the scans running and the scans waiting now.
func (p *Pool) Stats() (busy, queued int) {
	return int(p.busy.Load()), int(p.waiting.Load())
}

// Close cancels running and waiting scans, refuses later ones and waits
// until every Scan has returned. It is safe to call more than once.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.cancel()
	p.mu.Unlock()
	p.inflight.Wait()
}
