package scanner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mxgate/mxgate/engines"
)

// engineCall is what one outside engine made of one message.
type engineCall struct {
	name     string
	settings EngineSettings
	res      EngineResult
	err      error
}

// askEngines starts every engine on m at once, each within its own
// timeout and ctx, so that a scan takes as long as its slowest engine and
// not their sum; the built-in walk runs meanwhile on the caller's
// goroutine. wait returns the outcomes once every call has returned: the
// caller always calls it (a cancelled ctx ends the calls), so no call
// outlives the scan. Each outcome also tells h whether its engine answers.
func askEngines(ctx context.Context, engs []Engine, set Engines, m *Message, h *engineHealth) (wait func() []engineCall) {
	if len(engs) == 0 {
		return func() []engineCall { return nil }
	}
	calls := make([]engineCall, len(engs))
	var wg sync.WaitGroup
	for i, e := range engs {
		calls[i] = engineCall{name: e.Name(), settings: set.Settings(e.Name())}
		wg.Go(func() {
			c := &calls[i]
			cctx, cancel := context.WithTimeout(ctx, engineTimeout(c.settings))
			defer cancel()
			c.res, c.err = scanRecovered(cctx, e, m)
			if c.err == nil && cctx.Err() != nil {
				// An answer after the deadline is no answer: the scan
				// may already be on its way without it.
				c.err = cctx.Err()
			}
			if ctx.Err() == nil {
				// The scan's own end (the client left, scanner.timeout)
				// says nothing about the engine.
				h.observe(c.name, c.err)
			}
		})
	}
	return func() []engineCall {
		wg.Wait()
		return calls
	}
}

// scanRecovered is e.Scan with a panic turned into an error: a bug in one
// client costs one message its on_error, not the process.
func scanRecovered(ctx context.Context, e Engine, m *Message) (res EngineResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = EngineResult{}, fmt.Errorf("%s: panic: %v", e.Name(), r)
		}
	}()
	return e.Scan(ctx, m)
}

// engineTimeout is s's timeout, or the default for an engine without
// settings (a name the policy does not know).
func engineTimeout(s EngineSettings) time.Duration {
	if s.Timeout.Duration > 0 {
		return s.Timeout.Duration
	}
	return defaultEngines().Clamd.Timeout.Duration
}

// engineHealth is which engines failed their last call or ping, by name.
type engineHealth struct {
	mu   sync.Mutex
	down map[string]string // name → kind of the last error
}

// observe records the outcome of a call to the engine name. A message too
// large for the engine says nothing about its health.
func (h *engineHealth) observe(name string, err error) {
	if h == nil || errors.Is(err, engines.ErrTooLarge) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		delete(h.down, name)
		return
	}
	if h.down == nil {
		h.down = map[string]string{}
	}
	h.down[name] = engines.Kind(err)
}

// isDown reports whether name failed last, and how.
func (h *engineHealth) isDown(name string) (kind string, down bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	kind, down = h.down[name]
	return kind, down
}

// PingEngines pings every engine of the current configuration at once,
// each within its timeout and ctx, and records which answer. The node
// calls it periodically; a scan's outcome updates the same record.
func (p *Pool) PingEngines(ctx context.Context) {
	eng := p.eng.Load()
	var wg sync.WaitGroup
	for _, e := range eng.opts.Engines {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, engineTimeout(eng.opts.Policy.Engines.Settings(e.Name())))
			defer cancel()
			err := e.Ping(cctx)
			if ctx.Err() == nil {
				p.health.observe(e.Name(), err)
			}
		})
	}
	wg.Wait()
}

// EngineState is how one outside engine of the current configuration
// fares, for the node's status (`mxgate status`).
type EngineState struct {
	Name string `json:"name"`
	// Down is the kind of the last failed call or ping ("timeout",
	// "refused" ...); "" = it answered.
	Down string `json:"down,omitempty"`
	// OnError is what a message gets while the engine fails; an engine
	// with accept does not make the node unhealthy.
	OnError string `json:"on_error"`
}

// Engines reports every outside engine of the current configuration, in
// the configuration's order.
func (p *Pool) Engines() []EngineState {
	eng := p.eng.Load()
	out := make([]EngineState, 0, len(eng.opts.Engines))
	for _, e := range eng.opts.Engines {
		kind, _ := p.health.isDown(e.Name())
		out = append(out, EngineState{Name: e.Name(), Down: kind, OnError: string(eng.opts.Policy.Engines.Settings(e.Name()).OnError)})
	}
	return out
}

// EnginesDown names the engines of the current configuration whose last
// call or ping failed and whose on_error is not accept, each as "clamd
// (timeout)", sorted: while there is one, this node cannot scan as the
// policy wants, and says so (/healthz, the membership).
func (p *Pool) EnginesDown() []string {
	eng := p.eng.Load()
	var out []string
	for _, e := range eng.opts.Engines {
		if eng.opts.Policy.Engines.Settings(e.Name()).OnError == actionAccept {
			continue
		}
		if kind, down := p.health.isDown(e.Name()); down {
			out = append(out, engineFailure(e.Name(), kind))
		}
	}
	slices.Sort(out)
	return out
}
