package main

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mxgate/mxgate/testenv"
)

// Two nodes, two virtual routers with mirrored priorities (keepalived's two
// vrrp_instance blocks): VRID 51 (n1 200, n2 100) on LabVIP and VRID 52 (n1
// 100, n2 200) on .101, both published as MX. Each VIP's banner names its
// own master; SMTP listens on .101 although smtp.listen names only LabVIP.
// kill -9 of n1 → n2 holds both VIPs within (loosely) the down interval and
// answers on both; n1 restarted → preemption brings 51 back to n1 only.
func TestClusterInstancesMirrored(t *testing.T) {
	testenv.NeedRoot(t)
	lab := testenv.NewLab(t, 2)
	const advert = 200 * time.Millisecond
	const vip2 = "198.18.0.101"
	vipA, vipB := testenv.LabVIP+":25", vip2+":25"
	routers := func(p51, p52 int) string {
		return fmt.Sprintf("  instances:\n    - {vrid: 51, vip: %s/%d, priority: %d}\n    - {vrid: 52, vip: %s/%d, priority: %d}\n",
			testenv.LabVIP, testenv.LabPrefix, p51, vip2, testenv.LabPrefix, p52)
	}
	// The top-level priority is the items' default; the items override it.
	n1 := startNode(t, lab, 1, nodeConf{prio: 1, advert: advert, preempt: true, routers: routers(200, 100)})
	n2 := startNode(t, lab, 2, nodeConf{prio: 1, advert: advert, preempt: true, routers: routers(100, 200)})

	states := func(n *mxNode) []string {
		st, err := n.instancesErr()
		if err != nil {
			return nil
		}
		var out []string
		for _, in := range st {
			out = append(out, in.State)
		}
		return out
	}
	waitStates := func(n *mxNode, want []string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !slices.Equal(states(n), want) {
			if time.Now().After(deadline) {
				t.Fatalf("node %d: instance states %v after %s, want %v\n%s", n.i, states(n), within, want, n.proc.Text())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	held := func(i int, addr string) bool {
		h, err := lab.HasAddr(i, addr)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}

	waitStates(n1, []string{"master", "backup"}, 5*time.Second)
	waitStates(n2, []string{"backup", "master"}, 5*time.Second)
	waitBanner(t, lab, vipA, "n1.lab.test", 5*time.Second)
	waitBanner(t, lab, vipB, "n2.lab.test", 5*time.Second)
	if !held(1, testenv.LabVIP) || held(1, vip2) || held(2, testenv.LabVIP) || !held(2, vip2) {
		t.Fatalf("VIPs: n1 %v/%v n2 %v/%v, want %s on n1 only and %s on n2 only",
			held(1, testenv.LabVIP), held(1, vip2), held(2, testenv.LabVIP), held(2, vip2), testenv.LabVIP, vip2)
	}
	// The node's own role is its first router's: n1 master, n2 backup.
	if st := n1.status(t); st.State != "master" || st.VRID != 51 {
		t.Errorf("n1 top-level status %+v, want master of 51", st)
	}
	if st := n2.status(t); st.State != "backup" || st.VRID != 51 || st.MasterAddr != lab.NodeAddr(1) {
		t.Errorf("n2 top-level status %+v, want backup of 51 under %s", st, lab.NodeAddr(1))
	}
	// Each router's adverts went to the other node's router of the same
	// VRID over the one socket: nothing dropped.
	for _, n := range []*mxNode{n1, n2} {
		for reason, c := range n.status(t).Dropped {
			if c != 0 {
				t.Errorf("node %d dropped %d adverts as %q", n.i, c, reason)
			}
		}
	}

	// kill -9 of n1: n2 takes 51 after its Master_Down_Interval and keeps 52.
	t0 := n1.kill9(t)
	waitBanner(t, lab, vipA, "n2.lab.test", 10*time.Second)
	took := time.Since(t0)
	mdi := masterDown(advert, 100)
	t.Logf("kill -9: n2 answered on %s after %s (Master_Down_Interval %s)", testenv.LabVIP, took.Round(time.Millisecond), mdi)
	if took > 2*mdi+250*time.Millisecond { // loose: the VM stalls now and then
		t.Errorf("takeover after kill -9 took %s, want about Master_Down_Interval %s (< 2×)", took, mdi)
	}
	waitStates(n2, []string{"master", "master"}, time.Second)
	if !held(2, testenv.LabVIP) || !held(2, vip2) {
		t.Errorf("n2 holds %s=%v %s=%v, want both", testenv.LabVIP, held(2, testenv.LabVIP), vip2, held(2, vip2))
	}
	if got := banner(lab, vipB); got != "n2.lab.test" {
		t.Errorf("%s answered by %q after n1's kill, want n2.lab.test", vipB, got)
	}

	// n1 back: stale VIP removed, 51 preempted back; 52 stays on n2.
	n1.start(t)
	waitStates(n1, []string{"master", "backup"}, 5*time.Second)
	waitBanner(t, lab, vipA, "n1.lab.test", 3*time.Second)
	waitStates(n2, []string{"backup", "master"}, 2*time.Second)
	if held(1, vip2) || !held(2, vip2) || held(2, testenv.LabVIP) {
		t.Errorf("after n1's return: n1 has %s=%v, n2 has %s=%v %s=%v", vip2, held(1, vip2), testenv.LabVIP, held(2, testenv.LabVIP), vip2, held(2, vip2))
	}
	if got := banner(lab, vipB); got != "n2.lab.test" {
		t.Errorf("%s answered by %q after n1's return, want n2.lab.test", vipB, got)
	}
}

// labInstance is one item of the cluster status' "instances".
type labInstance struct {
	VRID              int    `json:"vrid"`
	VIP               string `json:"vip"`
	State             string `json:"state"`
	VIPHeld           bool   `json:"vip_held"`
	Master            string `json:"master"`
	EffectivePriority int    `json:"effective_priority"`
}

// instancesErr reads the node's virtual routers from `mxgate cluster
// status --json`.
func (n *mxNode) instancesErr() ([]labInstance, error) {
	st, err := n.statusErr()
	return st.Instances, err
}
