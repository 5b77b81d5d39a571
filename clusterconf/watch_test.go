package clusterconf

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxgate/mxgate/testenv"
)

// views returns a function giving Stores on one shared backend: for Redis
// each on its own client (as two nodes are), for bbolt the same Store (one
// node's process).
var views = []struct {
	name string
	open func(t *testing.T) func() Store
}{
	{"bolt", func(t *testing.T) func() Store {
		s := openBolt(t)
		return func() Store { return s }
	}},
	{"redis", func(t *testing.T) func() Store {
		r := testenv.StartRedis(t)
		return func() Store { return NewRedis(redisClient(t, r)) }
	}},
}

// recorder is an apply func that remembers what it was given.
type recorder struct {
	mu   sync.Mutex
	revs []int64
	fail map[int64]bool
	at   map[int64]time.Time
}

func newRecorder() *recorder {
	return &recorder{fail: map[int64]bool{}, at: map[int64]time.Time{}}
}

func (r *recorder) apply(rev Revision) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revs = append(r.revs, rev.Number)
	if r.fail[rev.Number] {
		return errors.New("engine refused it")
	}
	r.at[rev.Number] = time.Now()
	return nil
}

func (r *recorder) calls() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.revs...)
}

func run(t *testing.T, f *Follower) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFollowerCatchUp: a node that was down applies the current revision at
// start, and only that one.
func TestFollowerCatchUp(t *testing.T) {
	for _, v := range views {
		t.Run(v.name, func(t *testing.T) {
			open := v.open(t)
			w := open()
			for i := range int64(3) {
				if _, err := w.Put(t.Context(), settings(float64(i+1)), "admin", "", i); err != nil {
					t.Fatal(err)
				}
			}
			rec := newRecorder()
			f := NewFollower(open(), rec.apply, nil)
			f.poll = time.Hour // the start-up load alone must do it
			if _, ok := f.Current(); ok || f.Applied() != 0 {
				t.Fatal("a new Follower claims a revision")
			}
			run(t, f)
			waitFor(t, time.Second, "revision 3 applied at start", func() bool { return f.Applied() == 3 })
			cur, ok := f.Current()
			if !ok || cur.Number != 3 || cur.Settings.Scanner.Thresholds.Quarantine != 3 {
				t.Errorf("Current = %+v, %v", cur, ok)
			}
			if got := rec.calls(); len(got) != 1 || got[0] != 3 {
				t.Errorf("apply calls = %v, want [3]", got)
			}
			if f.Degraded() || f.ApplyError() != nil {
				t.Errorf("Degraded = %v, ApplyError = %v", f.Degraded(), f.ApplyError())
			}
		})
	}
}

// TestFollowerPropagation: two nodes (two Redis clients) apply a revision
// put by a third within a second, by announcement alone (polling is off).
func TestFollowerPropagation(t *testing.T) {
	for _, v := range views {
		t.Run(v.name, func(t *testing.T) {
			open := v.open(t)
			w := open()
			var fs []*Follower
			var recs []*recorder
			for range 2 {
				rec := newRecorder()
				f := NewFollower(open(), rec.apply, nil)
				f.poll = time.Hour
				run(t, f)
				fs, recs = append(fs, f), append(recs, rec)
			}
			time.Sleep(50 * time.Millisecond) // both past their start-up load
			var worst time.Duration
			for n := int64(1); n <= 5; n++ {
				put := time.Now()
				if _, err := w.Put(t.Context(), settings(float64(n)), "admin", "", n-1); err != nil {
					t.Fatal(err)
				}
				for i, f := range fs {
					waitFor(t, time.Second, "revision applied on both nodes", func() bool { return f.Applied() == n })
					recs[i].mu.Lock()
					d := recs[i].at[n].Sub(put)
					recs[i].mu.Unlock()
					worst = max(worst, d)
				}
			}
			t.Logf("slowest propagation: %s", worst)
			for i, rec := range recs {
				if got := rec.calls(); len(got) != 5 {
					t.Errorf("node %d: apply calls = %v, want 1..5 once each", i, got)
				}
			}
		})
	}
}

// quietStore loses every announcement, like pub/sub during an outage.
type quietStore struct{ Store }

func (quietStore) Changes(ctx context.Context) <-chan struct{} { return make(chan struct{}) }

// TestFollowerPoll: without announcements the poll still applies a new
// revision within PollInterval.
func TestFollowerPoll(t *testing.T) {
	s := openBolt(t)
	rec := newRecorder()
	f := NewFollower(quietStore{s}, rec.apply, nil)
	run(t, f)
	time.Sleep(50 * time.Millisecond)
	if _, err := s.Put(t.Context(), settings(5), "admin", "", 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, PollInterval+500*time.Millisecond, "revision applied by polling", func() bool { return f.Applied() == 1 })
}

// fakeStore answers Current with whatever the test set.
type fakeStore struct {
	Store // nil: only Current and Changes are used
	mu    sync.Mutex
	rev   Revision
	err   error
	reads atomic.Int64
}

func (s *fakeStore) set(rev Revision, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rev, s.err = rev, err
}

func (s *fakeStore) Current(context.Context) (Revision, error) {
	s.reads.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rev, s.err
}

func (s *fakeStore) Changes(ctx context.Context) <-chan struct{} { return make(chan struct{}) }

// waitReads waits until the Follower has read the store n more times.
func (s *fakeStore) waitReads(t *testing.T, n int64) {
	t.Helper()
	target := s.reads.Load() + n
	waitFor(t, 2*time.Second, "store reads", func() bool { return s.reads.Load() >= target })
}

func TestFollowerNeverOlder(t *testing.T) {
	s := &fakeStore{}
	s.set(Revision{}, ErrNone)
	rec := newRecorder()
	f := NewFollower(s, rec.apply, nil)
	f.poll = 5 * time.Millisecond
	run(t, f)
	s.waitReads(t, 3)
	if f.Applied() != 0 || f.Degraded() {
		t.Fatalf("empty store: Applied %d, Degraded %v", f.Applied(), f.Degraded())
	}
	s.set(Revision{Number: 3, Settings: settings(3)}, nil)
	waitFor(t, time.Second, "revision 3", func() bool { return f.Applied() == 3 })
	// The store goes back (a restored backup, a stale replica): keep 3.
	s.set(Revision{Number: 2, Settings: settings(2)}, nil)
	s.waitReads(t, 5)
	s.set(Revision{Number: 3, Settings: settings(9)}, nil)
	s.waitReads(t, 5)
	if cur, _ := f.Current(); cur.Number != 3 || cur.Settings.Scanner.Thresholds.Quarantine != 3 {
		t.Errorf("Current = %+v, want the first revision 3", cur)
	}
	if got := rec.calls(); len(got) != 1 {
		t.Errorf("apply calls = %v, want [3]", got)
	}
}

func TestFollowerApplyError(t *testing.T) {
	s := openBolt(t)
	ctx := t.Context()
	rec := newRecorder()
	rec.fail[2] = true
	counting := &countingStore{Store: s}
	f := NewFollower(counting, rec.apply, nil)
	f.poll = 5 * time.Millisecond
	run(t, f)
	if _, err := s.Put(ctx, settings(1), "admin", "", 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "revision 1", func() bool { return f.Applied() == 1 })
	if _, err := s.Put(ctx, settings(2), "admin", "", 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "apply error", func() bool { return f.ApplyError() != nil })
	// Put's own announcement may race the poll and retry once; after that
	// polls leave the failed revision alone.
	time.Sleep(50 * time.Millisecond)
	tried := len(rec.calls())
	counting.waitReads(t, 10)
	if got := rec.calls(); len(got) != tried || tried > 3 {
		t.Errorf("apply calls = %v: polls must not retry a failed revision", got)
	}
	if cur, _ := f.Current(); cur.Number != 1 || f.Applied() != 1 {
		t.Errorf("after a failed apply: Current %d, want the last good 1", cur.Number)
	}
	// An announcement (config push) retries it.
	if err := s.Announce(ctx, 2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "retry on announcement", func() bool { return len(rec.calls()) == tried+1 })
	// A newer revision is applied and clears the error.
	if _, err := s.Put(ctx, settings(3), "admin", "", 2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "revision 3", func() bool { return f.Applied() == 3 })
	if f.ApplyError() != nil {
		t.Errorf("ApplyError = %v after a good revision", f.ApplyError())
	}
}

type countingStore struct {
	Store
	reads atomic.Int64
}

func (s *countingStore) Current(ctx context.Context) (Revision, error) {
	s.reads.Add(1)
	return s.Store.Current(ctx)
}

func (s *countingStore) waitReads(t *testing.T, n int64) {
	t.Helper()
	target := s.reads.Load() + n
	waitFor(t, 2*time.Second, "store reads", func() bool { return s.reads.Load() >= target })
}

// TestFollowerOutage: with Redis stopped the node keeps the last good
// settings and says Degraded; when Redis is back it recovers by itself and
// applies what changed.
func TestFollowerOutage(t *testing.T) {
	r := testenv.StartRedis(t)
	w := NewRedis(redisClient(t, r))
	ctx := t.Context()
	if _, err := w.Put(ctx, settings(1), "admin", "", 0); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	f := NewFollower(NewRedis(redisClient(t, r)), rec.apply, nil)
	run(t, f)
	waitFor(t, time.Second, "revision 1", func() bool { return f.Applied() == 1 })

	r.Stop()
	waitFor(t, 3*time.Second, "Degraded", f.Degraded)
	if cur, ok := f.Current(); !ok || cur.Number != 1 {
		t.Errorf("during the outage Current = %+v, %v; want the last good 1", cur, ok)
	}
	r.Start()
	waitFor(t, 3*time.Second, "recovery", func() bool { return !f.Degraded() })
	if _, err := w.Put(ctx, settings(2), "admin", "", 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "revision 2 after the outage", func() bool { return f.Applied() == 2 })
}
