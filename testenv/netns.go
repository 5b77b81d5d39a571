package testenv

// The lab: a throwaway layer-2 segment of network namespaces for cluster
// tests.
//
//	mxl<N>-sw  switch: bridge mxlbr<N> (no STP, no IGMP snooping, so
//	           224.0.0.18 floods like on a dumb switch), one port per host
//	mxl<N>-hI  node I (1..n): eth0 198.18.0.(10+I)/24, MAC 02:6d:6c:00:00:0I
//	mxl<N>-c   client: eth0 198.18.0.250/24
//
// N is unique per lab (pid-based, claimed atomically by creating the switch
// namespace), so test binaries running at the same time never clash, and
// nothing outside the lab's namespaces is touched: the root namespace holds
// no link of the lab.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/ipv4"
)

// Lab addresses (RFC 2544 benchmark range: never routed anywhere).
const (
	LabVIP    = "198.18.0.100"
	LabPrefix = 24
)

// Lab is a switch namespace with a bridge, n node namespaces and one client
// namespace. Everything it creates is removed by the test's cleanup.
type Lab struct {
	t      testing.TB
	id     string // "mxl<N>"
	nodes  int
	bridge string

	mu      sync.Mutex
	handles map[string]*netlink.Handle // per namespace, opened at creation
}

// NewLab builds a lab with n nodes (1..20) and waits until every link can
// carry packets. It needs root: call NeedRoot first.
func NewLab(t testing.TB, n int) *Lab {
	t.Helper()
	if n < 1 || n > 20 {
		t.Fatalf("NewLab: %d nodes, want 1..20", n)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		Missing(t, "ip (iproute2) not found")
	}
	l := &Lab{t: t, nodes: n, handles: map[string]*netlink.Handle{}}
	// Registered before anything exists, so a half-built lab is removed too.
	// It runs after the cleanups of processes started later (LIFO).
	t.Cleanup(l.destroy)
	start := time.Now()
	if err := l.build(); err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Logf("lab %s: %d nodes up in %s", l.id, n, time.Since(start).Round(time.Millisecond))
	return l
}

// ID is the lab's name prefix ("mxl<N>").
func (l *Lab) ID() string { return l.id }

// Nodes is the number of node namespaces.
func (l *Lab) Nodes() int { return l.nodes }

// Node is the namespace name of node i (1-based).
func (l *Lab) Node(i int) string {
	if i < 1 || i > l.nodes {
		panic(fmt.Sprintf("lab has nodes 1..%d, not %d", l.nodes, i))
	}
	return fmt.Sprintf("%s-h%d", l.id, i)
}

// Client is the client namespace's name.
func (l *Lab) Client() string { return l.id + "-c" }

// Switch is the switch namespace's name.
func (l *Lab) Switch() string { return l.id + "-sw" }

// NodeAddr is node i's own address, 198.18.0.(10+i).
func (l *Lab) NodeAddr(i int) string { return fmt.Sprintf("198.18.0.%d", 10+i) }

// ClientAddr is the client's address.
func (l *Lab) ClientAddr() string { return "198.18.0.250" }

// NodeMAC is node i's eth0 hardware address.
func (l *Lab) NodeMAC(i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0x6d, 0x6c, 0, 0, byte(i)}
}

func (l *Lab) port(i int) string { return fmt.Sprintf("v-h%d", i) } // switch side of node i

func (l *Lab) build() error {
	if err := l.claimID(); err != nil {
		return err
	}
	sw := l.Switch()
	hsw, err := l.handle(sw)
	if err != nil {
		return err
	}
	if err := hsw.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: "lo"}}); err != nil {
		return fmt.Errorf("lo up in %s: %w", sw, err)
	}
	off := false
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: l.bridge}, MulticastSnooping: &off}
	if err := hsw.LinkAdd(br); err != nil {
		return fmt.Errorf("add bridge %s in %s: %w", l.bridge, sw, err)
	}
	if err := hsw.LinkSetUp(br); err != nil {
		return fmt.Errorf("bridge %s up: %w", l.bridge, err)
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
		if err := l.attach(l.Node(i), l.port(i), l.NodeAddr(i), l.NodeMAC(i)); err != nil {
			return err
		}
	}
	if err := l.attach(l.Client(), "v-c", l.ClientAddr(), net.HardwareAddr{0x02, 0x6d, 0x6c, 0, 0, 0xfa}); err != nil {
		return err
	}
	// "link set up" returns before a veth can carry frames; the research
	// note saw 9 of 20 runs lose the first packets without this wait.
	for i := 1; i <= l.nodes; i++ {
		if err := l.waitUp(i, 5*time.Second); err != nil {
			return err
		}
	}
	if err := l.waitOper(l.Client(), "eth0", 5*time.Second); err != nil {
		return err
	}
	return l.waitOper(sw, "v-c", 5*time.Second)
}

// claimID picks "mxl<pid><letter>" and creates the switch namespace, whose
// creation fails when the name exists: the claim is atomic across processes.
func (l *Lab) claimID() error {
	base := strconv.Itoa(os.Getpid() % 100000)
	var last error
	for c := 'a'; c <= 'z'; c++ {
		id := "mxl" + base + string(c)
		if err := addNS(id + "-sw"); err != nil {
			last = err
			continue
		}
		l.id, l.bridge = id, "mxlbr"+base+string(c)
		return nil
	}
	return fmt.Errorf("no free lab name for pid %s: %w", base, last)
}

// addNS creates a named namespace with iproute2 (netns.NewNamed would move
// the calling thread into it).
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
	br, err := hsw.LinkByName(l.bridge)
	if err != nil {
		return fmt.Errorf("find bridge: %w", err)
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
	a := &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(addr).To4(), Mask: net.CIDRMask(LabPrefix, 32)}}
	if err := h.AddrReplace(eth, a); err != nil {
		return fmt.Errorf("address %s on %s/eth0: %w", addr, ns, err)
	}
	// Sysctls before the link is up, so no frame is handled with defaults:
	// strict rp_filter would drop replies from a VIP that moved between
	// hosts, and the ARP defaults are pinned so tests do not depend on the
	// distribution's.
	if err := l.Do(ns, func() error {
		for k, v := range map[string]string{
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

// waitOper waits until link name in ns has operational state UP.
func (l *Lab) waitOper(ns, name string, within time.Duration) error {
	h, err := l.handle(ns)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(within)
	for {
		lk, err := h.LinkByName(name)
		if err != nil {
			return fmt.Errorf("link %s in %s: %w", name, ns, err)
		}
		st := lk.Attrs().OperState
		if st == netlink.OperUp {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s/%s operstate %s after %s", ns, name, st, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitUp waits for both ends of node i's link.
func (l *Lab) waitUp(i int, within time.Duration) error {
	if err := l.waitOper(l.Node(i), "eth0", within); err != nil {
		return err
	}
	return l.waitOper(l.Switch(), l.port(i), within)
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
	return l.waitUp(i, 5*time.Second)
}

func (l *Lab) setPort(i int, up bool) error {
	h, err := l.handle(l.Switch())
	if err != nil {
		return err
	}
	lk, err := h.LinkByName(l.port(i))
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

// Addrs returns the IPv4 addresses on node i's eth0 (VIP checks).
func (l *Lab) Addrs(i int) ([]netip.Prefix, error) {
	h, err := l.handle(l.Node(i))
	if err != nil {
		return nil, err
	}
	lk, err := h.LinkByName("eth0")
	if err != nil {
		return nil, fmt.Errorf("eth0 of node %d: %w", i, err)
	}
	as, err := h.AddrList(lk, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("addresses of node %d: %w", i, err)
	}
	var out []netip.Prefix
	for _, a := range as {
		ip, _ := netip.AddrFromSlice(a.IP.To4())
		ones, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip, ones))
	}
	return out, nil
}

// HasAddr reports whether node i's eth0 holds addr.
func (l *Lab) HasAddr(i int, addr string) (bool, error) {
	as, err := l.Addrs(i)
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
		c, err = d.DialContext(ctx, "tcp4", addr)
		return err
	})
	return c, err
}

// Banner connects from the client namespace to addr, reads the 220
// greeting, sends QUIT and returns the greeting's text (without "220 "),
// e.g. "n1.lab.test ESMTP mxgate". The context bounds the whole exchange.
func (l *Lab) Banner(ctx context.Context, addr string) (string, error) {
	c, err := l.Dial(ctx, l.Client(), addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	} else {
		c.SetDeadline(time.Now().Add(5 * time.Second))
	}
	tp := textproto.NewConn(c)
	code, msg, err := tp.ReadResponse(220)
	if err != nil {
		return "", fmt.Errorf("greeting from %s: %d %q: %w", addr, code, msg, err)
	}
	_ = tp.PrintfLine("QUIT")
	return msg, nil
}

// Start runs a program inside namespace ns (ip netns exec, which execs it:
// the process's PID is the program's), stopped by the test's cleanup like
// Start. Its output is also kept in a file under t.TempDir.
func (l *Lab) Start(t testing.TB, ns, name string, args ...string) *Process {
	t.Helper()
	p := Start(t, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
	f, err := os.Create(filepath.Join(t.TempDir(), fmt.Sprintf("%s-%s-%d.log", ns, filepath.Base(name), p.Cmd.Process.Pid)))
	if err == nil {
		// Copy at the end: the buffer holds everything, the file is for
		// looking at a lab run after the fact with -test.v.
		t.Cleanup(func() {
			// Runs before Start's own cleanup (LIFO): stop it here first.
			p.Stop(syscall.SIGTERM, 10*time.Second)
			f.WriteString(p.Text())
			f.Close()
		})
	}
	return p
}

// Exec runs a program to completion inside ns and returns its combined
// output.
func (l *Lab) Exec(ctx context.Context, ns, name string, args ...string) (string, error) {
	return Run(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// Pids lists the processes whose network namespace is ns.
func (l *Lab) Pids(ns string) ([]int, error) {
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns pids %s: %w", ns, err)
	}
	var pids []int
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if p, err := strconv.Atoi(strings.TrimSpace(sc.Text())); err == nil {
			pids = append(pids, p)
		}
	}
	return pids, nil
}

// Namespaces lists the lab's namespaces that exist now.
func (l *Lab) Namespaces() []string {
	return labNamespaces(l.id)
}

func labNamespaces(id string) []string {
	ents, err := os.ReadDir("/run/netns")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), id+"-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// destroy kills what still runs in the lab's namespaces (only processes of
// this lab can be in them: the names are ours) and deletes them.
func (l *Lab) destroy() {
	l.mu.Lock()
	for _, h := range l.handles {
		h.Close()
	}
	l.handles = map[string]*netlink.Handle{}
	l.mu.Unlock()
	if l.id == "" {
		return
	}
	nss := l.Namespaces()
	for _, ns := range nss {
		// Processes the test started were stopped by their own cleanups;
		// what remains (children of them, e.g. keepalived's VRRP process)
		// gets TERM, then KILL.
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
			pids, _ := l.Pids(ns)
			if len(pids) == 0 || (len(pids) == 1 && pids[0] == os.Getpid()) {
				break
			}
			for _, p := range pids {
				if p != os.Getpid() { // never ourselves, whatever a thread did
					syscall.Kill(p, sig)
				}
			}
			for k := 0; k < 50; k++ {
				if pids, _ := l.Pids(ns); len(pids) == 0 || (len(pids) == 1 && pids[0] == os.Getpid()) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	var errs []error
	for _, ns := range nss {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %v: %s", ns, err, strings.TrimSpace(string(out))))
		}
	}
	if err := errors.Join(errs...); err != nil {
		l.t.Errorf("lab cleanup: %v", err)
	}
}

// Text is the process's output so far; unlike Output it may be read while
// the process runs (log assertions on a live node).
func (p *Process) Text() string {
	if w, ok := p.Cmd.Stdout.(*lockedWriter); ok {
		return w.String()
	}
	return p.Output.String()
}

// VRRPSocket opens a raw IP protocol 112 socket on eth0 in ns for tests that
// inject or watch VRRP adverts: multicast leaves by eth0 with TTL 255 and
// does not loop back, control messages give TTL, source, destination and
// interface, and with join the socket receives 224.0.0.18. Closed by
// t.Cleanup.
func (l *Lab) VRRPSocket(t testing.TB, ns string, join bool) *ipv4.PacketConn {
	t.Helper()
	var pc *ipv4.PacketConn
	if err := l.Do(ns, func() error {
		c, err := net.ListenPacket("ip4:112", "0.0.0.0")
		if err != nil {
			return err
		}
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			c.Close()
			return err
		}
		p := ipv4.NewPacketConn(c)
		if join {
			if err := p.JoinGroup(ifi, &net.IPAddr{IP: net.IPv4(224, 0, 0, 18)}); err != nil {
				c.Close()
				return err
			}
		}
		for _, set := range []func() error{
			func() error { return p.SetMulticastInterface(ifi) },
			func() error { return p.SetMulticastTTL(255) },
			func() error { return p.SetTTL(255) },
			func() error { return p.SetMulticastLoopback(false) },
			func() error {
				return p.SetControlMessage(ipv4.FlagTTL|ipv4.FlagSrc|ipv4.FlagDst|ipv4.FlagInterface, true)
			},
		} {
			if err := set(); err != nil {
				c.Close()
				return err
			}
		}
		pc = p
		return nil
	}); err != nil {
		t.Fatalf("protocol 112 socket in %s: %v", ns, err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}
