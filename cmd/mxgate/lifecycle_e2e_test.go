package main

// The node's start and stop on the real binary: a stop at any moment ends
// the process, a second signal ends it at once, and an ordinary stop still
// lets the sessions under way finish. The bounds are generous: these tests
// tell "ends" from "hangs", not fast from slow.

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mxgate/mxgate/testenv"
)

// nodeConfig writes a node file with the given lines under smtp and store
// and returns its path.
func nodeConfig(t *testing.T, smtpAddr, adminAddr, downstream, smtpExtra, storeExtra string) string {
	t.Helper()
	g := &gateway{SMTP: smtpAddr, Admin: adminAddr, DataDir: t.TempDir()}
	return g.writeConfig(t, downstream, map[string]string{"smtp": smtpExtra, "store": storeExtra})
}

// exitCode waits up to within for p to end by itself and returns its exit
// code; it fails the test (and kills p) when p is still running.
func exitCode(t *testing.T, p *testenv.Process, within time.Duration, what string) int {
	t.Helper()
	if !p.Wait(within) {
		p.Stop(syscall.SIGKILL, 5*time.Second)
		t.Fatalf("%s: still running after %s:\n%s", what, within, p.Text())
	}
	return p.Cmd.ProcessState.ExitCode()
}

// waitLog waits until the process has logged want.
func waitLog(t *testing.T, p *testenv.Process, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(p.Text(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log after %s:\n%s", want, within, p.Text())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A busy admin.listen stops the start with one clear error, every time,
// before any SMTP is served. (The node used to fail the admin API in the
// background of a node already serving SMTP, and 7 starts in 10 then hung
// for ever in the stop, still answering mail.)
func TestBusyAdminPortStopsTheStart(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	path := nodeConfig(t, testenv.FreeAddr(t), busy.Addr().String(), "127.0.0.1:1", "", "")
	for i := range 10 {
		p := testenv.Start(t, mxgateBin, "serve", "-c", path)
		if code := exitCode(t, p, 60*time.Second, fmt.Sprintf("start %d with admin.listen busy", i)); code != 1 {
			t.Errorf("start %d: exit code %d, want 1", i, code)
		}
		out := strings.TrimSpace(p.Text())
		last := out[strings.LastIndex(out, "\n")+1:]
		want := "mxgate: admin.listen: listen tcp " + busy.Addr().String() + ": bind: address already in use"
		if last != want {
			t.Errorf("start %d: last line %q, want %q", i, last, want)
		}
		if strings.Contains(out, "smtp listening") {
			t.Errorf("start %d: SMTP was served by a node that cannot start:\n%s", i, out)
		}
	}
}

// blackhole accepts connections and never answers: a Redis address behind
// a dead proxy or a wrong port of a silent service.
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// SIGTERM at any moment of a start with Redis out of reach (refused, or a
// port that accepts and never answers) ends the node gracefully (exit 0,
// without the stop's time limit having to step in) within the drain
// timeout and a margin. It used to hang in most starts.
func TestStopDuringStartWithRedisUnreachable(t *testing.T) {
	const drain = 5 * time.Second
	for _, kind := range []struct {
		name, addr string
		// start is about how long a start takes (each store call waits
		// for its timeout on a silent Redis), and a little more.
		start time.Duration
	}{
		{"refused", testenv.FreeAddr(t), 5 * time.Second},
		{"silent", blackhole(t), 18 * time.Second},
	} {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			const rounds = 6
			for i := range rounds {
				// Spread over the whole start: opening the store,
				// seeding the config, loading the lists, binding,
				// serving.
				at := time.Duration(i)*kind.start/rounds + rand.N(kind.start/rounds)
				path := nodeConfig(t, testenv.FreeAddr(t), testenv.FreeAddr(t), "127.0.0.1:1",
					fmt.Sprintf("  drain_timeout: %s", drain), fmt.Sprintf(`  redis: "redis://%s/0"`, kind.addr))
				p := testenv.Start(t, mxgateBin, "serve", "-c", path)
				time.Sleep(at)
				p.Cmd.Process.Signal(syscall.SIGTERM)
				signalled := time.Now()
				code := exitCode(t, p, drain+60*time.Second, fmt.Sprintf("SIGTERM %s into the start", at.Round(time.Millisecond)))
				t.Logf("SIGTERM %s into the start: exit %d after %s", at.Round(time.Millisecond), code, time.Since(signalled).Round(time.Millisecond))
				if ws, ok := p.Cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM && p.Text() == "" {
					continue // so early that the runtime's default action ended it
				}
				if code != 0 || strings.Contains(p.Text(), "stop not finished in time") {
					t.Errorf("SIGTERM %s into the start: exit %d, want a graceful stop (0):\n%s", at.Round(time.Millisecond), code, p.Text())
				}
			}
		})
	}
}

// midData opens a session on g and leaves it in the middle of a message
// body.
func midData(t *testing.T, g *gateway) *smtpSession {
	t.Helper()
	s, code, _ := dialSMTP(t, g.SMTP)
	if code != 220 {
		t.Fatalf("greeting %d", code)
	}
	for _, c := range []struct {
		cmd  string
		want int
	}{{"EHLO client.test", 250}, {"MAIL FROM:<a@sender.test>", 250}, {"RCPT TO:<q@example.org>", 250}, {"DATA", 354}} {
		if code, msg := s.cmd("%s", c.cmd); code != c.want {
			t.Fatalf("%s: %d %s", c.cmd, code, msg)
		}
	}
	s.c.W.WriteString("Subject: in flight\r\n\r\nfirst half of the body\r\n")
	s.c.W.Flush()
	return s
}

// A second SIGTERM during a long drain ends the node at once, as Postfix
// and keepalived do; it used to be ignored until the drain timeout.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	sink := testenv.StartSink(t)
	g := startGateway(t, sink.Addr, map[string]string{"smtp": "  drain_timeout: 60s"})
	midData(t, g)
	g.Proc.Cmd.Process.Signal(syscall.SIGTERM)
	waitLog(t, g.Proc, "stopping: draining sessions", 30*time.Second)
	time.Sleep(500 * time.Millisecond)
	if g.Proc.Exited() {
		t.Fatalf("the node did not wait for the session in DATA:\n%s", g.Proc.Text())
	}
	g.Proc.Cmd.Process.Signal(syscall.SIGTERM)
	if code := exitCode(t, g.Proc, 15*time.Second, "second SIGTERM during a 60 s drain"); code == 0 {
		t.Errorf("a forced stop exited 0")
	}
	if !strings.Contains(g.Proc.Text(), "second stop signal") {
		t.Errorf("the forced stop is not logged:\n%s", g.Proc.Text())
	}
}

// One SIGTERM during normal operation still drains: the message in flight
// is finished and gets its 250, the node then exits 0, and no new
// connection is taken meanwhile.
func TestStopDrainsMessageInFlight(t *testing.T) {
	sink := testenv.StartSink(t)
	g := startGateway(t, sink.Addr, map[string]string{"smtp": "  drain_timeout: 60s"})
	s := midData(t, g)
	g.Proc.Cmd.Process.Signal(syscall.SIGTERM)
	waitLog(t, g.Proc, "stopping: draining sessions", 30*time.Second)
	if c, err := net.DialTimeout("tcp", g.SMTP, time.Second); err == nil {
		c.Close()
		t.Error("a new connection was taken during the drain")
	}
	if code, msg := s.raw("second half\r\n.\r\n"); code != 250 {
		t.Fatalf("end of data during the drain: %d %s", code, msg)
	}
	s.cmd("QUIT")
	if code := exitCode(t, g.Proc, 60*time.Second, "stop after the last session"); code != 0 {
		t.Errorf("graceful stop exited %d:\n%s", code, g.Proc.Text())
	}
	if m := sink.WaitMessages(t, 1, 10*time.Second)[0]; !strings.Contains(m, "second half") {
		t.Errorf("delivered message is incomplete:\n%s", m)
	}
}
