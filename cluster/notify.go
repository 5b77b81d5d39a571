package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// notifyTimeout bounds one run of the notify command: a hung script must not
// hold back the transitions queued behind it forever.
const notifyTimeout = 30 * time.Second

// notifyEvent is one transition to report to the notify command.
type notifyEvent struct {
	state    string
	vrid     uint8
	priority uint8
}

// notifier runs the notify command once per transition, strictly in order
// and one at a time (keepalived runs its scripts concurrently, a known
// source of out-of-order MASTER/BACKUP calls). The queue is unbounded:
// transitions are rare, and blocking the machine goroutine on a slow script
// would stop adverts.
type notifier struct {
	argv    []string
	log     *slog.Logger
	timeout time.Duration // per run; notifyTimeout outside tests

	mu     sync.Mutex
	queue  []notifyEvent
	closed bool
	wake   chan struct{} // cap 1: "queue changed"
	done   chan struct{} // closed when run returns
}

func newNotifier(cmd string, log *slog.Logger) *notifier {
	return &notifier{argv: strings.Fields(cmd), log: log, timeout: notifyTimeout, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func (n *notifier) enqueue(e notifyEvent) {
	if len(n.argv) == 0 {
		return
	}
	n.mu.Lock()
	if !n.closed {
		n.queue = append(n.queue, e)
	}
	n.mu.Unlock()
	n.signal()
}

func (n *notifier) signal() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// close ends the queue: run returns once what is queued has been run.
func (n *notifier) close() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.signal()
}

// run executes queued events until close was called and the queue is empty,
// or ctx ends (then the running command is killed and the rest dropped).
func (n *notifier) run(ctx context.Context) {
	defer close(n.done)
	for {
		n.mu.Lock()
		var e notifyEvent
		have := len(n.queue) > 0
		if have {
			e = n.queue[0]
			n.queue = n.queue[1:]
		}
		closed := n.closed
		n.mu.Unlock()
		if have {
			if ctx.Err() != nil {
				n.dropRest(ctx, e)
				return
			}
			n.exec(ctx, e)
			continue
		}
		if closed {
			return
		}
		select {
		case <-n.wake:
		case <-ctx.Done():
			return
		}
	}
}

func (n *notifier) dropRest(ctx context.Context, first notifyEvent) {
	n.mu.Lock()
	left := 1 + len(n.queue)
	n.queue = nil
	n.mu.Unlock()
	n.log.Warn("vrrp notify: queue dropped at shutdown", "events", left, "first_state", first.state, "err", context.Cause(ctx))
}

func (n *notifier) exec(ctx context.Context, e notifyEvent) {
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	args := append(append([]string(nil), n.argv[1:]...), e.state, strconv.Itoa(int(e.vrid)), strconv.Itoa(int(e.priority)))
	cmd := exec.CommandContext(ctx, n.argv[0], args...)
	// A killed script's children may keep the output pipe open; don't wait
	// for them longer than this after the kill.
	cmd.WaitDelay = time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("killed after %s: %w", n.timeout, err)
		} else if ctx.Err() != nil {
			err = fmt.Errorf("killed: %w: %w", context.Cause(ctx), err)
		}
		n.log.Error("vrrp notify failed", "cmd", n.argv[0], "state", e.state, "err", err,
			"elapsed", time.Since(start).Round(time.Millisecond), "output", truncate(string(out), 512))
		return
	}
	n.log.Debug("vrrp notify ran", "cmd", n.argv[0], "state", e.state, "elapsed", time.Since(start).Round(time.Millisecond))
}

func truncate(s string, max int) string {
	s = strings.TrimSpace(s)
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
