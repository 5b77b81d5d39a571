package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/cluster"
	"github.com/mxgate/mxgate/node"
)

// frameWriter keeps each write of the watch (one per frame) and calls
// after with the number written so far, from inside the write: what after
// does happens before the next poll.
type frameWriter struct {
	frames []string
	after  func(n int)
}

func (w *frameWriter) Write(p []byte) (int, error) {
	w.frames = append(w.frames, string(p))
	if w.after != nil {
		w.after(len(w.frames))
	}
	return len(p), nil
}

// flakyAdmin serves clusterAdmin's API on a fixed address that can be
// taken down and brought back, as a node that restarts.
type flakyAdmin struct {
	t    *testing.T
	o    admin.Options
	addr string
	stop func()
}

func newFlakyAdmin(t *testing.T, st *node.ClusterView) *flakyAdmin {
	f := &flakyAdmin{t: t, o: clusterOptions(t, st), addr: "127.0.0.1:0"}
	f.up()
	t.Cleanup(f.down)
	return f
}

func (f *flakyAdmin) up() {
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		f.t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	srv, err := admin.New(f.o)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	f.stop = func() {
		cancel()
		if err := <-done; err != nil {
			f.t.Errorf("serve on %s: %v", f.addr, err)
		}
	}
}

func (f *flakyAdmin) down() {
	if f.stop != nil {
		f.stop()
		f.stop = nil
	}
}

var stampLine = regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S* http://127\.0\.0\.1:\d+$`)

// TestClusterWatch runs cluster status --watch against a real admin API
// and ends it after a number of polls, counted in frames written, never
// timed.
func TestClusterWatch(t *testing.T) {
	clearAdminEnv(t)
	st := node.ClusterView{Status: cluster.Status{Node: "n2", InstanceStatus: cluster.InstanceStatus{State: "backup", Since: time.Now().UTC(), Priority: 100, VRID: 51}},
		Mode: "active-active", Revision: 7}
	url := clusterAdmin(t, &st)
	// plain: a frame of a log, the view or an error, after the first
	// with a blank line before.
	plain := func(t *testing.T, i int, frame string) {
		t.Helper()
		if strings.Contains(frame, "\x1b") {
			t.Errorf("frame %d has an escape sequence: %q", i, frame)
		}
		if n := len(stampLine.FindAllString(frame, -1)); n != 1 {
			t.Errorf("frame %d has %d timestamp lines:\n%s", i, n, frame)
		}
		if (i > 0) != strings.HasPrefix(frame, "\n") {
			t.Errorf("frame %d: blank line before it %v", i, i > 0)
		}
	}
	kill := func(sig syscall.Signal) func(int, func()) {
		return func(n int, _ func()) {
			if n == 2 {
				if err := syscall.Kill(os.Getpid(), sig); err != nil {
					t.Error(err)
				}
			}
		}
	}
	for _, tt := range []struct {
		name string
		// args follow cluster status --watch --interval 200ms; url is
		// the admin API unless set.
		args []string
		url  func(t *testing.T) (string, func(n int, cancel func()))
		// after ends the watch (cancel) or acts on the node after frame
		// n; nil: cancel after 3.
		after  func(n int, cancel func())
		code   int
		frames int // -1: at least 2
		check  func(t *testing.T, frames []string, stderr string)
	}{
		{name: "three polls, no terminal", frames: 3, check: func(t *testing.T, frames []string, _ string) {
			for i, f := range frames {
				plain(t, i, f)
				if !strings.Contains(f, "NODE             n2") || !strings.Contains(f, "CONFIG           revision 7 applied") || !strings.Contains(f, "MEMBER") {
					t.Errorf("frame %d lacks the view:\n%s", i, f)
				}
			}
		}},
		{name: "node away for one poll", frames: 3,
			url: func(t *testing.T) (string, func(int, func())) {
				f := newFlakyAdmin(t, &st)
				return "http://" + f.addr, func(n int, cancel func()) {
					switch n {
					case 1:
						f.down()
					case 2:
						f.up()
					case 3:
						cancel()
					}
				}
			},
			check: func(t *testing.T, frames []string, _ string) {
				for i, f := range frames {
					plain(t, i, f)
					if up := i != 1; up != strings.Contains(f, "NODE             n2") {
						t.Errorf("frame %d: view shown %v, want %v:\n%s", i, !up, up, f)
					}
				}
				if !strings.Contains(frames[1], "ERROR  cannot reach the admin API at http://127.0.0.1:") || !strings.Contains(frames[1], "connection refused") ||
					!regexp.MustCompile(`last answer \d+s ago \(\d\d:\d\d:\d\d\); retrying`).MatchString(frames[1]) {
					t.Errorf("frame 1 does not say the node is away:\n%s", frames[1])
				}
			}},
		{name: "not there at first", frames: 2,
			url: func(t *testing.T) (string, func(int, func())) { return downURL(t), nil },
			after: func(n int, cancel func()) {
				if n == 2 {
					cancel()
				}
			},
			check: func(t *testing.T, frames []string, _ string) {
				for i, f := range frames {
					plain(t, i, f)
					if !strings.Contains(f, "ERROR  cannot reach the admin API") || !strings.Contains(f, "no answer yet; retrying") {
						t.Errorf("frame %d:\n%s", i, f)
					}
				}
			}},
		{name: "json", args: []string{"--json"}, frames: 3, check: func(t *testing.T, frames []string, _ string) {
			for i, f := range frames {
				var got node.ClusterView
				dec := json.NewDecoder(strings.NewReader(f))
				if err := dec.Decode(&got); err != nil || got.Node != "n2" || got.Revision != 7 {
					t.Errorf("line %d: %v, %+v", i, err, got)
				}
				if strings.Count(f, "\n") != 1 || !strings.HasSuffix(f, "}\n") || dec.More() {
					t.Errorf("line %d is not one JSON object and a newline: %q", i, f)
				}
			}
		}},
		{name: "json, node not there", args: []string{"--json"}, frames: 0,
			url: func(t *testing.T) (string, func(int, func())) { return downURL(t), nil },
			check: func(t *testing.T, _ []string, stderr string) {
				lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
				if len(lines) != 3 {
					t.Errorf("%d error lines, want 3:\n%s", len(lines), stderr)
				}
				for _, l := range lines {
					if !regexp.MustCompile(`^mxgate: \S+: cannot reach the admin API at `).MatchString(l) {
						t.Errorf("error line %q", l)
					}
				}
			}},
		{name: "SIGINT", frames: -1, after: kill(syscall.SIGINT)},
		{name: "SIGTERM", frames: -1, after: kill(syscall.SIGTERM)},
		{name: "wrong token", args: []string{"--token", "wrong"}, code: exitNoPerm, check: func(t *testing.T, _ []string, stderr string) {
			if !strings.HasPrefix(stderr, "mxgate: missing or wrong token (Authorization: Bearer TOKEN) (HTTP 401); pass --token") {
				t.Errorf("stderr: %q", stderr)
			}
		}},
		{name: "not clustered", code: exitNoInput, url: func(t *testing.T) (string, func(int, func())) { return clusterAdmin(t, nil), nil }},
		{name: "interval too short", args: []string{"--interval", "10ms"}, code: exitUsage},
		{name: "interval too long", args: []string{"--interval", "61m"}, code: exitUsage},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Only a safety net for a watch that would not end: the
			// cases end it by counting frames.
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			u, after := url, tt.after
			if tt.url != nil {
				var a func(int, func())
				u, a = tt.url(t)
				if a != nil {
					after = a
				}
			}
			if after == nil {
				after = func(n int, cancel func()) {
					if n == 3 {
						cancel()
					}
				}
			}
			out := &frameWriter{}
			var errb bytes.Buffer
			target := out
			if tt.frames == 0 && tt.code == 0 { // --json errors: count stderr lines
				target = &frameWriter{}
			}
			target.after = func(n int) { after(n, cancel) }
			var errw io.Writer = &errb
			if target != out {
				errw = io.MultiWriter(&errb, target)
			}
			args := append([]string{"cluster", "status", "--watch", "--interval", "200ms", "--admin", u, "--token", cliToken}, tt.args...)
			code := execute(ctx, args, out, errw)
			if code != tt.code {
				t.Fatalf("status %d, want %d; stderr %q", code, tt.code, errb.String())
			}
			if tt.frames >= 0 && len(out.frames) != tt.frames || tt.frames < 0 && len(out.frames) < 2 {
				t.Fatalf("%d frames, want %d:\n%s", len(out.frames), tt.frames, strings.Join(out.frames, ""))
			}
			if tt.check != nil {
				tt.check(t, out.frames, errb.String())
			}
		})
	}
	if _, stderr, err := run(t, "cluster", "status", "--interval", "1s", "--admin", url, "--token", cliToken); err == nil || exitStatus(err, true) != exitUsage {
		t.Errorf("--interval without --watch: %v %s", err, stderr)
	}
}

// TestClusterWatchTerminal runs the watch on a real terminal (a pty): the
// screen is cleared for every frame, under a header line.
func TestClusterWatchTerminal(t *testing.T) {
	clearAdminEnv(t)
	url := clusterAdmin(t, &node.ClusterView{Status: cluster.Status{Node: "n2", InstanceStatus: cluster.InstanceStatus{State: "master", Since: time.Now().UTC()}}})
	ptm, pts := openPTY(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // a safety net; the reader ends it
	defer cancel()
	// The reader ends the watch after two frames; it ends itself when
	// the terminal closes (EIO on the master once no slave is open).
	screen := make(chan string, 1)
	go func() {
		var got []byte
		buf := make([]byte, 4096)
		for {
			n, err := ptm.Read(buf)
			got = append(got, buf[:n]...)
			if bytes.Count(got, []byte("\x1b[H\x1b[2J")) == 3 {
				cancel()
			}
			if err != nil {
				screen <- string(got)
				return
			}
		}
	}()
	var errb bytes.Buffer
	code := execute(ctx, []string{"cluster", "status", "--watch", "--interval", "100ms", "--admin", url, "--token", cliToken}, pts, &errb)
	pts.Close()
	got := <-screen
	if code != 0 {
		t.Fatalf("status %d: %s", code, errb.String())
	}
	frames := strings.Split(got, "\x1b[H\x1b[2J")
	if frames[0] != "" || len(frames) < 4 {
		t.Fatalf("want every frame after a clear screen, at least 3:\n%q", got)
	}
	header := regexp.MustCompile(`^` + regexp.QuoteMeta(url) + `  every 100ms  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  Ctrl-C to stop\r\n\r\n`)
	for i, f := range frames[1:] {
		if !header.MatchString(f) || !strings.Contains(f, "NODE             n2") {
			t.Errorf("frame %d:\n%q", i, f)
		}
	}
}

// openPTY opens a pseudo-terminal: the master to read what is shown, the
// slave as the command's standard output.
func openPTY(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptm.Close() })
	rc, err := ptm.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var ioErr error
	if err := rc.Control(func(fd uintptr) {
		if ioErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioErr == nil {
			n, ioErr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
		}
	}); err != nil || ioErr != nil {
		t.Fatalf("unlock pty: %v %v", err, ioErr)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ptm, pts
}
