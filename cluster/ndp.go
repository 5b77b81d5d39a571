package cluster

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"golang.org/x/net/ipv6"
)

// unsolicitedNA announces an IPv6 VIP the way gratuitous ARP announces an
// IPv4 one (RFC 5798 §6.4.1 (375), RFC 4861 §7.2.6): a neighbour
// advertisement for the VIP to all-nodes ff02::1, Override set so that
// neighbours replace the link-layer address they cached for the old master,
// Solicited clear (it answers nobody), Router clear (we are a mail gateway,
// not a router: a set R flag would make hosts treat us as one), with our
// MAC in the target link-layer address option, hop limit 255 (receivers
// drop anything else, RFC 4861 §7.1.2).
//
// A raw ICMPv6 socket from golang.org/x/net/ipv6 is enough: the kernel
// fills in the ICMPv6 checksum of a raw ICMPv6 socket, and a fixed 32-byte
// message needs no NDP library.
type unsolicitedNA struct {
	conn net.PacketConn
	pc   *ipv6.PacketConn
	ifi  *net.Interface
	src  netip.Addr // our link-local address
	msg  []byte
}

// naOverride is the O flag in the first byte after the ICMPv6 header.
const naOverride = 0x20

// openUnsolicitedNA opens the socket in the calling thread's namespace.
func openUnsolicitedNA(ifi *net.Interface, src, target netip.Addr) (*unsolicitedNA, error) {
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("neighbour advertisement on %s: no Ethernet address", ifi.Name)
	}
	conn, err := net.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		return nil, fmt.Errorf("open ICMPv6 socket: %w", err)
	}
	u := &unsolicitedNA{conn: conn, pc: ipv6.NewPacketConn(conn), ifi: ifi, src: src, msg: naMessage(target, ifi.HardwareAddr)}
	if err := u.setup(); err != nil {
		conn.Close()
		return nil, err
	}
	return u, nil
}

func (u *unsolicitedNA) setup() error {
	// Send-only: a socket that accepts nothing cannot fill its buffer with
	// every ICMPv6 message of the segment.
	var f ipv6.ICMPFilter
	f.SetAll(true)
	if err := u.pc.SetICMPFilter(&f); err != nil {
		return fmt.Errorf("set ICMPv6 filter: %w", err)
	}
	if err := u.pc.SetMulticastHopLimit(255); err != nil {
		return fmt.Errorf("set multicast hop limit 255: %w", err)
	}
	if err := u.pc.SetMulticastInterface(u.ifi); err != nil {
		return fmt.Errorf("set multicast interface %s: %w", u.ifi.Name, err)
	}
	if err := u.pc.SetMulticastLoopback(false); err != nil {
		return fmt.Errorf("disable multicast loopback: %w", err)
	}
	return nil
}

// naMessage is the ICMPv6 neighbour advertisement (RFC 4861 §4.4) with a
// zero checksum for the kernel to fill in.
func naMessage(target netip.Addr, mac net.HardwareAddr) []byte {
	b := make([]byte, 0, 32)
	b = append(b, byte(ipv6.ICMPTypeNeighborAdvertisement), 0, 0, 0) // type, code, checksum
	b = append(b, naOverride, 0, 0, 0)                               // R=0 S=0 O=1, reserved
	b = append(b, target.AsSlice()...)
	b = append(b, 2, 1) // option: target link-layer address, 1×8 bytes
	return append(b, mac...)
}

func (u *unsolicitedNA) send() error {
	cm := &ipv6.ControlMessage{Src: net.IP(u.src.AsSlice()), IfIndex: u.ifi.Index, HopLimit: 255}
	// The zone by index: a name would be resolved in the sending thread's
	// namespace, not necessarily the socket's.
	to := &net.IPAddr{IP: net.IPv6linklocalallnodes, Zone: strconv.Itoa(u.ifi.Index)}
	if _, err := u.pc.WriteTo(u.msg, cm, to); err != nil {
		return fmt.Errorf("send unsolicited neighbour advertisement: %w", err)
	}
	return nil
}

func (u *unsolicitedNA) close() error { return u.conn.Close() }
