package cluster

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"

	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/mxgate/mxgate/cluster/vrrp"
)

// advertTransport is what a node needs of its VRRP socket, whatever the
// family: the IPv4 one (transport) or the IPv6 one (transport6). The VIP's
// family picks it, since one virtual router speaks one family (RFC 5798
// §5.2.9).
type advertTransport interface {
	send(a vrrp.Advert) (int, error)
	recv(buf []byte) (r vrrp.Received, ok bool, err error)
	close() error
}

// announcer tells the segment that the VIP's link-layer address is ours:
// gratuitous ARP for IPv4, unsolicited neighbour advertisements for IPv6.
type announcer interface {
	send() error
	close() error
}

var (
	_ advertTransport = (*transport)(nil)
	_ advertTransport = (*transport6)(nil)
	_ announcer       = (*garp)(nil)
	_ announcer       = (*unsolicitedNA)(nil)
)

// transport6 is the raw IPv6 protocol-112 socket of one node (RFC 5798
// §5.1.2). The kernel builds the IPv6 header; we compute the VRRP checksum
// over the RFC 8200 pseudo-header ourselves (no IPV6_CHECKSUM), so Parse
// sees and counts a bad one like on IPv4. The source is pinned per packet
// with IPV6_PKTINFO to the interface's link-local address, which is both
// the advert's source the RFC requires and our tie-breaking primary address.
type transport6 struct {
	conn net.PacketConn
	pc   *ipv6.PacketConn
	ifi  *net.Interface
	src  netip.Addr
	dsts []netip.Addr // ff02::12, or the unicast peers
	mode vrrp.ChecksumMode
}

// openTransport6 opens the socket in the calling thread's network namespace.
func openTransport6(ifi *net.Interface, src netip.Addr, peers []netip.Addr, mode vrrp.ChecksumMode) (*transport6, error) {
	conn, err := net.ListenPacket(fmt.Sprintf("ip6:%d", vrrp.Protocol), "::")
	if err != nil {
		return nil, fmt.Errorf("open raw IPv6 socket for protocol %d: %w", vrrp.Protocol, err)
	}
	t := &transport6{conn: conn, pc: ipv6.NewPacketConn(conn), ifi: ifi, src: src, mode: mode, dsts: peers}
	multi := len(peers) == 0
	if multi {
		t.dsts = []netip.Addr{vrrp.Group6}
	}
	if err := t.setup(multi); err != nil {
		conn.Close()
		return nil, err
	}
	return t, nil
}

func (t *transport6) setup(multi bool) error {
	// As on IPv4: without it the raw socket gets every group any socket on
	// the host joined, not only ours.
	if err := setSockoptInt(t.conn, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0); err != nil {
		return fmt.Errorf("set IPV6_MULTICAST_ALL=0: %w", err)
	}
	// RFC 5798 §5.1.2.3: hop limit 255, receivers drop anything else.
	if err := t.pc.SetMulticastHopLimit(255); err != nil {
		return fmt.Errorf("set multicast hop limit 255: %w", err)
	}
	if err := t.pc.SetHopLimit(255); err != nil {
		return fmt.Errorf("set unicast hop limit 255: %w", err)
	}
	// Network control class, as the IPv4 side's TOS 0xc0.
	if err := t.pc.SetTrafficClass(0xc0); err != nil {
		return fmt.Errorf("set traffic class 0xc0: %w", err)
	}
	if err := t.pc.SetMulticastLoopback(false); err != nil {
		return fmt.Errorf("disable multicast loopback: %w", err)
	}
	// ff02::12 is link-scoped: without the interface the kernel cannot
	// choose one and the send fails.
	if err := t.pc.SetMulticastInterface(t.ifi); err != nil {
		return fmt.Errorf("set multicast interface %s: %w", t.ifi.Name, err)
	}
	if err := t.pc.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true); err != nil {
		return fmt.Errorf("enable control messages: %w", err)
	}
	if multi {
		grp := &net.IPAddr{IP: net.IP(vrrp.Group6.AsSlice())}
		if err := t.pc.JoinGroup(t.ifi, grp); err != nil {
			return fmt.Errorf("join %s on %s: %w", vrrp.Group6, t.ifi.Name, err)
		}
	}
	return nil
}

// setSockoptInt sets an integer socket option on an IP socket.
func setSockoptInt(c net.PacketConn, level, opt, v int) error {
	sc, ok := c.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return fmt.Errorf("not a socket")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, v) }); err != nil {
		return err
	}
	return serr
}

// send transmits one advert to every destination (the pseudo-header covers
// the destination, so the checksum is per destination). It returns how many
// were sent and the first error.
func (t *transport6) send(a vrrp.Advert) (int, error) {
	sent := 0
	var first error
	cm := &ipv6.ControlMessage{Src: net.IP(t.src.AsSlice()), IfIndex: t.ifi.Index}
	for _, dst := range t.dsts {
		b, err := a.Marshal(t.src, dst, t.mode)
		if err != nil {
			return sent, fmt.Errorf("marshal advert: %w", err)
		}
		// The zone matters for link-local peers and ff02::/16 only; the
		// kernel ignores it for global unicast. It is the index, not the
		// name: Go resolves a name in the namespace of the thread that
		// sends, which need not be the socket's.
		to := &net.IPAddr{IP: net.IP(dst.AsSlice()), Zone: strconv.Itoa(t.ifi.Index)}
		if _, err := t.pc.WriteTo(b, cm, to); err != nil {
			if first == nil {
				first = fmt.Errorf("send advert to %s: %w", dst, err)
			}
			continue
		}
		sent++
	}
	return sent, first
}

// recv reads the next packet that arrived on our interface; ok is false for
// another interface's packets. The hop limit travels as TTL: the filter's
// check is the same on both families.
func (t *transport6) recv(buf []byte) (r vrrp.Received, ok bool, err error) {
	n, cm, src, err := t.pc.ReadFrom(buf)
	if err != nil {
		return r, false, err
	}
	if cm == nil || cm.IfIndex != t.ifi.Index {
		return r, false, nil
	}
	r, ok = toReceived(buf[:n], src, cm.Dst, cm.HopLimit)
	return r, ok, nil
}

// toReceived copies one packet out of the receive buffer with its
// addresses; ok is false when the socket gave no usable addresses.
func toReceived(payload []byte, src net.Addr, dst net.IP, ttl int) (vrrp.Received, bool) {
	ipa, isIP := src.(*net.IPAddr)
	if !isIP {
		return vrrp.Received{}, false
	}
	s, ok1 := netip.AddrFromSlice(ipa.IP)
	d, ok2 := netip.AddrFromSlice(dst)
	if !ok1 || !ok2 {
		return vrrp.Received{}, false
	}
	return vrrp.Received{Payload: append([]byte(nil), payload...), Src: s.Unmap(), Dst: d.Unmap(), TTL: ttl}, true
}

func (t *transport6) close() error { return t.conn.Close() }
