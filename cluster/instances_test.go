package cluster

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// vip2P is the second virtual router's VIP in the tests of several.
var vip2P = netip.MustParsePrefix("198.18.0.101/24")

// mirroredInstances are VRID 51 on vipP and 52 on vip2P with the given
// priorities, both preempting (keepalived's two vrrp_instance blocks).
func mirroredInstances(iv time.Duration, prio51, prio52 uint8) []Instance {
	return []Instance{
		{VRID: 51, VIP: vipP, Priority: prio51, Interval: iv, Preempt: true},
		{VRID: 52, VIP: vip2P, Priority: prio52, Interval: iv, Preempt: true},
	}
}

// roles are the states of n's virtual routers, in order.
func roles(n *tnode) []string {
	var out []string
	for _, in := range n.Status().Instances {
		out = append(out, in.State)
	}
	return out
}

// Two nodes, two virtual routers with mirrored priorities (keepalived's two
// vrrp_instance blocks): each node is master of one VIP and backup of the
// other, over one socket each. When a stops, b holds both; when a returns,
// preemption gives it VRID 51 back and b keeps 52.
func TestMirroredInstances(t *testing.T) {
	p := newPair(t)
	const iv = 200 * time.Millisecond
	mirrored := func(prio51, prio52 uint8) []Instance { return mirroredInstances(iv, prio51, prio52) }
	cmdB, outB := notifyScript(t, "b")
	a := startNode(t, p.a, "a", Options{Instances: mirrored(200, 100)})
	b := startNode(t, p.b, "b", Options{Instances: mirrored(100, 200), Notify: cmdB})

	waitFor(t, 2*masterDown(100, iv)+time.Second, "a master of 51, b master of 52", func() bool {
		return slices.Equal(roles(a), []string{"master", "backup"}) && slices.Equal(roles(b), []string{"backup", "master"})
	})
	// Stable for more than one Master_Down_Interval.
	time.Sleep(masterDown(100, iv) + iv)
	if ra, rb := roles(a), roles(b); !slices.Equal(ra, []string{"master", "backup"}) || !slices.Equal(rb, []string{"backup", "master"}) {
		t.Fatalf("roles changed: a=%v b=%v", ra, rb)
	}
	if !addrOn(t, p.a, vipP.Addr()) || addrOn(t, p.a, vip2P.Addr()) || addrOn(t, p.b, vipP.Addr()) || !addrOn(t, p.b, vip2P.Addr()) {
		t.Fatalf("VIPs: a has .100=%v .101=%v, b has .100=%v .101=%v; want .100 on a only, .101 on b only",
			addrOn(t, p.a, vipP.Addr()), addrOn(t, p.a, vip2P.Addr()), addrOn(t, p.b, vipP.Addr()), addrOn(t, p.b, vip2P.Addr()))
	}
	sa := a.Status()
	if !a.IsMaster() || b.IsMaster() {
		t.Errorf("IsMaster (the first instance's): a=%v b=%v, want a only", a.IsMaster(), b.IsMaster())
	}
	if sa.VRID != 51 || sa.VIP != vipP.String() || sa.State != "master" || len(sa.Instances) != 2 {
		t.Errorf("a status: top level %d %s %s, %d instances; want the first instance's", sa.VRID, sa.VIP, sa.State, len(sa.Instances))
	}
	if s2 := sa.Instances[1]; s2.VRID != 52 || s2.VIP != vip2P.String() || s2.VIPHeld || s2.MasterAddr != addrB.String() || s2.MasterPriority != 200 || s2.AdvertsRecv == 0 {
		t.Errorf("a's VRID 52: %+v, want backup of %s priority 200", s2, addrB)
	}
	// Each router's adverts reached the other node's machine of that VRID:
	// none was dropped as another VRID's.
	if d := sa.Dropped["vrid"]; d != 0 {
		t.Errorf("a dropped %d adverts as vrid, want 0 (both VRIDs are ours)", d)
	}
	for _, c := range []struct {
		n           *tnode
		name, vrid  string
		state, held float64
	}{{a, "a", "51", 1, 1}, {a, "a", "52", 0, 0}, {b, "b", "51", 0, 0}, {b, "b", "52", 1, 1}} {
		if v := gatherValue(t, c.n.reg, "mxgate_vrrp_vip_held", "vrid", c.vrid); v != c.held {
			t.Errorf("%s vip_held{vrid=%s} = %v, want %v", c.name, c.vrid, v, c.held)
		}
	}

	// a stops: b takes 51 too (priority-0 advert) and keeps 52.
	a.shutdown(t)
	waitFor(t, 2*masterDown(100, iv), "b master of both", func() bool {
		return slices.Equal(roles(b), []string{"master", "master"})
	})
	waitFor(t, time.Second, "both VIPs on b", func() bool { return addrOn(t, p.b, vipP.Addr()) && addrOn(t, p.b, vip2P.Addr()) })
	if addrOn(t, p.a, vipP.Addr()) || addrOn(t, p.a, vip2P.Addr()) {
		t.Error("a still has a VIP after its Run returned")
	}

	// a returns: preemption gives it 51 back; b keeps 52.
	a2 := startNode(t, p.a, "a", Options{Instances: mirrored(200, 100)})
	waitFor(t, 2*masterDown(100, iv)+time.Second, "a master of 51 again", func() bool {
		return slices.Equal(roles(a2), []string{"master", "backup"}) && slices.Equal(roles(b), []string{"backup", "master"})
	})
	waitFor(t, time.Second, ".100 back on a only", func() bool { return addrOn(t, p.a, vipP.Addr()) && !addrOn(t, p.b, vipP.Addr()) })
	if !addrOn(t, p.b, vip2P.Addr()) || addrOn(t, p.a, vip2P.Addr()) {
		t.Error(".101 moved although b kept VRID 52")
	}
	b.shutdown(t)
	// One notify command for both routers, the VRID telling them apart.
	calls := readLines(t, outB)
	for _, want := range []string{"b backup 51 100", "b master 51 100", "b master 52 200", "b init 52 200"} {
		if !slices.Contains(calls, want) {
			t.Errorf("b's notify calls %q lack %q", calls, want)
		}
	}
	if !strings.Contains(b.log.String(), `msg="vrrp transition" from=backup to=master reason=priority_zero vrid=51`) {
		t.Errorf("b's log lacks its takeover of 51:\n%s", b.log)
	}
}
