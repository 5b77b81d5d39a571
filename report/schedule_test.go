package report

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxgate/mxgate/msglog"
)

// clock is a settable now func.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func startScheduler(t *testing.T, s Store, log msglog.Store, node string, master *atomic.Bool, c *clock) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		runScheduler(ctx, newScheduler(s, log, node, master.Load, nil, c.now, nil), 10*time.Millisecond)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func waitReport(t *testing.T, s Store, d string) Report {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		r, err := s.Get(t.Context(), d)
		if err == nil {
			return r
		}
		if !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("report %s not written", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestScheduler(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			log := newLog(t, dayRecords()...)
			c := &clock{t: day.AddDate(0, 0, 1).Add(time.Minute)} // 00:01 the next day
			var m1, m2 atomic.Bool
			startScheduler(t, s, log, "n1", &m1, c)
			startScheduler(t, s, log, "n2", &m2, c)

			// Nobody is master, and at 00:01 the day is still settling.
			time.Sleep(100 * time.Millisecond)
			m1.Store(true)
			time.Sleep(100 * time.Millisecond)
			if days, _ := s.Days(t.Context(), 0); len(days) != 1 || days[0] != "2026-03-13" {
				// Before settle the master makes sure of the day before,
				// which the log has nothing of.
				t.Fatalf("before the day settled: reports %v, want only 2026-03-13", days)
			}

			c.set(day.AddDate(0, 0, 1).Add(settle + time.Second))
			r := waitReport(t, s, "2026-03-14")
			if r.Node != "n1" || r.Total != 24 {
				t.Errorf("report by %s with %d messages, want n1 and 24", r.Node, r.Total)
			}

			// Failover: n2 becomes master too (split brain for a moment);
			// the report stays n1's.
			m2.Store(true)
			m1.Store(false)
			time.Sleep(100 * time.Millisecond)
			if r := waitReport(t, s, "2026-03-14"); r.Node != "n1" {
				t.Errorf("report rewritten by %s", r.Node)
			}

			// The next day is written by the master of then.
			c.set(day.AddDate(0, 0, 2).Add(time.Hour))
			if r := waitReport(t, s, "2026-03-15"); r.Node != "n2" || r.Total != 1 { // the record at 00:00 of the 15th
				t.Errorf("next day's report by %s with %d messages, want n2 and 1", r.Node, r.Total)
			}
		})
	}
}
