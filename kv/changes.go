package kv

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Change notification, the one design every followed store uses (lists,
// cluster configuration): the store's Changes(ctx) returns a channel that
// signals, coalesced (one pending signal at most), that something may have
// changed, and is closed when ctx ends. A signal carries nothing: the
// reader loads the current state. The embedded backends signal in-process
// on their own writes (Broadcast); the Redis backends publish on a channel
// in the same step as the write and signal every subscriber on every node
// (Subscribe). Signals can be lost (Redis pub/sub keeps nothing while a
// node is disconnected), so a reader also polls (Follow).

// signal puts a signal in ch (capacity 1) unless one is pending already.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Broadcast hands change signals to every subscriber in this process. The
// zero value is ready to use; it must not be copied after first use.
type Broadcast struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// Send signals every subscriber.
func (b *Broadcast) Send() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		signal(ch)
	}
}

// Subscribe returns a channel that gets a signal after every Send until ctx
// ends; it is closed then.
func (b *Broadcast) Subscribe(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if ctx.Err() != nil {
		close(ch)
		return ch
	}
	if b.subs == nil {
		b.subs = make(map[chan struct{}]struct{})
	}
	b.subs[ch] = struct{}{}
	// Removal and close under the lock Send holds: never a send on a
	// closed channel.
	context.AfterFunc(ctx, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.subs, ch)
		close(ch)
	})
	return ch
}

const (
	// subscribeWait bounds how long Subscribe waits for Redis to confirm
	// the subscription before returning.
	subscribeWait = 2 * time.Second
	// pubsubHealth is how long a subscription may be silent before it is
	// PINGed; a PING unanswered for as long again means a dead link, and
	// the subscription is made anew.
	pubsubHealth = 3 * time.Second
	minBackoff   = 100 * time.Millisecond
	maxBackoff   = 2 * time.Second
)

// Subscribe subscribes to the Redis pub/sub channel and signals on the
// returned channel for each message, whatever its payload, and each time
// the subscription is made again after a lost connection, since messages
// in between were missed. It waits up to subscribeWait for Redis to
// confirm the subscription, so a message published after it returns is
// seen; past that (Redis down) it keeps trying in the background. The
// channel is closed when ctx is done; the goroutine that serves it ends
// then.
func Subscribe(ctx context.Context, c redis.UniversalClient, channel string) <-chan struct{} {
	out := make(chan struct{}, 1)
	w := &watcher{c: c, channel: channel, out: out}
	w.ps = c.Subscribe(ctx, channel)
	wctx, cancel := context.WithTimeout(ctx, subscribeWait)
	msg, err := w.ps.Receive(wctx)
	cancel()
	if err == nil {
		w.handle(msg)
		// The confirmation needs no reload: the caller loads the state
		// itself at start. Drop the signal it may have queued.
		select {
		case <-out:
		default:
		}
	}
	stop := context.AfterFunc(ctx, w.close)
	go func() {
		defer stop()
		w.run(ctx)
	}()
	return out
}

// watcher owns one subscription; run's goroutine owns it until ctx ends.
type watcher struct {
	c       redis.UniversalClient
	channel string
	out     chan struct{}

	mu     sync.Mutex // guards ps against close from ctx's AfterFunc
	ps     *redis.PubSub
	closed bool
}

func (w *watcher) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	w.ps.Close()
}

func (w *watcher) current() *redis.PubSub {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ps
}

// renew replaces a subscription whose link went silent.
func (w *watcher) renew(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.ps.Close()
	w.ps = w.c.Subscribe(ctx, w.channel)
}

func (w *watcher) handle(msg any) {
	switch m := msg.(type) {
	case *redis.Subscription:
		if m.Kind == "subscribe" {
			signal(w.out)
		}
	case *redis.Message:
		signal(w.out)
	}
}

func (w *watcher) run(ctx context.Context) {
	defer close(w.out)
	defer w.close()
	backoff := minBackoff
	pinged := false
	for {
		msg, err := w.current().ReceiveTimeout(ctx, pubsubHealth)
		if ctx.Err() != nil {
			return
		}
		var ne net.Error
		switch {
		case err == nil:
			backoff, pinged = minBackoff, false
			w.handle(msg)
		case errors.As(err, &ne) && ne.Timeout():
			if pinged {
				slog.Warn("change subscription silent, subscribing again", "channel", w.channel)
				w.renew(ctx)
				pinged = false
				continue
			}
			if err := w.current().Ping(ctx); err == nil {
				pinged = true
			}
		default:
			// Redis is down: go-redis reconnects and resubscribes on the
			// next receive; the subscription confirmation then signals.
			slog.Debug("change subscription", "channel", w.channel, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
		}
	}
}

// Follow is the reader's side: it calls load(false) at once, then
// load(true) on every signal from changes and load(false) every interval,
// until ctx ends. Take changes from the store's Changes before calling
// Follow, so that a change between that and the first load is not missed.
// When changes is closed early, polling goes on alone.
func Follow(ctx context.Context, changes <-chan struct{}, every time.Duration, load func(signalled bool)) {
	load(false)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
			load(true)
		case <-t.C:
			load(false)
		}
	}
}
