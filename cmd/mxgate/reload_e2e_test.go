package main

// SIGHUP, serve --check and version on the real binary.

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/clusterconf"
	"github.com/mxgate/mxgate/testenv"
)

// SIGHUP re-reads the node file instead of ending the node: a changed
// cluster-wide key is applied (the admin API shows it), an unchanged file
// changes nothing, a bad file is reported with its key and the node serves
// on with what it had, and a key that takes a restart is named in one line
// and keeps its running value.
func TestReloadOnSIGHUP(t *testing.T) {
	g := newGateway(t)
	const down = "127.0.0.1:1"
	path := filepath.Join(t.TempDir(), "mxgate.yaml")
	write := func(extra map[string]string) {
		t.Helper()
		data, err := os.ReadFile(g.writeConfig(t, down, extra))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	thresholds := func(q int) string { return "  thresholds: {quarantine: " + strconv.Itoa(q) + ", reject: 15}" }
	write(map[string]string{"scanner": thresholds(6)})
	g.serve(t, path)

	current := func() clusterconf.Revision {
		t.Helper()
		out, err := g.cli(t, "config", "show", "--json")
		if err != nil {
			t.Fatalf("config show: %v\n%s", err, out)
		}
		var rev clusterconf.Revision
		if err := json.Unmarshal([]byte(out), &rev); err != nil {
			t.Fatalf("config show --json: %v\n%s", err, out)
		}
		return rev
	}
	greeting := func() string {
		t.Helper()
		c, err := net.DialTimeout("tcp", g.SMTP, 5*time.Second)
		if err != nil {
			t.Fatalf("SMTP after SIGHUP: %v", err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("SMTP greeting after SIGHUP: %v", err)
		}
		return line
	}
	const reloaded, restart, refused = "SIGHUP: node file reloaded", "take a restart", "node file refused"
	for i, step := range []struct {
		name        string
		extra       map[string]string
		wantLog     string // the line this SIGHUP adds
		wantThr     float64
		wantRevNew  bool
		wantRestart int // lines naming keys that take a restart, so far
		wantInLog   string
	}{
		{"a live key changed", map[string]string{"scanner": thresholds(4)}, reloaded, 4, true, 0, ""},
		{"unchanged", map[string]string{"scanner": thresholds(4)}, reloaded, 4, false, 0, ""},
		{"bad file", map[string]string{"scanner": thresholds(2), "smtp": "  hard_error_limit: 5000"}, refused, 4, false, 0, "smtp.hard_error_limit"},
		{"a key that takes a restart", map[string]string{"scanner": thresholds(3), "smtp": "  hard_error_limit: 7"}, reloaded, 3, true, 1, "restart and keep their running value: smtp.hard_error_limit"},
	} {
		before := current()
		n := strings.Count(g.Proc.Text(), step.wantLog)
		write(step.extra)
		if err := g.Proc.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for strings.Count(g.Proc.Text(), step.wantLog) == n {
			if time.Now().After(deadline) || g.Proc.Exited() {
				t.Fatalf("step %d (%s): no new %q in the log:\n%s", i, step.name, step.wantLog, g.Proc.Text())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if g.Proc.Exited() {
			t.Fatalf("step %d (%s): SIGHUP ended the node:\n%s", i, step.name, g.Proc.Text())
		}
		// The follower applies a new revision within a second; wait for
		// the threshold, then check the revision number.
		var rev clusterconf.Revision
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			rev = current()
			if rev.Settings.Scanner.Thresholds.Quarantine == step.wantThr || time.Now().After(deadline) {
				break
			}
		}
		if got := rev.Settings.Scanner.Thresholds.Quarantine; got != step.wantThr {
			t.Errorf("step %d (%s): quarantine threshold %g, want %g", i, step.name, got, step.wantThr)
		}
		if (rev.Number != before.Number) != step.wantRevNew {
			t.Errorf("step %d (%s): revision %d after %d, want a new one: %v", i, step.name, rev.Number, before.Number, step.wantRevNew)
		}
		if got := strings.Count(g.Proc.Text(), restart); got != step.wantRestart {
			t.Errorf("step %d (%s): %d lines naming keys that take a restart, want %d:\n%s", i, step.name, got, step.wantRestart, g.Proc.Text())
		}
		if step.wantInLog != "" && !strings.Contains(g.Proc.Text(), step.wantInLog) {
			t.Errorf("step %d (%s): no %q in the log:\n%s", i, step.name, step.wantInLog, g.Proc.Text())
		}
		if line := greeting(); !strings.HasPrefix(line, "220 mx.test") {
			t.Errorf("step %d (%s): greeting %q, want the running 220 mx.test", i, step.name, line)
		}
	}
}

// sighupUntil sends SIGHUP to g's node and waits for a new line holding want.
func sighupUntil(t *testing.T, g *gateway, want string) {
	t.Helper()
	n := strings.Count(g.Proc.Text(), want)
	if err := g.Proc.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); strings.Count(g.Proc.Text(), want) == n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) || g.Proc.Exited() {
			t.Fatalf("no new %q in the log after SIGHUP:\n%s", want, g.Proc.Text())
		}
	}
}

// node.log_level changes live: after a reload to warn, the node's info
// lines (its own "reloaded" among them) are gone, its warnings and errors
// are not.
func TestReloadLogLevel(t *testing.T) {
	g := newGateway(t)
	path := filepath.Join(t.TempDir(), "mxgate.yaml")
	write := func(level string, extra map[string]string) {
		t.Helper()
		data, err := os.ReadFile(g.writeConfig(t, "127.0.0.1:1", extra))
		if err != nil {
			t.Fatal(err)
		}
		data = []byte(strings.Replace(string(data), "log_level: debug", "log_level: "+level, 1))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("info", nil)
	g.serve(t, path)
	sighupUntil(t, g, "SIGHUP: node file reloaded")
	infos := strings.Count(g.Proc.Text(), "level=INFO")
	// A key that takes a restart is a warning: its line shows the reload
	// to warn was done; the bad file after it is an error.
	write("warn", map[string]string{"smtp": "  hard_error_limit: 7"})
	sighupUntil(t, g, "take a restart")
	write("warn", map[string]string{"smtp": "  hard_error_limit: 5000"})
	sighupUntil(t, g, "node file refused")
	if got := strings.Count(g.Proc.Text(), "level=INFO"); got != infos {
		t.Errorf("%d info lines after the reload to log_level warn, want none:\n%s", got-infos, g.Proc.Text())
	}
}

// serve --check validates a file and exits 0, or 1 with every problem
// naming its key, like postfix check and keepalived -t; it serves nothing.
func TestServeCheck(t *testing.T) {
	g := newGateway(t)
	good := g.writeConfig(t, "127.0.0.1:1", nil)
	bad := g.writeConfig(t, "127.0.0.1:1", map[string]string{"smtp": "  hard_error_limit: 5000\n  max_recipients: -1"})
	for _, tt := range []struct {
		name     string
		path     string
		wantCode int
		want     []string
	}{
		{"good", good, 0, []string{good + ": configuration ok"}},
		{"bad", bad, 1, []string{"smtp.hard_error_limit", "smtp.max_recipients"}},
		{"missing", filepath.Join(t.TempDir(), "none.yaml"), 1, []string{"none.yaml"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := testenv.Start(t, mxgateBin, "serve", "--check", "-c", tt.path)
			if code := exitCode(t, p, 30*time.Second, "serve --check"); code != tt.wantCode {
				t.Errorf("exit code %d, want %d:\n%s", code, tt.wantCode, p.Text())
			}
			for _, w := range tt.want {
				if !strings.Contains(p.Text(), w) {
					t.Errorf("output lacks %q:\n%s", w, p.Text())
				}
			}
			if strings.Contains(p.Text(), "node started") {
				t.Errorf("--check started a node:\n%s", p.Text())
			}
		})
	}
}

// mxgate version and --version print the version, the commit and the Go
// version; make build sets the version and commit with -ldflags -X.
func TestVersion(t *testing.T) {
	bin := buildVersioned(t, "9.8.7", "0123abc")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, err := testenv.Run(ctx, bin, args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		for _, w := range []string{"mxgate 9.8.7", "commit 0123abc", runtime.Version()} {
			if !strings.Contains(out, w) {
				t.Errorf("%v: %q lacks %q", args, out, w)
			}
		}
	}
}

// A restart keeps a change made through the admin API (the node file no
// longer writes itself over it at every start), and a restart with the
// file edited applies the file's change.
func TestRestartKeepsAPIChange(t *testing.T) {
	g := newGateway(t)
	const down = "127.0.0.1:1"
	path := filepath.Join(t.TempDir(), "mxgate.yaml")
	write := func(q int) {
		t.Helper()
		data, err := os.ReadFile(g.writeConfig(t, down, map[string]string{"scanner": "  thresholds: {quarantine: " + strconv.Itoa(q) + ", reject: 15}"}))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	client := func() *admin.Client {
		c, err := admin.NewClient("http://"+g.Admin, "")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	restart := func() {
		t.Helper()
		if g.Proc != nil {
			g.Proc.Stop(syscall.SIGTERM, 60*time.Second)
		}
		g.serve(t, path)
	}
	threshold := func(what string, want float64) {
		t.Helper()
		rev, err := client().Config(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if got := rev.Settings.Scanner.Thresholds.Quarantine; got != want {
			t.Errorf("%s: quarantine threshold %g (revision %d by %q), want %g", what, got, rev.Number, rev.By, want)
		}
	}
	write(6)
	restart()
	threshold("first start", 6)
	rev, err := client().Config(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rev.Settings.Scanner.Thresholds.Quarantine = 8
	if _, err := client().SetConfig(t.Context(), admin.ConfigRequest{Settings: rev.Settings, Comment: "through the API", Expect: rev.Number}); err != nil {
		t.Fatal(err)
	}
	restart()
	threshold("restart with the same file after an API change", 8)
	if !strings.Contains(g.Proc.Text(), "differs in scanner.thresholds.quarantine") {
		t.Errorf("no warning naming the key where the file disagrees:\n%s", g.Proc.Text())
	}
	write(5)
	restart()
	threshold("restart with the file edited", 5)
}
