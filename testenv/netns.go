package testenv

// The lab for cluster tests: package lab's namespace segment (see there),
// named per test binary and removed by the test's cleanup.
//
//	mxl<N>-sw  switch
//	mxl<N>-hI  node I (1..n): eth0 198.18.0.(10+I)/24
//	mxl<N>-c   client: eth0 198.18.0.250/24
//
// N is unique per lab (pid-based, claimed atomically by creating the switch
// namespace), so test binaries running at the same time never clash, and
// nothing outside the lab's namespaces is touched.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/mxgate/mxgate/lab"
	"golang.org/x/net/ipv4"
)

// Lab addresses (RFC 2544 benchmark range: never routed anywhere; IPv6:
// a ULA prefix, only in labs built with NewLabIPv6).
const (
	LabVIP     = lab.VIP
	LabPrefix  = lab.Prefix
	LabVIP6    = lab.VIP6
	LabPrefix6 = lab.Prefix6
)

// Lab is a switch namespace with a bridge, n node namespaces and one client
// namespace. Everything it creates is removed by the test's cleanup.
type Lab struct {
	*lab.Lab
	t testing.TB
}

// NewLab builds a lab with n nodes (1..20) and waits until every link can
// carry packets. It needs root: call NeedRoot first.
func NewLab(t testing.TB, n int) *Lab {
	t.Helper()
	if n < 1 || n > lab.MaxNodes {
		t.Fatalf("NewLab: %d nodes, want 1..%d", n, lab.MaxNodes)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		Missing(t, "ip (iproute2) not found")
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// "mxl<pid><letter>": the first name whose switch namespace this
	// process could create is ours.
	base := "mxl" + strconv.Itoa(os.Getpid()%100000)
	var last error
	for c := 'a'; c <= 'z'; c++ {
		name := base + string(c)
		l, err := lab.Create(ctx, name, n)
		if errors.Is(err, lab.ErrExists) {
			last = err
			continue
		}
		// Registered before failing, so a half-built lab is removed too.
		// It runs after the cleanups of processes started later (LIFO).
		t.Cleanup(func() { destroyLab(t, l, name) })
		if err != nil {
			t.Fatalf("lab %s: %v", name, err)
		}
		t.Logf("lab %s: %d nodes up in %s", name, n, time.Since(start).Round(time.Millisecond))
		return &Lab{Lab: l, t: t}
	}
	t.Fatalf("no free lab name for %s: %v", base, last)
	return nil
}

// NewLabIPv6 is NewLab with IPv6 on the segment too (lab.EnableIPv6):
// node i also has fd00:198:18::(10+i)/64 and a link-local address, the
// client fd00:198:18::250/64.
func NewLabIPv6(t testing.TB, n int) *Lab {
	t.Helper()
	l := NewLab(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := l.EnableIPv6(ctx); err != nil {
		Missing(t, "IPv6 in the lab: %v", err)
	}
	return l
}

// NodeAddr6 is node i's own IPv6 address, fd00:198:18::(10+i).
func (l *Lab) NodeAddr6(i int) string { return lab.NodeAddr6(i) }

// destroyLab kills what still runs in the lab's namespaces (children of
// the processes the test started, e.g. keepalived's VRRP process) and
// deletes them.
func destroyLab(t testing.TB, l *lab.Lab, name string) {
	if l != nil {
		l.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := lab.Destroy(ctx, name); err != nil {
		t.Errorf("lab cleanup: %v", err)
	}
}

// ID is the lab's name prefix ("mxl<N>").
func (l *Lab) ID() string { return l.Name() }

// NodeAddr is node i's own address, 198.18.0.(10+i).
func (l *Lab) NodeAddr(i int) string { return lab.NodeAddr(i) }

// ClientAddr is the client's address.
func (l *Lab) ClientAddr() string { return lab.ClientAddr }

// NodeMAC is node i's eth0 hardware address.
func (l *Lab) NodeMAC(i int) net.HardwareAddr { return lab.NodeMAC(i) }

// Addrs returns the IPv4 addresses on node i's eth0 (VIP checks).
func (l *Lab) Addrs(i int) ([]netip.Prefix, error) { return l.Lab.Addrs(l.Node(i)) }

// HasAddr reports whether node i's eth0 holds addr.
func (l *Lab) HasAddr(i int, addr string) (bool, error) { return l.Lab.HasAddr(l.Node(i), addr) }

// Pids lists the processes whose network namespace is ns.
func (l *Lab) Pids(ns string) ([]int, error) { return lab.Pids(ns) }

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
