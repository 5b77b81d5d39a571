package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/ipv4"

	"github.com/mxgate/mxgate/cluster/vrrp"
	"github.com/mxgate/mxgate/testenv"
)

// Test topology: two nodes of the namespace lab (testenv.NewLab, package
// lab), deleted in t.Cleanup.

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// pair is two namespaces on one segment, eth0 on both sides, 198.18.0.11/24
// in A and 198.18.0.12/24 in B.
type pair struct{ a, b string }

var (
	addrA = netip.MustParseAddr("198.18.0.11")
	addrB = netip.MustParseAddr("198.18.0.12")
	vipP  = netip.MustParsePrefix("198.18.0.100/24")
)

func newPair(t *testing.T) pair {
	t.Helper()
	testenv.NeedRoot(t)
	l := testenv.NewLab(t, 2)
	return pair{a: l.Node(1), b: l.Node(2)}
}

func nsHandle(t *testing.T, ns string) *netlink.Handle {
	t.Helper()
	fd, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatalf("open namespace %s: %v", ns, err)
	}
	defer fd.Close()
	h, err := netlink.NewHandleAt(fd)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", ns, err)
	}
	return h
}

// vipOn reports whether the VIP is on eth0 in ns, as seen from the test.
func vipOn(t *testing.T, ns string) bool {
	t.Helper()
	return addrOn(t, ns, vipP.Addr())
}

// addrOn reports whether addr is on eth0 in ns, as seen from the test.
func addrOn(t *testing.T, ns string, addr netip.Addr) bool {
	t.Helper()
	h := nsHandle(t, ns)
	defer h.Close()
	l, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatalf("eth0 in %s: %v", ns, err)
	}
	addrs, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatalf("addresses in %s: %v", ns, err)
	}
	for _, a := range addrs {
		if ip, _ := netip.AddrFromSlice(a.IP); ip.Unmap() == addr {
			return true
		}
	}
	return false
}

func linkMAC(t *testing.T, ns string) string {
	t.Helper()
	h := nsHandle(t, ns)
	defer h.Close()
	l, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatalf("eth0 in %s: %v", ns, err)
	}
	return l.Attrs().HardwareAddr.String()
}

// neighMAC is the link-layer address ns's eth0 has for ip ("" if none).
func neighMAC(t *testing.T, ns string, ip netip.Addr) string {
	t.Helper()
	h := nsHandle(t, ns)
	defer h.Close()
	l, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatalf("eth0 in %s: %v", ns, err)
	}
	ns4, err := h.NeighList(l.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		t.Fatalf("neighbours in %s: %v", ns, err)
	}
	for _, n := range ns4 {
		if a, _ := netip.AddrFromSlice(n.IP); a.Unmap() == ip {
			return n.HardwareAddr.String()
		}
	}
	return ""
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("timeout after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// inNS runs f on a thread switched into ns. The thread is never unlocked, so
// the runtime discards it when f returns instead of reusing a thread that
// sits in another namespace.
func inNS(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := netns.GetFromName(ns)
		if err != nil {
			errc <- err
			return
		}
		defer fd.Close()
		if err := netns.Set(fd); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

// logBuf collects a node's log for assertions and dumps it when the test fails.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type tnode struct {
	*Node
	name   string
	cancel context.CancelFunc
	done   chan error
	stop   time.Duration // how long Run took to return after cancel
	log    *logBuf
	reg    *prometheus.Registry
}

// startNode creates and runs a Node inside ns (New and Run on one goroutine
// locked into the namespace) and waits for Ready.
func startNode(t *testing.T, ns, name string, o Options) *tnode {
	t.Helper()
	tn := &tnode{name: name, done: make(chan error, 1), log: &logBuf{}, reg: prometheus.NewRegistry()}
	if o.Interface == "" {
		o.Interface = "eth0"
	}
	if o.VRID == 0 {
		o.VRID = 51
	}
	if !o.VIP.IsValid() {
		o.VIP = vipP
	}
	o.NodeID = name
	o.Logger = slog.New(slog.NewTextHandler(tn.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o.Registerer = tn.reg
	ctx, cancel := context.WithCancel(context.Background())
	tn.cancel = cancel
	created := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see inNS
		fd, err := netns.GetFromName(ns)
		if err == nil {
			err = netns.Set(fd)
			fd.Close()
		}
		if err != nil {
			created <- err
			return
		}
		n, err := New(o)
		if err != nil {
			created <- err
			return
		}
		tn.Node = n
		created <- nil
		tn.done <- n.Run(ctx)
	}()
	if err := <-created; err != nil {
		cancel()
		t.Fatalf("node %s: New: %v", name, err)
	}
	t.Cleanup(func() {
		tn.shutdown(t)
		if t.Failed() {
			t.Logf("log of node %s:\n%s", name, tn.log)
		}
	})
	select {
	case <-tn.Ready():
	case err := <-tn.done:
		t.Fatalf("node %s: Run returned before Ready: %v", name, err)
	case <-time.After(5 * time.Second):
		t.Fatalf("node %s: not ready after 5s", name)
	}
	return tn
}

// shutdown cancels the node and waits for Run to return (idempotent).
func (tn *tnode) shutdown(t *testing.T) {
	t.Helper()
	if tn.done == nil {
		return
	}
	start := time.Now()
	tn.cancel()
	select {
	case err := <-tn.done:
		tn.stop = time.Since(start)
		if err != nil {
			t.Errorf("node %s: Run: %v", tn.name, err)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("node %s: Run did not return within 15s of cancel", tn.name)
	}
	tn.done = nil
}

func (tn *tnode) state() string { return tn.Status().State }

// injector sends hand-made IPv4 packets (own header: any TTL, any source)
// from a namespace through a raw socket.
type injector struct {
	t  *testing.T
	ns string
}

func (in injector) send(src, dst netip.Addr, ttl int, payload []byte) {
	in.t.Helper()
	err := inNS(in.ns, func() error {
		c, err := net.ListenPacket("ip4:112", "0.0.0.0")
		if err != nil {
			return err
		}
		defer c.Close()
		r, err := ipv4.NewRawConn(c)
		if err != nil {
			return err
		}
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		if err := r.SetMulticastInterface(ifi); err != nil {
			return err
		}
		h := &ipv4.Header{
			Version: 4, Len: ipv4.HeaderLen, TOS: 0xc0, TotalLen: ipv4.HeaderLen + len(payload),
			TTL: ttl, Protocol: vrrp.Protocol, Src: net.IP(src.AsSlice()), Dst: net.IP(dst.AsSlice()),
		}
		return r.WriteTo(h, payload, &ipv4.ControlMessage{IfIndex: ifi.Index})
	})
	if err != nil {
		in.t.Fatalf("inject packet: %v", err)
	}
}

// advert marshals a valid advert (pseudo-header checksum).
func advert(t *testing.T, vrid, prio uint8, interval time.Duration, src, dst netip.Addr) []byte {
	t.Helper()
	b, err := vrrp.Advert{VRID: vrid, Priority: prio, Interval: interval, Addrs: []netip.Addr{vipP.Addr()}}.
		Marshal(src, dst, vrrp.ChecksumPseudoHeader)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixChecksum recomputes the pseudo-header checksum of a modified packet, so
// a test of one field is not caught by the checksum check first.
func fixChecksum(b []byte, src, dst netip.Addr) []byte {
	b = append([]byte(nil), b...)
	b[6], b[7] = 0, 0
	var ph []byte
	ph = append(ph, src.AsSlice()...)
	ph = append(ph, dst.AsSlice()...)
	ph = append(ph, 0, vrrp.Protocol, byte(len(b)>>8), byte(len(b)))
	var sum uint32
	for _, part := range [][]byte{ph, b} {
		for i := 0; i < len(part); i += 2 {
			v := uint32(part[i]) << 8
			if i+1 < len(part) {
				v |= uint32(part[i+1])
			}
			sum += v
		}
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(b[6:], ^uint16(sum))
	return b
}

// gatherValue returns the value of one metric series from reg.
func gatherValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	return testenv.MetricValue(t, reg, name, label, value)
}

// notifyScript returns a Notify command line (with one fixed argument) whose
// runs append their arguments to the returned file. /bin/sh is exec'd with
// the script as argument: exec'ing a just-written file can hit ETXTBSY.
func notifyScript(t *testing.T, tag string) (cmd, out string) {
	t.Helper()
	dir := t.TempDir()
	out = dir + "/calls"
	script := dir + "/notify.sh"
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" >> "+out+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return "/bin/sh " + script + " " + tag, out
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
