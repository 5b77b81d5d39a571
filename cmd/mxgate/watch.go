package main

// cluster status --watch: the cluster view redrawn every interval, as
// watch(1) and top do, for an administrator who watches a failover. The
// node behind --admin may vanish for a moment (the VIP moving, a node
// restarting): a failed poll is shown and the watch goes on.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/node"
)

const (
	minWatchInterval = 100 * time.Millisecond
	maxWatchInterval = time.Hour
	// maxPollTimeout bounds a poll of a long interval: a node that does
	// not answer in that time is shown as such rather than left as the
	// last frame.
	maxPollTimeout = 10 * time.Second
)

// watchOptions are --watch and --interval.
type watchOptions struct {
	on       bool
	interval time.Duration
}

func watchFlags(cmd *cobra.Command) *watchOptions {
	o := &watchOptions{}
	cmd.Flags().BoolVarP(&o.on, "watch", "w", false, "redraw every --interval until Ctrl-C; with --json one JSON object per line per poll")
	cmd.Flags().DurationVar(&o.interval, "interval", time.Second, fmt.Sprintf("time between polls with --watch (%s to %s)", minWatchInterval, maxWatchInterval))
	return o
}

// check refuses --interval without --watch and an interval out of bounds.
func (o *watchOptions) check(cmd *cobra.Command) error {
	switch {
	case cmd.Flags().Changed("interval") && !o.on:
		return usageError(fmt.Errorf("--interval needs --watch"))
	case o.interval < minWatchInterval || o.interval > maxWatchInterval:
		return usageError(fmt.Errorf("--interval %s: want %s to %s", o.interval, minWatchInterval, maxWatchInterval))
	}
	return nil
}

// pollTimeout leaves every poll done before the next is due.
func pollTimeout(interval time.Duration) time.Duration {
	return min(interval-interval/10, maxPollTimeout)
}

// watchCluster polls c every interval and writes each answer to out until
// ctx ends or SIGINT or SIGTERM arrives, which is a success. Only an
// answer that no retry changes ends it with an error: a refused token, a
// refused call, and before the first answer a node that is not clustered
// or whose TLS is not trusted (after one, the same can be a failover to a
// node with another certificate, in flight).
func watchCluster(ctx context.Context, c *admin.Client, out, errOut io.Writer, interval time.Duration, asJSON bool) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	f := watchFrame{addr: c.Addr(), interval: interval, terminal: isTerminal(out)}
	for n := 0; ; n++ {
		var st node.ClusterView
		pctx, cancel := context.WithTimeout(ctx, pollTimeout(interval))
		err := notClustered(c.ClusterStatus(pctx, &st))
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		now := time.Now()
		if err != nil {
			switch exitStatus(classify(err), true) {
			case exitUsage, exitNoPerm:
				return err
			case exitProtocol, exitNoInput:
				if f.last.IsZero() {
					return err
				}
			}
		} else {
			f.last = now
		}
		w, frame := out, []byte(nil)
		switch {
		case asJSON && err != nil:
			// stdout stays one object per line; the error goes where a
			// log of the run keeps it.
			w, frame = errOut, fmt.Appendf(nil, "mxgate: %s: %s\n", now.Format(time.RFC3339), errorLine(err))
		case asJSON:
			b, jerr := json.Marshal(st)
			if jerr != nil {
				return fmt.Errorf("encode JSON: %w", jerr)
			}
			frame = append(escapeInvisible(b), '\n')
		default:
			frame = f.render(n, now, st, err)
		}
		// One write per frame: a terminal never shows half of one.
		if _, werr := w.Write(frame); werr != nil {
			return fmt.Errorf("write the cluster view: %w", werr)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// watchFrame draws one poll of the view.
type watchFrame struct {
	addr     string
	interval time.Duration
	terminal bool
	last     time.Time // of the last answer; zero before the first
}

// render is frame n: on a terminal the screen cleared and a header line;
// otherwise, for a log, a blank line between frames and a timestamp line.
// Then the view, or what kept the node from answering.
func (f *watchFrame) render(n int, now time.Time, st node.ClusterView, err error) []byte {
	var b bytes.Buffer
	switch {
	case f.terminal:
		fmt.Fprintf(&b, "\x1b[H\x1b[2J%s  every %s  %s  Ctrl-C to stop\n\n", clean(f.addr), f.interval, now.Format("2006-01-02 15:04:05"))
	case n > 0:
		b.WriteString("\n")
		fallthrough
	default:
		fmt.Fprintf(&b, "%s %s\n", now.Format(time.RFC3339), clean(f.addr))
	}
	if err == nil {
		if perr := printClusterView(&b, st); perr != nil {
			fmt.Fprintf(&b, "ERROR  %s\n", errorLine(perr))
		}
		return b.Bytes()
	}
	fmt.Fprintf(&b, "ERROR  %s\n", errorLine(err))
	if f.last.IsZero() {
		b.WriteString("       no answer yet; retrying\n")
	} else {
		fmt.Fprintf(&b, "       last answer %s ago (%s); retrying\n", now.Sub(f.last).Round(time.Second), f.last.Format("15:04:05"))
	}
	return b.Bytes()
}

// isTerminal says whether w is a terminal, to be redrawn in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	// Through SyscallConn: Fd would put the file in blocking mode.
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	var terr error
	if err := rc.Control(func(fd uintptr) { _, terr = unix.IoctlGetTermios(int(fd), unix.TCGETS) }); err != nil {
		return false
	}
	return terr == nil
}
