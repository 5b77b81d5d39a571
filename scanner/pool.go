package scanner

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Pool runs at most Workers scans at once, each on its caller's goroutine,
// with at most Queue callers waiting for a turn: memory stays bounded under
// any load, and a scan that finds no place is refused at once with
// ErrOverloaded instead of piling up. Scanning on the caller's goroutine
// (the SMTP session's) saves two goroutine hand-offs per message, which on
// a small machine cost more than the built-in checks themselves.
//
// Reconfigure swaps the compiled engine (rules, thresholds, attachment
// policy, limits, outside engines) without a restart: each scan uses the engine that was
// current when it started, from start to end.
type Pool struct {
	eng     atomic.Pointer[engine]
	health  engineHealth  // which outside engines answer, by name
	queue   int           // fixed at NewPool, like the number of turns
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
	p := &Pool{queue: eng.opts.Queue, turns: make(chan *scratch, eng.opts.Workers)}
	p.eng.Store(eng)
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

	eng := p.eng.Load()
	ctx, cancel := context.WithTimeout(ctx, eng.opts.Timeout.Duration)
	defer cancel()
	stop := context.AfterFunc(p.base, cancel)
	defer stop()

	var sc *scratch
	select {
	case sc = <-p.turns:
	default:
		if p.waiting.Add(1) > int64(p.queue) {
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
	v, err := p.run(ctx, eng, m, sc)
	if err != nil && p.base.Err() != nil {
		return Verdict{}, fmt.Errorf("scan %s: %w", m.ID, errClosed)
	}
	return v, err
}

func (p *Pool) run(ctx context.Context, eng *engine, m *Message, sc *scratch) (v Verdict, err error) {
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
			eng.opts.Logger.Error("scan panicked", "id", id, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			v, err = Verdict{}, fmt.Errorf("scan %s: panic: %v", id, r)
		}
	}()
	if v, err = eng.scan(ctx, m, sc, &p.health); err != nil {
		return Verdict{}, err
	}
	if d := eng.opts.SimulatedDelay.Duration; d > 0 {
		if err := sleep(ctx, d); err != nil {
			return Verdict{}, fmt.Errorf("scan %s: simulated delay: %w", m.ID, err)
		}
	}
	return v, nil
}

// sleep waits d or until ctx ends, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Reconfigure compiles opts and makes the result the engine of every scan
// that starts from now on; scans already running finish with the engine
// they started with. On an error (listing every problem, as NewPool does)
// the pool keeps its current engine.
//
// Workers and Queue are fixed when the pool is made (they size its worker
// slots and buffers): changes to them are ignored here, with a warning, and
// need a restart. Everything else applies to new scans, Timeout and
// SimulatedDelay included. An empty NodeID keeps the pool's node id.
func (p *Pool) Reconfigure(opts Options) error {
	p.mu.RLock()
	closed := p.closed
	p.mu.RUnlock()
	if closed {
		return errClosed
	}
	cur := p.eng.Load()
	workersChanged := opts.Workers != 0 && opts.Workers != cur.opts.Workers
	queueChanged := opts.Queue != cur.opts.Queue
	opts.Workers, opts.Queue = cur.opts.Workers, cur.opts.Queue
	if opts.NodeID == "" {
		opts.NodeID = cur.opts.NodeID
	}
	eng, err := newEngine(opts)
	if err != nil {
		return fmt.Errorf("reconfigure: %w", err)
	}
	if workersChanged || queueChanged {
		eng.opts.Logger.Warn("scanner workers and queue cannot change without a restart; keeping the current ones",
			"workers", cur.opts.Workers, "queue", cur.opts.Queue)
	}
	p.eng.Store(eng)
	return nil
}

// Stats reports the scans running and the scans waiting now.
func (p *Pool) Stats() (busy, queued int) {
	return int(p.busy.Load()), int(p.waiting.Load())
}

// Size is how many scans may run at once and how many may wait, fixed
// when the pool was made.
func (p *Pool) Size() (workers, queue int) { return cap(p.turns), p.queue }

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
