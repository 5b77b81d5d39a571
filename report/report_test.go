package report

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.etcd.io/bbolt"

	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/testenv"
)

func openDB(t *testing.T) *bbolt.DB {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "report.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// backends opens a fresh, empty Store of each kind.
var backends = []struct {
	name string
	open func(t *testing.T) Store
}{
	{"bolt", func(t *testing.T) Store {
		s, err := NewBolt(openDB(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
	{"redis", func(t *testing.T) Store {
		r := testenv.StartRedis(t)
		c := redis.NewClient(&redis.Options{Addr: r.Addr})
		t.Cleanup(func() { c.Close() })
		return NewRedis(c)
	}},
}

func newLog(t *testing.T, recs ...msglog.Record) msglog.Store {
	t.Helper()
	l, err := msglog.NewBolt(openDB(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(t.Context(), recs...); err != nil {
		t.Fatal(err)
	}
	return l
}

var day = time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)

func withViruses(r msglog.Record, names ...string) msglog.Record {
	r.Viruses = names
	return r
}

// dayRecords is a day of traffic whose figures TestBuild knows, plus
// records just outside the day.
func dayRecords() []msglog.Record {
	n := 0
	rec := func(at time.Duration, node, action, verdict, sender string, rcpts []string, symbols ...string) msglog.Record {
		n++
		return msglog.Record{
			ID: fmt.Sprintf("m%03d", n), Time: day.Add(at), Node: node, Action: action, Verdict: verdict,
			Sender: sender, Recipients: rcpts, Symbols: symbols,
		}
	}
	h := time.Hour
	rs := []msglog.Record{
		// Outside the day: the last nanosecond before, the first instant after.
		rec(-time.Nanosecond, "n1", "reject", "spam", "early@x.test", []string{"a@corp.test"}),
		rec(24*h, "n1", "reject", "spam", "late@x.test", []string{"a@corp.test"}),

		rec(0, "n1", "deliver", "clean", "alice@ok.test", []string{"a@corp.test"}),
		rec(1*h, "n2", "deliver", "clean", "bob@ok.test", []string{"b@corp.test", "c@corp.test"}),
		rec(2*h, "n3", "deliver", "clean", "", []string{"a@corp.test"}),
		rec(3*h, "n1", "quarantine", "spam", "Spammer@Bad.test", []string{"A@corp.test", "a@corp.test", "b@corp.test"}, "GTUBE(1000.00)"),
		rec(4*h, "n2", "reject", "spam", "spammer@bad.test", []string{"a@corp.test"}, "GTUBE(1000.00)"),
		rec(5*h, "n2", "quarantine", "virus", "worm@bad.test", []string{"c@corp.test"}, "EICAR_TEST(1000.00)"),
		withViruses(rec(6*h, "n3", "reject", "virus", "worm@bad.test", []string{"b@corp.test"}, "EICAR_TEST(1000.00)", "GTUBE(1000.00)"),
			"Eicar-Test-Signature", "Win.Test.Extra"), // names as the engines gave them
		rec(7*h, "n1", "quarantine", "virus", "", []string{"a@corp.test"}, "CLAMAV_SOMETHING(5.00)"),
		rec(8*h, "n1", "reject", "banned", "x@bad.test", []string{"a@corp.test"}, "BANNED_EXTENSION(0.00)"),
		rec(9*h, "n1", "tempfail", "", "y@slow.test", []string{"a@corp.test"}),
		rec(10*h, "", "refused", "", "", nil),
		rec(24*h-time.Nanosecond, "n2", "deliver", "clean", "last@ok.test", []string{"d@corp.test"}),
	}
	// Twelve more rejected senders, once each, to cut the top 10.
	for i := range 12 {
		rs = append(rs, rec(11*h+time.Duration(i)*time.Minute, "n3", "reject", "spam", fmt.Sprintf("s%02d@many.test", i), []string{"z@corp.test"}))
	}
	return rs
}

func TestBuild(t *testing.T) {
	log := newLog(t, dayRecords()...)
	// Any time of the day selects it, in any zone.
	at := day.Add(13*time.Hour + 7*time.Minute).In(time.FixedZone("UTC+11", 11*3600))
	r, err := Build(t.Context(), log, at, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Day != "2026-03-14" || r.Node != "n1" || time.Since(r.Generated) > time.Minute {
		t.Errorf("Day %q Node %q Generated %v", r.Day, r.Node, r.Generated)
	}
	if r.Total != 24 {
		t.Errorf("Total = %d, want 24", r.Total)
	}
	wantAction := map[string]int{"deliver": 4, "quarantine": 3, "reject": 15, "tempfail": 1, "refused": 1}
	if !reflect.DeepEqual(r.ByAction, wantAction) {
		t.Errorf("ByAction = %v, want %v", r.ByAction, wantAction)
	}
	wantVerdict := map[string]int{"clean": 4, "spam": 14, "virus": 3, "banned": 1, "none": 2}
	if !reflect.DeepEqual(r.ByVerdict, wantVerdict) {
		t.Errorf("ByVerdict = %v, want %v", r.ByVerdict, wantVerdict)
	}
	wantNode := map[string]int{"n1": 5, "n2": 4, "n3": 14, "unknown": 1}
	if !reflect.DeepEqual(r.ByNode, wantNode) {
		t.Errorf("ByNode = %v, want %v", r.ByNode, wantNode)
	}
	// Senders of rejected and quarantined mail, folded; the null sender as
	// <>; ties by name; ten at most.
	wantSenders := []Count{
		{"spammer@bad.test", 2}, {"worm@bad.test", 2}, {"<>", 1}, {"s00@many.test", 1}, {"s01@many.test", 1},
		{"s02@many.test", 1}, {"s03@many.test", 1}, {"s04@many.test", 1}, {"s05@many.test", 1}, {"s06@many.test", 1},
	}
	if !reflect.DeepEqual(r.TopSenders, wantSenders) {
		t.Errorf("TopSenders = %v\nwant %v", r.TopSenders, wantSenders)
	}
	// A recipient counts once per message (A@ and a@ are one).
	wantRcpts := []Count{{"z@corp.test", 12}, {"a@corp.test", 4}, {"b@corp.test", 2}, {"c@corp.test", 1}}
	if !reflect.DeepEqual(r.TopRecipients, wantRcpts) {
		t.Errorf("TopRecipients = %v, want %v", r.TopRecipients, wantRcpts)
	}
	wantViruses := []Count{{"Eicar-Test-Signature", 2}, {"Win.Test.Extra", 1}, {"unknown", 1}}
	if !reflect.DeepEqual(r.Viruses, wantViruses) {
		t.Errorf("Viruses = %v, want %v", r.Viruses, wantViruses)
	}
}

func TestBuildEmptyDay(t *testing.T) {
	r, err := Build(t.Context(), newLog(t), day, "n2")
	if err != nil {
		t.Fatal(err)
	}
	if r.Total != 0 || r.ByAction == nil || r.TopSenders == nil || r.Viruses == nil {
		t.Errorf("empty day = %+v; want zero counts and empty (not null) lists", r)
	}
}

func TestBuildCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Build(ctx, newLog(t, dayRecords()...), day, "n1"); err == nil {
		t.Error("Build with a cancelled context succeeded")
	}
}

func TestStore(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			s := b.open(t)
			if _, err := s.Get(ctx, "2026-03-14"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get on empty store: %v, want ErrNotFound", err)
			}
			if days, err := s.Days(ctx, 0); err != nil || len(days) != 0 {
				t.Fatalf("Days on empty store = %v, %v", days, err)
			}
			first, err := Build(ctx, newLog(t, dayRecords()...), day, "n1")
			if err != nil {
				t.Fatal(err)
			}
			created, err := s.Create(ctx, first)
			if err != nil || !created {
				t.Fatalf("first Create = %v, %v; want created", created, err)
			}
			// A second master (after a failover) builds the day again: the
			// stored report stays the first one.
			second := first
			second.Node, second.Total = "n2", 1
			created, err = s.Create(ctx, second)
			if err != nil || created {
				t.Fatalf("second Create = %v, %v; want not created", created, err)
			}
			got, err := s.Get(ctx, first.Day)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, first) {
				t.Errorf("Get = %+v\nwant %+v", got, first)
			}

			for _, d := range []string{"2026-03-12", "2025-12-31", "2026-03-13"} {
				if created, err := s.Create(ctx, Report{Day: d, Node: "n1"}); err != nil || !created {
					t.Fatalf("Create(%s) = %v, %v", d, created, err)
				}
			}
			days, err := s.Days(ctx, 0)
			if want := []string{"2026-03-14", "2026-03-13", "2026-03-12", "2025-12-31"}; err != nil || !reflect.DeepEqual(days, want) {
				t.Errorf("Days = %v, %v; want %v", days, err, want)
			}
			days, err = s.Days(ctx, 2)
			if want := []string{"2026-03-14", "2026-03-13"}; err != nil || !reflect.DeepEqual(days, want) {
				t.Errorf("Days(2) = %v, %v; want %v", days, err, want)
			}

			for _, bad := range []string{"", "2026-3-14", "14.03.2026", "2026-03-14x"} {
				if _, err := s.Create(ctx, Report{Day: bad}); err == nil {
					t.Errorf("Create with day %q succeeded", bad)
				}
				if _, err := s.Get(ctx, bad); err == nil || errors.Is(err, ErrNotFound) {
					t.Errorf("Get(%q) = %v, want a bad-day error", bad, err)
				}
			}
		})
	}
}

// TestCreateConcurrent: masters racing for one day, exactly one writes.
func TestCreateConcurrent(t *testing.T) {
	const writers = 16
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			var wg sync.WaitGroup
			var mu sync.Mutex
			var winners []string
			start := make(chan struct{})
			for i := range writers {
				wg.Go(func() {
					<-start
					node := fmt.Sprintf("n%d", i)
					created, err := s.Create(t.Context(), Report{Day: "2026-03-14", Node: node})
					if err != nil {
						t.Error(err)
						return
					}
					if created {
						mu.Lock()
						winners = append(winners, node)
						mu.Unlock()
					}
				})
			}
			close(start)
			wg.Wait()
			if len(winners) != 1 {
				t.Fatalf("winners = %v, want exactly one", winners)
			}
			got, err := s.Get(t.Context(), "2026-03-14")
			if err != nil || got.Node != winners[0] {
				t.Errorf("stored report by %q, %v; want the winner %s", got.Node, err, winners[0])
			}
		})
	}
}
