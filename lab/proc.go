package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proc is a program started detached inside a lab namespace (Spawn). It is
// plain data, so that a later invocation (`make lab-down`) can read it back
// from a file and stop exactly that process, never another one that reuses
// its PID.
type Proc struct {
	Name string `json:"name"` // what it is in the lab: "n1", "redis", ...
	NS   string `json:"ns"`
	PID  int    `json:"pid"`
	// Start is the process's start time (clock ticks since boot, field 22
	// of /proc/PID/stat): a reused PID has another.
	Start uint64 `json:"start"`
	// Cmdline is /proc/PID/cmdline once the program runs (Settle), for the
	// same check and for people reading the state file.
	Cmdline []string `json:"cmdline,omitempty"`
	Log     string   `json:"log"`
}

// Spawn starts argv inside namespace ns in a session of its own, so that
// it outlives the caller and its terminal; stdout and stderr are appended
// to logPath. `ip netns exec` execs the program: the PID is the program's.
// It returns once the process is inside ns (or has ended), so that from
// then on Destroy's sweep of the namespaces finds it.
func Spawn(name, ns, logPath string, argv ...string) (Proc, error) {
	if len(argv) == 0 {
		return Proc{}, errors.New("spawn: no program")
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return Proc{}, fmt.Errorf("spawn %s: log: %w", name, err)
	}
	defer f.Close()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return Proc{}, fmt.Errorf("spawn %s in %s: %w", name, ns, err)
	}
	p := Proc{Name: name, NS: ns, PID: cmd.Process.Pid, Log: logPath}
	p.Start, err = startTime(p.PID)
	// Nobody waits for it: once the caller exits, init adopts and reaps it.
	cmd.Process.Release()
	if err != nil {
		return p, fmt.Errorf("spawn %s: %w", name, err)
	}
	if err := p.waitIn(ns); err != nil {
		return p, fmt.Errorf("spawn %s: %w", name, err)
	}
	return p, nil
}

// waitIn waits until the process's network namespace is ns or it ended.
func (p Proc) waitIn(ns string) error {
	var want syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+ns, &want); err != nil {
		return fmt.Errorf("namespace %s: %w", ns, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var got syscall.Stat_t
		if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", p.PID), &got); err != nil || !p.Running() {
			return nil // ended: nothing for a sweep to find
		}
		if got.Ino == want.Ino && got.Dev == want.Dev {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d not in namespace %s after 5s", p.PID, ns)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Settle records the command line the program runs with now (after ip's
// exec, and after programs such as redis-server rewrote their title).
func (p *Proc) Settle() error {
	c, err := cmdline(p.PID)
	if err != nil {
		return fmt.Errorf("%s (pid %d): %w", p.Name, p.PID, err)
	}
	p.Cmdline = c
	return nil
}

// Running reports whether the recorded process still runs: the PID exists,
// is no zombie, started when recorded, and runs the recorded command line.
func (p Proc) Running() bool {
	st, state, err := stat(p.PID)
	if err != nil || state == 'Z' || st != p.Start {
		return false
	}
	if p.Cmdline == nil {
		return true
	}
	c, err := cmdline(p.PID)
	return err == nil && slices.Equal(c, p.Cmdline)
}

// Stop sends SIGTERM to the recorded process (only if Running), waits up to
// grace for it to end, then sends SIGKILL. It reports whether the process
// had to be killed.
func (p Proc) Stop(ctx context.Context, grace time.Duration) (killed bool, err error) {
	if !p.Running() {
		return false, nil
	}
	if err := syscall.Kill(p.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return false, fmt.Errorf("stop %s (pid %d): %w", p.Name, p.PID, err)
	}
	if p.wait(ctx, grace) {
		return false, nil
	}
	if !p.Running() { // checked again: never KILL a PID that was reused meanwhile
		return false, nil
	}
	if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return true, fmt.Errorf("kill %s (pid %d): %w", p.Name, p.PID, err)
	}
	if !p.wait(ctx, 5*time.Second) {
		return true, fmt.Errorf("%s (pid %d) survived SIGKILL", p.Name, p.PID)
	}
	return true, nil
}

// wait polls until the process is gone (it is no child of ours: no
// wait(2)) or within passed; it reports whether it is gone.
func (p Proc) wait(ctx context.Context, within time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for p.Running() {
		select {
		case <-ctx.Done():
			return !p.Running()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return true
}

func cmdline(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, err
	}
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil, fmt.Errorf("pid %d has no command line", pid)
	}
	return strings.Split(string(b), "\x00"), nil
}

func startTime(pid int) (uint64, error) {
	st, _, err := stat(pid)
	return st, err
}

// stat reads the start time and state of pid from /proc/PID/stat.
func stat(pid int) (start uint64, state byte, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) is in parentheses and may hold anything:
	// the fields after its last ')' start with the state (field 3).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: start time: %w", pid, err)
	}
	return start, f[0][0], nil
}

// Pids lists the processes whose network namespace is ns.
func Pids(ns string) ([]int, error) {
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns pids %s: %w", ns, err)
	}
	var pids []int
	for _, s := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(s); err == nil {
			pids = append(pids, p)
		}
	}
	return pids, nil
}

// Destroy removes the lab called name, built completely or not: whatever
// still runs in its namespaces (only the lab's processes can be in them:
// the names are the lab's) gets SIGTERM, then SIGKILL, and the namespaces
// are deleted, which removes their links. It returns the PIDs it had to
// signal. A lab that does not exist is no error.
func Destroy(ctx context.Context, name string) (signalled []int, err error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	nss := Namespaces(name)
	self := os.Getpid()
	for _, ns := range nss {
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
			pids := others(ns, self)
			if len(pids) == 0 {
				break
			}
			for _, p := range pids {
				if syscall.Kill(p, sig) == nil && !slices.Contains(signalled, p) {
					signalled = append(signalled, p)
				}
			}
			wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			for len(others(ns, self)) > 0 && wctx.Err() == nil {
				select {
				case <-wctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
			cancel()
		}
	}
	var errs []error
	for _, ns := range nss {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %v: %s", ns, err, strings.TrimSpace(string(out))))
		}
	}
	return signalled, errors.Join(errs...)
}

// others lists the processes in ns except self (a thread of ours may be
// inside for a moment), zombies excluded: they hold no namespace.
func others(ns string, self int) []int {
	pids, _ := Pids(ns)
	var out []int
	for _, p := range pids {
		if p == self {
			continue
		}
		if _, state, err := stat(p); err == nil && state != 'Z' {
			out = append(out, p)
		}
	}
	return out
}
