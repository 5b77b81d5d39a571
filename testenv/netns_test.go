package testenv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mxgate/mxgate/lab"
)

// serveName listens on 0.0.0.0:port inside ns and greets every connection
// with "220 name"; the listener is closed by the test's cleanup.
func serveName(t *testing.T, l *Lab, ns, name string, port int) {
	t.Helper()
	var ln net.Listener
	if err := l.Do(ns, func() error {
		var err error
		ln, err = net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", port))
		return err
	}); err != nil {
		t.Fatalf("listen in %s: %v", ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "220 %s ESMTP test\r\n", name)
			bufio.NewReader(c).ReadString('\n')
			c.Close()
		}
	}()
}

func TestLab(t *testing.T) {
	NeedRoot(t)
	var id string
	var sleeper *Process
	t.Run("up", func(t *testing.T) {
		start := time.Now()
		l := NewLab(t, 2)
		id = l.ID()
		if !strings.HasPrefix(id, "mxl") || l.Node(2) != id+"-h2" || l.Client() != id+"-c" {
			t.Fatalf("names: id=%q node2=%q client=%q", id, l.Node(2), l.Client())
		}
		if got := len(l.Namespaces()); got != 4 {
			t.Fatalf("lab has %d namespaces, want 4 (sw, h1, h2, c): %v", got, l.Namespaces())
		}
		// Nothing of the lab in the root namespace.
		ifs, err := net.Interfaces()
		if err != nil {
			t.Fatal(err)
		}
		for _, ifi := range ifs {
			if strings.HasPrefix(ifi.Name, "v-h") || ifi.Name == "v-c" {
				t.Errorf("the lab's link %s is in the root namespace", ifi.Name)
			}
		}
		for i := 1; i <= 2; i++ {
			ok, err := l.HasAddr(i, l.NodeAddr(i))
			if err != nil || !ok {
				t.Fatalf("node %d lacks %s: %v", i, l.NodeAddr(i), err)
			}
		}
		t.Logf("lab up in %s", time.Since(start))

		// Unicast TCP from the client to both nodes, right after NewLab
		// (the link-up race would lose these first frames).
		for i := 1; i <= 2; i++ {
			serveName(t, l, l.Node(i), fmt.Sprintf("h%d", i), 2525)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for i := 1; i <= 2; i++ {
			b, err := l.Banner(ctx, fmt.Sprintf("%s:2525", l.NodeAddr(i)))
			if err != nil || !strings.HasPrefix(b, fmt.Sprintf("h%d ", i)) {
				t.Fatalf("banner of node %d = %q, %v", i, b, err)
			}
		}
		// Do hands its thread back in the original namespace: this
		// process (its main thread) never appears inside the lab.
		if pids, err := l.Pids(l.Client()); err != nil || len(pids) != 0 {
			t.Errorf("processes in the client namespace after Do: %v, %v", pids, err)
		}

		// VRRP's multicast (protocol 112, 224.0.0.18, TTL 255) floods the
		// bridge: node 1 sends, node 2 receives with the TTL intact.
		rx := l.VRRPSocket(t, l.Node(2), true)
		tx := l.VRRPSocket(t, l.Node(1), true)
		payload := []byte{0x31, 51, 200, 1, 0, 100, 0, 0, 198, 18, 0, 100}
		if _, err := tx.WriteTo(payload, nil, &net.IPAddr{IP: net.IPv4(224, 0, 0, 18)}); err != nil {
			t.Fatalf("send multicast: %v", err)
		}
		rx.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 1500)
		n, cm, src, err := rx.ReadFrom(buf)
		if err != nil {
			t.Fatalf("node 2 got no multicast: %v", err)
		}
		if cm == nil || cm.TTL != 255 || src.String() != l.NodeAddr(1) || string(buf[:n]) != string(payload) {
			t.Fatalf("node 2 got %x from %v (cm %+v)", buf[:n], src, cm)
		}

		// Partition: node 1's switch port down cuts it off; up restores it.
		if err := l.LinkDown(1); err != nil {
			t.Fatal(err)
		}
		short, cancelShort := context.WithTimeout(context.Background(), 500*time.Millisecond)
		if b, err := l.Banner(short, l.NodeAddr(1)+":2525"); err == nil {
			t.Errorf("node 1 answered (%q) while its link was down", b)
		}
		cancelShort()
		if b, err := l.Banner(ctx, l.NodeAddr(2)+":2525"); err != nil || !strings.HasPrefix(b, "h2 ") {
			t.Errorf("node 2 = %q, %v while node 1 was down", b, err)
		}
		if err := l.LinkUp(1); err != nil {
			t.Fatal(err)
		}
		if b, err := l.Banner(ctx, l.NodeAddr(1)+":2525"); err != nil || !strings.HasPrefix(b, "h1 ") {
			t.Errorf("node 1 after link up = %q, %v", b, err)
		}

		// A process started in a namespace runs there (same netns inode),
		// under its own PID (ip netns exec execs, it does not fork).
		sleeper = l.Start(t, l.Node(1), "sleep", "60")
		deadline := time.Now().Add(5 * time.Second)
		for {
			pids, err := l.Pids(l.Node(1))
			if err != nil {
				t.Fatal(err)
			}
			if len(pids) == 1 && pids[0] == sleeper.Cmd.Process.Pid {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pids in %s = %v, want [%d]", l.Node(1), pids, sleeper.Cmd.Process.Pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
		out, err := l.Exec(ctx, l.Node(2), "ip", "-br", "-4", "addr", "show", "dev", "eth0")
		if err != nil || !strings.Contains(out, l.NodeAddr(2)+"/24") {
			t.Errorf("exec in node 2: %q, %v", out, err)
		}
	})
	// The subtest's cleanup ran: no namespace, no process left.
	if id == "" {
		t.Fatal("lab was not built")
	}
	if left := lab.Namespaces(id); len(left) != 0 {
		t.Errorf("namespaces left after cleanup: %v", left)
	}
	if sleeper != nil {
		if !sleeper.Exited() {
			t.Error("process started in the lab survived the cleanup")
		}
		if err := syscall.Kill(sleeper.Cmd.Process.Pid, 0); err == nil {
			t.Errorf("pid %d still exists", sleeper.Cmd.Process.Pid)
		}
	}
	if _, err := os.Stat("/run/netns/" + id + "-sw"); err == nil {
		t.Error("switch namespace left")
	}
}

// Two labs at once (as two test packages would have) get distinct names.
func TestLabsDoNotClash(t *testing.T) {
	NeedRoot(t)
	a, b := NewLab(t, 1), NewLab(t, 1)
	if a.ID() == b.ID() {
		t.Fatalf("two labs share the id %s", a.ID())
	}
	for _, l := range []*Lab{a, b} {
		serveName(t, l, l.Node(1), l.ID(), 2525)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Same addresses in both labs, and each client reaches its own node.
	for _, l := range []*Lab{a, b} {
		got, err := l.Banner(ctx, l.NodeAddr(1)+":2525")
		if err != nil || !strings.HasPrefix(got, l.ID()+" ") {
			t.Errorf("lab %s: banner %q, %v", l.ID(), got, err)
		}
	}
}
