package cluster

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestEffectivePriority(t *testing.T) {
	items := []Track{{Name: "downstream", Weight: -150}, {Name: "engines", Weight: -100}, {Name: "store", Fault: true}}
	for _, tc := range []struct {
		base    uint8
		failing []bool
		prio    uint8
		fault   bool
	}{
		{200, []bool{false, false, false}, 200, false},
		{255, []bool{false, false, false}, 255, false}, // the owner stays the owner while all works
		{200, []bool{true, false, false}, 50, false},
		{200, []bool{true, true, false}, 1, false}, // clamped: 0 would mean "resigning"
		{255, []bool{false, true, false}, 155, false},
		{255, []bool{false, false, true}, 255, true},
		{100, []bool{true, false, true}, 1, true},
	} {
		tr := newTracking(items)
		copy(tr.failing, tc.failing)
		v := tr.verdict()
		if p, f := v.priority(tc.base), v.fault; p != tc.prio || f != tc.fault {
			t.Errorf("base %d failing %v: %d %v, want %d %v", tc.base, tc.failing, p, f, tc.prio, tc.fault)
		}
	}
}

// TestPollFallRise feeds poll a scripted series of results: the verdict
// changes after Fall failures in a row and Rise successes in a row, and an
// interrupted run starts counting again.
func TestPollFallRise(t *testing.T) {
	script := []bool{ // true = the check fails
		true, false, // one failure: not enough (fall 2)
		true, true, // -> failing (after result 4)
		false, false, true, // two successes, rise 3 not reached, run broken
		false, false, false, // -> working (after result 10)
		false, false,
	}
	var n atomic.Int32
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// Nobody reads out until poll has ended, so len(out) when check i runs
	// is how many verdicts poll had sent before it.
	out := make(chan trackResult, 16)
	sentBefore := make([]int, len(script)+1)
	check := func(context.Context) error {
		i := int(n.Add(1)) - 1
		if i < len(sentBefore) {
			sentBefore[i] = len(out)
		}
		if i >= len(script) {
			cancel()
			return nil
		}
		if script[i] {
			return errors.New("broken")
		}
		return nil
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		poll(ctx, 3, Track{Name: "x", Check: check, Weight: -1, Interval: time.Millisecond, Fall: 2, Rise: 3}, out)
	}()
	<-done
	close(out)
	var got []trackResult
	for r := range out {
		got = append(got, r)
	}
	if len(got) != 2 || got[0] != (trackResult{i: 3, failing: true, err: "broken"}) || got[1] != (trackResult{i: 3, failing: false}) {
		t.Fatalf("verdicts %+v, want failing (broken) then working", got)
	}
	// Each verdict was sent after its deciding result (the 4th, the 10th)
	// and before the next check ran.
	if sentBefore[3] != 0 || sentBefore[4] != 1 || sentBefore[9] != 1 || sentBefore[10] != 2 {
		t.Errorf("verdicts sent before checks 4, 5, 10, 11: %d %d %d %d, want 0 1 1 2",
			sentBefore[3], sentBefore[4], sentBefore[9], sentBefore[10])
	}
}

// TestTrackFault runs two nodes in the lab: the master's tracked check with
// fault: true fails, it enters fault (VIP released, priority-0 advert), the
// backup takes over; the check recovers, the node returns as backup and
// preempts.
func TestTrackFault(t *testing.T) {
	p := newPair(t)
	const iv = 100 * time.Millisecond
	var broken atomic.Bool
	check := func(context.Context) error {
		if broken.Load() {
			return errors.New("store down")
		}
		return nil
	}
	cmdA, outA := notifyScript(t, "a")
	a := startNode(t, p.a, "a", Options{Priority: 200, Interval: iv, Preempt: true, Notify: cmdA,
		Track: []Track{{Name: "store", Check: check, Fault: true, Interval: 20 * time.Millisecond, Fall: 1, Rise: 1}}})
	b := startNode(t, p.b, "b", Options{Priority: 100, Interval: iv, Preempt: true})
	waitFor(t, 2*time.Second, "a to become master", a.IsMaster)
	waitFor(t, time.Second, "b to follow a", func() bool { return b.state() == "backup" && b.Status().MasterAddr == addrA.String() })

	broken.Store(true)
	waitFor(t, time.Second, "a in fault", func() bool { return a.state() == "fault" })
	waitFor(t, time.Second, "b master", b.IsMaster)
	if vipOn(t, p.a) || !vipOn(t, p.b) {
		t.Errorf("VIP on a=%v b=%v, want only b", vipOn(t, p.a), vipOn(t, p.b))
	}
	st := a.Status()
	if len(st.Track) != 1 || !st.Track[0].Failing || st.Track[0].Error != "store down" || st.VIPHeld || st.EffectivePriority != 200 {
		t.Errorf("a in fault: %+v", st)
	}
	if v := gatherValue(t, a.reg, "mxgate_vrrp_state", "state", "fault"); v != 1 {
		t.Errorf("mxgate_vrrp_state{state=fault} = %v", v)
	}
	if v := gatherValue(t, a.reg, "mxgate_vrrp_track_failing", "check", "store"); v != 1 {
		t.Errorf("mxgate_vrrp_track_failing{check=store} = %v", v)
	}
	// b took over on a's priority-0 advert, not after Master_Down_Interval.
	if !strings.Contains(b.log.String(), "reason=priority_zero") {
		t.Errorf("b did not take over for priority_zero:\n%s", b.log)
	}
	// In fault, a ignores b's lower adverts (preempt would take over).
	time.Sleep(5 * iv)
	if a.state() != "fault" || vipOn(t, p.a) {
		t.Errorf("a left fault while broken: %s", a.state())
	}

	broken.Store(false)
	waitFor(t, 2*time.Second, "a master again", a.IsMaster)
	waitFor(t, time.Second, "b backup again", func() bool { return b.state() == "backup" })
	if v := gatherValue(t, a.reg, "mxgate_vrrp_state", "state", "fault"); v != 0 {
		t.Errorf("mxgate_vrrp_state{state=fault} = %v after recovery", v)
	}
	waitFor(t, 2*time.Second, "notify calls", func() bool { return len(readLines(t, outA)) >= 5 })
	got := strings.Join(readLines(t, outA), "|")
	if want := "a backup 51 200|a master 51 200|a fault 51 200|a backup 51 200|a master 51 200"; got != want {
		t.Errorf("notify calls %q, want %q", got, want)
	}
}

// TestTrackInstances: tracking is the node's and reaches every virtual
// router. Two nodes run two mirrored instances (a master of 51, b of 52).
// A failing weight on a lowers both of a's priorities (each from its own
// configured one), so b, preempting, takes 51 too; a fault on a puts both
// of a's instances in Fault. Each check is polled once per node, not once
// per instance.
func TestTrackInstances(t *testing.T) {
	p := newPair(t)
	const iv = 100 * time.Millisecond
	var downBroken, storeBroken atomic.Bool
	var downChecks atomic.Int64
	failIf := func(b *atomic.Bool, msg string, n *atomic.Int64) func(context.Context) error {
		return func(context.Context) error {
			if n != nil {
				n.Add(1)
			}
			if b.Load() {
				return errors.New(msg)
			}
			return nil
		}
	}
	const every = 20 * time.Millisecond
	cmdA, outA := notifyScript(t, "a")
	a := startNode(t, p.a, "a", Options{Instances: mirroredInstances(iv, 200, 100), Notify: cmdA, Track: []Track{
		{Name: "downstream", Check: failIf(&downBroken, "connection refused", &downChecks), Weight: -150, Interval: every, Fall: 1, Rise: 1},
		{Name: "store", Check: failIf(&storeBroken, "store down", nil), Fault: true, Interval: every, Fall: 1, Rise: 1},
	}})
	b := startNode(t, p.b, "b", Options{Instances: mirroredInstances(iv, 100, 200)})

	mirroredRoles := func() bool {
		return slices.Equal(roles(a), []string{"master", "backup"}) && slices.Equal(roles(b), []string{"backup", "master"})
	}
	waitFor(t, 2*masterDown(100, iv)+time.Second, "a master of 51, b master of 52", mirroredRoles)

	// One poller per item for the node: over 10 intervals, about 10
	// checks, not 20 (one per instance).
	n0 := downChecks.Load()
	time.Sleep(10 * every)
	if d := downChecks.Load() - n0; d > 15 {
		t.Errorf("downstream checked %d times in %s at %s intervals: polled per instance?", d, 10*every, every)
	}

	// The weight: a advertises 200-150 = 50 for 51 and 100-150 -> 1 for
	// 52; b (100, preempt) takes 51 and keeps 52.
	downBroken.Store(true)
	waitFor(t, 2*masterDown(100, iv)+time.Second, "b master of both", func() bool {
		return slices.Equal(roles(a), []string{"backup", "backup"}) && slices.Equal(roles(b), []string{"master", "master"})
	})
	waitFor(t, time.Second, "both VIPs on b only", func() bool {
		return addrOn(t, p.b, vipP.Addr()) && addrOn(t, p.b, vip2P.Addr()) && !addrOn(t, p.a, vipP.Addr()) && !addrOn(t, p.a, vip2P.Addr())
	})
	st := a.Status()
	if st.EffectivePriority != 50 || st.Priority != 200 || len(st.Instances) != 2 ||
		st.Instances[0].EffectivePriority != 50 || st.Instances[1].EffectivePriority != 1 || st.Instances[1].Priority != 100 {
		t.Errorf("a's priorities with downstream failing: top %d/%d, instances %+v; want 200 advertising 50, and 100 advertising 1", st.Priority, st.EffectivePriority, st.Instances)
	}
	if len(st.Track) != 2 || !st.Track[0].Failing || st.Track[0].Error != "connection refused" || st.Track[1].Failing {
		t.Errorf("a's track: %+v, want downstream failing only", st.Track)
	}
	for vrid, want := range map[string]float64{"51": 50, "52": 1} {
		if v := gatherValue(t, a.reg, "mxgate_vrrp_priority", "vrid", vrid); v != want {
			t.Errorf("a's mxgate_vrrp_priority{vrid=%s} = %v, want %v", vrid, v, want)
		}
	}
	if v := gatherValue(t, a.reg, "mxgate_vrrp_track_failing", "check", "downstream"); v != 1 {
		t.Errorf("mxgate_vrrp_track_failing{check=downstream} = %v, want 1", v)
	}
	// One tracker: the failure is logged once for the node.
	if c := strings.Count(a.log.String(), `msg="vrrp: tracked check failing" check=downstream`); c != 1 {
		t.Errorf("downstream failure logged %d times, want once:\n%s", c, a.log)
	}

	// Recovery: each instance is back at its own priority; a preempts 51.
	downBroken.Store(false)
	waitFor(t, 2*masterDown(100, iv)+time.Second, "a master of 51 again", mirroredRoles)
	st = a.Status()
	if st.Instances[0].EffectivePriority != 200 || st.Instances[1].EffectivePriority != 100 {
		t.Errorf("a's priorities after recovery: %+v", st.Instances)
	}

	// The fault: both of a's instances go to Fault; b holds both VIPs.
	storeBroken.Store(true)
	waitFor(t, time.Second, "a in fault for both", func() bool { return slices.Equal(roles(a), []string{"fault", "fault"}) })
	waitFor(t, 2*masterDown(100, iv), "b master of both", func() bool { return slices.Equal(roles(b), []string{"master", "master"}) })
	waitFor(t, time.Second, "both VIPs on b only", func() bool {
		return addrOn(t, p.b, vipP.Addr()) && addrOn(t, p.b, vip2P.Addr()) && !addrOn(t, p.a, vipP.Addr()) && !addrOn(t, p.a, vip2P.Addr())
	})
	if st := a.Status(); st.State != "fault" || st.VIPHeld {
		t.Errorf("a's top-level status in fault: state %s vip_held %v", st.State, st.VIPHeld)
	}

	storeBroken.Store(false)
	waitFor(t, 2*masterDown(100, iv)+time.Second, "a master of 51 again after the fault", mirroredRoles)
	waitFor(t, 2*time.Second, "a's notify calls", func() bool {
		calls := readLines(t, outA)
		return slices.Contains(calls, "a fault 51 200") && slices.Contains(calls, "a fault 52 100")
	})
	// The weight's handover was notified with the lowered priority.
	if calls := readLines(t, outA); !slices.Contains(calls, "a backup 51 50") {
		t.Errorf("a's notify calls %q lack the step down of 51 at priority 50", calls)
	}
}
