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
	d := NewDispatcher(Member{"a", 5, a}, Member{"b", 1, b}, Member{"c", 1, c})
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
	d := NewDispatcher(Member{"bad", 10, bad}, Member{"good", 1, good})
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
	d := NewDispatcher(Member{"busy", 1, busy}, Member{"idle", 1, idle})
	for range 4 {
		if v, err := d.Scan(context.Background(), newMsg("x")); err != nil || v.Node != "idle" {
			t.Fatalf("got %v %v", v.Node, err)
		}
	}
}

func TestDispatcherAllFail(t *testing.T) {
	e1, e2 := errors.New("one down"), ErrOverloaded
	w1, w2 := &fakeWorker{err: e1}, &fakeWorker{err: e2}
	d := NewDispatcher(Member{"m1", 1, w1}, Member{"m2", 3, w2}, Member{"off", 0, &fakeWorker{}})
	_, err := d.Scan(context.Background(), newMsg("x"))
	if err == nil || !errors.Is(err, e1) || !errors.Is(err, ErrOverloaded) {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), "all 2 members failed") || w1.calls != 1 || w2.calls != 1 {
		t.Errorf("%v (calls %d %d)", err, w1.calls, w2.calls)
	}
}

func TestDispatcherNoMembers(t *testing.T) {
	for _, d := range []*Dispatcher{NewDispatcher(), NewDispatcher(Member{"off", 0, &fakeWorker{}})} {
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
	d := NewDispatcher(Member{"m1", 2, w1}, Member{"m2", 1, w2})
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
	d := NewDispatcher(Member{"n1", 1, p1}, Member{"n2", 1, p2})
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
