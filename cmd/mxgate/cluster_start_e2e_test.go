package main

import (
	"syscall"
	"testing"
	"time"

	"github.com/mxgate/mxgate/testenv"
)

// cluster.start_state through the binary, two nodes, 200 ms adverts. The
// seed's "start as master": the 200 returns to a cluster where the 100 is
// master, takes the VIP as it starts and the 100 goes back to backup on its
// first advert. Then the 100 is restarted as master too: it meets the
// higher priority and yields at once. How long both held the VIP comes from
// the nodes' logged transition times, and is at most one advert interval.
func TestClusterStartAsMaster(t *testing.T) {
	testenv.NeedRoot(t)
	lab := testenv.NewLab(t, 2)
	const advert = 200 * time.Millisecond
	vip := testenv.LabVIP + ":25"
	startMaster := "  start_state: master\n"

	n2 := startNode(t, lab, 2, nodeConf{prio: 100, advert: advert, preempt: true})
	n2.waitState(t, "master", 5*time.Second)
	waitBanner(t, lab, vip, "n2.lab.test", 5*time.Second)

	n1 := startNode(t, lab, 1, nodeConf{prio: 200, advert: advert, preempt: true, extra: startMaster})
	took := n1.waitTransition(t, 1, time.Second)
	if took.from != "init" || took.to != "master" || took.reason != "startup" {
		t.Fatalf("n1's first transition %+v, want init→master for startup", took)
	}
	left := n2.waitTransition(t, 3, 2*time.Second) // backup, master, backup
	if left.to != "backup" || left.reason != "higher_priority" {
		t.Fatalf("n2's third transition %+v, want to backup for higher_priority", left)
	}
	both := left.at.Sub(took.at)
	t.Logf("start as master: VIP on both nodes for %s", both)
	if both < -time.Millisecond || both > advert { // log times have millisecond resolution
		t.Errorf("n2 left at %s, n1 took over at %s: both held the VIP for %s, want 0 to one advert (%s)",
			left.at.Format("15:04:05.000"), took.at.Format("15:04:05.000"), both, advert)
	}
	if st := n1.status(t); st.StartState != "master" || st.State != "master" || !st.VIPHeld {
		t.Errorf("n1 status %+v, want master holding the VIP, start_state master", st)
	}
	if st := n2.status(t); st.StartState != "backup" {
		t.Errorf("n2 start_state %q, want the default backup", st.StartState)
	}
	waitBanner(t, lab, vip, "n1.lab.test", 3*time.Second)
	waitHeld(t, lab, 2, false, time.Second)

	// The 100 restarted with start_state master meets the 200: master at
	// start, backup on the 200's answer, and the 200 is not disturbed.
	n2.proc.Stop(syscall.SIGTERM, 5*time.Second)
	n2.cfg = writeNodeConfig(t, lab, 2, nodeConf{prio: 100, advert: advert, preempt: true, extra: startMaster})
	before := len(n1.transitions())
	n2.start(t)
	yielded := n2.waitTransition(t, 2, 2*time.Second)
	trs := n2.transitions()
	if trs[0].to != "master" || trs[0].reason != "startup" || yielded.to != "backup" || yielded.reason != "higher_priority" {
		t.Fatalf("n2's transitions %+v, want init→master (startup), master→backup (higher_priority)", trs)
	}
	if both := yielded.at.Sub(trs[0].at); both > advert {
		t.Errorf("n2 held the VIP for %s next to n1, want at most one advert (%s)", both, advert)
	}
	time.Sleep(3 * advert)
	if got := n1.transitions(); len(got) != before {
		t.Errorf("n1's transitions after n2's start %+v, want none new", got[before:])
	}
	if st := n2.status(t); st.State != "backup" || st.VIPHeld || st.MasterAddr != lab.NodeAddr(1) {
		t.Errorf("n2 status %+v, want backup under %s without the VIP", st, lab.NodeAddr(1))
	}
	waitBanner(t, lab, vip, "n1.lab.test", time.Second)
}
