package redisstore_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/store/redisstore"
	"github.com/mxgate/mxgate/testenv"
)

func waitSignal(t *testing.T, ch <-chan struct{}, within time.Duration, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: changes channel closed", what)
		}
	case <-time.After(within):
		t.Fatalf("%s: no change signal within %s", what, within)
	}
}

func noSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s: unexpected change signal", what)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestChangesReachAnotherClient: a change made through one client (node)
// is signalled to another within 1 s, and a cache watching the signals
// uses it.
func TestChangesReachAnotherClient(t *testing.T) {
	r := testenv.StartRedis(t)
	writer := redisstore.NewLists(open(t, r.URL))
	reader := redisstore.NewLists(open(t, r.URL))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := reader.Changes(ctx)
	noSignal(t, changes, "after subscribing")

	start := time.Now()
	if err := writer.Add(ctx, lists.Entry{Kind: lists.Block, Value: "@evil.example"}); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, changes, time.Second, "Add")
	t.Logf("Add signalled after %s", time.Since(start))
	if err := writer.Remove(ctx, lists.Block, "@evil.example", ""); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, changes, time.Second, "Remove")

	// Cache.Watch over the other client's store.
	cache := lists.NewCache(reader)
	watched := make(chan struct{})
	go func() {
		cache.Watch(ctx, changes)
		close(watched)
	}()
	if err := writer.Add(ctx, lists.Entry{Kind: lists.Block, Value: "@spam.example"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for cache.Set().Match("x@spam.example", netip.Addr{}, "r@example.org") != lists.Block {
		if time.Now().After(deadline) {
			t.Fatal("the other node's cache did not see the new entry within 1s")
		}
		time.Sleep(5 * time.Millisecond)
	}

	// Cancelling ends the subscription, closes the channel and so ends Watch.
	cancel()
	select {
	case <-watched:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch still runs 5s after the context ended")
	}
}

// TestChangesAfterRedisRestart: the subscription comes back by itself
// after an outage and signals once resubscribed (changes made meanwhile
// were missed), then carries changes again.
func TestChangesAfterRedisRestart(t *testing.T) {
	r := testenv.StartRedis(t)
	writer := redisstore.NewLists(open(t, r.URL))
	reader := redisstore.NewLists(open(t, r.URL))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := reader.Changes(ctx)

	r.Stop()
	time.Sleep(300 * time.Millisecond)
	r.Start()
	waitSignal(t, changes, 10*time.Second, "resubscription after restart")
	// Drain a possible second signal from the reconnect.
	select {
	case <-changes:
	case <-time.After(200 * time.Millisecond):
	}
	if err := writer.Add(ctx, lists.Entry{Kind: lists.Allow, Value: "192.0.2.1"}); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, changes, time.Second, "Add after restart")
}
