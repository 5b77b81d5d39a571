package storetest

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/lists"
)

func sortEntries(es []lists.Entry) []lists.Entry {
	out := make([]lists.Entry, len(es))
	for i, e := range es {
		e.Added = e.Added.UTC()
		out[i] = e
	}
	slices.SortFunc(out, func(a, b lists.Entry) int {
		return strings.Compare(string(a.Kind)+"|"+a.Rcpt+"|"+a.Value, string(b.Kind)+"|"+b.Rcpt+"|"+b.Value)
	})
	return out
}

func mustAll(t *testing.T, l lists.Store) []lists.Entry {
	t.Helper()
	all, err := l.All(context.Background())
	if err != nil {
		t.Fatalf("All: %v", err)
	}
	return sortEntries(all)
}

func runLists(t *testing.T, open func(t *testing.T) Env) {
	ctx := context.Background()

	t.Run("AddAll", func(t *testing.T) {
		l := open(t).Lists
		if all := mustAll(t, l); len(all) != 0 {
			t.Fatalf("new store has entries: %v", all)
		}
		add := []lists.Entry{
			{Kind: lists.Block, Value: "Spammer@EVIL.Example", Added: at(1), Comment: "seen in logs"},
			{Kind: lists.Block, Value: "@Evil.Example."},
			{Kind: lists.Allow, Value: ".partner.example", Rcpt: "Bob@Example.ORG", Added: at(2)},
			{Kind: lists.Block, Value: "198.51.100.7/24", Rcpt: "@Example.org"},
			{Kind: lists.Allow, Value: "::ffff:192.0.2.1"},
			{Kind: lists.Allow, Value: "2001:DB8::/32"},
			{Kind: lists.Allow, Value: "Invoices@Partner.Example", SkipAttachments: true},
		}
		for _, e := range add {
			if _, _, err := l.Add(ctx, e); err != nil {
				t.Fatalf("Add %+v: %v", e, err)
			}
		}
		want := sortEntries([]lists.Entry{
			{Kind: lists.Block, Value: "Spammer@evil.example", Added: at(1), Comment: "seen in logs"},
			{Kind: lists.Block, Value: "@evil.example"},
			{Kind: lists.Allow, Value: ".partner.example", Rcpt: "Bob@example.org", Added: at(2)},
			{Kind: lists.Block, Value: "198.51.100.0/24", Rcpt: "@example.org"},
			{Kind: lists.Allow, Value: "192.0.2.1"},
			{Kind: lists.Allow, Value: "2001:db8::/32"},
			{Kind: lists.Allow, Value: "Invoices@partner.example", SkipAttachments: true},
		})
		if got := mustAll(t, l); !reflect.DeepEqual(got, want) {
			t.Errorf("All =\n %+v\nwant (normalised)\n %+v", got, want)
		}
	})

	t.Run("Duplicates", func(t *testing.T) {
		l := open(t).Lists
		for _, tc := range []struct {
			e       lists.Entry
			added   bool
			comment string // of the entry Add returns
		}{
			{lists.Entry{Kind: lists.Block, Value: "a@b.example", Comment: "first"}, true, "first"},
			{lists.Entry{Kind: lists.Block, Value: "a@b.example", Comment: "second"}, false, "first"},
			{lists.Entry{Kind: lists.Block, Value: "A@B.EXAMPLE"}, false, "first"},
			// Same value, other kind or recipient: distinct entries.
			{lists.Entry{Kind: lists.Allow, Value: "a@b.example"}, true, ""},
			{lists.Entry{Kind: lists.Block, Value: "a@b.example", Rcpt: "r@example.org", Comment: "r"}, true, "r"},
			{lists.Entry{Kind: lists.Block, Value: "a@b.example", Rcpt: "R@Example.org"}, false, "r"},
		} {
			got, added, err := l.Add(ctx, tc.e)
			if err != nil {
				t.Fatalf("Add %+v: %v", tc.e, err)
			}
			if added != tc.added || got.Comment != tc.comment || !strings.EqualFold(got.Value, tc.e.Value) || got.Kind != tc.e.Kind {
				t.Errorf("Add %+v = %+v, added %v; want added %v, comment %q", tc.e, got, added, tc.added, tc.comment)
			}
		}
		all := mustAll(t, l)
		if len(all) != 3 {
			t.Fatalf("All = %+v, want 3 entries", all)
		}
		for _, e := range all {
			if e.Kind == lists.Block && e.Rcpt == "" && e.Comment != "first" {
				t.Errorf("re-adding replaced the entry: %+v", e)
			}
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		l := open(t).Lists
		for _, e := range []lists.Entry{
			{Kind: lists.Block, Value: ""},
			{Kind: lists.Block, Value: "@"},
			{Kind: lists.Block, Value: "a b@example.org"},
			{Kind: lists.Block, Value: "example.org"},
			{Kind: lists.Block, Value: "@exa_mple..org"},
			{Kind: lists.Block, Value: "10.0.0.0/33"},
			{Kind: "maybe", Value: "a@b.example"},
			{Kind: lists.Block, Value: "a@b.example", Rcpt: "not an address"},
			{Kind: lists.Block, Value: "a@b.example", Rcpt: ".example.org"},
			{Kind: lists.Block, Value: "a@b.example", SkipAttachments: true},
		} {
			if _, _, err := l.Add(ctx, e); err == nil {
				t.Errorf("Add %+v succeeded", e)
			}
		}
		if all := mustAll(t, l); len(all) != 0 {
			t.Errorf("invalid adds stored %+v", all)
		}
	})

	t.Run("Remove", func(t *testing.T) {
		l := open(t).Lists
		for _, e := range []lists.Entry{
			{Kind: lists.Block, Value: "@evil.example"},
			{Kind: lists.Block, Value: "@evil.example", Rcpt: "bob@example.org"},
			{Kind: lists.Allow, Value: "192.0.2.0/24"},
		} {
			if _, _, err := l.Add(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		// Removal normalises like Add: other case, unmasked network.
		if err := l.Remove(ctx, lists.Block, "@EVIL.example", "Bob@Example.org"); err != nil {
			t.Fatalf("Remove per-recipient entry: %v", err)
		}
		if err := l.Remove(ctx, lists.Allow, "192.0.2.99/24", ""); err != nil {
			t.Fatalf("Remove network: %v", err)
		}
		want := []lists.Entry{{Kind: lists.Block, Value: "@evil.example"}}
		if got := mustAll(t, l); !reflect.DeepEqual(got, want) {
			t.Errorf("All after Remove = %+v, want %+v", got, want)
		}
		for _, args := range [][3]string{
			{"block", "@evil.example", "bob@example.org"}, // already removed
			{"allow", "@evil.example", ""},                // other kind
			{"block", "@evil.example", "carol@example.org"},
		} {
			if err := l.Remove(ctx, lists.Kind(args[0]), args[1], args[2]); !errors.Is(err, lists.ErrNotFound) {
				t.Errorf("Remove %v: %v, want ErrNotFound", args, err)
			}
		}
		if err := l.Remove(ctx, lists.Block, "not valid", ""); err == nil || errors.Is(err, lists.ErrNotFound) {
			t.Errorf("Remove of an invalid value: %v, want a validation error", err)
		}
	})

	t.Run("CacheOverStore", func(t *testing.T) {
		l := open(t).Lists
		c := lists.NewCache(l)
		if c.Set() == nil || c.Set().Len() != 0 {
			t.Fatalf("new cache: Set %v, want empty non-nil", c.Set())
		}
		client := netip.MustParseAddr("203.0.113.9")
		if _, _, err := c.Add(ctx, lists.Entry{Kind: lists.Block, Value: "@evil.example"}); err != nil {
			t.Fatal(err)
		}
		if k := c.Set().Match("x@evil.example", client, "bob@example.org"); k != lists.Block {
			t.Errorf("after Cache.Add: Match = %q, want block", k)
		}
		// A write straight to the store shows after Reload.
		if _, _, err := l.Add(ctx, lists.Entry{Kind: lists.Allow, Value: "x@evil.example"}); err != nil {
			t.Fatal(err)
		}
		if err := c.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if k := c.Set().Match("x@evil.example", client, "bob@example.org"); k != lists.Allow {
			t.Errorf("after Reload: Match = %q, want allow", k)
		}
		if err := c.Remove(ctx, lists.Allow, "x@evil.example", ""); err != nil {
			t.Fatal(err)
		}
		if err := c.Remove(ctx, lists.Block, "@evil.example", ""); err != nil {
			t.Fatal(err)
		}
		if k := c.Set().Match("x@evil.example", client, "bob@example.org"); k != "" || c.Set().Len() != 0 {
			t.Errorf("after Cache.Remove: Match = %q, Len %d; want no match, empty", k, c.Set().Len())
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		l := open(t).Lists
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		calls := map[string]func() error{
			"Add": func() error {
				_, _, err := l.Add(cctx, lists.Entry{Kind: lists.Block, Value: "a@b.example"})
				return err
			},
			"Remove": func() error { return l.Remove(cctx, lists.Block, "a@b.example", "") },
			"All":    func() error { _, err := l.All(cctx); return err },
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context: %v, want context.Canceled", name, err)
			}
		}
		if all := mustAll(t, l); len(all) != 0 {
			t.Errorf("cancelled Add stored %+v", all)
		}
	})

	t.Run("ChangesReachAnotherNode", func(t *testing.T) {
		env := open(t)
		writer, reader := env.Node(t).Lists, env.Lists
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		changes := reader.Changes(ctx)
		noSignal(t, changes, "after subscribing")

		start := time.Now()
		if _, _, err := writer.Add(ctx, lists.Entry{Kind: lists.Block, Value: "@evil.example"}); err != nil {
			t.Fatal(err)
		}
		waitSignal(t, changes, time.Second, "Add")
		t.Logf("Add signalled after %s", time.Since(start))
		if err := writer.Remove(ctx, lists.Block, "@evil.example", ""); err != nil {
			t.Fatal(err)
		}
		waitSignal(t, changes, time.Second, "Remove")

		// A cache over the reader's store follows the writer's changes,
		// with no poll due.
		cache := lists.NewCache(reader)
		empty := cache.Set()
		ran := make(chan struct{})
		go func() {
			cache.Run(ctx, time.Hour)
			close(ran)
		}()
		// Past Run's load at start (it swaps in a new set).
		for deadline := time.Now().Add(5 * time.Second); cache.Set() == empty; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("Cache.Run did not load at start within 5s")
			}
		}
		if _, _, err := writer.Add(ctx, lists.Entry{Kind: lists.Block, Value: "@spam.example"}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Second)
		for cache.Set().Match("x@spam.example", netip.Addr{}, "r@example.org") != lists.Block {
			if time.Now().After(deadline) {
				t.Fatal("the other node's cache did not see the new entry within 1s")
			}
			time.Sleep(5 * time.Millisecond)
		}

		// Cancelling ends the subscription, closes the channel and ends Run.
		cancel()
		select {
		case <-ran:
		case <-time.After(5 * time.Second):
			t.Fatal("Cache.Run still runs 5s after the context ended")
		}
		waitClosed(t, changes, 5*time.Second)
	})

	t.Run("ChangesAfterOutage", func(t *testing.T) {
		env := open(t)
		if env.Outage == nil {
			t.Skip("no outage to make on this backend")
		}
		writer, reader := env.Node(t).Lists, env.Lists
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		changes := reader.Changes(ctx)

		// The subscription comes back by itself and signals once
		// resubscribed (changes made meanwhile were missed), then carries
		// changes again.
		env.Outage(t, 300*time.Millisecond)
		waitSignal(t, changes, 10*time.Second, "resubscription after restart")
		// Drain a possible second signal from the reconnect.
		select {
		case <-changes:
		case <-time.After(200 * time.Millisecond):
		}
		if _, _, err := writer.Add(ctx, lists.Entry{Kind: lists.Allow, Value: "192.0.2.1"}); err != nil {
			t.Fatal(err)
		}
		waitSignal(t, changes, time.Second, "Add after restart")
	})
}

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

// waitClosed waits for ch to be closed, skipping signals still pending.
func waitClosed(t *testing.T, ch <-chan struct{}, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("changes channel not closed within %s of its context ending", within)
		}
	}
}
