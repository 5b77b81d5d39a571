// Package lab builds the namespace lab: a throwaway layer-2 segment of
// network namespaces on one Linux host, the same topology as the
// docker-compose lab, used by `make lab`, the cluster tests and the
// benchmarks.
//
//	<name>-sw      switch: bridge br0 (no STP, no IGMP snooping, so
//	               224.0.0.18 floods like on a dumb switch), one port per host
//	<name>-hI      node I (1..n): eth0 198.18.0.(10+I)/24, MAC 02:6d:6c:00:00:0I
//	<name>-c       client: eth0 198.18.0.250/24
//	<name>-<host>  more hosts on the segment (AddHost), e.g. a mail server
//
// Both ends of every veth are created inside the lab's namespaces, so the
// root namespace never holds a link of the lab, and deleting the
// namespaces (Destroy) removes everything. Addresses are in 198.18.0.0/24
// (RFC 2544's benchmark range, never routed anywhere); labs of different
// names use the same addresses without clashing.
package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Addresses on the segment.
const (
	VIP        = "198.18.0.100"
	Prefix     = 24
	ClientAddr = "198.18.0.250"
	// MaxNodes bounds n in Create (addresses 198.18.0.11..30).
	MaxNodes = 20
)

// IPv6 on the segment, added by EnableIPv6 (a ULA prefix: the lab never
// reaches a routed network). Node i is fd00:198:18::(10+i), the same digits
// as its IPv4 address, plus its link-local address.
const (
	VIP6        = "fd00:198:18::100"
	Prefix6     = 64
	ClientAddr6 = "fd00:198:18::250"
)

// NodeAddr6 is node i's own IPv6 address, fd00:198:18::(10+i).
func NodeAddr6(i int) string { return fmt.Sprintf("fd00:198:18::%d", 10+i) }

// UnixDgramQueue is the net.unix.max_dgram_qlen every lab host gets: what
// systemd sets on a Debian host, where the kernel's default is 10.
const UnixDgramQueue = "512"

// ErrExists is returned by Create when the lab's switch namespace already
// exists: the name belongs to another lab.
var ErrExists = errors.New("lab exists")

// NodeAddr is node i's own address, 198.18.0.(10+i).
func NodeAddr(i int) string { return fmt.Sprintf("198.18.0.%d", 10+i) }

// NodeMAC is node i's eth0 hardware address.
func NodeMAC(i int) net.HardwareAddr { return net.HardwareAddr{0x02, 0x6d, 0x6c, 0, 0, byte(i)} }

// Lab is one lab's namespaces and the netlink handles opened on them.
type Lab struct {
	name  string
	nodes int

	mu      sync.Mutex
	handles map[string]*netlink.Handle // per namespace, opened on first use
}

// Open refers to the lab called name with n nodes, built by this or
// another process; nothing is checked or created.
func Open(name string, n int) *Lab {
	return &Lab{name: name, nodes: n, handles: map[string]*netlink.Handle{}}
}

// Create builds the lab called name (a prefix for its namespaces: letters,
// digits, at most 20 characters) with n nodes and a client, and waits until
// every link carries frames. It needs root and iproute2's ip. It returns
// ErrExists, having created nothing, when the name is taken; on any other
// error the half-built lab is left for Destroy.
func Create(ctx context.Context, name string, n int) (*Lab, error) {
	if n < 1 || n > MaxNodes {
		return nil, fmt.Errorf("lab with %d nodes: want 1..%d", n, MaxNodes)
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	l := Open(name, n)
	if err := l.build(ctx); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func checkName(name string) error {
	if name == "" || len(name) > 20 {
		return fmt.Errorf("lab name %q: want 1..20 characters", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return fmt.Errorf("lab name %q: only letters and digits", name)
		}
	}
	return nil
}

// Name is the lab's name, the prefix of its namespaces.
func (l *Lab) Name() string { return l.name }

// Nodes is the number of node namespaces.
func (l *Lab) Nodes() int { return l.nodes }

// Node is the namespace of node i (1-based).
func (l *Lab) Node(i int) string {
	if i < 1 || i > l.nodes {
		panic(fmt.Sprintf("lab has nodes 1..%d, not %d", l.nodes, i))
	}
	return fmt.Sprintf("%s-h%d", l.name, i)
}

// Client is the client namespace.
func (l *Lab) Client() string { return l.name + "-c" }

// Switch is the switch namespace.
func (l *Lab) Switch() string { return l.name + "-sw" }

// Host is the namespace of a host added with AddHost.
func (l *Lab) Host(host string) string { return l.name + "-" + host }

const bridge = "br0" // inside the switch namespace: the name is private to it

func (l *Lab) build(ctx context.Context) error {
	sw := l.Switch()
	if err := addNS(sw); err != nil {
		if _, serr := os.Stat("/run/netns/" + sw); serr == nil {
			return fmt.Errorf("%w: %s: %v", ErrExists, sw, err)
		}
		return err
	}
	hsw, err := l.handle(sw)
	if err != nil {
		return err
	}
	if err := hsw.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: "lo"}}); err != nil {
		return fmt.Errorf("lo up in %s: %w", sw, err)
	}
	off := false
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridge}, MulticastSnooping: &off}
	if err := hsw.LinkAdd(br); err != nil {
		return fmt.Errorf("add bridge %s in %s: %w", bridge, sw, err)
	}
	if err := hsw.LinkSetUp(br); err != nil {
		return fmt.Errorf("bridge %s up in %s: %w", bridge, sw, err)
	}
	// br_netfilter (when loaded) would push bridged frames through the
	// host's iptables; switch it off for this namespace. Absent = fine.
	_ = l.Do(sw, func() error {
		for _, k := range []string{"bridge-nf-call-iptables", "bridge-nf-call-arptables"} {
			_ = os.WriteFile("/proc/sys/net/bridge/"+k, []byte("0"), 0)
		}
		return nil
	})
	for i := 1; i <= l.nodes; i++ {
		if err := l.attach(l.Node(i), port(i), NodeAddr(i), NodeMAC(i)); err != nil {
			return err
		}
	}
	if err := l.attach(l.Client(), "v-c", ClientAddr, net.HardwareAddr{0x02, 0x6d, 0x6c, 0, 0, 0xfa}); err != nil {
		return err
	}
	// "link set up" returns before a veth can carry frames; the research
	// note saw 9 of 20 runs lose the first packets without this wait.
	for i := 1; i <= l.nodes; i++ {
		if err := l.waitUp(ctx, l.Node(i), port(i)); err != nil {
			return err
		}
	}
	return l.waitUp(ctx, l.Client(), "v-c")
}

func port(i int) string { return fmt.Sprintf("v-h%d", i) } // switch side of node i

// AddHost puts one more host on the segment: namespace <name>-<host> with
// eth0 at addr/24, and waits until its link carries frames. host is at
// most 13 letters or digits (it also names the switch port "v-<host>").
func (l *Lab) AddHost(ctx context.Context, host, addr string) error {
	if err := checkName(host); err != nil || len(host) > 13 {
		return fmt.Errorf("host name %q: want 1..13 letters or digits", host)
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil || !netip.MustParsePrefix("198.18.0.0/24").Contains(ip) {
		return fmt.Errorf("host %s: address %q is not in 198.18.0.0/24", host, addr)
	}
	mac := net.HardwareAddr{0x02, 0x6d, 0x6c, 0, 1, ip.As4()[3]}
	if err := l.attach(l.Host(host), "v-"+host, addr, mac); err != nil {
		return err
	}
	return l.waitUp(ctx, l.Host(host), "v-"+host)
}

// addNS creates a named namespace with iproute2 (netns.NewNamed would move
// the calling thread into it). It fails when the name exists.
func addNS(name string) error {
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// handle returns (opening once) a netlink handle bound to namespace ns.
func (l *Lab) handle(ns string) (*netlink.Handle, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h, ok := l.handles[ns]; ok {
		return h, nil
	}
	nsh, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("open namespace %s: %w", ns, err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", ns, err)
	}
	l.handles[ns] = h
	return h, nil
}

// Close releases the netlink handles; the lab itself stays (Destroy
// removes it).
func (l *Lab) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.handles {
		h.Close()
	}
	l.handles = map[string]*netlink.Handle{}
}

// attach creates namespace ns with eth0 (addr/24, mac) wired to a new port
// of the bridge. Both ends of the veth are created in their namespaces
// directly, so the root namespace never sees them.
func (l *Lab) attach(ns, port, addr string, mac net.HardwareAddr) error {
	if err := addNS(ns); err != nil {
		return err
	}
	h, err := l.handle(ns)
	if err != nil {
		return err
	}
	hsw, err := l.handle(l.Switch())
	if err != nil {
		return err
	}
	nsh, err := netns.GetFromName(ns)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", ns, err)
	}
	defer nsh.Close()
	br, err := hsw.LinkByName(bridge)
	if err != nil {
		return fmt.Errorf("find the bridge in %s: %w", l.Switch(), err)
	}
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: port, MasterIndex: br.Attrs().Index},
		PeerName:         "eth0",
		PeerHardwareAddr: mac,
		PeerNamespace:    netlink.NsFd(int(nsh)),
	}
	if err := hsw.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s <-> %s/eth0: %w", port, ns, err)
	}
	if err := hsw.LinkSetUp(veth); err != nil {
		return fmt.Errorf("switch port %s up: %w", port, err)
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("lo in %s: %w", ns, err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("lo up in %s: %w", ns, err)
	}
	eth, err := h.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("eth0 in %s: %w", ns, err)
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(addr).To4(), Mask: net.CIDRMask(Prefix, 32)}}
	if err := h.AddrReplace(eth, a); err != nil {
		return fmt.Errorf("address %s on %s/eth0: %w", addr, ns, err)
	}
	// Sysctls before the link is up, so no frame is handled with defaults:
	// strict rp_filter would drop replies from a VIP that moved between
	// hosts, and the ARP defaults are pinned so the lab does not depend on
	// the distribution's. A new namespace's unix datagram queue holds 10
	// (the kernel's default; systemd raises it to 512 on every Debian
	// host): Postfix's postlogd deadlocks on its own socket when that
	// queue fills before it starts reading, which took Postfix instances
	// in the lab down under load.
	if err := l.Do(ns, func() error {
		for k, v := range map[string]string{
			"net/unix/max_dgram_qlen":         UnixDgramQueue,
			"net/ipv4/conf/all/rp_filter":     "0",
			"net/ipv4/conf/default/rp_filter": "0",
			"net/ipv4/conf/eth0/rp_filter":    "0",
			"net/ipv4/conf/all/arp_ignore":    "0",
			"net/ipv4/conf/all/arp_announce":  "0",
			"net/ipv4/ping_group_range":       "0 2147483647",
		} {
			if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0); err != nil {
				return fmt.Errorf("sysctl %s: %w", k, err)
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("in %s: %w", ns, err)
	}
	if err := h.LinkSetUp(eth); err != nil {
		return fmt.Errorf("eth0 up in %s: %w", ns, err)
	}
	return nil
}

// EnableIPv6 adds IPv6 to the nodes and the client: fd00:198:18::(10+i)/64
// (client ::250) next to the link-local address, with duplicate address
// detection off (accept_dad 0, the address added with nodad) so that no
// address is tentative for a second after a test starts or a VIP moves. It
// waits until every link-local address is usable. Labs without it keep
// the defaults, so IPv4-only tests run as before.
func (l *Lab) EnableIPv6(ctx context.Context) error {
	hosts := map[string]string{l.Client(): ClientAddr6}
	for i := 1; i <= l.nodes; i++ {
		hosts[l.Node(i)] = NodeAddr6(i)
	}
	for ns, addr := range hosts {
		if err := l.Do(ns, func() error {
			for _, k := range []string{"all", "default", "eth0"} {
				for name, v := range map[string]string{"disable_ipv6": "0", "accept_dad": "0"} {
					f := "/proc/sys/net/ipv6/conf/" + k + "/" + name
					if err := os.WriteFile(f, []byte(v), 0); err != nil {
						return fmt.Errorf("sysctl %s: %w", f, err)
					}
				}
			}
			return nil
		}); err != nil {
			return fmt.Errorf("IPv6 in %s: %w", ns, err)
		}
		h, err := l.handle(ns)
		if err != nil {
			return err
		}
		eth, err := h.LinkByName("eth0")
		if err != nil {
			return fmt.Errorf("eth0 in %s: %w", ns, err)
		}
		a := &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(addr), Mask: net.CIDRMask(Prefix6, 128)}, Flags: unix.IFA_F_NODAD}
		if err := h.AddrReplace(eth, a); err != nil {
			return fmt.Errorf("address %s on %s/eth0: %w", addr, ns, err)
		}
	}
	for ns := range hosts {
		if err := l.waitLinkLocal(ctx, ns); err != nil {
			return err
		}
	}
	return nil
}

// waitLinkLocal waits until eth0 in ns has a link-local address that is no
// longer tentative: the link came up with DAD on, before EnableIPv6.
func (l *Lab) waitLinkLocal(ctx context.Context, ns string) error {
	h, err := l.handle(ns)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, linkUpWithin)
	defer cancel()
	for {
		eth, err := h.LinkByName("eth0")
		if err != nil {
			return fmt.Errorf("eth0 in %s: %w", ns, err)
		}
		as, err := h.AddrList(eth, netlink.FAMILY_V6)
		if err != nil {
			return fmt.Errorf("addresses in %s: %w", ns, err)
		}
		for _, a := range as {
			if a.IP.IsLinkLocalUnicast() && a.Flags&unix.IFA_F_TENTATIVE == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s/eth0: no usable IPv6 link-local address (IPv6 disabled on this host?): %w", ns, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// LinkLocal is eth0's IPv6 link-local address in ns (EnableIPv6 first).
func (l *Lab) LinkLocal(ns string) (netip.Addr, error) {
	as, err := l.addrs(ns, netlink.FAMILY_V6)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range as {
		if a.Addr().IsLinkLocalUnicast() {
			return a.Addr(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%s/eth0: no IPv6 link-local address", ns)
}

// linkUpWithin bounds the wait for a link's carrier.
const linkUpWithin = 5 * time.Second

// waitOper waits until link name in ns has operational state UP.
func (l *Lab) waitOper(ctx context.Context, ns, name string) error {
	h, err := l.handle(ns)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, linkUpWithin)
	defer cancel()
	for {
		lk, err := h.LinkByName(name)
		if err != nil {
			return fmt.Errorf("link %s in %s: %w", name, ns, err)
		}
		st := lk.Attrs().OperState
		if st == netlink.OperUp {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s/%s operstate %s: %w", ns, name, st, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// waitUp waits for both ends of a host's link: eth0 in ns and its port.
func (l *Lab) waitUp(ctx context.Context, ns, port string) error {
	if err := l.waitOper(ctx, ns, "eth0"); err != nil {
		return err
	}
	return l.waitOper(ctx, l.Switch(), port)
}

// LinkDown takes node i's port on the switch down: the node loses carrier
// and is cut off the segment (a partition); its own configuration stays.
func (l *Lab) LinkDown(i int) error {
	return l.setPort(i, false)
}

// LinkUp brings node i's switch port back and waits until frames flow.
func (l *Lab) LinkUp(i int) error {
	if err := l.setPort(i, true); err != nil {
		return err
	}
	return l.waitUp(context.Background(), l.Node(i), port(i))
}

func (l *Lab) setPort(i int, up bool) error {
	h, err := l.handle(l.Switch())
	if err != nil {
		return err
	}
	lk, err := h.LinkByName(port(i))
	if err != nil {
		return fmt.Errorf("switch port of node %d: %w", i, err)
	}
	if up {
		err = h.LinkSetUp(lk)
	} else {
		err = h.LinkSetDown(lk)
	}
	if err != nil {
		return fmt.Errorf("switch port of node %d up=%v: %w", i, up, err)
	}
	return nil
}

// Addrs returns the IPv4 addresses on eth0 in namespace ns.
func (l *Lab) Addrs(ns string) ([]netip.Prefix, error) { return l.addrs(ns, netlink.FAMILY_V4) }

// Addrs6 returns the IPv6 addresses on eth0 in namespace ns, link-local included.
func (l *Lab) Addrs6(ns string) ([]netip.Prefix, error) { return l.addrs(ns, netlink.FAMILY_V6) }

func (l *Lab) addrs(ns string, family int) ([]netip.Prefix, error) {
	h, err := l.handle(ns)
	if err != nil {
		return nil, err
	}
	lk, err := h.LinkByName("eth0")
	if err != nil {
		return nil, fmt.Errorf("eth0 in %s: %w", ns, err)
	}
	as, err := h.AddrList(lk, family)
	if err != nil {
		return nil, fmt.Errorf("addresses in %s: %w", ns, err)
	}
	var out []netip.Prefix
	for _, a := range as {
		ip, _ := netip.AddrFromSlice(a.IP)
		ip = ip.Unmap()
		ones, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip, ones))
	}
	return out, nil
}

// HasAddr reports whether eth0 in namespace ns holds addr (VIP checks),
// IPv4 or IPv6.
func (l *Lab) HasAddr(ns, addr string) (bool, error) {
	family := netlink.FAMILY_V4
	if ip, err := netip.ParseAddr(addr); err == nil && ip.Is6() {
		family = netlink.FAMILY_V6
	}
	as, err := l.addrs(ns, family)
	if err != nil {
		return false, err
	}
	for _, a := range as {
		if a.Addr().String() == addr {
			return true, nil
		}
	}
	return false, nil
}

// Do runs fn on an OS thread inside namespace ns. Sockets opened by fn stay
// in that namespace for life and may be used from any goroutine afterwards.
// The thread is moved back to its original namespace before it is handed
// back to the scheduler; if that fails, the goroutine exits still locked
// and the runtime discards the thread. (Merely exiting locked is not
// enough: on the main thread the runtime cannot discard it, and the whole
// process would then appear to live in the lab's namespace.)
func (l *Lab) Do(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("current namespace: %w", err)
			return
		}
		defer orig.Close()
		nsh, err := netns.GetFromName(ns)
		if err != nil {
			errc <- fmt.Errorf("open namespace %s: %w", ns, err)
			return
		}
		defer nsh.Close()
		if err := netns.Set(nsh); err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", ns, err)
			return
		}
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// Dial connects from namespace ns to addr (TCP).
func (l *Lab) Dial(ctx context.Context, ns, addr string) (net.Conn, error) {
	var c net.Conn
	err := l.Do(ns, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, "tcp", addr) // the literal address picks the family
		return err
	})
	return c, err
}

// Namespaces lists the lab's namespaces that exist now.
func (l *Lab) Namespaces() []string { return Namespaces(l.name) }

// Namespaces lists the namespaces of the lab called name that exist now.
func Namespaces(name string) []string {
	ents, err := os.ReadDir("/run/netns")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), name+"-") {
			out = append(out, e.Name())
		}
	}
	return out
}
