package smtpfront

// The message log across store outages, through the real front end: real
// sessions, the real scanner pool, smtp-sink downstream, and a real
// redis-server that is stopped and started under the stream.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/msglog/journal"
	"github.com/mxgate/mxgate/store"
	"github.com/mxgate/mxgate/testenv"
)

func redisLog(t *testing.T) (*testenv.Redis, *store.Backend) {
	t.Helper()
	r := testenv.StartRedis(t)
	b, err := store.OpenRedis(context.Background(), r.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return r, b
}

// recordsBySender counts the store's records per sender.
func recordsBySender(t *testing.T, l msglog.Store) map[string]int {
	t.Helper()
	out := map[string]int{}
	err := l.Range(context.Background(), time.Time{}, time.Time{}, func(r msglog.Record) error {
		out[r.Sender]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// waitRecords waits until the store holds at least n records.
func waitRecords(t *testing.T, l msglog.Store, n int, within time.Duration) map[string]int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := recordsBySender(t, l)
		if total(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMessageLogSurvivesStoreOutages: Redis is stopped and started five
// times while clients send a steady stream; at the end every message that
// got a DATA reply has exactly one record (the old writer dropped each
// batch that failed).
func TestMessageLogSurvivesStoreOutages(t *testing.T) {
	r, b := redisLog(t)
	f := startFront(t, nil, func(o *Options) { o.Log = b.Log })

	var (
		mu      sync.Mutex
		replies = map[string]int{} // sender → DATA reply code
		errs    []error
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				sender := fmt.Sprintf("w%d-m%d@sender.test", w, n)
				code, err := testenv.SendFrom(f.addr, sender)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					replies[sender] = code
				}
				mu.Unlock()
			}
		})
	}
	for range 5 {
		time.Sleep(400 * time.Millisecond)
		r.Stop()
		time.Sleep(600 * time.Millisecond)
		r.Start()
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d sessions broke, first: %v", len(errs), errs[0])
	}
	accepted := 0
	for _, code := range replies {
		if code == 250 {
			accepted++
		}
	}
	if accepted < 20 {
		t.Fatalf("only %d of %d messages accepted: the stream was too thin to test anything", accepted, len(replies))
	}
	t.Logf("%d messages, %d accepted, across 5 Redis outages", len(replies), accepted)
	got := waitRecords(t, b.Log, len(replies), 30*time.Second)
	missing, twice := 0, 0
	for sender := range replies {
		switch got[sender] {
		case 0:
			missing++
		case 1:
		default:
			twice++
		}
	}
	if missing > 0 || twice > 0 || total(got) != len(replies) {
		t.Errorf("%d messages (%d accepted) across 5 Redis outages: %d without a record, %d with several, %d records in all",
			len(replies), accepted, missing, twice, total(got))
	}
}

// TestRecordOnDiskBeforeReply: the DATA reply is sent only after the
// message's record is in the journal on disk, so a crash right after the
// reply cannot lose it.
func TestRecordOnDiskBeforeReply(t *testing.T) {
	r, b := redisLog(t)
	dir := t.TempDir()
	f := startFront(t, nil, func(o *Options) { o.Log, o.LogJournalDir = b.Log, dir })
	r.Stop() // nothing leaves the journal
	for i := range 3 {
		sender := fmt.Sprintf("ondisk%d@sender.test", i)
		if code, err := testenv.SendFrom(f.addr, sender); code != 250 {
			t.Fatalf("DATA reply %d, %v", code, err)
		}
		var found bool
		files, _ := filepath.Glob(filepath.Join(dir, "*.jnl"))
		for _, p := range files {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			found = found || bytes.Contains(data, []byte(`"sender":"`+sender+`"`))
		}
		if !found {
			t.Fatalf("the 250 for %s came before its record was in the journal (%v)", sender, files)
		}
	}
}

// TestFullJournalKeepsAnswering: with the store down and a small journal,
// records that do not fit are dropped and counted, the clients still get
// their 250 at once, and what was kept reaches the store when it is back.
func TestFullJournalKeepsAnswering(t *testing.T) {
	r, b := redisLog(t)
	reg := prometheus.NewRegistry()
	f := startFront(t, nil, func(o *Options) {
		o.Log, o.LogJournalMax, o.Registerer = b.Log, journal.MinMaxBytes, reg
	})
	r.Stop()
	const n = 250
	for i := range n {
		start := time.Now()
		code, err := testenv.SendFrom(f.addr, fmt.Sprintf("full%d@sender.test", i))
		if code != 250 {
			t.Fatalf("message %d with the journal full: %d %v", i, code, err)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("message %d took %s: the full journal held up SMTP", i, d)
		}
	}
	dropped := testenv.MetricValue(t, reg, "mxgate_msglog_dropped_total", "reason", journal.ReasonFull)
	if dropped == 0 || dropped >= n {
		t.Fatalf("dropped_total{journal_full} = %v of %d messages: want some kept and some dropped", dropped, n)
	}
	r.Start()
	kept := n - int(dropped)
	got := waitRecords(t, b.Log, kept, 30*time.Second)
	if total(got) != kept {
		t.Errorf("store has %d records, want the %d kept (%d sent, %v dropped)", total(got), kept, n, dropped)
	}
	for s, c := range got {
		if c != 1 {
			t.Errorf("%s has %d records", s, c)
		}
	}
	// Kept first, dropped later: the oldest messages are the ones logged.
	if got["full0@sender.test"] != 1 {
		t.Error("the first message has no record")
	}
}
