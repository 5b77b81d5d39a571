package cluster

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/mxgate/mxgate/cluster/vrrp"
	"github.com/mxgate/mxgate/testenv"
)

var vip6 = netip.MustParsePrefix("fd00:198:18::100/64")

// watch6 opens a raw IPv6 socket for protocol proto on the client's eth0,
// joined to group, with hop limit and destination as control messages.
func watch6(t *testing.T, l *testenv.Lab, proto string, group netip.Addr) *ipv6.PacketConn {
	t.Helper()
	var pc *ipv6.PacketConn
	if err := l.Do(l.Client(), func() error {
		c, err := net.ListenPacket("ip6:"+proto, "::")
		if err != nil {
			return err
		}
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			c.Close()
			return err
		}
		p := ipv6.NewPacketConn(c)
		if err := p.JoinGroup(ifi, &net.IPAddr{IP: net.IP(group.AsSlice())}); err != nil {
			c.Close()
			return err
		}
		if err := p.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst, true); err != nil {
			c.Close()
			return err
		}
		pc = p
		return nil
	}); err != nil {
		t.Fatalf("raw IPv6 %s socket in the client: %v", proto, err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// next6 returns the first packet from src for which match is true.
func next6(t *testing.T, pc *ipv6.PacketConn, src netip.Addr, within time.Duration, what string, match func([]byte) bool) ([]byte, *ipv6.ControlMessage) {
	t.Helper()
	buf := make([]byte, 1500)
	pc.SetReadDeadline(time.Now().Add(within))
	for {
		n, cm, from, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		a, _ := netip.AddrFromSlice(from.(*net.IPAddr).IP)
		if a == src && cm != nil && match(buf[:n]) {
			return bytes.Clone(buf[:n]), cm
		}
	}
}

// VRRP over IPv6 on the wire (RFC 5798 §5.1.2), seen from the client:
// adverts to ff02::12 from the master's link-local address with hop limit
// 255 and a checksum over the IPv6 pseudo-header, carrying the VIP; the VIP
// added without DAD on the master only; unsolicited neighbour
// advertisements for it (ff02::1, hop limit 255, Override only, our MAC).
// The backup names the master by its link-local address and takes over
// when it stops.
func TestIPv6OnTheWire(t *testing.T) {
	testenv.NeedRoot(t)
	l := testenv.NewLabIPv6(t, 2)
	vrrpSock := watch6(t, l, "112", vrrp.Group6)
	icmpSock := watch6(t, l, "ipv6-icmp", netip.MustParseAddr("ff02::1"))
	llA, err := l.LinkLocal(l.Node(1))
	if err != nil {
		t.Fatal(err)
	}
	const iv = 100 * time.Millisecond
	a := startNode(t, l.Node(1), "a", Options{VIP: vip6, Priority: 200, Interval: iv, Preempt: true, GARPRepeat: 3})
	b := startNode(t, l.Node(2), "b", Options{VIP: vip6, Priority: 100, Interval: iv, Preempt: true})
	waitFor(t, 2*masterDown(200, iv), "a to become master", a.IsMaster)

	adv, cm := next6(t, vrrpSock, llA, 2*time.Second, "an advert from a", func(b []byte) bool { return len(b) > 2 && b[2] == 200 })
	if cm.HopLimit != 255 || netip.MustParseAddr(cm.Dst.String()) != vrrp.Group6 {
		t.Errorf("advert hop limit %d to %s, want 255 to ff02::12", cm.HopLimit, cm.Dst)
	}
	got, why := vrrp.Parse(adv, llA, vrrp.Group6)
	if why != "" || got.VRID != 51 || got.Interval != iv || !slices.Equal(got.Addrs, []netip.Addr{vip6.Addr()}) {
		t.Errorf("advert % x parsed %+v, %q; want VRID 51, 100ms, [%s]", adv, got, why, vip6.Addr())
	}
	if _, why := vrrp.Parse(adv, netip.MustParseAddr("fe80::1"), vrrp.Group6); why != vrrp.DropChecksum {
		t.Errorf("checksum does not cover the source address (parse from another source: %q)", why)
	}

	na, cm := next6(t, icmpSock, llA, 2*time.Second, "a neighbour advertisement from a", func(b []byte) bool {
		return len(b) >= 24 && b[0] == byte(ipv6.ICMPTypeNeighborAdvertisement) && netip.AddrFrom16([16]byte(b[8:24])) == vip6.Addr()
	})
	if cm.HopLimit != 255 || cm.Dst.String() != "ff02::1" {
		t.Errorf("NA hop limit %d to %s, want 255 to ff02::1", cm.HopLimit, cm.Dst)
	}
	if len(na) != 32 || na[4] != naOverride || na[24] != 2 || na[25] != 1 || !bytes.Equal(na[26:32], l.NodeMAC(1)) {
		t.Errorf("NA % x: want flags O only, target %s, target link-layer address %s", na, vip6.Addr(), l.NodeMAC(1))
	}

	if flags, ok := vip6Flags(t, l.Node(1)); !ok || flags&unix.IFA_F_NODAD == 0 {
		t.Errorf("VIP on a: present=%v flags %#x, want it with nodad", ok, flags)
	}
	if _, ok := vip6Flags(t, l.Node(2)); ok {
		t.Error("the backup holds the VIP")
	}
	if s := a.Status(); s.Source != llA.String() {
		t.Errorf("a's source %s, want its link-local %s", s.Source, llA)
	}
	waitFor(t, time.Second, "b to name a as master", func() bool { return b.Status().MasterAddr == llA.String() })

	a.shutdown(t)
	waitFor(t, 2*time.Second, "b to take over after a stopped", b.IsMaster)
	if _, ok := vip6Flags(t, l.Node(1)); ok {
		t.Error("a stopped but kept the VIP")
	}
	if _, ok := vip6Flags(t, l.Node(2)); !ok {
		t.Error("b is master without the VIP")
	}
}

// vip6Flags reports the IPv6 VIP's address flags on eth0 in ns.
func vip6Flags(t *testing.T, ns string) (int, bool) {
	t.Helper()
	h := nsHandle(t, ns)
	defer h.Close()
	lk, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	as, err := h.AddrList(lk, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if ip, _ := netip.AddrFromSlice(a.IP); ip == vip6.Addr() {
			return a.Flags, true
		}
	}
	return 0, false
}
