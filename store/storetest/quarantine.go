package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mxgate/mxgate/quarantine"
)

// base is the suite's clock: every time is an offset from it, so no test
// depends on the wall clock.
var base = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(minutes int) time.Time { return base.Add(time.Duration(minutes) * time.Minute) }

func qItem(id string, minute int, sender string, rcpts []string, verdict string) quarantine.Item {
	return quarantine.Item{
		ID: id, Time: at(minute), ClientIP: "192.0.2.7", Helo: "mx.sender.example",
		Sender: sender, Recipients: rcpts, Verdict: verdict, Score: 9.5,
		Symbols: []string{"GTUBE(1000.00)"}, Node: "n1", Size: 1234,
		Subject: "subject " + id, MessageID: "<" + id + "@sender.example>",
		Expires: at(minute + 60*24*30),
	}
}

// normItem makes items comparable with DeepEqual: backends may hand back
// times in another location or slices rebuilt from storage.
func normItem(it quarantine.Item) quarantine.Item {
	for _, p := range []*time.Time{&it.Time, &it.Released, &it.Expires} {
		if !p.IsZero() {
			*p = p.UTC()
		}
	}
	if len(it.Viruses) == 0 {
		it.Viruses = nil
	}
	if len(it.Symbols) == 0 {
		it.Symbols = nil
	}
	if len(it.Recipients) == 0 {
		it.Recipients = nil
	}
	if it.Claim != nil {
		c := normRelease(*it.Claim)
		it.Claim = &c
	}
	if len(it.Releases) == 0 {
		it.Releases = nil
	}
	rs := make([]quarantine.Release, len(it.Releases))
	for i, r := range it.Releases {
		rs[i] = normRelease(r)
	}
	if it.Releases != nil {
		it.Releases = rs
	}
	return it
}

func normRelease(r quarantine.Release) quarantine.Release {
	for _, p := range []*time.Time{&r.At, &r.Done} {
		if !p.IsZero() {
			*p = p.UTC()
		}
	}
	return r
}

func sameItem(t *testing.T, got, want quarantine.Item) {
	t.Helper()
	if g, w := normItem(got), normItem(want); !reflect.DeepEqual(g, w) {
		t.Errorf("item differs:\n got %+v\nwant %+v", g, w)
	}
}

func ids(items []quarantine.Item) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, it.ID)
	}
	return out
}

func mustPut(t *testing.T, q quarantine.Store, it quarantine.Item, raw []byte) {
	t.Helper()
	if err := q.Put(context.Background(), it, raw); err != nil {
		t.Fatalf("Put %s: %v", it.ID, err)
	}
}

func mustList(t *testing.T, q quarantine.Store, f quarantine.Filter) []string {
	t.Helper()
	got, err := q.List(context.Background(), f)
	if err != nil {
		t.Fatalf("List %+v: %v", f, err)
	}
	return ids(got)
}

func runQuarantine(t *testing.T, open func(t *testing.T) Env) {
	ctx := context.Background()
	runRelease(t, open)
	runDigest(t, open)

	t.Run("RoundTrip", func(t *testing.T) {
		q := open(t).Quarantine
		it := qItem("rt1", 0, "Alice@Sender.Example", []string{"bob@example.org", "carol@example.org"}, "virus")
		it.Viruses = []string{"Eicar-Test-Signature"}
		it.Time = base.Add(123456789 * time.Nanosecond).In(time.FixedZone("X", 3600))
		mustPut(t, q, it, []byte("raw"))
		got, err := q.Get(ctx, "rt1")
		if err != nil {
			t.Fatal(err)
		}
		sameItem(t, got, it)
		if !got.Time.Equal(it.Time) {
			t.Errorf("time %v, want %v (nanoseconds must survive)", got.Time, it.Time)
		}
		if !got.Released.IsZero() {
			t.Errorf("new item released at %v", got.Released)
		}
		list, err := q.List(ctx, quarantine.Filter{})
		if err != nil || len(list) != 1 {
			t.Fatalf("List = %v, %v; want the one item", ids(list), err)
		}
		sameItem(t, list[0], it)
	})

	t.Run("ListFilters", func(t *testing.T) {
		q := open(t).Quarantine
		bob, carol := "bob@example.org", "carol@example.org"
		for _, it := range []quarantine.Item{
			// Put out of time order: List must order by Time, not insertion.
			qItem("q4", 4, "Eve@Evil.Example", []string{"BOB@Example.org"}, "banned"),
			qItem("q1", 1, "alice@a.example", []string{bob}, "spam"),
			qItem("q2", 2, "mallory@evil.example", []string{bob, carol}, "virus"),
			qItem("q3", 3, "alice@a.example", []string{carol}, "spam"),
			qItem("q5", 5, "alice@a.example", []string{"dave@example.net"}, "policy"),
			qItem("q6", 6, "mallory@evil.example", []string{bob, bob}, "spam"),
			qItem("q7", 7, "", []string{carol}, "spam"),
			qItem("q8", 8, "x@sub.a.example", []string{"eve@Sub.Example.org"}, "virus"),
		} {
			mustPut(t, q, it, []byte("x"))
		}
		tests := []struct {
			name string
			f    quarantine.Filter
			want []string
		}{
			{"all newest first", quarantine.Filter{}, []string{"q8", "q7", "q6", "q5", "q4", "q3", "q2", "q1"}},
			{"rcpt", quarantine.Filter{Rcpt: bob}, []string{"q6", "q4", "q2", "q1"}},
			{"rcpt any case", quarantine.Filter{Rcpt: "Bob@EXAMPLE.org"}, []string{"q6", "q4", "q2", "q1"}},
			{"rcpt second recipient", quarantine.Filter{Rcpt: carol}, []string{"q7", "q3", "q2"}},
			{"rcpt is exact, not substring", quarantine.Filter{Rcpt: "ob@example.org"}, []string{}},
			{"rcpt @domain", quarantine.Filter{Rcpt: "@Example.ORG"}, []string{"q7", "q6", "q4", "q3", "q2", "q1"}},
			{"rcpt @domain not its subdomains", quarantine.Filter{Rcpt: "@sub.example.org"}, []string{"q8"}},
			{"rcpt .domain and subdomains", quarantine.Filter{Rcpt: ".example.org"}, []string{"q8", "q7", "q6", "q4", "q3", "q2", "q1"}},
			{"rcpt @domain is not a suffix", quarantine.Filter{Rcpt: "@ample.org"}, []string{}},
			{"rcpt .domain is label-wise", quarantine.Filter{Rcpt: ".ample.org"}, []string{}},
			{"sender @domain", quarantine.Filter{Sender: "@evil.example"}, []string{"q6", "q4", "q2"}},
			{"sender .domain", quarantine.Filter{Sender: ".example"}, []string{"q8", "q6", "q5", "q4", "q3", "q2", "q1"}},
			{"sender domain and rcpt domain", quarantine.Filter{Sender: "@a.example", Rcpt: "@example.net"}, []string{"q5"}},
			{"rcpt .domain and limit", quarantine.Filter{Rcpt: ".example.org", Limit: 2}, []string{"q8", "q7"}},
			{"rcpt unknown", quarantine.Filter{Rcpt: "nobody@example.org"}, []string{}},
			{"sender", quarantine.Filter{Sender: "alice@a.example"}, []string{"q5", "q3", "q1"}},
			{"sender any case", quarantine.Filter{Sender: "EVE@evil.example"}, []string{"q4"}},
			{"verdict", quarantine.Filter{Verdict: "spam"}, []string{"q7", "q6", "q3", "q1"}},
			{"verdict any case", quarantine.Filter{Verdict: "VIRUS"}, []string{"q8", "q2"}},
			{"since inclusive", quarantine.Filter{Since: at(3)}, []string{"q8", "q7", "q6", "q5", "q4", "q3"}},
			{"until exclusive", quarantine.Filter{Until: at(3)}, []string{"q2", "q1"}},
			{"since and until", quarantine.Filter{Since: at(2), Until: at(6)}, []string{"q5", "q4", "q3", "q2"}},
			{"since after all", quarantine.Filter{Since: at(9)}, []string{}},
			{"until before all", quarantine.Filter{Until: at(1)}, []string{}},
			{"limit", quarantine.Filter{Limit: 2}, []string{"q8", "q7"}},
			{"rcpt and verdict", quarantine.Filter{Rcpt: bob, Verdict: "spam"}, []string{"q6", "q1"}},
			{"rcpt and sender", quarantine.Filter{Rcpt: bob, Sender: "mallory@evil.example"}, []string{"q6", "q2"}},
			{"sender verdict since", quarantine.Filter{Sender: "alice@a.example", Verdict: "spam", Since: at(2)}, []string{"q3"}},
			{"sender and until", quarantine.Filter{Sender: "mallory@evil.example", Until: at(6)}, []string{"q2"}},
			{"verdict and limit", quarantine.Filter{Verdict: "spam", Limit: 2}, []string{"q7", "q6"}},
			{"rcpt until limit", quarantine.Filter{Rcpt: bob, Until: at(4), Limit: 1}, []string{"q2"}},
			{"verdict and since", quarantine.Filter{Verdict: "spam", Since: at(4)}, []string{"q7", "q6"}},
			{"no combination matches", quarantine.Filter{Verdict: "spam", Sender: "eve@evil.example"}, []string{}},
			{"all filters", quarantine.Filter{Rcpt: carol, Sender: "mallory@evil.example", Verdict: "virus", Since: at(1), Until: at(3), Limit: 5}, []string{"q2"}},
			{"subject substring any case", quarantine.Filter{Subject: "JECT Q"}, []string{"q8", "q7", "q6", "q5", "q4", "q3", "q2", "q1"}},
			{"subject one", quarantine.Filter{Subject: "t q6"}, []string{"q6"}},
			{"subject none", quarantine.Filter{Subject: "q9"}, []string{}},
			{"subject and rcpt", quarantine.Filter{Subject: "q", Rcpt: carol, Limit: 2}, []string{"q7", "q3"}},
			{"before", quarantine.Filter{Before: quarantine.Cursor{Time: at(6), ID: "q6"}}, []string{"q5", "q4", "q3", "q2", "q1"}},
			{"before and limit", quarantine.Filter{Before: quarantine.Cursor{Time: at(6), ID: "q6"}, Limit: 2}, []string{"q5", "q4"}},
			{"before with rcpt index", quarantine.Filter{Rcpt: bob, Before: quarantine.Cursor{Time: at(4), ID: "q4"}}, []string{"q2", "q1"}},
			{"before with verdict index", quarantine.Filter{Verdict: "spam", Before: quarantine.Cursor{Time: at(7), ID: "q7"}}, []string{"q6", "q3", "q1"}},
			{"before earlier than until", quarantine.Filter{Until: at(6), Before: quarantine.Cursor{Time: at(3), ID: "q3"}}, []string{"q2", "q1"}},
			{"until earlier than before", quarantine.Filter{Until: at(3), Before: quarantine.Cursor{Time: at(6), ID: "q6"}}, []string{"q2", "q1"}},
			{"before and since", quarantine.Filter{Since: at(2), Before: quarantine.Cursor{Time: at(5), ID: "q5"}}, []string{"q4", "q3", "q2"}},
			{"before the oldest", quarantine.Filter{Before: quarantine.Cursor{Time: at(1), ID: "q1"}}, []string{}},
			{"before a place no item holds", quarantine.Filter{Before: quarantine.Cursor{Time: at(4).Add(time.Second), ID: "zz"}}, []string{"q4", "q3", "q2", "q1"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if got := mustList(t, q, tc.f); !slices.Equal(got, tc.want) {
					t.Errorf("List(%+v) = %v, want %v", tc.f, got, tc.want)
				}
			})
		}
	})

	t.Run("ListPages", func(t *testing.T) {
		// Items sharing a time (ties broken by id) and items put while
		// paging: each page starts after the last one's last item, so no
		// item is shown twice or skipped.
		q := open(t).Quarantine
		for i := range 120 {
			mustPut(t, q, qItem(fmt.Sprintf("p%03d", i), i/3, "s@x.example", []string{"r@example.org"}, "spam"), nil)
		}
		for n, f := range []quarantine.Filter{{Limit: 7}, {Rcpt: "r@example.org", Limit: 7}, {Rcpt: "@example.org", Subject: "P", Limit: 11}} {
			want := mustList(t, q, quarantine.Filter{Rcpt: f.Rcpt, Subject: f.Subject})
			if len(want) < 120 {
				t.Fatalf("%+v: %d items, want at least 120", f, len(want))
			}
			var got []string
			var cur quarantine.Cursor
			for page := 0; ; page++ {
				if page > len(want) {
					t.Fatalf("%+v: paging does not end", f)
				}
				f.Before = cur
				items, err := q.List(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				if len(items) == 0 {
					break
				}
				got = append(got, ids(items)...)
				cur = quarantine.CursorOf(items[len(items)-1])
				if page == 0 {
					// Newer than the first page: not on the pages after it.
					mustPut(t, q, qItem(fmt.Sprintf("new%d", n), 1000+n, "s@x.example", []string{"r@example.org"}, "spam"), nil)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("%+v: pages gave %d items %v..., want %d", f, len(got), got[:min(len(got), 5)], len(want))
			}
		}
	})

	t.Run("ListBadFilter", func(t *testing.T) {
		q := open(t).Quarantine
		mustPut(t, q, qItem("b1", 1, "a@x.example", []string{"bob@example.org"}, "spam"), nil)
		for _, f := range []quarantine.Filter{{Rcpt: "bob"}, {Rcpt: "example.org"}, {Sender: "a@"}, {Sender: "@a..example"},
			{Before: quarantine.Cursor{ID: "x"}}, {Before: quarantine.Cursor{Time: at(1)}}} {
			if got, err := q.List(ctx, f); err == nil {
				t.Errorf("List(%+v) = %v, want an error", f, ids(got))
			}
		}
	})

	t.Run("DefaultLimit", func(t *testing.T) {
		if testing.Short() {
			t.Skip("puts more than DefaultLimit items")
		}
		q := open(t).Quarantine
		n := quarantine.DefaultLimit + 1
		for i := range n {
			mustPut(t, q, qItem(fmt.Sprintf("d%04d", i), i, "s@x.example", []string{"r@example.org"}, "spam"), nil)
		}
		got := mustList(t, q, quarantine.Filter{})
		if len(got) != quarantine.DefaultLimit || got[0] != fmt.Sprintf("d%04d", n-1) {
			t.Errorf("List with Limit 0 gave %d items starting %v, want %d starting with the newest", len(got), got[:1], quarantine.DefaultLimit)
		}
		if got := mustList(t, q, quarantine.Filter{Limit: n}); len(got) != n {
			t.Errorf("List with Limit %d gave %d items", n, len(got))
		}
	})

	t.Run("DuplicateID", func(t *testing.T) {
		q := open(t).Quarantine
		first := qItem("dup", 1, "a@x.example", []string{"r@example.org"}, "spam")
		mustPut(t, q, first, []byte("first"))
		second := qItem("dup", 2, "b@y.example", []string{"s@example.org"}, "virus")
		err := q.Put(ctx, second, []byte("second"))
		if !errors.Is(err, quarantine.ErrExists) {
			t.Fatalf("second Put with the same id: %v, want ErrExists", err)
		}
		got, err := q.Get(ctx, "dup")
		if err != nil {
			t.Fatal(err)
		}
		sameItem(t, got, first)
		if raw, err := q.Raw(ctx, "dup"); err != nil || string(raw) != "first" {
			t.Errorf("Raw after failed Put = %q, %v; want the first message", raw, err)
		}
		for _, f := range []quarantine.Filter{{Rcpt: "s@example.org"}, {Sender: "b@y.example"}, {Verdict: "virus"}} {
			if got := mustList(t, q, f); len(got) != 0 {
				t.Errorf("failed Put left index entries: List(%+v) = %v", f, got)
			}
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		q := open(t).Quarantine
		mustPut(t, q, qItem("other", 1, "a@x.example", nil, "spam"), nil)
		calls := map[string]func() error{
			"Get":          func() error { _, err := q.Get(ctx, "missing"); return err },
			"Raw":          func() error { _, err := q.Raw(ctx, "missing"); return err },
			"Delete":       func() error { return q.Delete(ctx, "missing") },
			"ClaimRelease": func() error { _, err := q.ClaimRelease(ctx, "missing", claim("t1", "op")); return err },
			"FinishRelease": func() error {
				return q.FinishRelease(ctx, "missing", done(claim("t1", "op"), at(6)), true)
			},
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, quarantine.ErrNotFound) {
				t.Errorf("%s of a missing id: %v, want ErrNotFound", name, err)
			}
		}
	})

	t.Run("InvalidItem", func(t *testing.T) {
		q := open(t).Quarantine
		for name, it := range map[string]quarantine.Item{
			"empty id":  qItem("", 1, "a@x.example", nil, "spam"),
			"zero time": {ID: "zt", Verdict: "spam"},
		} {
			if err := q.Put(ctx, it, nil); err == nil {
				t.Errorf("Put with %s succeeded", name)
			}
		}
	})

	t.Run("RawExact", func(t *testing.T) {
		q := open(t).Quarantine
		all := make([]byte, 256)
		for i := range all {
			all[i] = byte(i)
		}
		big := make([]byte, 5<<20)
		for i := range big {
			// A pattern with CRLF, bare LF, bare CR and NUL spread through it.
			const pattern = "ab\r\ncd\nef\x00\rgh"
			big[i] = pattern[i%len(pattern)]
		}
		tests := []struct {
			name string
			raw  []byte
		}{
			{"crlf", []byte("Subject: x\r\n\r\nbody\r\n.\r\n")},
			{"bare lf", []byte("Subject: x\n\nbody\n.\n")},
			{"nul and high bytes", []byte("a\x00b\xff\xfe\r\r\n")},
			{"every byte value", all},
			{"5 MB", big},
		}
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				id := fmt.Sprintf("raw%d", i)
				mustPut(t, q, qItem(id, i, "a@x.example", nil, "spam"), tc.raw)
				got, err := q.Raw(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, tc.raw) {
					t.Errorf("Raw returned %d bytes differing from the %d put", len(got), len(tc.raw))
				}
			})
		}
	})

	t.Run("Delete", func(t *testing.T) {
		q := open(t).Quarantine
		mustPut(t, q, qItem("keep", 1, "a@x.example", []string{"r@example.org"}, "spam"), []byte("keep"))
		mustPut(t, q, qItem("gone", 2, "a@x.example", []string{"r@example.org"}, "spam"), []byte("gone"))
		if err := q.Delete(ctx, "gone"); err != nil {
			t.Fatal(err)
		}
		assertGone(t, q, "gone", []string{"keep"})
		if err := q.Delete(ctx, "gone"); !errors.Is(err, quarantine.ErrNotFound) {
			t.Errorf("second Delete: %v, want ErrNotFound", err)
		}
		if raw, err := q.Raw(ctx, "keep"); err != nil || string(raw) != "keep" {
			t.Errorf("the other item's message: %q, %v", raw, err)
		}
	})

	t.Run("Count", func(t *testing.T) {
		q := open(t).Quarantine
		count := func(want int) {
			t.Helper()
			if n, err := q.Count(ctx); err != nil || n != want {
				t.Errorf("Count = %d, %v; want %d", n, err, want)
			}
		}
		count(0)
		mustPut(t, q, qItem("c1", 1, "a@x.example", []string{"r@example.org", "s@example.org"}, "spam"), []byte("one"))
		mustPut(t, q, qItem("c2", 2, "a@x.example", []string{"r@example.org"}, "virus"), []byte("two"))
		mustPut(t, q, qItem("c2", 2, "a@x.example", []string{"r@example.org"}, "virus"), []byte("two")) // idempotent
		count(2)
		if err := q.Delete(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		count(1)
	})

	t.Run("Expire", func(t *testing.T) {
		q := open(t).Quarantine
		put := func(id string, minute int, expires time.Time) {
			it := qItem(id, minute, "a@x.example", []string{"r@example.org"}, "spam")
			it.Expires = expires
			mustPut(t, q, it, []byte(id))
		}
		put("e10", 1, at(10))
		put("e15", 2, at(15)) // exactly now: Expires <= now expires
		put("e20", 3, at(20))
		put("never", 4, time.Time{})
		n, err := q.Expire(ctx, at(15))
		if err != nil || n != 2 {
			t.Fatalf("Expire(at 15) = %d, %v; want 2", n, err)
		}
		assertGone(t, q, "e10", []string{"never", "e20"})
		assertGone(t, q, "e15", []string{"never", "e20"})
		if n, err := q.Expire(ctx, at(15)); err != nil || n != 0 {
			t.Errorf("second Expire = %d, %v; want 0", n, err)
		}
		if n, err := q.Expire(ctx, at(100000)); err != nil || n != 1 {
			t.Errorf("late Expire = %d, %v; want 1 (the item without expiry stays)", n, err)
		}
		assertGone(t, q, "e20", []string{"never"})
	})

	t.Run("Released", func(t *testing.T) {
		q := open(t).Quarantine
		it := qItem("rel", 1, "a@x.example", []string{"r@example.org"}, "spam")
		mustPut(t, q, it, []byte("m"))
		r := claim("tok", "alice")
		if _, err := q.ClaimRelease(ctx, "rel", r); err != nil {
			t.Fatal(err)
		}
		when := at(30).Add(42 * time.Nanosecond)
		if err := q.FinishRelease(ctx, "rel", done(r, when), true); err != nil {
			t.Fatal(err)
		}
		got, err := q.Get(ctx, "rel")
		if err != nil {
			t.Fatal(err)
		}
		it.Released = when
		it.Releases = []quarantine.Release{done(r, when)}
		it.ReleasedRcpts = []string{"r@example.org"}
		sameItem(t, got, it)
		if list := mustList(t, q, quarantine.Filter{Rcpt: "r@example.org"}); !slices.Equal(list, []string{"rel"}) {
			t.Errorf("released item listed as %v", list)
		}
		if raw, err := q.Raw(ctx, "rel"); err != nil || string(raw) != "m" {
			t.Errorf("Raw after release = %q, %v", raw, err)
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		q := open(t).Quarantine
		mustPut(t, q, qItem("c1", 1, "a@x.example", nil, "spam"), nil)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		calls := map[string]func() error{
			"Put":          func() error { return q.Put(cctx, qItem("c2", 2, "a@x.example", nil, "spam"), nil) },
			"Get":          func() error { _, err := q.Get(cctx, "c1"); return err },
			"Raw":          func() error { _, err := q.Raw(cctx, "c1"); return err },
			"List":         func() error { _, err := q.List(cctx, quarantine.Filter{}); return err },
			"Delete":       func() error { return q.Delete(cctx, "c1") },
			"ClaimRelease": func() error { _, err := q.ClaimRelease(cctx, "c1", claim("t", "op")); return err },
			"FinishRelease": func() error {
				return q.FinishRelease(cctx, "c1", done(claim("t", "op"), at(4)), true)
			},
			"Expire": func() error { _, err := q.Expire(cctx, at(1<<20)); return err },
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context: %v, want context.Canceled", name, err)
			}
		}
		if _, err := q.Get(ctx, "c2"); !errors.Is(err, quarantine.ErrNotFound) {
			t.Errorf("cancelled Put stored the item (Get: %v)", err)
		}
		if got, err := q.Get(ctx, "c1"); err != nil || got.WasReleased() || got.Claim != nil {
			t.Errorf("cancelled calls changed c1: %+v, %v", got, err)
		}
	})

	t.Run("ConcurrentPut", func(t *testing.T) {
		q := open(t).Quarantine
		const workers, each = 8, 10
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					id := fmt.Sprintf("w%d-%d", w, i)
					it := qItem(id, w*each+i, "a@x.example", []string{fmt.Sprintf("r%d@example.org", w)}, "spam")
					if err := q.Put(ctx, it, []byte(id)); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if got := mustList(t, q, quarantine.Filter{}); len(got) != workers*each {
			t.Errorf("List after concurrent Puts: %d items, want %d", len(got), workers*each)
		}
		for w := range workers {
			if got := mustList(t, q, quarantine.Filter{Rcpt: fmt.Sprintf("r%d@example.org", w)}); len(got) != each {
				t.Errorf("worker %d: %d items by recipient, want %d", w, len(got), each)
			}
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				if raw, err := q.Raw(ctx, id); err != nil || string(raw) != id {
					t.Errorf("Raw %s = %q, %v", id, raw, err)
				}
			}
		}
	})
}

// assertGone checks that id is gone from the item, the message and every
// index, and that the listing by each index is exactly rest (newest first).
// The remaining items share sender, recipient and verdict with the removed
// one, so a stale index entry would show up.
func assertGone(t *testing.T, q quarantine.Store, id string, rest []string) {
	t.Helper()
	ctx := context.Background()
	if _, err := q.Get(ctx, id); !errors.Is(err, quarantine.ErrNotFound) {
		t.Errorf("Get %s after removal: %v, want ErrNotFound", id, err)
	}
	if _, err := q.Raw(ctx, id); !errors.Is(err, quarantine.ErrNotFound) {
		t.Errorf("Raw %s after removal: %v, want ErrNotFound", id, err)
	}
	for _, f := range []quarantine.Filter{
		{}, {Rcpt: "r@example.org"}, {Sender: "a@x.example"}, {Verdict: "spam"}, {Since: at(0), Until: at(1000)},
	} {
		if got := mustList(t, q, f); !slices.Equal(got, rest) {
			t.Errorf("List(%+v) after removing %s = %v, want %v", f, id, got, rest)
		}
	}
}
