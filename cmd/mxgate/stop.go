package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// stopMargin is how long a stop may take beyond smtp.drain_timeout before
// the process ends anyway: the hand-over of a master (membership, priority
// 0, the VIP, queued notify commands: up to 12 s), cutting the sessions left
// after the drain (5 s), then the admin and peer API's own grace (10 s, at
// the same time) and the last message-log batch.
const stopMargin = 30 * time.Second

// stopGuard owns the node's reaction to SIGTERM and SIGINT. The first
// signal ends ctx: the node stops gracefully. From the moment a stop has
// begun (a signal, or the node failing by itself) the stop is bounded: a
// further signal ends the process at once, as Postfix and keepalived do,
// and so does a stop still running after limit. Either leaves what a kill
// -9 leaves (a VIP on the interface, which the next start removes; no
// accepted message, since a 250 is given only for what is safely stored).
type stopGuard struct {
	ctx      context.Context
	cancel   context.CancelFunc
	sigs     chan os.Signal
	begin    chan struct{}
	once     sync.Once
	finished chan struct{}
	done     chan struct{} // the goroutine has ended
	exit     func(code int)
}

// guardStop starts watching the stop signals; release it when serve returns.
func guardStop(parent context.Context, log *slog.Logger, limit time.Duration) *stopGuard {
	return newStopGuard(parent, log, limit, os.Exit)
}

func newStopGuard(parent context.Context, log *slog.Logger, limit time.Duration, exit func(int)) *stopGuard {
	g := &stopGuard{
		sigs: make(chan os.Signal, 2), begin: make(chan struct{}),
		finished: make(chan struct{}), done: make(chan struct{}), exit: exit,
	}
	g.ctx, g.cancel = context.WithCancel(parent)
	signal.Notify(g.sigs, os.Interrupt, syscall.SIGTERM)
	go g.watch(log, limit)
	return g
}

func (g *stopGuard) watch(log *slog.Logger, limit time.Duration) {
	defer close(g.done)
	select {
	case sig := <-g.sigs:
		log.Info("stop signal received: stopping gracefully; a second signal stops at once", "signal", sig.String())
		g.cancel()
	case <-g.begin:
	case <-g.finished:
		return
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case sig := <-g.sigs:
		log.Error("second stop signal: exiting at once, without waiting for sessions", "signal", sig.String())
		g.exit(1)
	case <-t.C:
		log.Error("stop not finished in time: exiting now", "limit", limit)
		g.exit(1)
	case <-g.finished:
	}
}

// stopping says the node has begun to stop for a reason of its own: from
// now on it is bounded as after a signal.
func (g *stopGuard) stopping() {
	g.once.Do(func() { close(g.begin) })
}

// release stops watching and waits for the watching goroutine.
func (g *stopGuard) release() {
	signal.Stop(g.sigs)
	close(g.finished)
	<-g.done
	g.cancel()
}

// startEnded ends a start that failed with err. A stop signal during the
// start ends it too, with an error that wraps ctx's: a clean stop, not a
// failure.
func startEnded(ctx context.Context, log *slog.Logger, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		log.Info("stopped during start-up", "while", err)
		return nil
	}
	return err
}
