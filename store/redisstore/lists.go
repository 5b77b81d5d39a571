package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mxgate/mxgate/lists"
)

const (
	// listsEntries maps the entry key (kind, recipient, value; lower-cased,
	// NUL-separated as in package lists) to the entry's JSON.
	listsEntries = Prefix + "lists:entries"
	// ListsChanged is the pub/sub channel Add and Remove publish on.
	ListsChanged = Prefix + "lists:changed"
)

const (
	// subscribeWait bounds how long Changes waits for Redis to confirm the
	// subscription before returning.
	subscribeWait = 2 * time.Second
	// pubsubHealth is how long the subscription may be silent before it
	// is PINGed; a PING unanswered for as long again means a dead link,
	// and the subscription is made anew.
	pubsubHealth = 3 * time.Second
	maxBackoff   = 2 * time.Second
)

// Lists is the list store in Redis, with change notifications.
type Lists struct {
	c redis.UniversalClient
}

var _ lists.Store = (*Lists)(nil)

// NewLists returns the list store in Redis.
func NewLists(c redis.UniversalClient) *Lists { return &Lists{c: c} }

// Add stores e unless an equal entry exists (HSETNX) and publishes a
// change, in one MULTI/EXEC.
func (l *Lists) Add(ctx context.Context, e lists.Entry) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("add list entry: %w", err)
	}
	e, err := lists.Normalize(e)
	if err != nil {
		return fmt.Errorf("add list entry: %w", err)
	}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("add list entry: %w", err)
	}
	_, err = l.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSetNX(ctx, listsEntries, lists.EntryKey(e.Kind, e.Value, e.Rcpt), data)
		p.Publish(ctx, ListsChanged, "add")
		return nil
	})
	if err != nil {
		return fmt.Errorf("add list entry %s %s: %w", e.Kind, e.Value, err)
	}
	return nil
}

// Remove deletes the entry and publishes a change, in one MULTI/EXEC.
func (l *Lists) Remove(ctx context.Context, kind lists.Kind, value, rcpt string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("remove list entry: %w", err)
	}
	e, err := lists.Normalize(lists.Entry{Kind: kind, Value: value, Rcpt: rcpt})
	if err != nil {
		return fmt.Errorf("remove list entry: %w", err)
	}
	var del *redis.IntCmd
	_, err = l.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		del = p.HDel(ctx, listsEntries, lists.EntryKey(e.Kind, e.Value, e.Rcpt))
		p.Publish(ctx, ListsChanged, "remove")
		return nil
	})
	if err == nil && del.Val() == 0 {
		err = lists.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("remove list entry %s %s: %w", kind, value, err)
	}
	return nil
}

// All returns every entry, ordered by kind, recipient and value (the
// entry key), as the bbolt backend does.
func (l *Lists) All(ctx context.Context) ([]lists.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read lists: %w", err)
	}
	m, err := l.c.HGetAll(ctx, listsEntries).Result()
	if err != nil {
		return nil, fmt.Errorf("read lists: %w", err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []lists.Entry
	for _, k := range keys {
		var e lists.Entry
		if err := json.Unmarshal([]byte(m[k]), &e); err != nil {
			return nil, fmt.Errorf("read lists: decode entry %q: %w", k, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// Changes subscribes to list changes made by any node and signals on the
// returned channel for each one (signals coalesce: one pending at most)
// and each time the subscription is made again after a lost connection,
// since changes in between were missed. It waits up to subscribeWait for
// Redis to confirm the subscription, so a change made after it returns is
// seen. The channel is closed when ctx is done. Pair it with
// lists.Cache.Watch; Cache.Run's polling covers a Redis outage.
func (l *Lists) Changes(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	w := &watcher{c: l.c, out: out}
	w.ps = l.c.Subscribe(ctx, ListsChanged)
	wctx, cancel := context.WithTimeout(ctx, subscribeWait)
	msg, err := w.ps.Receive(wctx)
	cancel()
	if err == nil {
		w.handle(msg)
		// The confirmation needs no reload: the caller loads the lists
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
	c   redis.UniversalClient
	out chan struct{}

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
	w.ps = w.c.Subscribe(ctx, ListsChanged)
}

func (w *watcher) signal() {
	select {
	case w.out <- struct{}{}:
	default:
	}
}

func (w *watcher) handle(msg any) {
	switch m := msg.(type) {
	case *redis.Subscription:
		if m.Kind == "subscribe" {
			w.signal()
		}
	case *redis.Message:
		w.signal()
	}
}

func (w *watcher) run(ctx context.Context) {
	defer close(w.out)
	defer w.close()
	backoff := 100 * time.Millisecond
	pinged := false
	for {
		msg, err := w.current().ReceiveTimeout(ctx, pubsubHealth)
		if ctx.Err() != nil {
			return
		}
		var ne net.Error
		switch {
		case err == nil:
			backoff, pinged = 100*time.Millisecond, false
			w.handle(msg)
		case errors.As(err, &ne) && ne.Timeout():
			if pinged {
				slog.Warn("lists: change subscription silent, subscribing again")
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
			slog.Debug("lists: change subscription", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
		}
	}
}
