package scanner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
)

// Member is one worker a Dispatcher can send scans to. Name identifies it
// across SetMembers calls, so names should be unique.
type Member struct {
	Name   string
	Weight int // share of the scans; 0 = no new work (draining)
	Worker Worker
	// Unhealthy: an engine the member's policy needs is down there. It is
	// picked only when no healthy member is left to try, and then scans
	// with that engine's on_error.
	Unhealthy bool
}

// Dispatcher spreads scans over its members by weight with nginx's smooth
// weighted round robin: over every run of total-weight picks each member is
// picked exactly weight times, interleaved rather than in bursts. A member
// that fails is skipped and the scan goes to the next pick among the members
// not tried yet, so the client sees a failure only when all failed.
//
// The member set can be replaced at any time (SetMembers) while scans run:
// the cluster membership refreshes it every second or so, and the round
// robin state of a member is kept by name, so a refresh with the same
// members does not disturb the distribution at all.
type Dispatcher struct {
	mu      sync.Mutex
	members []Member
	current []int // smooth WRR state, parallel to members
}

// NewDispatcher returns a dispatcher over members; it does not keep the
// caller's slice.
func NewDispatcher(members ...Member) *Dispatcher {
	d := &Dispatcher{}
	d.SetMembers(members)
	return d
}

// SetMembers replaces the member set; it does not keep the caller's slice.
// A member whose Name was in the old set keeps its round robin state, so
// the distribution stays exact across updates; a new name starts fresh. A
// member set to Weight 0 gets no new scans (drain) while the scans it runs
// finish; its state is kept for when its weight comes back. Scans already
// past their pick are not affected; a failed scan's retry picks from the
// new set.
func (d *Dispatcher) SetMembers(ms []Member) {
	ms = slices.Clone(ms)
	cur := make([]int, len(ms))
	d.mu.Lock()
	defer d.mu.Unlock()
	// By name, in order, so even a (misconfigured) duplicate name keeps
	// one state per occurrence.
	old := make(map[string][]int, len(d.members))
	for i, m := range d.members {
		old[m.Name] = append(old[m.Name], d.current[i])
	}
	for i, m := range ms {
		if s := old[m.Name]; len(s) > 0 {
			cur[i], old[m.Name] = s[0], s[1:]
		}
	}
	d.members, d.current = ms, cur
}

// Members returns a copy of the current member set.
func (d *Dispatcher) Members() []Member {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.members)
}

var errNoMember = errors.New("no scan member with weight above 0")

// Scan runs m on one member, trying the others in turn on failure. A
// verdict whose engine failed (on_error applied: class engine_failed) is
// a failure too while another member may have engines that answer: the
// node whose clamd just died is not unhealthy in the membership yet, and
// its sender should not see a 451 another node could have spared it. When
// no member does better, the first such verdict stands.
func (d *Dispatcher) Scan(ctx context.Context, m *Message) (Verdict, error) {
	// Tried members are remembered by name, not position: the set may be
	// replaced between two attempts.
	var buf [4]string
	tried := buf[:0]
	var errs []error
	var engineFailed *Verdict
	for {
		mem, ok := d.pick(tried)
		if !ok {
			break
		}
		tried = append(tried, mem.Name)
		v, err := mem.Worker.Scan(ctx, m)
		if err == nil && v.Class == classEngineFailed && ctx.Err() == nil {
			if engineFailed == nil {
				engineFailed = &v
			}
			slog.Warn("scan member's engine failed, trying the next", "member", mem.Name, "id", m.ID, "reason", v.Reason)
			continue
		}
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
	if engineFailed != nil {
		return *engineFailed, nil
	}
	if len(errs) == 0 {
		return Verdict{}, fmt.Errorf("scan %s: %w", m.ID, errNoMember)
	}
	return Verdict{}, fmt.Errorf("scan %s: all %d members failed: %w", m.ID, len(errs), errors.Join(errs...))
}

// pick is one step of smooth weighted round robin (nginx
// ngx_http_upstream_get_peer) over the healthy members not tried yet, or
// when there is none over the unhealthy ones.
func (d *Dispatcher) pick(tried []string) (Member, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if m, ok := d.pickAmong(tried, false); ok {
		return m, true
	}
	return d.pickAmong(tried, true)
}

func (d *Dispatcher) pickAmong(tried []string, unhealthy bool) (Member, bool) {
	best, total := -1, 0
	for i, mem := range d.members {
		if mem.Weight <= 0 || mem.Worker == nil || mem.Unhealthy != unhealthy || slices.Contains(tried, mem.Name) {
			continue
		}
		d.current[i] += mem.Weight
		total += mem.Weight
		if best < 0 || d.current[i] > d.current[best] {
			best = i
		}
	}
	if best < 0 {
		return Member{}, false
	}
	d.current[best] -= total
	return d.members[best], true
}
