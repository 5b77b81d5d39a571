package cluster

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/mxgate/mxgate/cluster/vrrp"
)

// transport is the raw IPv4 protocol-112 socket of one node. The kernel
// builds the IP header (ipv4.PacketConn); the source address is pinned per
// packet with IP_PKTINFO because the checksum covers it and the interface
// may carry several addresses (the VIP among them).
type transport struct {
	conn  net.PacketConn
	pc    *ipv4.PacketConn
	ifi   *net.Interface
	src   netip.Addr
	dsts  []netip.Addr // 224.0.0.18, or the unicast peers
	mode  vrrp.ChecksumMode
	multi bool
}

// openTransport opens the socket in the calling thread's network namespace
// (the socket keeps that namespace for life).
func openTransport(ifi *net.Interface, src netip.Addr, peers []netip.Addr, mode vrrp.ChecksumMode) (*transport, error) {
	conn, err := net.ListenPacket(fmt.Sprintf("ip4:%d", vrrp.Protocol), "0.0.0.0")
	if err != nil {
		return nil, fmt.Errorf("open raw socket for IP protocol %d: %w", vrrp.Protocol, err)
	}
	t := &transport{conn: conn, pc: ipv4.NewPacketConn(conn), ifi: ifi, src: src, mode: mode, multi: len(peers) == 0}
	if t.multi {
		t.dsts = []netip.Addr{vrrp.Group}
	} else {
		t.dsts = peers
	}
	if err := t.setup(); err != nil {
		conn.Close()
		return nil, err
	}
	return t, nil
}

func (t *transport) setup() error {
	// Without IP_MULTICAST_ALL=0 a raw socket receives multicast for groups
	// joined by any socket on the host, not only ours (keepalived sets it too).
	if err := setMulticastAll(t.conn, false); err != nil {
		return err
	}
	// RFC 5798 §5.1.1.3: TTL 255 on send; receivers drop anything else, so the
	// kernel's multicast default of 1 would be fatal for interop.
	if err := t.pc.SetMulticastTTL(255); err != nil {
		return fmt.Errorf("set multicast TTL 255: %w", err)
	}
	if err := t.pc.SetTTL(255); err != nil {
		return fmt.Errorf("set unicast TTL 255: %w", err)
	}
	// Internetwork control precedence, as keepalived; some switches queue it first.
	if err := t.pc.SetTOS(0xc0); err != nil {
		return fmt.Errorf("set TOS 0xc0: %w", err)
	}
	// Our own adverts looped back would only be dropped as own_address.
	if err := t.pc.SetMulticastLoopback(false); err != nil {
		return fmt.Errorf("disable multicast loopback: %w", err)
	}
	// Without an explicit interface multicast follows the routing table: no
	// route = ENETUNREACH, a default route = adverts leave by the wrong link.
	if err := t.pc.SetMulticastInterface(t.ifi); err != nil {
		return fmt.Errorf("set multicast interface %s: %w", t.ifi.Name, err)
	}
	if err := t.pc.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst|ipv4.FlagInterface, true); err != nil {
		return fmt.Errorf("enable control messages: %w", err)
	}
	if t.multi {
		grp := &net.IPAddr{IP: net.IP(vrrp.Group.AsSlice())}
		if err := t.pc.JoinGroup(t.ifi, grp); err != nil {
			return fmt.Errorf("join %s on %s: %w", vrrp.Group, t.ifi.Name, err)
		}
	}
	return nil
}

func setMulticastAll(c net.PacketConn, on bool) error {
	ipc, ok := c.(*net.IPConn)
	if !ok {
		return errors.New("set IP_MULTICAST_ALL: not an IP socket")
	}
	raw, err := ipc.SyscallConn()
	if err != nil {
		return fmt.Errorf("set IP_MULTICAST_ALL: %w", err)
	}
	v := 0
	if on {
		v = 1
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, v)
	}); err != nil {
		return fmt.Errorf("set IP_MULTICAST_ALL: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("set IP_MULTICAST_ALL=%d: %w", v, serr)
	}
	return nil
}

// send transmits one advert to every destination; the checksum is computed
// per destination because the pseudo-header covers it. It returns how many
// were sent and the first error.
func (t *transport) send(a vrrp.Advert) (int, error) {
	sent := 0
	var first error
	cm := &ipv4.ControlMessage{Src: net.IP(t.src.AsSlice()), IfIndex: t.ifi.Index}
	for _, dst := range t.dsts {
		b, err := a.Marshal(t.src, dst, t.mode)
		if err != nil {
			return sent, fmt.Errorf("marshal advert: %w", err)
		}
		if _, err := t.pc.WriteTo(b, cm, &net.IPAddr{IP: net.IP(dst.AsSlice())}); err != nil {
			if first == nil {
				first = fmt.Errorf("send advert to %s: %w", dst, err)
			}
			continue
		}
		sent++
	}
	return sent, first
}

// recv reads the next packet that arrived on our interface. ok is false for
// packets of another interface (the raw socket sees the whole namespace);
// those are not ours to count.
func (t *transport) recv(buf []byte) (r vrrp.Received, ok bool, err error) {
	n, cm, src, err := t.pc.ReadFrom(buf)
	if err != nil {
		return r, false, err
	}
	if cm == nil || cm.IfIndex != t.ifi.Index {
		return r, false, nil
	}
	r, ok = toReceived(buf[:n], src, cm.Dst, cm.TTL)
	return r, ok, nil
}

func (t *transport) close() error { return t.conn.Close() }
