package main

// The lab as an administrator runs it: `make lab`, mail through the VIP,
// the master killed, `make lab-down`, and nothing left. Root only.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mxgate/mxgate/lab"
	"github.com/mxgate/mxgate/testenv"
)

// repo is the repository's top, where the Makefile is.
const repo = "../.."

func makeLab(t *testing.T, ctx context.Context, target, name string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, "make", "-s", "-C", repo, target, "LAB="+name)
	// Under `make test` the outer make's flags (a jobserver this process
	// does not pass on) would reach the inner one.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MFLAGS" && k != "MAKELEVEL" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s LAB=%s: %v\n%s", target, name, err, out)
	}
	return string(out)
}

func TestMakeLab(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.Need(t, "make", "ip", "redis-server", "smtp-sink", "swaks")
	ctx := testenv.Context(t, 10*time.Minute)
	// A name of its own: an administrator's lab (mxlab) is never touched.
	name := fmt.Sprintf("mxlabt%d", os.Getpid()%100000)
	o := options{name: name, state: "/run/mxgate-lab"}
	t.Cleanup(func() { down(context.Background(), o, &bytes.Buffer{}) })

	start := time.Now()
	out := makeLab(t, ctx, "lab", name)
	t.Logf("make lab: %s", time.Since(start).Round(time.Millisecond))
	for _, want := range []string{
		"lab " + name + " is up",
		"ip netns exec " + name + "-c swaks --server 198.18.0.100",
		"held by n1",
		"make lab-down LAB=" + name,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("make lab printed no %q:\n%s", want, out)
		}
	}
	s, err := load(o)
	if err != nil || s == nil {
		t.Fatalf("state after make lab: %v, %v", s, err)
	}
	if len(s.Procs) != 5 {
		t.Fatalf("recorded %d processes, want redis, mail, n1..n3: %+v", len(s.Procs), s.Procs)
	}
	for _, p := range s.Procs {
		if !p.Running() || len(p.Cmdline) == 0 {
			t.Errorf("%s (pid %d) is not running after make lab (cmdline %q)", p.Name, p.PID, p.Cmdline)
		}
	}

	t.Run("refuses a second lab of the same name", func(t *testing.T) {
		var b bytes.Buffer
		err := run(ctx, []string{"up", "-name", name, "-bin", filepath.Join(repo, "bin/mxgate")}, &b)
		if err == nil || !strings.Contains(err.Error(), "exists") {
			t.Fatalf("second up: %v, want 'exists'", err)
		}
		if n := len(lab.Namespaces(name)); n != 7 {
			t.Errorf("the refused up changed the lab: %d namespaces, want 7", n)
		}
	})

	l := lab.Open(name, nodes)
	defer l.Close()
	mail := filepath.Join(s.Dir, "mail")
	send := func(subject, via string) {
		t.Helper()
		out, err := testenv.Run(ctx, "ip", "netns", "exec", l.Client(), "swaks", "--server", lab.VIP,
			"--from", "alice@example.com", "--to", "bob@"+domain, "--header", "Subject: "+subject, "--timeout", "20")
		if err != nil {
			t.Fatalf("swaks through the VIP: %v\n%s", err, out)
		}
		if !strings.Contains(out, "220 "+via+".lab.test") || !strings.Contains(out, "250 2.0.0 Ok: queued as") {
			t.Fatalf("swaks through the VIP, want %s's greeting and a 250:\n%s", via, out)
		}
		waitMessage(t, mail, subject, 10*time.Second)
	}
	send("lab test 1", "n1")

	// The master dies: n2 takes the VIP and mail flows through it.
	n1, _ := s.proc("n1")
	killed := time.Now()
	if err := syscall.Kill(n1.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for {
		if ok, _ := l.HasAddr(l.Node(2), lab.VIP); ok {
			break
		}
		if time.Since(killed) > 15*time.Second {
			t.Fatal("n2 did not take the VIP within 15s of n1's death")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("VIP on n2 %s after SIGKILL to n1", time.Since(killed).Round(time.Millisecond))
	send("lab test 2", "n2")

	out = makeLab(t, ctx, "lab-down", name)
	if !strings.Contains(out, "lab "+name+" removed") {
		t.Errorf("make lab-down printed:\n%s", out)
	}

	// Nothing left: namespaces, links, processes, state.
	if nss, err := exec.Command("ip", "netns", "list").Output(); err != nil || bytes.Contains(nss, []byte(name+"-")) {
		t.Errorf("ip netns list after lab-down (%v):\n%s", err, nss)
	}
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifi := range ifs {
		if strings.HasPrefix(ifi.Name, "v-") || strings.Contains(ifi.Name, name) {
			t.Errorf("link %s in the root namespace after lab-down", ifi.Name)
		}
	}
	for _, p := range s.Procs {
		if p.Running() {
			t.Errorf("%s (pid %d) still runs after lab-down", p.Name, p.PID)
		}
	}
	if left := processesMentioning(t, s.Dir); len(left) > 0 {
		t.Errorf("processes of the lab left: %v", left)
	}
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Errorf("state directory %s after lab-down: %v", s.Dir, err)
	}
	// Idempotent.
	if out := makeLab(t, ctx, "lab-down", name); !strings.Contains(out, "no lab "+name) {
		t.Errorf("second make lab-down printed:\n%s", out)
	}
}

// waitMessage waits until a message with subject is in the mail server's
// directory.
func waitMessage(t *testing.T, dir, subject string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			if testenv.Header(string(b), "Subject") == subject && bytes.Contains(b, []byte(".lab.test")) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message %q in %s after %s (%d files)", subject, dir, within, len(ents))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// processesMentioning lists the processes whose command line holds s.
func processesMentioning(t *testing.T, s string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(s)) {
			out = append(out, e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

// A half-built lab (namespaces and a process, no complete state) goes
// too, and a recorded PID that now belongs to another program is left
// alone.
func TestDownHalfBuilt(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.Need(t, "ip", "sleep")
	ctx := testenv.Context(t, 2*time.Minute)
	name := fmt.Sprintf("mxlabh%d", os.Getpid()%100000)
	o := options{name: name, state: t.TempDir()}
	t.Cleanup(func() { lab.Destroy(context.Background(), name) })

	l, err := lab.Create(ctx, name, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.MkdirAll(o.dir(), 0o755); err != nil {
		t.Fatal(err)
	}
	inLab, err := lab.Spawn("stray", l.Node(1), filepath.Join(o.dir(), "stray.log"), "sleep", "300")
	if err != nil {
		t.Fatal(err)
	}
	// Two processes outside the lab whose PIDs the state file claims, as
	// after a reboot or PID reuse: one started at another time, one
	// running another command line.
	var outside []*testenv.Process
	s := &state{Name: name, Dir: o.dir()}
	for _, tc := range []struct {
		name   string
		change func(*lab.Proc)
	}{
		{"reused-start", func(p *lab.Proc) { p.Start++ }},
		{"reused-cmdline", func(p *lab.Proc) { p.Cmdline = []string{"mxgate", "serve"} }},
	} {
		sp := testenv.Start(t, "sleep", "300")
		outside = append(outside, sp)
		p := lab.Proc{Name: tc.name, PID: sp.Cmd.Process.Pid}
		var err error
		if p.Start, err = startOf(p.PID); err != nil {
			t.Fatal(err)
		}
		// Settle once sleep runs: between fork and exec the command line
		// is not the program's yet.
		deadline := time.Now().Add(5 * time.Second)
		for p.Settle() != nil || p.Cmdline[0] != "sleep" {
			if time.Now().After(deadline) {
				t.Fatalf("pid %d never ran sleep: %q", p.PID, p.Cmdline)
			}
			time.Sleep(5 * time.Millisecond)
		}
		tc.change(&p)
		s.Procs = append(s.Procs, p)
	}
	if err := s.save(); err != nil {
		t.Fatal(err)
	}

	var b bytes.Buffer
	if err := run(ctx, []string{"down", "-name", name, "-state", o.state}, &b); err != nil {
		t.Fatalf("down: %v\n%s", err, b.String())
	}
	if !strings.Contains(b.String(), fmt.Sprintf("stopped pid %d", inLab.PID)) {
		t.Errorf("down did not report the stray process %d:\n%s", inLab.PID, b.String())
	}
	if inLab.Running() {
		t.Error("the process in the half-built lab survived down")
	}
	if left := lab.Namespaces(name); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
	if _, err := os.Stat(o.dir()); !os.IsNotExist(err) {
		t.Errorf("state directory left: %v", err)
	}
	for _, p := range outside {
		if p.Wait(time.Second) {
			t.Errorf("down killed pid %d, which the state file named but which was another process", p.Cmd.Process.Pid)
		}
	}
}

// startOf is a process's start time as package lab records it.
func startOf(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	var v uint64
	_, err = fmt.Sscan(f[19], &v)
	return v, err
}
