package digest

import (
	"sync"
	"testing"
	"time"

	"github.com/mxgate/mxgate/deliver"
	"github.com/mxgate/mxgate/quarantine"
	"github.com/mxgate/mxgate/testenv"
)

// clock is a settable time for the schedulers.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// Two nodes that both think they are master run the daily job over one
// store: nothing before digest.time, then one digest per recipient, and
// nothing more that day; the next day's new mail gets the next digest.
func TestSchedulerSendsOncePerDay(t *testing.T) {
	sink := testenv.StartSink(t)
	db := testenv.Bolt(t)
	st, err := NewBolt(db)
	if err != nil {
		t.Fatal(err)
	}
	q, err := quarantine.NewBolt(db)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	day := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: day.Add(5 * time.Hour)}
	put := func(id string, at time.Time, rcpts ...string) {
		t.Helper()
		it := quarantine.Item{ID: id, Time: at, Sender: "s@spam.example", Recipients: rcpts, Verdict: "spam", Score: 9, Subject: "offer " + id, Expires: at.Add(720 * time.Hour)}
		if err := q.Put(ctx, it, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	put("Q1", day.Add(-2*time.Hour), "alice@example.org", "bob@example.org")
	put("Q2", day.Add(-3*24*time.Hour), "carol@example.org") // older than a first digest looks
	put("Q3", day.Add(time.Hour), "dave@other.example")      // not in digest.domains
	set := Settings{Enabled: true, At: 6 * time.Hour, URL: "https://mx.example.org", From: "postmaster@mx.test", Domains: []string{"example.org"},
		Lifetime: 720 * time.Hour, Downstream: deliver.Options{Addr: sink.Addr, Helo: "mx.test", Timeout: 10 * time.Second}}
	var scheds []*scheduler
	for _, node := range []string{"n1", "n2"} {
		d := &Digester{Store: st, Quarantine: q, Node: node, Settings: func() Settings { return set }, Now: clk.now}
		scheds = append(scheds, &scheduler{d: d, isMaster: func() bool { return true }})
	}
	runAll := func() {
		var wg sync.WaitGroup
		for _, sc := range scheds {
			wg.Go(func() { sc.run(ctx) })
		}
		wg.Wait()
	}
	runAll()
	if n := len(sink.Messages(t)); n != 0 {
		t.Fatalf("before digest.time: %d messages", n)
	}
	clk.set(day.Add(6*time.Hour + time.Minute))
	runAll()
	msgs := sink.WaitMessages(t, 2, 10*time.Second)
	runAll()
	time.Sleep(200 * time.Millisecond)
	if msgs = sink.Messages(t); len(msgs) != 2 {
		t.Fatalf("after three runs of two masters: %d digests, want 2 (alice, bob)", len(msgs))
	}
	// A master that met the other's claim while it was sending retries
	// later, and finds the digests sent.
	clk.set(day.Add(6*time.Hour + 5*time.Minute))
	runAll()
	time.Sleep(200 * time.Millisecond)
	if n := len(sink.Messages(t)); n != 2 {
		t.Fatalf("after the retry: %d digests, want 2", n)
	}
	for _, sc := range scheds {
		if sc.done != "2026-12-02" {
			t.Errorf("%s: day done %q", sc.d.Node, sc.done)
		}
	}
	// The next day: alice's new message, nothing else.
	put("Q4", day.Add(20*time.Hour), "alice@example.org")
	clk.set(day.Add(30 * time.Hour))
	runAll()
	msgs = sink.WaitMessages(t, 3, 10*time.Second)
	if len(msgs) != 3 {
		t.Fatalf("next day: %d messages, want 3", len(msgs))
	}
	if c, err := st.Covered(ctx, "alice@example.org"); err != nil || !c.Equal(day.Add(20*time.Hour)) {
		t.Errorf("alice covered up to %v, %v; want Q4's time", c, err)
	}

	// Off: nothing runs.
	set.Enabled = false
	put("Q5", day.Add(40*time.Hour), "bob@example.org")
	clk.set(day.Add(54 * time.Hour))
	runAll()
	time.Sleep(200 * time.Millisecond)
	if n := len(sink.Messages(t)); n != 3 {
		t.Errorf("digest.enabled false: %d messages, want still 3", n)
	}
}
