// Package testenv starts the real peers that tests talk to — Postfix's
// smtp-sink and a private Postfix instance as downstream servers, swaks and
// smtp-source as clients, the mxgate binary itself — on loopback, and tears
// them down. A missing prerequisite skips the test, or fails it when CI is
// set: CI must never pass by skipping.
package testenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// Missing skips the test, or fails it under CI.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("prerequisite missing (CI must not skip): %s", msg)
	}
	t.Skipf("prerequisite missing: %s", msg)
}

// Need returns the paths of the named programs, looking in the sbin
// directories too (smtp-sink lives in /usr/sbin).
func Need(t testing.TB, names ...string) []string {
	t.Helper()
	var out []string
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
				if c := filepath.Join(dir, n); isExec(c) {
					p, err = c, nil
					break
				}
			}
		}
		if err != nil {
			Missing(t, "%s not found (install the Debian package: make deps)", n)
		}
		out = append(out, p)
	}
	return out
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// NeedRoot skips (or fails under CI) when not root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "this test needs root")
	}
}

// FreeAddr returns a loopback address with a port nobody listens on now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// WaitPort waits until addr accepts connections.
func WaitPort(t testing.TB, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after %s: %v", addr, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Process is a started program, stopped by the test's cleanup.
type Process struct {
	Cmd    *exec.Cmd
	Output *bytes.Buffer // stdout and stderr
	done   chan struct{}
}

// Start runs a program until the test ends; its output is shown when the
// test fails.
func Start(t testing.TB, name string, args ...string) *Process {
	t.Helper()
	p := &Process{Cmd: exec.Command(name, args...), Output: &bytes.Buffer{}, done: make(chan struct{})}
	w := &lockedWriter{b: p.Output}
	p.Cmd.Stdout, p.Cmd.Stderr = w, w
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.Cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop(syscall.SIGTERM, 10*time.Second)
		if t.Failed() {
			t.Logf("output of %s:\n%s", filepath.Base(name), w.String())
		}
	})
	return p
}

// Stop signals the process and waits for it, killing it after grace.
func (p *Process) Stop(sig syscall.Signal, grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	p.Cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Cmd.Process.Kill()
		<-p.done
	}
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to end on its own.
func (p *Process) Wait(within time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(within):
		return false
	}
}

// Run runs a program to completion and returns its combined output.
//
// When ctx ends, the program's whole process group is killed, and Run
// returns within runWaitDelay even if a descendant that left the group
// (a daemon it started) still holds the output pipe open: without both,
// a wedged `postfix stop` kept a test waiting past its whole timeout.
func Run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = runWaitDelay
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// runWaitDelay is how long Run waits for the output pipe after ctx ended.
const runWaitDelay = 5 * time.Second

// Sink is Postfix's smtp-sink dumping every message into a directory.
type Sink struct {
	Addr string
	Dir  string
	Proc *Process
}

// Context is the test's context, ended after within as well, so that a
// store or peer that stops answering fails the test with a clear error
// instead of holding it until go test's own timeout.
func Context(t testing.TB, within time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), within)
	t.Cleanup(cancel)
	return ctx
}

// StartSink runs smtp-sink on a free loopback port; extra are more
// smtp-sink options (e.g. "-f", "RCPT" to refuse every recipient).
func StartSink(t testing.TB, extra ...string) *Sink {
	t.Helper()
	addr := FreeAddr(t)
	s := startSink(t, addr, extra, func(name string, args ...string) *Process { return Start(t, name, args...) })
	WaitPort(t, addr, 5*time.Second)
	return s
}

// startSink runs smtp-sink on addr through start, dumping into a new
// directory.
func startSink(t testing.TB, addr string, extra []string, start func(name string, args ...string) *Process) *Sink {
	t.Helper()
	bin := Need(t, "smtp-sink")[0]
	dir, err := os.MkdirTemp("", "mxgate-sink-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// smtp-sink must drop root (-u), and then still write its dumps.
	os.Chmod(dir, 0o777)
	args := append([]string{"-c", "-d", dir + "/msg."}, extra...)
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "nobody"}, args...)
	}
	args = append(args, addr, "256")
	return &Sink{Addr: addr, Dir: dir, Proc: start(bin, args...)}
}

// Messages returns the messages received completely (smtp-sink's own X-
// headers first). smtp-sink opens a dump file at MAIL FROM, so a
// transaction still open or never finished is not a message.
func (s *Sink) Messages(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, m := range s.dumps(t) {
		if strings.HasSuffix(m, "\n\n") {
			out = append(out, m)
		}
	}
	return out
}

func (s *Sink) dumps(t testing.TB) []string {
	t.Helper()
	ents, err := os.ReadDir(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.Dir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			// smtp-sink removes the dump of a transaction that was
			// abandoned, possibly between ReadDir and here.
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// WaitMessages waits until at least n messages arrived and returns them.
func (s *Sink) WaitMessages(t testing.TB, n int, within time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		msgs := s.Messages(t)
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("sink has %d messages, want %d, after %s", len(msgs), n, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// MessagesTo are the dumps in msgs of messages to rcpt (smtp-sink's
// X-Rcpt-Args).
func MessagesTo(msgs []string, rcpt string) []string {
	var out []string
	for _, m := range msgs {
		if strings.Contains(m, "X-Rcpt-Args: <"+rcpt+">") {
			out = append(out, m)
		}
	}
	return out
}

// Header returns the first value of a header field in a dumped message.
func Header(msg, name string) string {
	sc := bufio.NewScanner(strings.NewReader(msg))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	prefix := strings.ToLower(name) + ":"
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.ToLower(line), prefix) {
			return strings.TrimSpace(line[len(prefix):])
		}
	}
	return ""
}

// SyncBuffer collects what many goroutines write, a server's log say, for
// a test to read.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type lockedWriter struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// Serve runs serve on a new 127.0.0.1 listener until the test ends: then
// its context is cancelled, and an error it returns fails the test. It
// returns the listener's host:port.
func Serve(t testing.TB, serve func(ctx context.Context, ln net.Listener) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve on %s: %v", ln.Addr(), err)
		}
	})
	return ln.Addr().String()
}

// Bolt opens a new embedded database file for the test, closed when it
// ends: what every store's own tests open their bbolt backend on.
func Bolt(t testing.TB) *bbolt.DB {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "test.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
