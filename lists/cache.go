package lists

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mxgate/mxgate/kv"
)

// Cache keeps a compiled Set of a Store for the SMTP path, which must not
// wait on the store: Set is one atomic load. When the store is down the last
// good snapshot stays in use.
type Cache struct {
	store Store
	set   atomic.Pointer[Set]
	// reload serialises reloads, so a slow reload that read the store
	// earlier cannot replace the snapshot of a later one.
	reload sync.Mutex
}

var _ Store = (*Cache)(nil)

// NewCache returns a cache with an empty snapshot; call Reload before
// serving to load the lists.
func NewCache(s Store) *Cache {
	c := &Cache{store: s}
	c.set.Store(Compile(nil))
	return c
}

// Set returns the current snapshot, never nil.
func (c *Cache) Set() *Set { return c.set.Load() }

// Reload reads all entries and swaps in a new snapshot. On error the
// previous snapshot stays.
func (c *Cache) Reload(ctx context.Context) error {
	c.reload.Lock()
	defer c.reload.Unlock()
	entries, err := c.store.All(ctx)
	if err != nil {
		return fmt.Errorf("reload lists: %w", err)
	}
	c.set.Store(Compile(entries))
	return nil
}

// Run keeps the snapshot current until ctx is done: it reloads on every
// change the store signals (Store.Changes: a list change made on any node
// is in use cluster-wide within moments) and every interval (1 s when
// every <= 0), which covers signals lost while the store was unreachable.
// It also reloads once at start, after subscribing, so a change made since
// the caller's first Reload is not missed. Failures are logged and the
// last good snapshot is kept.
func (c *Cache) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = time.Second
	}
	kv.Follow(ctx, c.store.Changes(ctx), every, func(signalled bool) {
		err := c.Reload(ctx)
		switch {
		case err == nil || ctx.Err() != nil:
		case signalled:
			slog.Warn("lists: change signalled, but reload failed; keeping last good snapshot", "err", err)
		default:
			slog.Warn("lists: keeping last good snapshot", "err", err)
		}
	})
}

// Add writes through to the store and reloads. A failed reload after a
// successful write is only logged: the entry is stored, and the next
// periodic reload picks it up.
func (c *Cache) Add(ctx context.Context, e Entry) (Entry, bool, error) {
	stored, added, err := c.store.Add(ctx, e)
	if err != nil {
		return Entry{}, false, err
	}
	if added {
		c.reloadAfterWrite(ctx)
	}
	return stored, added, nil
}

// Remove writes through to the store and reloads, as Add does.
func (c *Cache) Remove(ctx context.Context, kind Kind, value, rcpt string) error {
	if err := c.store.Remove(ctx, kind, value, rcpt); err != nil {
		return err
	}
	c.reloadAfterWrite(ctx)
	return nil
}

// All reads the store, not the snapshot, so callers see what is stored.
func (c *Cache) All(ctx context.Context) ([]Entry, error) { return c.store.All(ctx) }

// Changes are the store's.
func (c *Cache) Changes(ctx context.Context) <-chan struct{} { return c.store.Changes(ctx) }

func (c *Cache) reloadAfterWrite(ctx context.Context) {
	if err := c.Reload(ctx); err != nil {
		slog.Warn("lists: stored, but reload failed; the periodic reload will retry", "err", err)
	}
}
