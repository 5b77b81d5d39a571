package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Track is one thing the node's service depends on, as keepalived's
// track_script / track_interface: while it fails, the node advertises a
// lower priority (Weight) or enters the Fault state (Fault).
type Track struct {
	// Name says what is checked ("downstream", "store", "engines",
	// "interface"): logs, the status, the metric label.
	Name string
	// Check reports nil while the thing works; it must return when ctx
	// ends. Nil means the VRRP interface's link, watched through netlink:
	// a change counts at once (keepalived's track_interface), so Interval,
	// Fall and Rise do not apply.
	Check func(ctx context.Context) error
	// Weight (-254..-1) is added to the priority while failing; the result
	// is clamped to 1..254. Zero with Fault.
	Weight int
	// Fault: while failing the node is in the Fault state (no VIP, no
	// adverts, never master).
	Fault bool
	// Interval between checks, also the bound of one check. Fall failures
	// in a row make a working item failing, Rise successes in a row make a
	// failing one work again (keepalived's vrrp_script interval/fall/rise).
	Interval   time.Duration
	Fall, Rise int
}

// TrackStatus is one tracked item in Status. The JSON names are part of the
// admin API.
type TrackStatus struct {
	Check   string `json:"check"`
	Weight  int    `json:"weight,omitempty"`
	Fault   bool   `json:"fault,omitempty"`
	Failing bool   `json:"failing"`
	Error   string `json:"error,omitempty"` // why it failed, while failing
}

func validateTracks(ts []Track) error {
	var errs []error
	links := 0
	for _, t := range ts {
		if t.Fault == (t.Weight != 0) {
			errs = append(errs, fmt.Errorf("track %q: exactly one of weight and fault", t.Name))
		}
		if t.Weight < -254 || t.Weight > 0 {
			errs = append(errs, fmt.Errorf("track %q: weight %d outside -254..-1", t.Name, t.Weight))
		}
		if t.Check == nil {
			links++
			continue
		}
		if t.Interval <= 0 || t.Fall < 1 || t.Rise < 1 {
			errs = append(errs, fmt.Errorf("track %q: interval must be positive, fall and rise at least 1", t.Name))
		}
	}
	if links > 1 {
		errs = append(errs, errors.New("the interface is tracked more than once"))
	}
	return errors.Join(errs...)
}

// trackResult is a tracked item whose verdict changed.
type trackResult struct {
	i       int
	failing bool
	err     string
}

// poll runs t.Check every t.Interval until ctx ends and sends each change of
// its verdict (after Fall or Rise results in a row) to out. The item starts
// as working, as keepalived's scripts do without init_fail: a node that
// starts must not give up the VIP before its first check says so.
func poll(ctx context.Context, i int, t Track, out chan<- trackResult) {
	tick := time.NewTicker(t.Interval)
	defer tick.Stop()
	failing, run := false, 0 // run: results in a row contradicting the verdict
	for {
		cctx, cancel := context.WithTimeout(ctx, t.Interval)
		err := t.Check(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if (err != nil) != failing {
			run++
		} else {
			run = 0
		}
		need := t.Fall
		if failing {
			need = t.Rise
		}
		if run >= need {
			failing, run = !failing, 0
			r := trackResult{i: i, failing: failing}
			if err != nil {
				r.err = err.Error()
			}
			select {
			case out <- r:
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// tracking is the verdict of every tracked item, kept by the node's tracker
// goroutine.
type tracking struct {
	items   []Track
	failing []bool
	errs    []string
}

func newTracking(items []Track) *tracking {
	return &tracking{items: items, failing: make([]bool, len(items)), errs: make([]string, len(items))}
}

// link is the index of the interface item, -1 if the link is not tracked.
func (t *tracking) link() int {
	for i, it := range t.items {
		if it.Check == nil {
			return i
		}
	}
	return -1
}

// setLink records the interface's link in the tracked item for it, if any.
func (t *tracking) setLink(up bool) {
	if i := t.link(); i >= 0 {
		t.failing[i] = !up
		t.errs[i] = ""
		if !up {
			t.errs[i] = "link down"
		}
	}
}

// verdict is the joint result of a node's tracked items, the same for every
// virtual router of the node.
type verdict struct {
	weight int // sum of the failing items' weights, <= 0
	fault  bool
}

func (t *tracking) verdict() verdict {
	var v verdict
	for i, it := range t.items {
		if t.failing[i] {
			v.weight += it.Weight
			v.fault = v.fault || it.Fault
		}
	}
	return v
}

// priority is the one a virtual router configured with base advertises:
// base plus the failing weights, clamped to 1..254 once lowered (an owner
// with a failing item is no longer the owner).
func (v verdict) priority(base uint8) uint8 {
	if v.weight == 0 {
		return base
	}
	return uint8(min(max(int(base)+v.weight, 1), 254))
}

func (t *tracking) status() []TrackStatus {
	out := make([]TrackStatus, len(t.items))
	for i, it := range t.items {
		out[i] = TrackStatus{Check: it.Name, Weight: it.Weight, Fault: it.Fault, Failing: t.failing[i]}
		if t.failing[i] {
			out[i].Error = t.errs[i]
		}
	}
	return out
}
