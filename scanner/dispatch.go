package scanner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// Member is one worker a Dispatcher can send scans to.
type Member struct {
	Name   string
	Weight int // share of the scans; 0 = no new work (draining)
	Worker Worker
}

// Dispatcher spreads scans over its members by weight with nginx's smooth
// weighted round robin: over every run of total-weight picks each member is
// picked exactly weight times, interleaved rather than in bursts. A member
// that fails is skipped and the scan goes to the next pick among the members
// not tried yet, so the client sees a failure only when all failed.
type Dispatcher struct {
	members []Member

	mu      sync.Mutex
	current []int // smooth WRR state
}

// NewDispatcher returns a dispatcher over members; it does not keep the
// caller's slice.
func NewDispatcher(members ...Member) *Dispatcher {
	return &Dispatcher{
		members: append([]Member(nil), members...),
		current: make([]int, len(members)),
	}
}

var errNoMember = errors.New("no scan member with weight above 0")

// Scan runs m on one member, trying the others in turn on failure.
func (d *Dispatcher) Scan(ctx context.Context, m *Message) (Verdict, error) {
	tried := make([]bool, len(d.members))
	var errs []error
	for {
		i := d.pick(tried)
		if i < 0 {
			break
		}
		tried[i] = true
		mem := d.members[i]
		v, err := mem.Worker.Scan(ctx, m)
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil {
			// The caller gave up; another member cannot help.
			return Verdict{}, err
		}
		slog.Warn("scan member failed, trying the next", "member", mem.Name, "id", m.ID, "err", err)
		errs = append(errs, fmt.Errorf("member %s: %w", mem.Name, err))
	}
	if len(errs) == 0 {
		return Verdict{}, fmt.Errorf("scan %s: %w", m.ID, errNoMember)
	}
	return Verdict{}, fmt.Errorf("scan %s: all %d members failed: %w", m.ID, len(errs), errors.Join(errs...))
}

// pick is one step of smooth weighted round robin (nginx
// ngx_http_upstream_get_peer) over the members not tried yet.
func (d *Dispatcher) pick(tried []bool) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	best, total := -1, 0
	for i, mem := range d.members {
		if tried[i] || mem.Weight <= 0 || mem.Worker == nil {
			continue
		}
		d.current[i] += mem.Weight
		total += mem.Weight
		if best < 0 || d.current[i] > d.current[best] {
			best = i
		}
	}
	if best >= 0 {
		d.current[best] -= total
	}
	return best
}
