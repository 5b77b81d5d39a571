package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func testLogger(buf *logBuf) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Events run one at a time in queue order, with the fixed arguments first;
// close drains what is queued.
func TestNotifierOrder(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "calls")
	script := filepath.Join(dir, "n.sh")
	// The sleep widens the window in which a concurrent runner would interleave.
	if err := os.WriteFile(script, []byte("#!/bin/sh\nsleep 0.02\necho \"$@\" >> "+out+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var lb logBuf
	n := newNotifier("/bin/sh "+script+" fixed", testLogger(&lb))
	done := make(chan struct{})
	go func() { n.run(context.Background()); close(done) }()
	states := []string{"backup", "master", "backup", "master", "init"}
	for i, s := range states {
		n.enqueue(notifyEvent{state: s, vrid: 7, priority: uint8(10 + i)})
	}
	n.close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("notifier did not drain")
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i, s := range states {
		want = append(want, fmt.Sprintf("fixed %s 7 %d", s, 10+i))
	}
	if got := strings.Split(strings.TrimSpace(string(b)), "\n"); !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
	n.enqueue(notifyEvent{state: "late"}) // after close: ignored, no panic
}

// A hung script is killed after the timeout and the queue moves on; a
// failing one is logged.
func TestNotifierKillsHung(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "calls")
	script := filepath.Join(dir, "n.sh")
	body := "#!/bin/sh\nif [ \"$1\" = hang ]; then exec sleep 30; fi\nif [ \"$1\" = fail ]; then echo oops; exit 3; fi\necho \"$1\" >> " + out + "\n"
	if err := os.WriteFile(script, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	var lb logBuf
	n := newNotifier("/bin/sh "+script, testLogger(&lb))
	n.timeout = 200 * time.Millisecond
	done := make(chan struct{})
	start := time.Now()
	go func() { n.run(context.Background()); close(done) }()
	for _, s := range []string{"hang", "fail", "master"} {
		n.enqueue(notifyEvent{state: s})
	}
	n.close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("notifier stuck on a hung script")
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("took %s", el)
	}
	if b, _ := os.ReadFile(out); strings.TrimSpace(string(b)) != "master" {
		t.Errorf("calls after the hung one: %q", b)
	}
	log := lb.String()
	if !strings.Contains(log, "killed after 200ms") || !strings.Contains(log, "exit status 3") || !strings.Contains(log, "oops") {
		t.Errorf("log:\n%s", log)
	}
}

// Cancelling the context (the drain bound of Run) kills the running command
// and drops the rest.
func TestNotifierDrainBound(t *testing.T) {
	var lb logBuf
	n := newNotifier("/bin/sleep", testLogger(&lb)) // sleep <state> ... : "sleep 30 0 0"
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan struct{})
	go func() { n.run(ctx); close(done) }()
	n.enqueue(notifyEvent{state: "30"})
	n.enqueue(notifyEvent{state: "31"})
	n.close()
	time.Sleep(100 * time.Millisecond)
	cancel(context.DeadlineExceeded)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("notifier did not stop on cancel")
	}
	if log := lb.String(); !strings.Contains(log, "queue dropped") {
		t.Errorf("log:\n%s", log)
	}
}
