package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/mxgate/mxgate/testenv"
)

// The seed's start modes in the namespace lab: a returning priority-200 node and a
// priority-100 master. Both end with the 200 master; they differ in what starts the
// election. How long two nodes held the VIP comes from the nodes' own transition
// times (their logs): the VIP is added right after the transition to master and
// removed right after the one to backup. The bound is one advert interval.

const startIV = 500 * time.Millisecond

// transitionLog is one "vrrp transition" line of a node's log.
type transitionLog = testenv.VRRPTransition

func (tn *tnode) transitions(t *testing.T) []transitionLog {
	t.Helper()
	return testenv.VRRPTransitions(tn.log.String())
}

func show(tl transitionLog) string {
	return fmt.Sprintf("%s %s→%s (%s)", tl.At.Format("15:04:05.000"), tl.From, tl.To, tl.Reason)
}

// last returns the node's last transition to state, failing if there is none.
func (tn *tnode) last(t *testing.T, to string) transitionLog {
	t.Helper()
	ts := tn.transitions(t)
	for i := len(ts) - 1; i >= 0; i-- {
		if ts[i].To == to {
			return ts[i]
		}
	}
	t.Fatalf("node %s never went to %s: %+v", tn.name, to, ts)
	return transitionLog{}
}

// bothHeld is how long the VIP was on both nodes: from the winner taking it to the
// loser giving it up. It checks the order too: the loser leaves after the winner came.
func bothHeld(t *testing.T, took, left transitionLog) time.Duration {
	t.Helper()
	d := left.At.Sub(took.At)
	if d < 0 {
		t.Errorf("the old master left (%s) before the new one took over (%s): a moment without a master", show(left), show(took))
	}
	if d > startIV {
		t.Errorf("two masters for %s (%s, then %s), want at most one advert interval (%s)", d, show(took), show(left), startIV)
	}
	return d
}

// Seed: "start as master" forces an election at once by advertising as master when it
// starts; the lower-priority slave hears it and goes back to backup.
func TestStartAsMaster(t *testing.T) {
	p := newPair(t)
	b := startNode(t, p.b, "b", Options{Priority: 100, Interval: startIV, Preempt: true})
	waitFor(t, 2*masterDown(100, startIV), "b alone to become master", b.IsMaster)

	a := startNode(t, p.a, "a", Options{Priority: 200, Interval: startIV, Preempt: true, StartMaster: true})
	// Ready means the machine has started: a start-as-master node is master by then,
	// VIP on, before any advert could have told it anything.
	if s := a.Status(); s.State != "master" || !s.VIPHeld || s.StartState != "master" {
		t.Fatalf("a at Ready: state %s vip_held %v start_state %s, want master holding the VIP", s.State, s.VIPHeld, s.StartState)
	}
	took := a.last(t, "master")
	if took.From != "init" || took.Reason != "startup" {
		t.Errorf("a became master by %s, want init→master (startup)", show(took))
	}
	waitFor(t, 2*startIV, "b to step down", func() bool { return b.state() == "backup" })
	left := b.last(t, "backup")
	if left.From != "master" || left.Reason != "higher_priority" {
		t.Errorf("b stepped down by %s, want master→backup (higher_priority)", show(left))
	}
	t.Logf("VIP on both for %s", bothHeld(t, took, left))
	if !vipOn(t, p.a) || vipOn(t, p.b) {
		t.Errorf("VIP on a=%v b=%v, want only a", vipOn(t, p.a), vipOn(t, p.b))
	}
	// It stays that way: b follows a, a is not disturbed by b's start.
	time.Sleep(2 * startIV)
	if !a.IsMaster() || b.state() != "backup" || len(a.transitions(t)) != 1 {
		t.Errorf("after settling: a %s (%+v), b %s", a.state(), a.transitions(t), b.state())
	}
}

// Seed: "start as backup" comes up as backup, hears the lower-priority slave's
// advertisement, then starts the election and takes over.
func TestStartAsBackup(t *testing.T) {
	p := newPair(t)
	b := startNode(t, p.b, "b", Options{Priority: 100, Interval: startIV, Preempt: true})
	waitFor(t, 2*masterDown(100, startIV), "b alone to become master", b.IsMaster)

	start := time.Now()
	a := startNode(t, p.a, "a", Options{Priority: 200, Interval: startIV, Preempt: true})
	// Nothing happens before the slave's advert: a is a silent backup at Ready.
	if s := a.Status(); s.State == "master" || s.VIPHeld || s.StartState != "backup" {
		t.Fatalf("a at Ready: state %s vip_held %v start_state %s, want a backup without the VIP", s.State, s.VIPHeld, s.StartState)
	}
	waitFor(t, masterDown(200, startIV), "a to take over", a.IsMaster)
	took := a.last(t, "master")
	// "preempt" is the takeover on a lower advert; the Master_Down_Timer would say
	// master_down. b's next advert is due within one interval of a's start.
	if took.From != "backup" || took.Reason != "preempt" {
		t.Errorf("a became master by %s, want backup→master (preempt)", show(took))
	}
	if d := took.At.Sub(start); d > 2*startIV {
		t.Errorf("a took over %s after its start, want within the slave's next advert (%s)", d, startIV)
	}
	if s := a.Status(); s.AdvertsRecv < 1 {
		t.Errorf("a took over having received %d adverts", s.AdvertsRecv)
	}
	waitFor(t, 2*startIV, "b to step down", func() bool { return b.state() == "backup" })
	left := b.last(t, "backup")
	if left.From != "master" || left.Reason != "higher_priority" {
		t.Errorf("b stepped down by %s, want master→backup (higher_priority)", show(left))
	}
	t.Logf("a master %s after its start; VIP on both for %s", took.At.Sub(start).Round(time.Millisecond), bothHeld(t, took, left))
	if !vipOn(t, p.a) || vipOn(t, p.b) {
		t.Errorf("VIP on a=%v b=%v, want only a", vipOn(t, p.a), vipOn(t, p.b))
	}
}

// A start-as-master node that meets a higher priority yields at once: the master
// answers its lower advert with its own (RFC 9568) and it steps down on that.
func TestStartAsMasterYields(t *testing.T) {
	p := newPair(t)
	a := startNode(t, p.a, "a", Options{Priority: 200, Interval: startIV, Preempt: true})
	waitFor(t, 2*masterDown(200, startIV), "a alone to become master", a.IsMaster)
	aBefore := len(a.transitions(t))

	b := startNode(t, p.b, "b", Options{Priority: 100, Interval: startIV, Preempt: true, StartMaster: true})
	waitFor(t, 2*startIV, "b to yield", func() bool { return b.state() == "backup" })
	ts := b.transitions(t)
	if len(ts) != 2 || ts[0].To != "master" || ts[0].Reason != "startup" || ts[1].To != "backup" || ts[1].Reason != "higher_priority" {
		t.Fatalf("b's transitions %+v, want init→master (startup), master→backup (higher_priority)", ts)
	}
	t.Logf("VIP on both for %s", bothHeld(t, ts[0], ts[1]))
	if s := b.Status(); s.MasterAddr != addrA.String() || s.MasterPriority != 200 || s.VIPHeld {
		t.Errorf("b follows %s/%d, vip_held %v", s.MasterAddr, s.MasterPriority, s.VIPHeld)
	}
	// a never left: the lower advert made it assert, not step down.
	if !a.IsMaster() || len(a.transitions(t)) != aBefore {
		t.Errorf("a %s, transitions %+v", a.state(), a.transitions(t))
	}
	if !vipOn(t, p.a) || vipOn(t, p.b) {
		t.Errorf("VIP on a=%v b=%v, want only a", vipOn(t, p.a), vipOn(t, p.b))
	}
}
