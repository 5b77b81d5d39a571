package report

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.etcd.io/bbolt"

	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/testenv"
)

func openDB(t *testing.T) *bbolt.DB {
	t.Helper()
	db := testenv.Bolt(t)
	return db
}

// backends opens a fresh, empty Store of each kind, for the scheduler's
// test; what the backends share is store/storetest's.
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
