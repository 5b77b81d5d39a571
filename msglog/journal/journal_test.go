package journal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/store"
	"github.com/mxgate/mxgate/testenv"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var base = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func record(i int) msglog.Record {
	return msglog.Record{
		ID: fmt.Sprintf("J%05d", i), Time: base.Add(time.Duration(i) * time.Millisecond),
		ClientIP: "192.0.2.1", Helo: "client.test", Sender: fmt.Sprintf("s%d@sender.test", i),
		Recipients: []string{"r@example.org"}, Size: 1000, Action: "deliver", Verdict: "clean",
		Node: "n1", Reply: "250 2.0.0 Ok", Downstream: "250 2.0.0 Ok: queued", Duration: time.Millisecond,
	}
}

// boltLog is the embedded message log on its own file, as the node has it.
func boltLog(t testing.TB) msglog.Store {
	t.Helper()
	db := testenv.Bolt(t)
	l, err := msglog.NewBolt(db)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

type opened struct {
	j   *Journal
	reg *prometheus.Registry
}

func open(t *testing.T, dir string, st msglog.Store, max int64) opened {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	j, err := Open(Options{Dir: dir, MaxBytes: max, Store: st, Logger: quiet, Metrics: m, ShipInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close(context.Background()) })
	return opened{j, reg}
}

func (o opened) metric(t *testing.T, name, reason string) float64 {
	t.Helper()
	label := ""
	if reason != "" {
		label = "reason"
	}
	return testenv.MetricValue(t, o.reg, name, label, reason)
}

// ids returns the ids in the store, in time order.
func ids(t *testing.T, st msglog.Store) []string {
	t.Helper()
	var out []string
	err := st.Range(context.Background(), time.Time{}, time.Time{}, func(r msglog.Record) error {
		out = append(out, r.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func waitIDs(t *testing.T, st msglog.Store, n int) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := ids(t, st)
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func wantIDs(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, record(i).ID)
	}
	return out
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAppendShipsAndCleansUp(t *testing.T) {
	dir, st := t.TempDir(), boltLog(t)
	o := open(t, dir, st, 0)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() { errs <- o.j.Append(context.Background(), record(i)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	if got := waitIDs(t, st, 200); !slices.Equal(got, wantIDs(0, 200)) {
		t.Fatalf("store has %d records, want the 200 appended", len(got))
	}
	if err := o.j.Close(context.Background()); err != nil {
		t.Fatalf("Close with everything shipped: %v", err)
	}
	if s := segments(t, dir); len(s) != 0 {
		t.Errorf("segments left after everything was shipped: %v", s)
	}
	if n := o.metric(t, "mxgate_msglog_stored_total", ""); n != 200 {
		t.Errorf("stored_total = %v, want 200", n)
	}
	// Nothing to replay at the next start.
	o2 := open(t, dir, st, 0)
	o2.j.Close(context.Background())
	if n := o2.metric(t, "mxgate_msglog_replayed_total", ""); n != 0 {
		t.Errorf("replayed_total after a clean stop = %v, want 0", n)
	}
	if got := ids(t, st); len(got) != 200 {
		t.Errorf("store has %d records after a restart, want 200", len(got))
	}
}

// TestStoreOutageRetried: a real redis-server stopped while records come
// in; they wait in the journal, reach Redis once it is back, each once.
func TestStoreOutageRetried(t *testing.T) {
	r := testenv.StartRedis(t)
	b, err := store.OpenRedis(context.Background(), r.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	o := open(t, t.TempDir(), b.Log, 0)
	ctx := context.Background()
	for i := range 50 {
		if err := o.j.Append(ctx, record(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitIDs(t, b.Log, 50)
	r.Stop()
	for i := 50; i < 150; i++ {
		if err := o.j.Append(ctx, record(i)); err != nil {
			t.Fatalf("Append while the store is down: %v", err)
		}
	}
	// Retries fail while Redis is down.
	deadline := time.Now().Add(10 * time.Second)
	for o.metric(t, "mxgate_msglog_store_errors_total", "") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no failed store write counted while Redis was down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.Start()
	if got := waitIDs(t, b.Log, 150); !slices.Equal(got, wantIDs(0, 150)) {
		t.Fatalf("after the outage the store has %d records, want 150 once each", len(got))
	}
}

// writeSegment writes a segment file from an earlier run by hand: header
// and the entries of records from..to.
func writeSegment(t *testing.T, dir string, seq uint64, from, to int) string {
	t.Helper()
	b := []byte(segmentMagic)
	for i := from; i < to; i++ {
		p, _, err := encodeRecord(record(i))
		if err != nil {
			t.Fatal(err)
		}
		b = appendEntry(b, p)
	}
	path := filepath.Join(dir, segmentName(seq))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func entrySize(t *testing.T, i int) int64 {
	t.Helper()
	p, _, err := encodeRecord(record(i))
	if err != nil {
		t.Fatal(err)
	}
	return int64(entryHeader + len(p))
}

// offsetOf is where record k starts in a segment written from record from.
func offsetOf(t *testing.T, from, k int) int64 {
	t.Helper()
	off := headerSize
	for i := from; i < k; i++ {
		off += entrySize(t, i)
	}
	return off
}

// TestDamagedJournalReplayed: what an earlier run left, torn or damaged in
// the ways a crash or a bad disk leaves it, is replayed up to the damage;
// the damage is skipped and counted once, never a crash, and nothing is
// counted twice at the next start.
func TestDamagedJournalReplayed(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, path string) // on segment 2 (records 10..20)
		want    []string
		corrupt float64
	}{
		{"intact", func(*testing.T, string) {}, wantIDs(0, 30), 0},
		{"torn in the last payload", func(t *testing.T, p string) { truncate(t, p, -5) }, append(wantIDs(0, 19), wantIDs(20, 30)...), 1},
		{"torn in the last header", func(t *testing.T, p string) { truncate(t, p, -(entrySize(t, 19) - 3)) }, append(wantIDs(0, 19), wantIDs(20, 30)...), 1},
		{"zero-filled tail", func(t *testing.T, p string) { appendBytes(t, p, make([]byte, 4096)) }, wantIDs(0, 30), 1},
		{"garbage tail", func(t *testing.T, p string) { appendBytes(t, p, []byte("\x01\x00\x00\x00garbage")) }, wantIDs(0, 30), 1},
		{"huge length", func(t *testing.T, p string) { appendBytes(t, p, []byte{0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4}) }, wantIDs(0, 30), 1},
		{"flipped byte in the last entry", func(t *testing.T, p string) { flip(t, p, -3) }, append(wantIDs(0, 19), wantIDs(20, 30)...), 1},
		{"flipped byte mid-segment", func(t *testing.T, p string) {
			flip(t, p, offsetOf(t, 10, 15)+entryHeader+2)
		}, append(wantIDs(0, 15), wantIDs(20, 30)...), 1},
		{"bad header", func(t *testing.T, p string) { flip(t, p, 1) }, append(wantIDs(0, 10), wantIDs(20, 30)...), 1},
		{"shorter than a header", func(t *testing.T, p string) { truncate(t, p, 5-fileSize(t, p)) }, append(wantIDs(0, 10), wantIDs(20, 30)...), 0},
		{"empty file", func(t *testing.T, p string) { truncate(t, p, -fileSize(t, p)) }, append(wantIDs(0, 10), wantIDs(20, 30)...), 0},
		{"deleted", func(t *testing.T, p string) { os.Remove(p) }, append(wantIDs(0, 10), wantIDs(20, 30)...), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, st := t.TempDir(), boltLog(t)
			writeSegment(t, dir, 1, 0, 10)
			tc.damage(t, writeSegment(t, dir, 2, 10, 20))
			writeSegment(t, dir, 3, 20, 30)
			o := open(t, dir, st, 0)
			waitIDs(t, st, len(tc.want))
			// Close ships the rest, past the damage.
			if err := o.j.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := ids(t, st); !slices.Equal(got, tc.want) {
				t.Errorf("store has %v\nwant %v", got, tc.want)
			}
			if n := o.metric(t, "mxgate_msglog_dropped_total", ReasonCorrupt); n != tc.corrupt {
				t.Errorf("dropped_total{corrupt} = %v, want %v", n, tc.corrupt)
			}
			if n := o.metric(t, "mxgate_msglog_replayed_total", ""); n != float64(len(tc.want)) {
				t.Errorf("replayed_total = %v, want %d", n, len(tc.want))
			}
			if s := segments(t, dir); len(s) != 0 {
				t.Errorf("segments left: %v", s)
			}
			// The next start finds nothing more.
			o2 := open(t, dir, st, 0)
			o2.j.Close(context.Background())
			if n := o2.metric(t, "mxgate_msglog_dropped_total", ReasonCorrupt) + o2.metric(t, "mxgate_msglog_replayed_total", ""); n != 0 {
				t.Errorf("second start replayed or counted again: %v", n)
			}
		})
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// truncate shortens (negative by) or sets the file's size relative to now.
func truncate(t *testing.T, path string, by int64) {
	t.Helper()
	if err := os.Truncate(path, fileSize(t, path)+by); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

// flip inverts one byte at off (negative: from the end).
func flip(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off += int64(len(b))
	}
	b[off] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointSkipsConfirmed: records the store confirmed before a crash
// are not written again at the next start, and a damaged checkpoint only
// costs a replay that replaces (the store still has each record once).
func TestCheckpointSkipsConfirmed(t *testing.T) {
	for _, damaged := range []bool{false, true} {
		t.Run(fmt.Sprintf("damaged=%v", damaged), func(t *testing.T) {
			dir, st := t.TempDir(), boltLog(t)
			writeSegment(t, dir, 1, 0, 10)
			writeSegment(t, dir, 2, 10, 20)
			// The shipper had confirmed segment 1 and 5 records of segment 2.
			if err := st.Append(context.Background(), slices.Collect(func(yield func(msglog.Record) bool) {
				for i := range 15 {
					yield(record(i))
				}
			})...); err != nil {
				t.Fatal(err)
			}
			cp, err := os.Create(filepath.Join(dir, "checkpoint"))
			if err != nil {
				t.Fatal(err)
			}
			(&Journal{cp: cp, log: quiet}).writeCheckpoint(2, offsetOf(t, 10, 15))
			cp.Close()
			if damaged {
				flip(t, filepath.Join(dir, "checkpoint"), 3)
			}
			o := open(t, dir, st, 0)
			waitIDs(t, st, 20)
			o.j.Close(context.Background())
			if got := ids(t, st); !slices.Equal(got, wantIDs(0, 20)) {
				t.Errorf("store has %v", got)
			}
			want := 5.0
			if damaged {
				want = 20
			}
			if n := o.metric(t, "mxgate_msglog_replayed_total", ""); n != want {
				t.Errorf("replayed_total = %v, want %v", n, want)
			}
		})
	}
}

// TestFullJournalDropsAndCounts: with the store down, a full journal drops
// what does not fit, counts it, and never blocks Append; once the store is
// back the kept records arrive and room returns.
func TestFullJournalDropsAndCounts(t *testing.T) {
	r := testenv.StartRedis(t)
	b, err := store.OpenRedis(context.Background(), r.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	r.Stop()
	o := open(t, t.TempDir(), b.Log, MinMaxBytes)
	kept, dropped := 0, 0
	for i := range 400 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := o.j.Append(ctx, record(i))
		cancel()
		switch {
		case err == nil:
			kept++
		case errors.Is(err, ErrDropped) && strings.Contains(err.Error(), ReasonFull):
			dropped++
		default:
			t.Fatalf("Append %d: %v", i, err)
		}
	}
	if dropped == 0 || kept == 0 {
		t.Fatalf("kept %d, dropped %d: want both", kept, dropped)
	}
	if n := o.metric(t, "mxgate_msglog_dropped_total", ReasonFull); n != float64(dropped) {
		t.Errorf("dropped_total{journal_full} = %v, want %d", n, dropped)
	}
	if n := o.metric(t, "mxgate_msglog_journal_bytes", ""); n > MinMaxBytes {
		t.Errorf("journal holds %v bytes, above its bound %d", n, MinMaxBytes)
	}
	r.Start()
	if got := waitIDs(t, b.Log, kept); len(got) != kept || got[0] != record(0).ID {
		t.Fatalf("store has %d records, want the %d kept", len(got), kept)
	}
	// Room again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := o.j.Append(context.Background(), record(1000)); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no room after the store came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStopLeavesUnconfirmed: a stop while the store is down keeps the
// records on disk, and the next start ships them.
func TestStopLeavesUnconfirmed(t *testing.T) {
	r := testenv.StartRedis(t)
	b, err := store.OpenRedis(context.Background(), r.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	dir := t.TempDir()
	r.Stop()
	o := open(t, dir, b.Log, 0)
	for i := range 40 {
		if err := o.j.Append(context.Background(), record(i)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	if err := o.j.Close(ctx); err == nil {
		t.Fatal("Close with the store down reported nothing left")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Close took %s with the store down", d)
	}
	if err := o.j.Append(context.Background(), record(99)); !errors.Is(err, ErrDropped) {
		t.Errorf("Append after Close = %v, want ErrDropped", err)
	}
	if n := o.metric(t, "mxgate_msglog_dropped_total", ReasonStopped); n != 1 {
		t.Errorf("dropped_total{stopped} = %v, want 1", n)
	}
	r.Start()
	o2 := open(t, dir, b.Log, 0)
	if got := waitIDs(t, b.Log, 40); !slices.Equal(got, wantIDs(0, 40)) {
		t.Fatalf("after the restart the store has %v", got)
	}
	o2.j.Close(context.Background())
	if n := o2.metric(t, "mxgate_msglog_replayed_total", ""); n != 40 {
		t.Errorf("replayed_total = %v, want 40", n)
	}
}

func TestDirLocked(t *testing.T) {
	dir, st := t.TempDir(), boltLog(t)
	open(t, dir, st, 0)
	_, err := Open(Options{Dir: dir, Store: st, Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "in use by another mxgate") {
		t.Fatalf("second Open on one directory: %v", err)
	}
}

func TestInvalidAndOversizeRecords(t *testing.T) {
	dir, st := t.TempDir(), boltLog(t)
	o := open(t, dir, st, 0)
	ctx := context.Background()
	huge := record(1)
	for i := range 5000 {
		huge.Recipients = append(huge.Recipients, fmt.Sprintf("rcpt%d-%s@example.org", i, strings.Repeat("x", 60)))
	}
	huge.Reply = strings.Repeat("\x01", 300<<10) // escapes to 6 bytes each
	for i := range 2000 {
		huge.Refused = append(huge.Refused, msglog.Refusal{Rcpt: fmt.Sprintf("refused%d@example.org", i), Reply: strings.Repeat("\x02", 200),
			List: &msglog.ListEntry{Kind: "block", Value: "@x.example", Comment: strings.Repeat("\x03", 500)}})
	}
	tests := []struct {
		name   string
		r      msglog.Record
		reason string // "" = kept
	}{
		{"no id", msglog.Record{Time: base}, ReasonInvalid},
		{"time before 1970", msglog.Record{ID: "x", Time: time.Unix(-5, 0)}, ReasonInvalid},
		{"huge, trimmed", huge, ""},
	}
	for _, tc := range tests {
		err := o.j.Append(ctx, tc.r)
		if tc.reason == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrDropped) || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: err %v, want a drop for %s", tc.name, err, tc.reason)
		}
	}
	got := waitIDs(t, st, 1)
	if !slices.Equal(got, []string{huge.ID}) {
		t.Fatalf("store has %v", got)
	}
	rs, err := st.Search(ctx, msglog.Query{ID: huge.ID})
	if err != nil || len(rs) != 1 {
		t.Fatal(err)
	}
	if n := len(rs[0].Recipients); n != trimSteps[0].items || !strings.HasPrefix(rs[0].Recipients[n-1], "… ") {
		t.Errorf("trimmed recipients: %d, last %q", n, rs[0].Recipients[n-1])
	}
	if n := len(rs[0].Refused); n != trimSteps[0].items || rs[0].Refused[n-1].Reply != fmt.Sprintf("… %d more", 2000-n+1) || rs[0].Refused[0].Rcpt != "refused0@example.org" {
		t.Errorf("trimmed refusals: %d, first %+v, last %+v", n, rs[0].Refused[0], rs[0].Refused[n-1])
	}
	if n := o.metric(t, "mxgate_msglog_trimmed_total", ""); n != 1 {
		t.Errorf("trimmed_total = %v", n)
	}
	if n := o.metric(t, "mxgate_msglog_dropped_total", ReasonInvalid); n != 2 {
		t.Errorf("dropped_total{invalid} = %v", n)
	}
}

// TestDiskFullCountedAndRecovers: on a real filesystem that fills up (a
// small tmpfs), a write that fails is counted as io_error and answered at
// once, never a hang; what was written before reaches the store, and once
// there is room again records are kept again.
func TestDiskFullCountedAndRecovers(t *testing.T) {
	testenv.NeedRoot(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	st := boltLog(t)
	// The shipper waits an hour: the records stay on the small
	// filesystem until Close ships them.
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	j, err := Open(Options{Dir: filepath.Join(dir, "j"), MaxBytes: 1 << 20, Store: st, Logger: quiet, Metrics: m, ShipInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close(context.Background())
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 200<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	kept, failed := 0, 0
	for i := 0; failed == 0 && i < 1000; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := j.Append(ctx, record(i))
		cancel()
		switch {
		case err == nil:
			kept++
		case errors.Is(err, ErrDropped) && strings.Contains(err.Error(), ReasonIOError):
			failed++
		default:
			t.Fatalf("Append %d: %v", i, err)
		}
	}
	if failed == 0 || kept == 0 {
		t.Fatalf("kept %d, failed %d on a full filesystem: want both", kept, failed)
	}
	if n := testenv.MetricValue(t, reg, "mxgate_msglog_dropped_total", "reason", ReasonIOError); n != 1 {
		t.Errorf("dropped_total{io_error} = %v, want 1", n)
	}
	os.Remove(filler)
	if err := j.Append(context.Background(), record(5000)); err != nil {
		t.Fatalf("Append with room again: %v", err)
	}
	if err := j.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := ids(t, st)
	want := append(wantIDs(0, kept), record(5000).ID)
	if !slices.Equal(got, want) {
		t.Errorf("store has %d records, want the %d kept", len(got), len(want))
	}
}

// TestBackgroundSync: with a SyncInterval, Append returns once the record
// is written, before any fdatasync; the shipper still finds it on disk, and
// Close syncs what was written since the last sync.
func TestBackgroundSync(t *testing.T) {
	dir, st := t.TempDir(), boltLog(t)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	// The longest interval: no background sync can come before the
	// appends are done, so every sync counted by then was Append's.
	j, err := Open(Options{Dir: dir, Store: st, Logger: quiet, Metrics: m, ShipInterval: 10 * time.Millisecond, SyncInterval: MaxSyncInterval})
	if err != nil {
		t.Fatal(err)
	}
	syncs := func() float64 { return testenv.MetricValue(t, reg, "mxgate_msglog_journal_sync_seconds", "", "") }
	for i := range 20 {
		if err := j.Append(context.Background(), record(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := syncs(); n != 0 {
		t.Errorf("%v fdatasyncs before Append returned, want none", n)
	}
	if got := waitIDs(t, st, 20); !slices.Equal(got, wantIDs(0, 20)) {
		t.Errorf("store has %v", got)
	}
	if err := j.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := syncs(); n < 1 {
		t.Errorf("Close did not sync the written records (%v syncs)", n)
	}
	if _, err := Open(Options{Dir: dir, Store: st, SyncInterval: -time.Second}); err == nil {
		t.Error("a negative sync interval was accepted")
	}
	if _, err := Open(Options{Dir: dir, Store: st, SyncInterval: MaxSyncInterval + 1}); err == nil {
		t.Error("a sync interval past the bound was accepted")
	}
}

// TestSyncBeforeReturn: without a SyncInterval, every Append has its
// record fdatasync'd before it returns.
func TestSyncBeforeReturn(t *testing.T) {
	o := open(t, t.TempDir(), boltLog(t), 0)
	if err := o.j.Append(context.Background(), record(1)); err != nil {
		t.Fatal(err)
	}
	if n := o.metric(t, "mxgate_msglog_journal_sync_seconds", ""); n < 1 {
		t.Errorf("Append returned before any fdatasync (%v)", n)
	}
}
