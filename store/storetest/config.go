package storetest

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxgate/mxgate/clusterconf"
	"github.com/mxgate/mxgate/config"
)

// settings is a valid Settings with a marker to tell revisions apart.
func settings(quarantine float64) clusterconf.Settings {
	s := clusterconf.Defaults()
	s.Scanner.Thresholds.Quarantine = quarantine
	return s
}

func audit(h []clusterconf.Revision) string {
	var out []string
	for _, r := range h {
		out = append(out, strings.Join([]string{strconv.FormatInt(r.Number, 10), r.By, r.Comment}, " "))
	}
	return strings.Join(out, "; ")
}

func runConfig(t *testing.T, open func(t *testing.T) Env) {
	t.Run("Revisions", func(t *testing.T) {
		ctx := t.Context()
		s := open(t).Config
		if _, err := s.Current(ctx); !errors.Is(err, clusterconf.ErrNone) {
			t.Fatalf("Current on empty store: %v, want ErrNone", err)
		}
		if h, err := s.History(ctx, 0); err != nil || len(h) != 0 {
			t.Fatalf("History on empty store = %v, %v", h, err)
		}

		r1, err := s.Put(ctx, settings(5), "admin@127.0.0.1 via n1", "first", 0)
		if err != nil {
			t.Fatal(err)
		}
		if r1.Number != 1 || r1.By != "admin@127.0.0.1 via n1" || r1.Comment != "first" || time.Since(r1.Time) > time.Minute {
			t.Errorf("first revision = %+v", r1)
		}
		cur, err := s.Current(ctx)
		if err != nil || !reflect.DeepEqual(cur, r1) {
			t.Fatalf("Current = %+v, %v; want %+v", cur, err, r1)
		}

		// A stale expect is refused and changes nothing.
		if _, err := s.Put(ctx, settings(4), "bob", "stale", 0); !errors.Is(err, clusterconf.ErrConflict) {
			t.Fatalf("Put with a stale expect: %v, want ErrConflict", err)
		}
		if _, err := s.Put(ctx, settings(4), "bob", "ahead", 7); !errors.Is(err, clusterconf.ErrConflict) {
			t.Fatalf("Put with a future expect: %v, want ErrConflict", err)
		}
		// Invalid settings and a missing author are refused.
		bad := settings(5)
		bad.Mode = "both"
		if _, err := s.Put(ctx, bad, "bob", "", 1); err == nil || errors.Is(err, clusterconf.ErrConflict) || !strings.Contains(err.Error(), "mode") {
			t.Fatalf("Put of invalid settings: %v", err)
		}
		if _, err := s.Put(ctx, settings(4), " ", "", 1); err == nil {
			t.Fatal("Put without an author succeeded")
		}
		if _, err := s.Put(ctx, settings(4), "bob", "", -1); err == nil {
			t.Fatal("Put with a negative expect succeeded")
		}

		r2, err := s.Put(ctx, settings(4), "bob", "second", 1)
		if err != nil || r2.Number != 2 {
			t.Fatalf("second Put = %+v, %v", r2, err)
		}
		r3, err := s.Put(ctx, settings(3), "carol", "third", 2)
		if err != nil || r3.Number != 3 {
			t.Fatalf("third Put = %+v, %v", r3, err)
		}
		if cur, _ := s.Current(ctx); cur.Number != 3 || cur.Settings.Scanner.Thresholds.Quarantine != 3 {
			t.Errorf("Current = %+v, want revision 3", cur)
		}

		// The audit trail, newest first.
		h, err := s.History(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := audit(h); got != "3 carol third; 2 bob second; 1 admin@127.0.0.1 via n1 first" {
			t.Errorf("History = %s", got)
		}
		if !reflect.DeepEqual(h[1], r2) {
			t.Errorf("History entry 2 = %+v, want %+v", h[1], r2)
		}
		h, err = s.History(ctx, 2)
		if err != nil || audit(h) != "3 carol third; 2 bob second" {
			t.Errorf("History(2) = %s, %v", audit(h), err)
		}
	})

	// The settings of a node file come back equal (seedConfig compares
	// them with reflect.DeepEqual to decide whether to store a new
	// revision at start). That Apply inverts FromConfig is clusterconf's
	// own test.
	t.Run("RoundTrip", func(t *testing.T) {
		cfgs := map[string]config.Config{"default": config.Default()}
		c := config.Default()
		c.Scanner.Rules = []string{`VIAGRA header Subject =~ /v[i1]agra/i 3.5`}
		c.Scanner.Attachments.BlockedExtensions = []string{"exe", "js"}
		c.Cluster.Mode = config.ModeActivePassive
		cfgs["custom"] = c
		s := open(t).Config
		var expect int64
		for name, c := range cfgs {
			want := clusterconf.FromConfig(c)
			if err := want.Validate(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			r, err := s.Put(t.Context(), want, "test", name, expect)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			expect = r.Number
			cur, err := s.Current(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cur.Settings, want) {
				t.Errorf("%s: stored %#v\nwant %#v", name, cur.Settings, want)
			}
		}
	})

	// Of writers racing from the same revision exactly one wins; the
	// others get ErrConflict and leave no audit entry.
	t.Run("SeedMark", func(t *testing.T) {
		ctx := t.Context()
		s := open(t).Config
		for _, step := range []struct {
			node, set string // set "" = only read
			want      map[string]string
		}{
			{"", "", map[string]string{"n1": "", "n2": ""}},
			{"n1", "h1", map[string]string{"n1": "h1", "n2": ""}},
			{"n2", "h2", map[string]string{"n1": "h1", "n2": "h2"}},
			{"n1", "h3", map[string]string{"n1": "h3", "n2": "h2"}},
		} {
			if step.set != "" {
				if err := s.SetSeedMark(ctx, step.node, step.set); err != nil {
					t.Fatal(err)
				}
			}
			for node, want := range step.want {
				if got, err := s.SeedMark(ctx, node); err != nil || got != want {
					t.Errorf("after setting %s to %q: SeedMark(%s) = %q, %v; want %q", step.node, step.set, node, got, err, want)
				}
			}
		}
		if err := s.SetSeedMark(ctx, "", "h"); err == nil {
			t.Error("SetSeedMark with no node id succeeded")
		}
		if h, err := s.History(ctx, 0); err != nil || len(h) != 0 {
			t.Errorf("seed marks made revisions: %v, %v", h, err)
		}
	})

	t.Run("ConcurrentPut", func(t *testing.T) {
		const writers = 16
		ctx := t.Context()
		s := open(t).Config
		if _, err := s.Put(ctx, settings(5), "seed", "", 0); err != nil {
			t.Fatal(err)
		}
		for round := int64(1); round <= 3; round++ {
			var wg sync.WaitGroup
			var mu sync.Mutex
			won, conflicts := 0, 0
			start := make(chan struct{})
			for i := range writers {
				wg.Go(func() {
					<-start
					_, err := s.Put(ctx, settings(float64(i)/10), "writer", "", round)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						won++
					case errors.Is(err, clusterconf.ErrConflict):
						conflicts++
					default:
						t.Errorf("Put: %v", err)
					}
				})
			}
			close(start)
			wg.Wait()
			if won != 1 || conflicts != writers-1 {
				t.Fatalf("round %d: %d won, %d conflicts; want 1 and %d", round, won, conflicts, writers-1)
			}
		}
		h, err := s.History(ctx, 0)
		if err != nil || len(h) != 4 {
			t.Fatalf("History has %d entries, %v; want 4", len(h), err)
		}
		for i, r := range h {
			if want := int64(4 - i); r.Number != want {
				t.Errorf("History[%d] = revision %d, want %d", i, r.Number, want)
			}
		}
	})

	// Put and Announce reach a subscriber on another node; the channel
	// closes when its context ends. (What an announcement carries on
	// Redis is pinned by store's TestRedisKeys.)
	t.Run("Changes", func(t *testing.T) {
		ctx := t.Context()
		env := open(t)
		s, other := env.Config, env.Node(t).Config
		subCtx, cancel := context.WithCancel(ctx)
		ch := s.Changes(subCtx)
		noSignal(t, ch, "after subscribing")
		if _, err := other.Put(ctx, settings(5), "a", "", 0); err != nil {
			t.Fatal(err)
		}
		waitSignal(t, ch, time.Second, "Put")
		if err := other.Announce(ctx, 1); err != nil {
			t.Fatal(err)
		}
		waitSignal(t, ch, time.Second, "Announce")
		cancel()
		waitClosed(t, ch, 2*time.Second)
	})

	// The subscription comes back by itself after the server returns;
	// announcements made during the outage are lost, which the
	// Follower's polling covers (and the resubscription's own signal).
	t.Run("ChangesAfterOutage", func(t *testing.T) {
		env := open(t)
		if env.Outage == nil {
			t.Skip("no outage to make on this backend")
		}
		sub, pub := env.Config, env.Node(t).Config
		ch := sub.Changes(t.Context())
		env.Outage(t, 0)
		waitSignal(t, ch, 10*time.Second, "resubscription after restart")
		select { // a possible second signal from the reconnect
		case <-ch:
		case <-time.After(200 * time.Millisecond):
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			if err := pub.Announce(t.Context(), 7); err != nil {
				t.Fatal(err)
			}
			select {
			case _, ok := <-ch:
				if !ok {
					t.Fatal("changes channel closed")
				}
				return
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatal("no announcement received within 10 s of Redis returning")
			}
		}
	})
}
