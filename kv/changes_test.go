package kv

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mxgate/mxgate/testenv"
)

func signalled(ch <-chan struct{}, within time.Duration) (ok, open bool) {
	select {
	case _, open := <-ch:
		return true, open
	case <-time.After(within):
		return false, true
	}
}

func TestBroadcast(t *testing.T) {
	var b Broadcast
	b.Send() // no subscribers: nothing to do, no panic
	ctx1, cancel1 := context.WithCancel(t.Context())
	ctx2, cancel2 := context.WithCancel(t.Context())
	defer cancel2()
	s1, s2 := b.Subscribe(ctx1), b.Subscribe(ctx2)

	// Three sends before anyone reads coalesce into one signal each.
	b.Send()
	b.Send()
	b.Send()
	for i, ch := range []<-chan struct{}{s1, s2} {
		if ok, open := signalled(ch, time.Second); !ok || !open {
			t.Fatalf("subscriber %d: no signal", i+1)
		}
		if ok, _ := signalled(ch, 50*time.Millisecond); ok {
			t.Errorf("subscriber %d: second signal; sends must coalesce", i+1)
		}
	}

	// A subscriber whose context ends is closed and sent to no more.
	cancel1()
	deadline := time.After(2 * time.Second)
	for closed := false; !closed; {
		select {
		case _, open := <-s1:
			closed = !open
		case <-deadline:
			t.Fatal("channel not closed after its context ended")
		}
	}
	b.Send() // must not panic on the closed channel
	if ok, open := signalled(s2, time.Second); !ok || !open {
		t.Error("the other subscriber lost its signal")
	}

	// Subscribing with a context that has ended gives a closed channel.
	done, cancel := context.WithCancel(t.Context())
	cancel()
	if _, open := <-b.Subscribe(done); open {
		t.Error("Subscribe with an ended context: channel open")
	}
}

// TestBroadcastRace sends while subscribers come and go (go test -race).
func TestBroadcastRace(t *testing.T) {
	var b Broadcast
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				b.Send()
			}
		}
	})
	for range 200 {
		ctx, cancel := context.WithCancel(t.Context())
		ch := b.Subscribe(ctx)
		cancel()
		for range ch {
		}
	}
	close(stop)
	wg.Wait()
}

// TestSubscribe: every message signals, whatever its payload; nothing
// signals before one; the channel closes when ctx ends. (Reconnecting
// after an outage is held by store/storetest's ChangesAfterOutage.)
func TestSubscribe(t *testing.T) {
	r := testenv.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := Subscribe(ctx, c, Prefix+"test:changed")
	if ok, _ := signalled(ch, 100*time.Millisecond); ok {
		t.Fatal("signal before any message: the subscription confirmation must not signal")
	}
	for _, payload := range []string{"add", "7", ""} {
		if err := c.Publish(ctx, Prefix+"test:changed", payload).Err(); err != nil {
			t.Fatal(err)
		}
		if ok, open := signalled(ch, time.Second); !ok || !open {
			t.Fatalf("no signal for a message %q", payload)
		}
	}
	if err := c.Publish(ctx, Prefix+"other", "x").Err(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := signalled(ch, 100*time.Millisecond); ok {
		t.Error("signal for another channel's message")
	}
	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, open := <-ch:
			if !open {
				return
			}
		case <-deadline:
			t.Fatal("channel not closed 5s after its context ended")
		}
	}
}

// TestFollow: a load at start, one per signal (signalled), one per poll;
// a closed changes channel leaves the poll alone, and ctx ends it.
func TestFollow(t *testing.T) {
	type call struct{ signalled bool }
	calls := make(chan call, 100)
	changes := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Follow(ctx, changes, 150*time.Millisecond, func(s bool) { calls <- call{s} })
	}()
	next := func(what string) call {
		t.Helper()
		select {
		case c := <-calls:
			return c
		case <-time.After(2 * time.Second):
			t.Fatalf("no load %s", what)
		}
		return call{}
	}
	if c := next("at start"); c.signalled {
		t.Error("the load at start says signalled")
	}
	changes <- struct{}{}
	if c := next("on a signal"); !c.signalled {
		t.Error("the load on a signal does not say so")
	}
	if c := next("by the poll"); c.signalled {
		t.Error("the poll's load says signalled")
	}
	close(changes)
	time.Sleep(100 * time.Millisecond)
	for len(calls) > 0 {
		if c := <-calls; c.signalled {
			t.Fatal("a closed changes channel made signalled loads")
		}
	}
	if c := next("by the poll after changes closed"); c.signalled {
		t.Error("poll says signalled")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Follow still running 5s after its context ended")
	}
}
