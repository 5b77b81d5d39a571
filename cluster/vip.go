package cluster

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// vip adds and removes the virtual address on the interface through a
// netlink handle opened in the node's namespace, so the calls are right
// whatever thread the machine goroutine happens to run on.
type vip struct {
	h      *netlink.Handle
	link   netlink.Link
	pfx    netip.Prefix
	label  string
	family int // netlink.FAMILY_V4 or FAMILY_V6
}

func newVIP(h *netlink.Handle, link netlink.Link, pfx netip.Prefix) *vip {
	v := &vip{h: h, link: link, pfx: pfx, family: netlink.FAMILY_V4}
	if pfx.Addr().Is6() {
		v.family = netlink.FAMILY_V6
		return v // labels are an IPv4 notion; the kernel has none for IPv6
	}
	// The label shows the VIP in `ip addr` / ifconfig as eth0:vip; the kernel
	// rejects labels longer than IFNAMSIZ-1 or not starting with the link name.
	if l := link.Attrs().Name + ":vip"; len(l) <= unix.IFNAMSIZ-1 {
		v.label = l
	}
	return v
}

func (v *vip) addr() *netlink.Addr {
	a := &netlink.Addr{
		IPNet: &net.IPNet{IP: net.IP(v.pfx.Addr().AsSlice()), Mask: net.CIDRMask(v.pfx.Bits(), v.pfx.Addr().BitLen())},
		Label: v.label,
	}
	if v.family == netlink.FAMILY_V6 {
		// No duplicate address detection, as keepalived: DAD would keep
		// the VIP tentative (unusable, unannounced) for a second or more
		// after we became master, and a master killed with -9 still has
		// the address on its interface and answers DAD, which would leave
		// ours "dadfailed" for good. The election already decided who
		// owns the address; DAD has nothing to add.
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

// add puts the VIP on the interface. Idempotent: AddrReplace succeeds when
// the address is already there (a crashed predecessor, a repeated
// transition), where AddrAdd would fail with EEXIST.
func (v *vip) add() error {
	if err := v.h.AddrReplace(v.link, v.addr()); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add VIP %s to %s: %w", v.pfx, v.link.Attrs().Name, err)
	}
	return nil
}

// remove deletes every copy of the VIP address from the interface, whatever
// prefix it was added with (an older configuration may have used another).
// An address that is not there is success.
func (v *vip) remove() error {
	addrs, err := v.h.AddrList(v.link, v.family)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return fmt.Errorf("list addresses of %s: %w", v.link.Attrs().Name, err)
	}
	want := v.pfx.Addr()
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || ip.Unmap() != want {
			continue
		}
		if err := v.h.AddrDel(v.link, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove VIP %s from %s: %w", a.IPNet, v.link.Attrs().Name, err)
		}
	}
	return nil
}

// present reports whether the VIP is on the interface now.
func (v *vip) present() (bool, error) {
	addrs, err := v.h.AddrList(v.link, v.family)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return false, fmt.Errorf("list addresses of %s: %w", v.link.Attrs().Name, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == v.pfx.Addr() {
			return true, nil
		}
	}
	return false, nil
}

// garp sends gratuitous ARP for the VIP: an ARP request with sender IP =
// target IP = VIP, broadcast (RFC 5798 §6.4.1 as fixed by RFC 9568 errata
// 7947/7949; what keepalived sends). Neighbours update an existing entry at
// once instead of waiting for it to expire (seconds to hours).
type garp struct {
	c   *arp.Client
	pkt *arp.Packet
}

// openGARP opens the AF_PACKET socket in the calling thread's namespace.
func openGARP(ifi *net.Interface, addr netip.Addr) (*garp, error) {
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("gratuitous ARP on %s: no Ethernet address", ifi.Name)
	}
	c, err := arp.Dial(ifi)
	if err != nil {
		return nil, fmt.Errorf("open ARP socket on %s: %w", ifi.Name, err)
	}
	p, err := arp.NewPacket(arp.OperationRequest, ifi.HardwareAddr, addr, ethernet.Broadcast, addr)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("build gratuitous ARP for %s: %w", addr, err)
	}
	return &garp{c: c, pkt: p}, nil
}

func (g *garp) send() error {
	if err := g.c.WriteTo(g.pkt, ethernet.Broadcast); err != nil {
		return fmt.Errorf("send gratuitous ARP: %w", err)
	}
	return nil
}

func (g *garp) close() error { return g.c.Close() }
