package scanner

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

type fakeWorker struct {
	name  string
	err   error
	mu    sync.Mutex
	calls int
}

func (f *fakeWorker) Scan(context.Context, *Message) (Verdict, error) {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	if f.err != nil {
		return Verdict{}, f.err
	}
	return Verdict{Action: ActionDeliver, Node: f.name}, nil
}

func TestDispatcherWeights(t *testing.T) {
	a, b, c, z := &fakeWorker{name: "a"}, &fakeWorker{name: "b"}, &fakeWorker{name: "c"}, &fakeWorker{name: "z"}
	d := NewDispatcher(
		Member{Name: "a", Weight: 100, Worker: a},
		Member{Name: "b", Weight: 50, Worker: b},
		Member{Name: "z", Weight: 0, Worker: z},
		Member{Name: "c", Weight: 50, Worker: c},
	)
	m := newMsg("x")
	var seq []string
	for range 10000 {
		v, err := d.Scan(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		if len(seq) < 8 {
			seq = append(seq, v.Node)
		}
	}
	if a.calls != 5000 || b.calls != 2500 || c.calls != 2500 || z.calls != 0 {
		t.Errorf("calls a=%d b=%d c=%d z=%d", a.calls, b.calls, c.calls, z.calls)
	}
	// Smooth: interleaved, never a burst of one member.
	if got := strings.Join(seq, ""); got != "abcaabca" {
		t.Errorf("sequence %s", got)
	}
}

func TestDispatcherSmallWeights(t *testing.T) {
	// nginx's example: weights 5, 1, 1 give a a b a c a a (not a a a a a b c).
	a, b, c := &fakeWorker{name: "a"}, &fakeWorker{name: "b"}, &fakeWorker{name: "c"}
	d := NewDispatcher(Member{Name: "a", Weight: 5, Worker: a}, Member{Name: "b", Weight: 1, Worker: b}, Member{Name: "c", Weight: 1, Worker: c})
	var seq []string
	for range 7 {
		v, _ := d.Scan(context.Background(), newMsg("x"))
		seq = append(seq, v.Node)
	}
	if got := strings.Join(seq, ""); got != "aabacaa" {
		t.Errorf("sequence %s", got)
	}
}

func TestDispatcherFailover(t *testing.T) {
	bad := &fakeWorker{name: "bad", err: errors.New("peer unreachable")}
	good := &fakeWorker{name: "good"}
	d := NewDispatcher(Member{Name: "bad", Weight: 10, Worker: bad}, Member{Name: "good", Weight: 1, Worker: good})
	for range 20 {
		v, err := d.Scan(context.Background(), newMsg("x"))
		if err != nil || v.Node != "good" {
			t.Fatalf("got %v %v", v.Node, err)
		}
	}
	if bad.calls == 0 {
		t.Error("failing member was never tried")
	}
	if good.calls != 20 {
		t.Errorf("good member scanned %d of 20", good.calls)
	}
}

func TestDispatcherOverloadedMemberSkipped(t *testing.T) {
	busy := &fakeWorker{name: "busy", err: ErrOverloaded}
	idle := &fakeWorker{name: "idle"}
	d := NewDispatcher(Member{Name: "busy", Weight: 1, Worker: busy}, Member{Name: "idle", Weight: 1, Worker: idle})
	for range 4 {
		if v, err := d.Scan(context.Background(), newMsg("x")); err != nil || v.Node != "idle" {
			t.Fatalf("got %v %v", v.Node, err)
		}
	}
}

func TestDispatcherAllFail(t *testing.T) {
	e1, e2 := errors.New("one down"), ErrOverloaded
	w1, w2 := &fakeWorker{err: e1}, &fakeWorker{err: e2}
	d := NewDispatcher(Member{Name: "m1", Weight: 1, Worker: w1}, Member{Name: "m2", Weight: 3, Worker: w2}, Member{Name: "off", Weight: 0, Worker: &fakeWorker{}})
	_, err := d.Scan(context.Background(), newMsg("x"))
	if err == nil || !errors.Is(err, e1) || !errors.Is(err, ErrOverloaded) {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), "all 2 members failed") || w1.calls != 1 || w2.calls != 1 {
		t.Errorf("%v (calls %d %d)", err, w1.calls, w2.calls)
	}
}

func TestDispatcherNoMembers(t *testing.T) {
	for _, d := range []*Dispatcher{NewDispatcher(), NewDispatcher(Member{Name: "off", Weight: 0, Worker: &fakeWorker{}})} {
		if _, err := d.Scan(context.Background(), newMsg("x")); !errors.Is(err, errNoMember) {
			t.Errorf("got %v", err)
		}
	}
}

// cancelWorker fails because the caller's context ended.
type cancelWorker struct {
	cancel context.CancelFunc
	calls  int
}

func (c *cancelWorker) Scan(ctx context.Context, _ *Message) (Verdict, error) {
	c.calls++
	c.cancel()
	return Verdict{}, ctx.Err()
}

func TestDispatcherCallerCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	w1 := &cancelWorker{cancel: cancel}
	w2 := &fakeWorker{}
	d := NewDispatcher(Member{Name: "m1", Weight: 2, Worker: w1}, Member{Name: "m2", Weight: 1, Worker: w2})
	_, err := d.Scan(ctx, newMsg("x"))
	if !errors.Is(err, context.Canceled) || w2.calls != 0 {
		t.Errorf("got %v, second member called %d times", err, w2.calls)
	}
}

func TestDispatcherOverPools(t *testing.T) {
	o := quietOptions()
	o.Workers = 2
	p1 := poolWith(t, o)
	o.NodeID = "n2"
	p2 := poolWith(t, o)
	d := NewDispatcher(Member{Name: "n1", Weight: 1, Worker: p1}, Member{Name: "n2", Weight: 1, Worker: p2})
	nodes := map[string]int{}
	for range 10 {
		v, err := d.Scan(context.Background(), newMsg(textMsg("hi")))
		if err != nil {
			t.Fatal(err)
		}
		nodes[v.Node]++
	}
	if nodes["n1"] != 5 || nodes["n2"] != 5 {
		t.Errorf("nodes %v", nodes)
	}
}

// wm is a member name and weight for the SetMembers tables.
type wm struct {
	name   string
	weight int
}

// phase is a member set and the number of scans dispatched over it.
type phase struct {
	set   []wm
	scans int
}

func repeatPhase(set []wm, scans, times int) []phase {
	var ps []phase
	for range times {
		ps = append(ps, phase{set, scans})
	}
	return ps
}

func TestDispatcherSetMembers(t *testing.T) {
	abc := []wm{{"a", 100}, {"b", 50}, {"c", 50}}
	cba := []wm{{"c", 50}, {"b", 50}, {"a", 100}}
	abDrainC := []wm{{"a", 100}, {"b", 50}, {"c", 0}}
	ab := []wm{{"a", 100}, {"b", 50}}
	tests := []struct {
		name   string
		phases []phase
		want   map[string]int
		// sameAsStatic: the pick sequence must equal that of a
		// dispatcher over abc that is never updated.
		sameAsStatic bool
	}{
		{"refresh after every scan", repeatPhase(abc, 1, 3000), map[string]int{"a": 1500, "b": 750, "c": 750}, true},
		{"refresh at odd points", []phase{{abc, 7}, {abc, 13}, {abc, 1}, {abc, 999}, {abc, 1}, {abc, 1979}}, map[string]int{"a": 1500, "b": 750, "c": 750}, true},
		{"order changes", append(repeatPhase(abc, 10, 150), repeatPhase(cba, 10, 150)...), map[string]int{"a": 1500, "b": 750, "c": 750}, false},
		{"weight change", []phase{{abc, 1500}, {[]wm{{"a", 100}, {"b", 50}, {"c", 150}}, 1500}}, map[string]int{"a": 750 + 500, "b": 375 + 250, "c": 375 + 750}, false},
		{"drain and undrain", []phase{{abc, 1000}, {abDrainC, 1200}, {abc, 1000}}, map[string]int{"a": 500 + 800 + 500, "b": 250 + 400 + 250, "c": 250 + 0 + 250}, false},
		{"leave and return", []phase{{abc, 1000}, {ab, 1200}, {abc, 1000}}, map[string]int{"a": 500 + 800 + 500, "b": 250 + 400 + 250, "c": 250 + 0 + 250}, false},
		{"join", []phase{{ab, 1500}, {abc, 1000}}, map[string]int{"a": 1000 + 500, "b": 500 + 250, "c": 250}, false},
		{"everyone drained", []phase{{abc, 200}, {[]wm{{"a", 0}, {"b", 0}}, 0}, {abc, 200}}, map[string]int{"a": 200, "b": 100, "c": 100}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			workers := map[string]*fakeWorker{}
			members := func(set []wm) []Member {
				var ms []Member
				for _, m := range set {
					if workers[m.name] == nil {
						workers[m.name] = &fakeWorker{name: m.name}
					}
					ms = append(ms, Member{Name: m.name, Weight: m.weight, Worker: workers[m.name]})
				}
				return ms
			}
			d := NewDispatcher()
			static := NewDispatcher(members(abc)...)
			var seq, staticSeq strings.Builder
			for _, ph := range tt.phases {
				d.SetMembers(members(ph.set))
				for range ph.scans {
					v, err := d.Scan(context.Background(), newMsg("x"))
					if err != nil {
						t.Fatal(err)
					}
					seq.WriteString(v.Node)
					sv, _ := static.Scan(context.Background(), newMsg("x"))
					staticSeq.WriteString(sv.Node)
				}
			}
			// The static dispatcher shares the workers: count the
			// picks in the sequence instead of the workers' calls.
			for name := range workers {
				if got := strings.Count(seq.String(), name); got != tt.want[name] {
					t.Errorf("%s scanned %d, want %d", name, got, tt.want[name])
				}
			}
			if tt.sameAsStatic && seq.String() != staticSeq.String() {
				t.Errorf("updates changed the sequence:\n%.60s\n%.60s", seq.String(), staticSeq.String())
			}
		})
	}
}

func TestDispatcherDrainedMemberGetsNothing(t *testing.T) {
	a, b := &fakeWorker{name: "a"}, &fakeWorker{name: "b"}
	d := NewDispatcher(Member{Name: "a", Weight: 1, Worker: a}, Member{Name: "b", Weight: 1, Worker: b})
	d.Scan(context.Background(), newMsg("x"))
	d.Scan(context.Background(), newMsg("x"))
	d.SetMembers([]Member{{Name: "a", Weight: 1, Worker: a}, {Name: "b", Weight: 0, Worker: b}})
	for range 100 {
		if v, err := d.Scan(context.Background(), newMsg("x")); err != nil || v.Node != "a" {
			t.Fatalf("got %q %v", v.Node, err)
		}
	}
	if b.calls != 1 {
		t.Errorf("drained member scanned %d times, want the 1 before the drain", b.calls)
	}
	d.SetMembers(nil)
	if _, err := d.Scan(context.Background(), newMsg("x")); !errors.Is(err, errNoMember) {
		t.Errorf("empty set: %v", err)
	}
}

func TestDispatcherMembersAreCopies(t *testing.T) {
	in := []Member{{Name: "a", Weight: 1, Worker: &fakeWorker{}}, {Name: "b", Weight: 2, Worker: &fakeWorker{}}}
	d := NewDispatcher()
	d.SetMembers(in)
	in[0].Weight = 99
	got := d.Members()
	if len(got) != 2 || got[0].Name != "a" || got[0].Weight != 1 || got[1].Weight != 2 {
		t.Fatalf("members %+v", got)
	}
	got[1].Weight = 0
	if d.Members()[1].Weight != 2 {
		t.Error("Members returned the dispatcher's own slice")
	}
}

// swapWorker fails its first scan after replacing the dispatcher's
// members, as a peer that dies while the membership drops it would.
type swapWorker struct {
	d    *Dispatcher
	next []Member
}

func (s *swapWorker) Scan(context.Context, *Message) (Verdict, error) {
	s.d.SetMembers(s.next)
	return Verdict{}, errors.New("connection reset")
}

func TestDispatcherRetryUsesNewSet(t *testing.T) {
	good := &fakeWorker{name: "good"}
	d := NewDispatcher()
	dying := &swapWorker{d: d, next: []Member{{Name: "dying", Weight: 1, Worker: &fakeWorker{name: "again"}}, {Name: "good", Weight: 1, Worker: good}}}
	d.SetMembers([]Member{{Name: "dying", Weight: 1, Worker: dying}})
	v, err := d.Scan(context.Background(), newMsg("x"))
	if err != nil || v.Node != "good" {
		t.Fatalf("got %q %v", v.Node, err)
	}
}

func TestDispatcherConcurrentUpdates(t *testing.T) {
	a, b, c := &fakeWorker{name: "a"}, &fakeWorker{name: "b"}, &fakeWorker{name: "c"}
	sets := [][]Member{
		{{Name: "a", Weight: 100, Worker: a}, {Name: "b", Weight: 50, Worker: b}, {Name: "c", Weight: 50, Worker: c}},
		{{Name: "a", Weight: 100, Worker: a}, {Name: "b", Weight: 50, Worker: b}},
		{{Name: "c", Weight: 50, Worker: c}, {Name: "a", Weight: 100, Worker: a}, {Name: "b", Weight: 0, Worker: b}},
	}
	d := NewDispatcher(sets[0]...)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			d.SetMembers(sets[i%len(sets)])
			_ = d.Members()
		}
	}()
	var scans sync.WaitGroup
	for range 8 {
		scans.Add(1)
		go func() {
			defer scans.Done()
			for range 500 {
				if _, err := d.Scan(context.Background(), newMsg("x")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	scans.Wait()
	cancel()
	wg.Wait()
	if n := a.calls + b.calls + c.calls; n != 4000 {
		t.Errorf("%d scans, want 4000", n)
	}
}
