package lists

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

func TestCacheWatchReloadsOnSignal(t *testing.T) {
	st := &flakyStore{}
	c := NewCache(st)
	ctx, cancel := context.WithCancel(context.Background())
	changes := make(chan struct{})
	done := make(chan struct{})
	go func() {
		c.Watch(ctx, changes)
		close(done)
	}()

	// The send hands the new entries over to Watch's goroutine.
	st.entries = []Entry{{Kind: Block, Value: "@evil.example"}}
	changes <- struct{}{}
	deadline := time.Now().Add(time.Second)
	for c.Set().Match("x@evil.example", netip.Addr{}, "") != Block {
		if time.Now().After(deadline) {
			t.Fatal("signalled change not loaded within 1s")
		}
		time.Sleep(time.Millisecond)
	}

	cancel()
	<-done // hangs (and the test times out) if Watch ignores ctx
}

func TestCacheWatchEndsWhenChangesClose(t *testing.T) {
	c := NewCache(&flakyStore{})
	changes := make(chan struct{})
	close(changes)
	done := make(chan struct{})
	go func() { c.Watch(context.Background(), changes); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch still running 5s after its changes channel closed")
	}
}
