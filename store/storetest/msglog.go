package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/mxgate/mxgate/msglog"
)

func rec(id string, minute int, sender string, rcpts []string, action string) msglog.Record {
	return msglog.Record{
		ID: id, Time: at(minute), ClientIP: "192.0.2.7", Helo: "mx.sender.example",
		Sender: sender, Recipients: rcpts, Size: 2048, Action: action, Verdict: "clean",
		Score: 1.5, Symbols: []string{"MIME_MALFORMED(1.00)"}, Node: "n1",
		Reply: "250 2.0.0 Ok: queued as " + id, Downstream: "250 2.0.0 Ok",
		Duration: 1500 * time.Millisecond,
	}
}

// released is the record of an operator's release, a little after the
// transactions of its minute.
func released(id string, minute int, sender string, rcpts []string) msglog.Record {
	r := rec(id, minute, sender, rcpts, msglog.ActionRelease)
	r.Time = r.Time.Add(time.Second)
	r.By = "alice@admin.example, admin API from 127.0.0.1:4000 via n1"
	return r
}

func recIDs(rs []msglog.Record) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func mustSearch(t *testing.T, l msglog.Store, q msglog.Query) []msglog.Record {
	t.Helper()
	got, err := l.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("Search %+v: %v", q, err)
	}
	return got
}

func runLog(t *testing.T, open func(t *testing.T) Env) {
	ctx := context.Background()

	t.Run("RoundTrip", func(t *testing.T) {
		l := open(t).Log
		r := rec("m1", 1, "Alice@A.Example", []string{"bob@example.org"}, "quarantine")
		r.QuarantineID = "m1"
		r.Time = r.Time.Add(7 * time.Nanosecond)
		if err := l.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
		got := mustSearch(t, l, msglog.Query{})
		if len(got) != 1 {
			t.Fatalf("Search = %d records, want 1", len(got))
		}
		got[0].Time = got[0].Time.UTC()
		if !reflect.DeepEqual(got[0], r) {
			t.Errorf("record differs:\n got %+v\nwant %+v", got[0], r)
		}
	})

	t.Run("Search", func(t *testing.T) {
		l := open(t).Log
		bob, carol := "bob@example.org", "carol@example.org"
		for _, r := range []msglog.Record{
			rec("m3", 3, "mallory@evil.example", []string{carol}, "reject"),
			rec("m1", 1, "alice@a.example", []string{bob}, "deliver"),
			rec("m2", 2, "Alice@A.Example", []string{bob, carol}, "quarantine"),
			rec("m4", 4, "", []string{"dave@example.net"}, "deliver"),
			rec("m5", 5, "bob@example.org", []string{"BOB@EXAMPLE.ORG"}, "tempfail"),
			// A retried message: same id, two transactions.
			rec("m1", 6, "alice@a.example", []string{bob}, "deliver"),
			released("m7", 5, "x@b.example", []string{"eve@sub.example.org"}),
		} {
			if err := l.Append(ctx, r); err != nil {
				t.Fatalf("Append %s: %v", r.ID, err)
			}
		}
		tests := []struct {
			name string
			q    msglog.Query
			want []string
		}{
			{"all newest first", msglog.Query{}, []string{"m1", "m7", "m5", "m4", "m3", "m2", "m1"}},
			{"id exact, every transaction", msglog.Query{ID: "m1"}, []string{"m1", "m1"}},
			{"id is not a substring", msglog.Query{ID: "m"}, []string{}},
			{"id unknown", msglog.Query{ID: "nope"}, []string{}},
			{"sender address any case", msglog.Query{Sender: "ALICE@a.example"}, []string{"m1", "m2", "m1"}},
			{"sender is not a substring", msglog.Query{Sender: "lice@a.example"}, []string{}},
			{"sender @domain", msglog.Query{Sender: "@Evil.Example"}, []string{"m3"}},
			{"sender @domain is exact", msglog.Query{Sender: "@example"}, []string{}},
			{"sender .domain", msglog.Query{Sender: ".example"}, []string{"m1", "m7", "m3", "m2", "m1"}},
			{"rcpt @domain", msglog.Query{Rcpt: "@example.net"}, []string{"m4"}},
			{"rcpt address any case", msglog.Query{Rcpt: "Carol@Example.org"}, []string{"m3", "m2"}},
			{"rcpt @domain not subdomains", msglog.Query{Rcpt: "@example.org"}, []string{"m1", "m5", "m3", "m2", "m1"}},
			{"rcpt .domain with subdomains", msglog.Query{Rcpt: ".example.org"}, []string{"m1", "m7", "m5", "m3", "m2", "m1"}},
			{"rcpt .domain is label-wise", msglog.Query{Rcpt: ".ample.org"}, []string{}},
			{"action", msglog.Query{Action: "deliver"}, []string{"m1", "m4", "m1"}},
			{"since inclusive", msglog.Query{Since: at(4)}, []string{"m1", "m7", "m5", "m4"}},
			{"until exclusive", msglog.Query{Until: at(3)}, []string{"m2", "m1"}},
			{"since and until", msglog.Query{Since: at(2), Until: at(5)}, []string{"m4", "m3", "m2"}},
			{"limit", msglog.Query{Limit: 2}, []string{"m1", "m7"}},
			{"id and until", msglog.Query{ID: "m1", Until: at(6)}, []string{"m1"}},
			{"id and since", msglog.Query{ID: "m1", Since: at(2)}, []string{"m1"}},
			{"sender and action", msglog.Query{Sender: "alice@a.example", Action: "quarantine"}, []string{"m2"}},
			{"rcpt action limit", msglog.Query{Rcpt: "bob@example.org", Action: "deliver", Limit: 1}, []string{"m1"}},
			{"rcpt and since", msglog.Query{Rcpt: "bob@example.org", Since: at(2), Until: at(6)}, []string{"m5", "m2"}},
			{"no match", msglog.Query{Sender: "alice@a.example", Action: "reject"}, []string{}},
			{"operator action", msglog.Query{Action: msglog.ActionRelease}, []string{"m7"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got := recIDs(mustSearch(t, l, tc.q))
				if !slices.Equal(got, tc.want) {
					t.Errorf("Search(%+v) = %v, want %v", tc.q, got, tc.want)
				}
			})
		}
		for _, q := range []msglog.Query{{Rcpt: "bob"}, {Sender: "example.org"}, {Rcpt: "@"}} {
			if got, err := l.Search(ctx, q); err == nil {
				t.Errorf("Search(%+v) = %v, want an error", q, recIDs(got))
			}
		}
		// The two m1 records are told apart by time, newest first.
		if got := mustSearch(t, l, msglog.Query{ID: "m1"}); len(got) == 2 && !got[0].Time.After(got[1].Time) {
			t.Errorf("records of m1 not newest first: %v, %v", got[0].Time, got[1].Time)
		}
	})

	t.Run("Expire", func(t *testing.T) {
		l := open(t).Log
		for i, id := range []string{"old1", "old2", "edge", "new"} {
			if err := l.Append(ctx, rec(id, i+1, "a@x.example", []string{"r@example.org"}, "deliver")); err != nil {
				t.Fatal(err)
			}
		}
		// Expire deletes records strictly before the time: "edge" at minute 3 stays.
		n, err := l.Expire(ctx, at(3))
		if err != nil || n != 2 {
			t.Fatalf("Expire(at 3) = %d, %v; want 2", n, err)
		}
		if got := recIDs(mustSearch(t, l, msglog.Query{})); !slices.Equal(got, []string{"new", "edge"}) {
			t.Errorf("after Expire: %v", got)
		}
		for _, q := range []msglog.Query{{ID: "old1"}, {ID: "old2"}, {Sender: "a@x", Until: at(3)}, {Since: at(0), Until: at(3)}} {
			if got := mustSearch(t, l, q); len(got) != 0 {
				t.Errorf("Search(%+v) after Expire = %v", q, recIDs(got))
			}
		}
		if n, err := l.Expire(ctx, at(3)); err != nil || n != 0 {
			t.Errorf("second Expire = %d, %v; want 0", n, err)
		}
	})

	t.Run("Range", func(t *testing.T) {
		l := open(t).Log
		bob := []string{"bob@example.org"}
		tie := rec("t2", 3, "a@x.example", bob, "deliver") // same time as t1: ordered by id
		if err := l.Append(ctx,
			rec("m4", 4, "a@x.example", bob, "reject"),
			rec("t1", 3, "a@x.example", bob, "deliver"),
			rec("m1", 1, "a@x.example", bob, "deliver"),
			tie,
			rec("m5", 5, "a@x.example", bob, "quarantine"),
			rec("m1", 6, "a@x.example", bob, "deliver"), // a retried message
		); err != nil {
			t.Fatal(err)
		}
		late := rec("late", 2, "a@x.example", bob, "deliver")
		late.Time = at(3).Add(-time.Nanosecond) // the last nanosecond before minute 3
		if err := l.Append(ctx, late); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name     string
			from, to time.Time
			want     []string
		}{
			{"everything oldest first", time.Time{}, time.Time{}, []string{"m1", "late", "t1", "t2", "m4", "m5", "m1"}},
			{"from inclusive", at(3), time.Time{}, []string{"t1", "t2", "m4", "m5", "m1"}},
			{"to exclusive", time.Time{}, at(3), []string{"m1", "late"}},
			{"one minute", at(3), at(4), []string{"t1", "t2"}},
			{"nanosecond edge", at(3).Add(-time.Nanosecond), at(3), []string{"late"}},
			{"empty range", at(4), at(4), []string{}},
			{"reversed range", at(5), at(2), []string{}},
			{"before everything", at(-10), at(1), []string{}},
			{"after everything", at(7), at(100), []string{}},
			{"before 1970", time.Unix(-100, 0), time.Unix(-1, 0), []string{}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got := []string{}
				err := l.Range(ctx, tc.from, tc.to, func(r msglog.Record) error {
					got = append(got, r.ID)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("Range(%v, %v) = %v, want %v", tc.from, tc.to, got, tc.want)
				}
			})
		}
		// Whole records come back, not just ids.
		var got []msglog.Record
		if err := l.Range(ctx, at(3), at(4), func(r msglog.Record) error { got = append(got, r); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) == 2 {
			got[1].Time = got[1].Time.UTC()
			if !reflect.DeepEqual(got[1], tie) {
				t.Errorf("record differs:\n got %+v\nwant %+v", got[1], tie)
			}
		}
		// An error from fn stops the walk and comes back unchanged.
		stop := errors.New("stop here")
		calls := 0
		err := l.Range(ctx, time.Time{}, time.Time{}, func(msglog.Record) error {
			if calls++; calls == 3 {
				return stop
			}
			return nil
		})
		if err != stop || calls != 3 {
			t.Errorf("Range with fn failing at the 3rd record: %v after %d calls; want the error itself after 3", err, calls)
		}
	})

	t.Run("RangeMany", func(t *testing.T) {
		if testing.Short() {
			t.Skip("appends thousands of records")
		}
		// More records than one batch of any backend, over a span where a
		// range cuts through the middle.
		l := open(t).Log
		const n = 2500
		batch := make([]msglog.Record, 0, n)
		for i := range n {
			r := rec(fmt.Sprintf("r%04d", i), 0, "a@x.example", nil, "deliver")
			r.Time = base.Add(time.Duration(i) * time.Second)
			batch = append(batch, r)
		}
		if err := l.Append(ctx, batch...); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ from, to, want int }{{0, n, n}, {1000, 2001, 1001}, {999, 1000, 1}, {-5, 3000, n}} {
			next := c.from
			if next < 0 {
				next = 0
			}
			err := l.Range(ctx, base.Add(time.Duration(c.from)*time.Second), base.Add(time.Duration(c.to)*time.Second), func(r msglog.Record) error {
				if want := fmt.Sprintf("r%04d", next); r.ID != want {
					return fmt.Errorf("got %s, want %s", r.ID, want)
				}
				next++
				return nil
			})
			if err != nil {
				t.Errorf("Range %d..%d: %v", c.from, c.to, err)
			}
			if got := next - max(c.from, 0); got != c.want {
				t.Errorf("Range %d..%d gave %d records, want %d", c.from, c.to, got, c.want)
			}
		}
	})

	t.Run("AppendAgainReplaces", func(t *testing.T) {
		// A journal replay appends records the store may already have
		// (its confirmation was lost in a crash): the same record again,
		// alone or in a batch, even decoded from JSON in another time
		// zone, must not count twice in the log or the daily report.
		l := open(t).Log
		r := rec("dup", 2, "a@x.example", []string{"bob@example.org"}, "deliver")
		r.Time = r.Time.Add(123456789 * time.Nanosecond)
		other := rec("other", 3, "a@x.example", []string{"bob@example.org"}, "reject")
		js, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var decoded msglog.Record
		if err := json.Unmarshal(js, &decoded); err != nil {
			t.Fatal(err)
		}
		decoded.Time = decoded.Time.In(time.FixedZone("UTC+5", 5*3600))
		for i, batch := range [][]msglog.Record{{r}, {r, other}, {decoded}, {r, r, decoded}} {
			if err := l.Append(ctx, batch...); err != nil {
				t.Fatalf("Append %d: %v", i, err)
			}
		}
		for _, q := range []msglog.Query{{}, {ID: "dup"}, {Sender: "A@x.example"}, {Action: "deliver"}} {
			got := recIDs(mustSearch(t, l, q))
			slices.Sort(got)
			want := []string{"dup", "other"}
			if q.ID != "" || q.Action != "" {
				want = []string{"dup"}
			}
			if !slices.Equal(got, want) {
				t.Errorf("Search(%+v) after appending dup 5 times = %v, want %v", q, got, want)
			}
		}
		var ranged []string
		if err := l.Range(ctx, time.Time{}, time.Time{}, func(r msglog.Record) error {
			ranged = append(ranged, r.ID)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ranged, []string{"dup", "other"}) {
			t.Errorf("Range after appending dup 5 times = %v, want [dup other]", ranged)
		}
		if n, err := l.Expire(ctx, at(100)); err != nil || n != 2 {
			t.Errorf("Expire = %d, %v; want 2 (one per record)", n, err)
		}
	})

	t.Run("InvalidRecord", func(t *testing.T) {
		l := open(t).Log
		for name, r := range map[string]msglog.Record{
			"empty id":  rec("", 1, "a@x.example", nil, "deliver"),
			"zero time": {ID: "z", Action: "deliver"},
		} {
			if err := l.Append(ctx, r); err == nil {
				t.Errorf("Append with %s succeeded", name)
			}
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		l := open(t).Log
		if err := l.Append(ctx, rec("keep", 1, "a@x.example", nil, "deliver")); err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		calls := map[string]func() error{
			"Append": func() error { return l.Append(cctx, rec("c", 2, "a@x.example", nil, "deliver")) },
			"Search": func() error { _, err := l.Search(cctx, msglog.Query{}); return err },
			"Expire": func() error { _, err := l.Expire(cctx, at(100)); return err },
			"Range": func() error {
				return l.Range(cctx, time.Time{}, time.Time{}, func(msglog.Record) error { return nil })
			},
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context: %v, want context.Canceled", name, err)
			}
		}
		if got := recIDs(mustSearch(t, l, msglog.Query{})); !slices.Equal(got, []string{"keep"}) {
			t.Errorf("cancelled calls changed the log: %v", got)
		}
	})
}
