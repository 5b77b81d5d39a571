package lists

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// runCache runs c.Run until the test ends, and waits for it to return.
func runCache(t *testing.T, c *Cache, every time.Duration) (cancel func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		c.Run(ctx, every)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run still running 5s after its context ended")
		}
	})
	return cancel
}

func TestCacheRunReloadsOnSignal(t *testing.T) {
	st := &flakyStore{changes: make(chan struct{})}
	c := NewCache(st)
	empty := c.Set()
	runCache(t, c, time.Hour) // no poll: the signal alone must do it
	// Past Run's load at start (it swaps in a new, still empty, set).
	for deadline := time.Now().Add(time.Second); c.Set() == empty; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no load at start within 1s")
		}
	}

	st.set([]Entry{{Kind: Block, Value: "@evil.example"}})
	st.changes <- struct{}{}
	deadline := time.Now().Add(time.Second)
	for c.Set().Match("x@evil.example", netip.Addr{}, "") != Block {
		if time.Now().After(deadline) {
			t.Fatal("signalled change not loaded within 1s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCacheRunAfterChangesClose: a changes channel closed early (the store
// gave up its subscription) neither ends Run nor counts as a stream of
// signals; the context still ends it (runCache's cleanup).
func TestCacheRunAfterChangesClose(t *testing.T) {
	st := &flakyStore{changes: make(chan struct{})}
	close(st.changes)
	c := NewCache(st)
	runCache(t, c, time.Hour)
	time.Sleep(100 * time.Millisecond)
	if n := st.reads.Load(); n != 1 {
		t.Errorf("%d reloads in 100ms with the changes closed and no poll due, want 1 (at start)", n)
	}
}

// TestCacheRunLoadsAtStart: Run subscribes, then loads, so a change made
// between the caller's first Reload and Run is not left to the poll.
func TestCacheRunLoadsAtStart(t *testing.T) {
	st := &flakyStore{}
	c := NewCache(st)
	if err := c.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	st.entries = []Entry{{Kind: Block, Value: "@evil.example"}} // before Run starts: no race
	runCache(t, c, time.Hour)
	deadline := time.Now().Add(time.Second)
	for c.Set().Match("x@evil.example", netip.Addr{}, "") != Block {
		if time.Now().After(deadline) {
			t.Fatal("change made before Run not loaded at its start")
		}
		time.Sleep(time.Millisecond)
	}
}
