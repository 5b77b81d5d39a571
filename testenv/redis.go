package testenv

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Redis is a redis-server started for a test: no snapshots, on a free
// loopback port (or an address in a lab namespace), killed by PID in
// t.Cleanup. Stop and Start keep the address and the data directory, and the
// append-only file is on, so what was written survives an outage test.
type Redis struct {
	Addr string // host:port
	URL  string // redis://Addr/0

	t     testing.TB
	start func(name string, args ...string) *Process
	bin   string
	args  []string
	local bool // reachable from the test's own namespace: PING it
	proc  *Process
}

// redisReady is what redis-server logs once it accepts connections (after
// loading the append-only file).
const redisReady = "Ready to accept connections"

// StartRedis runs redis-server on 127.0.0.1 at a free port.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	start := func(name string, args ...string) *Process { return Start(t, name, args...) }
	r := newRedis(t, start, FreeAddr(t))
	r.local = true
	r.Start()
	return r
}

// StartRedisWith runs redis-server on addr through start, e.g. inside a lab
// namespace:
//
//	testenv.StartRedisWith(t, func(n string, a ...string) *testenv.Process {
//		return lab.Start(t, lab.Client(), n, a...)
//	}, "198.18.0.250:6379")
//
// Readiness is read from the server's log, since addr may not be reachable
// from the test's namespace.
func StartRedisWith(t testing.TB, start func(name string, args ...string) *Process, addr string) *Redis {
	t.Helper()
	r := newRedis(t, start, addr)
	r.Start()
	return r
}

func newRedis(t testing.TB, start func(name string, args ...string) *Process, addr string) *Redis {
	t.Helper()
	bin := Need(t, "redis-server")[0]
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("redis address %q: %v", addr, err)
	}
	dir := t.TempDir()
	return &Redis{
		Addr:  addr,
		URL:   "redis://" + addr + "/0",
		t:     t,
		start: start,
		bin:   bin,
		args: []string{
			"--bind", host,
			"--port", port,
			"--dir", dir,
			// Lab clients connect from other namespaces without a password.
			"--protected-mode", "no",
			"--save", "",
			"--appendonly", "yes",
			"--daemonize", "no",
			"--logfile", "",
		},
	}
}

// Stop terminates the server (SIGTERM, which flushes the append-only file)
// and waits for it to exit.
func (r *Redis) Stop() {
	if r.proc != nil {
		r.proc.Stop(syscall.SIGTERM, 10*time.Second)
	}
}

// Start runs the server again on the same address and data directory and
// waits until it accepts connections. Calling it while it runs is an error.
func (r *Redis) Start() {
	r.t.Helper()
	if r.proc != nil && !r.proc.Exited() {
		r.t.Fatalf("redis-server on %s already runs", r.Addr)
	}
	r.proc = r.start(r.bin, r.args...)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(r.proc.Text(), redisReady) {
		if r.proc.Exited() {
			r.t.Fatalf("redis-server on %s exited at start:\n%s", r.Addr, r.proc.Text())
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s not ready after 10s:\n%s", r.Addr, r.proc.Text())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r.local {
		if err := redisPing(r.Addr, 5*time.Second); err != nil {
			r.t.Fatalf("redis-server on %s: %v\n%s", r.Addr, err, r.proc.Text())
		}
	}
}

// Process is the running server process (nil before Start).
func (r *Redis) Process() *Process { return r.proc }

// redisPing sends PING in the inline protocol until +PONG comes back.
func redisPing(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := pingOnce(addr)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pingOnce(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}
