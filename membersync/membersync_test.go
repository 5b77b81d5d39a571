package membersync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/members"
	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/spool"
	"github.com/mxgate/mxgate/testenv"
)

// flakyStore is a members.Store that can be made to fail or to hang, as
// Redis does when it is down or unreachable.
type flakyStore struct {
	members.Store
	fail atomic.Bool
	hang atomic.Bool

	mu    sync.Mutex
	beats map[string]time.Time // last successful heartbeat per id
}

func newFlakyStore() *flakyStore {
	return &flakyStore{Store: members.NewMemory(), beats: map[string]time.Time{}}
}

var errDown = errors.New("dial tcp 127.0.0.1:6379: connection refused")

func (s *flakyStore) down(ctx context.Context) error {
	if s.hang.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	if s.fail.Load() {
		return errDown
	}
	return nil
}

func (s *flakyStore) Heartbeat(ctx context.Context, m members.Member, ttl time.Duration) error {
	if err := s.down(ctx); err != nil {
		return err
	}
	err := s.Store.Heartbeat(ctx, m, ttl)
	if err == nil {
		s.mu.Lock()
		s.beats[m.ID] = time.Now()
		s.mu.Unlock()
	}
	return err
}

func (s *flakyStore) Live(ctx context.Context) ([]members.Member, error) {
	if err := s.down(ctx); err != nil {
		return nil, err
	}
	return s.Store.Live(ctx)
}

func (s *flakyStore) lastBeat(id string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.beats[id]
}

// peer stands in for a peer client: it scans on that node's real pool
// unless the node is "down".
type peer struct {
	pool   *scanner.Pool
	down   atomic.Bool
	closed atomic.Int64
}

func (p *peer) Scan(ctx context.Context, m *scanner.Message) (scanner.Verdict, error) {
	if p.down.Load() {
		return scanner.Verdict{}, errors.New("peer: connection refused")
	}
	return p.pool.Scan(ctx, m)
}

func (p *peer) Close() { p.closed.Add(1) }

// node is one cluster node's own record, changed by the tests.
type node struct {
	mu  sync.Mutex
	rec members.Member
}

func (n *node) self() members.Member {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.rec
}

func (n *node) set(f func(m *members.Member)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f(&n.rec)
}

// cluster is n1 (the node under test, dispatching) plus peers that
// heartbeat into the same store.
type cluster struct {
	t     *testing.T
	store *flakyStore
	nodes map[string]*node
	pools map[string]*scanner.Pool
	peers map[string]*peer // clients n1 dials, by id

	mu      sync.Mutex
	mode    string
	weights map[string]int
	dials   map[string]int // by id/addr

	disp *scanner.Dispatcher
	reg  *prometheus.Registry
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newCluster makes nodes with the given weights ("n1" first); every one
// has a real scanner pool.
func newCluster(t *testing.T, weights map[string]int) *cluster {
	t.Helper()
	c := &cluster{
		t: t, store: newFlakyStore(), nodes: map[string]*node{}, pools: map[string]*scanner.Pool{},
		peers: map[string]*peer{}, mode: config.ModeActiveActive, dials: map[string]int{},
		disp: scanner.NewDispatcher(), reg: prometheus.NewRegistry(),
	}
	for _, id := range slices.Sorted(maps.Keys(weights)) {
		c.addNode(id, weights[id])
	}
	return c
}

func (c *cluster) addNode(id string, weight int) {
	o := scanner.DefaultOptions()
	o.NodeID, o.Workers, o.Queue, o.Logger = id, 4, 100, quiet
	p, err := scanner.NewPool(o)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(p.Close)
	c.pools[id] = p
	c.peers[id] = &peer{pool: p}
	c.nodes[id] = &node{rec: members.Member{ID: id, PeerAddr: "127.0.0.1:" + fmt.Sprint(8000+len(c.nodes)), Weight: weight, Healthy: true, Workers: 4}}
}

func (c *cluster) options(id string) Options {
	return Options{
		Self:       c.nodes[id].self,
		Store:      c.store,
		TTL:        time.Minute, // no expiry unless a test wants it
		Local:      c.pools[id],
		Dial:       c.dial,
		Dispatcher: c.disp,
		Mode: func() string {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.mode
		},
		Weights: func() map[string]int {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.weights
		},
		Logger:     quiet,
		Registerer: c.reg,
	}
}

func (c *cluster) dial(m members.Member) scanner.Worker {
	c.mu.Lock()
	c.dials[m.ID+"/"+m.PeerAddr]++
	c.mu.Unlock()
	p := c.peers[m.ID]
	if p == nil {
		c.t.Errorf("dialled unknown member %s", m.ID)
		return nil
	}
	return p
}

// dialled is how often n1 dialled id at its current address.
func (c *cluster) dialled(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dials[id+"/"+c.nodes[id].self().PeerAddr]
}

// patient answers whatever the caller's deadline.
type patient struct{ members.Store }

func (p patient) Heartbeat(ctx context.Context, m members.Member, ttl time.Duration) error {
	return p.Store.Heartbeat(context.WithoutCancel(ctx), m, ttl)
}

func (p patient) Live(ctx context.Context) ([]members.Member, error) {
	return p.Store.Live(context.WithoutCancel(ctx))
}

// forgetful accepts heartbeats without storing them.
type forgetful struct{ members.Store }

func (forgetful) Heartbeat(context.Context, members.Member, time.Duration) error { return nil }

func (c *cluster) setMode(m string) {
	c.mu.Lock()
	c.mode = m
	c.mu.Unlock()
}

func (c *cluster) setWeights(w map[string]int) {
	c.mu.Lock()
	c.weights = w
	c.mu.Unlock()
}

// beat heartbeats the peers (not n1) as their own runners would.
func (c *cluster) beat(ttl time.Duration, ids ...string) {
	c.t.Helper()
	for _, id := range ids {
		if err := c.store.Heartbeat(context.Background(), c.nodes[id].self(), ttl); err != nil {
			c.t.Fatal(err)
		}
	}
}

// dispatching renders the dispatcher's members as "n1:100 n2:50", an
// unhealthy one (engines down) as "n2:50!".
func dispatching(d *scanner.Dispatcher) string {
	var s []string
	for _, m := range d.Members() {
		mark := ""
		if m.Unhealthy {
			mark = "!"
		}
		s = append(s, fmt.Sprintf("%s:%d%s", m.Name, m.Weight, mark))
	}
	return strings.Join(s, " ")
}

const cleanMsg = "From: a@example.com\r\nTo: b@example.org\r\nSubject: hello\r\nMessage-ID: <1@example.com>\r\n\r\nhello\r\n"

// scan runs n scans through d and counts them by scanning node; it stops
// at the first failure.
func scan(t *testing.T, d scanner.Worker, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := range n {
		v, err := d.Scan(context.Background(), &scanner.Message{ID: fmt.Sprint("m", i), Body: spool.FromBytes([]byte(cleanMsg))})
		if err != nil {
			t.Errorf("scan %d: %v", i, err) // not Fatal: also called off the test goroutine
			return got
		}
		got[v.Node]++
	}
	return got
}

func TestDispatchSet(t *testing.T) {
	tests := []struct {
		name    string
		mode    string
		weights map[string]int     // override
		change  func(c *cluster)   // before the refresh
		opts    func(o *Options)   // n1's options
		want    string             // dispatcher members
		states  map[string]float64 // mxgate_cluster_members
		check   func(t *testing.T, c *cluster)
	}{
		{name: "active-active", want: "n1:100 n2:50 n3:50",
			states: map[string]float64{stateDispatching: 3}},
		{name: "empty mode is active-active", opts: func(o *Options) { o.Mode = func() string { return "" } }, want: "n1:100 n2:50 n3:50"},
		{name: "override wins", weights: map[string]int{"n1": 10, "n3": 80, "nX": 5}, want: "n1:10 n2:50 n3:80"},
		{name: "override drains", weights: map[string]int{"n2": 0}, want: "n1:100 n3:50",
			states: map[string]float64{stateDispatching: 2, stateDraining: 1}},
		{name: "own weight 0 drains", change: func(c *cluster) { c.nodes["n3"].set(func(m *members.Member) { m.Weight = 0 }) }, want: "n1:100 n2:50",
			states: map[string]float64{stateDispatching: 2, stateDraining: 1}},
		{name: "self drained", weights: map[string]int{"n1": 0}, want: "n2:50 n3:50"},
		{name: "unhealthy peer", change: func(c *cluster) { c.nodes["n2"].set(func(m *members.Member) { m.Healthy = false }) }, want: "n1:100 n3:50",
			states: map[string]float64{stateDispatching: 2, stateUnhealthy: 1}},
		{name: "engine down on a peer: the last resort", change: func(c *cluster) {
			c.nodes["n2"].set(func(m *members.Member) { m.Healthy, m.Down = false, []string{"clamd (connect)"} })
		}, want: "n1:100 n2:50! n3:50", states: map[string]float64{stateDispatching: 2, stateUnhealthy: 1}},
		{name: "engine down on self", change: func(c *cluster) {
			c.nodes["n1"].set(func(m *members.Member) { m.Healthy, m.Down = false, []string{"clamd (timeout)"} })
		}, want: "n1:100! n2:50 n3:50"},
		{name: "engine down and drained", weights: map[string]int{"n2": 0}, change: func(c *cluster) {
			c.nodes["n2"].set(func(m *members.Member) { m.Healthy, m.Down = false, []string{"clamd (connect)"} })
		}, want: "n1:100 n3:50"},
		{name: "unhealthy self", change: func(c *cluster) { c.nodes["n1"].set(func(m *members.Member) { m.Healthy = false }) }, want: "n2:50 n3:50"},
		{name: "peer without address", change: func(c *cluster) { c.nodes["n3"].set(func(m *members.Member) { m.PeerAddr = "" }) }, want: "n1:100 n2:50",
			states: map[string]float64{stateDispatching: 2, stateStandby: 1}},
		{name: "no Dial", opts: func(o *Options) { o.Dial = nil }, want: "n1:100"},
		{name: "active-passive", mode: config.ModeActivePassive, want: "n1:1",
			states: map[string]float64{stateDispatching: 1, stateStandby: 2}},
		{name: "active-passive ignores own weight and health", mode: config.ModeActivePassive,
			change: func(c *cluster) { c.nodes["n1"].set(func(m *members.Member) { m.Weight, m.Healthy = 0, false }) }, want: "n1:1"},
		{name: "unknown mode scans alone", mode: "active-everything", want: "n1:1"},
		{name: "nil Mode is active-active", opts: func(o *Options) { o.Mode = nil }, want: "n1:100 n2:50 n3:50"},
		{name: "nil Weights", weights: map[string]int{"n2": 0}, opts: func(o *Options) { o.Weights = nil }, want: "n1:100 n2:50 n3:50"},
		{name: "draining alone still scans its own sessions", change: func(c *cluster) {
			c.nodes["n1"].set(func(m *members.Member) { m.Healthy = false })
			c.nodes["n2"].set(func(m *members.Member) { m.Weight = 0 })
			c.nodes["n3"].set(func(m *members.Member) { m.Healthy = false })
		}, want: "n1:1"},
		{name: "self missing from the store's answer", opts: func(o *Options) { o.Store = forgetful{o.Store} },
			// We know ourselves without the store.
			want: "n1:100 n2:50 n3:50"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t, map[string]int{"n1": 100, "n2": 50, "n3": 50})
			if tt.mode != "" {
				c.setMode(tt.mode)
			}
			c.setWeights(tt.weights)
			o := c.options("n1")
			if tt.opts != nil {
				tt.opts(&o)
			}
			r := New(o)
			r.Refresh(context.Background()) // n1 in the store
			if tt.change != nil {
				tt.change(c)
			}
			c.beat(time.Minute, "n2", "n3")
			r.Refresh(context.Background())
			if got := dispatching(c.disp); got != tt.want {
				t.Errorf("dispatcher %q, want %q", got, tt.want)
			}
			for state, want := range tt.states {
				if got := gatherValue(t, c.reg, "mxgate_cluster_members", "state", state); got != want {
					t.Errorf("members{state=%s} = %g, want %g", state, got, want)
				}
			}
			if r.Degraded() {
				t.Error("degraded")
			}
			// Every dispatcher member scans on its own node.
			for _, m := range c.disp.Members() {
				v, err := m.Worker.Scan(context.Background(), &scanner.Message{ID: "x", Body: spool.FromBytes([]byte(cleanMsg))})
				if err != nil || v.Node != m.Name {
					t.Errorf("member %s scanned on %q: %v", m.Name, v.Node, err)
				}
			}
		})
	}
}

// The distribution: 100/50/50 within 3 % over 3000 scans, with the
// membership refreshing (and so calling SetMembers) all along, and a
// weight override changing in the middle.
func TestDistribution(t *testing.T) {
	c := newCluster(t, map[string]int{"n1": 100, "n2": 50, "n3": 50})
	r := New(c.options("n1"))
	total := map[string]int{}
	for range 30 {
		c.beat(time.Minute, "n2", "n3")
		r.Refresh(context.Background())
		for id, n := range scan(t, c.disp, 100) {
			total[id] += n
		}
	}
	want := map[string]int{"n1": 1500, "n2": 750, "n3": 750}
	for id, w := range want {
		if d := total[id] - w; d*100 > 3*w || -d*100 > 3*w {
			t.Errorf("%s scanned %d, want %d ± 3 %%", id, total[id], w)
		}
		// Refreshes keep the round robin state: exact, in fact.
		if total[id] != w {
			t.Errorf("%s scanned %d, want exactly %d", id, total[id], w)
		}
	}

	// Weights overridden in the cluster config: 100/150/50 from now on.
	c.setWeights(map[string]int{"n2": 150})
	total = map[string]int{}
	for range 30 {
		r.Refresh(context.Background())
		for id, n := range scan(t, c.disp, 100) {
			total[id] += n
		}
	}
	if total["n1"] != 1000 || total["n2"] != 1500 || total["n3"] != 500 {
		t.Errorf("after override: %v, want n1 1000 n2 1500 n3 500", total)
	}
	if n := c.dialled("n2"); n != 1 {
		t.Errorf("n2 dialled %d times over 60 refreshes", n)
	}
}

// Concurrent scans while Run refreshes all the time: no failure, and the
// race detector has a look at Runner, Dispatcher and Pool together.
func TestRunWhileScanning(t *testing.T) {
	c := newCluster(t, map[string]int{"n1": 100, "n2": 50, "n3": 50})
	c.beat(time.Minute, "n2", "n3")
	o := c.options("n1")
	o.TTL = 30 * time.Millisecond // refresh every 10 ms
	// Each refresh gives the store one interval (10 ms) to answer; on two
	// loaded cores a refresh goroutine can wait longer than that for a
	// CPU, and a timed-out refresh rightly falls back to the static peers
	// (none here). This test is about refreshes racing scans, so its store
	// always answers.
	o.Store = patient{c.store}
	r := New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	// Peers heartbeat with a long TTL so that only refreshes happen.
	for dispatching(c.disp) != "n1:100 n2:50 n3:50" {
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := map[string]int{}
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := scan(t, c.disp, 500)
			mu.Lock()
			for id, n := range got {
				total[id] += n
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	cancel()
	<-done // Run returns once ctx ends
	for id, w := range map[string]int{"n1": 1500, "n2": 750, "n3": 750} {
		if d := total[id] - w; d*100 > 3*w || -d*100 > 3*w {
			t.Errorf("%s scanned %d, want %d ± 3 %%", id, total[id], w)
		}
	}
}

func TestModeSwitch(t *testing.T) {
	c := newCluster(t, map[string]int{"n1": 100, "n2": 50, "n3": 50})
	r := New(c.options("n1"))
	steps := []struct {
		mode string
		want map[string]int // of 200 scans
	}{
		{config.ModeActiveActive, map[string]int{"n1": 100, "n2": 50, "n3": 50}},
		{config.ModeActivePassive, map[string]int{"n1": 200}},
		{config.ModeActiveActive, map[string]int{"n1": 100, "n2": 50, "n3": 50}},
		{config.ModeActivePassive, map[string]int{"n1": 200}},
	}
	for i, s := range steps {
		c.setMode(s.mode)
		c.beat(time.Minute, "n2", "n3")
		r.Refresh(context.Background())
		if got := scan(t, c.disp, 200); !maps.Equal(got, s.want) {
			t.Errorf("step %d (%s): %v, want %v", i, s.mode, got, s.want)
		}
	}
}

// A node that stops heartbeating (killed) leaves the dispatcher within
// 2×TTL of its last heartbeat, no scan fails meanwhile (the dispatcher
// retries elsewhere), and the node is used again once it is back.
func TestExpiryAndReturn(t *testing.T) {
	const ttl = 600 * time.Millisecond
	c := newCluster(t, map[string]int{"n1": 100, "n2": 50, "n3": 50})
	runners := map[string]context.CancelFunc{}
	var wg sync.WaitGroup
	start := func(id string) {
		o := c.options(id)
		o.TTL = ttl
		if id != "n1" {
			// The peers' own dispatchers, unused here.
			o.Dispatcher, o.Dial, o.Registerer = scanner.NewDispatcher(), nil, nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		runners[id] = cancel
		r := New(o)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Run(ctx)
		}()
	}
	defer wg.Wait()
	defer func() {
		for _, cancel := range runners {
			cancel()
		}
	}()
	for _, id := range []string{"n1", "n2", "n3"} {
		start(id)
	}
	waitFor(t, c.disp, "n1:100 n2:50 n3:50", 2*ttl)

	// Load all along: no scan may fail.
	stop := make(chan struct{})
	loadDone := make(chan map[string]int)
	go func() {
		total := map[string]int{}
		for {
			select {
			case <-stop:
				loadDone <- total
				return
			default:
			}
			for id, n := range scan(t, c.disp, 10) {
				total[id] += n
			}
		}
	}()

	// kill -9 n2: its runner stops and its scans fail at once.
	c.peers["n2"].down.Store(true)
	runners["n2"]()
	waitFor(t, c.disp, "n1:100 n3:50", 3*ttl)
	gone := time.Since(c.store.lastBeat("n2"))
	if gone > 2*ttl {
		t.Errorf("n2 dropped out %s after its last heartbeat, want ≤ 2×TTL = %s", gone, 2*ttl)
	}
	t.Logf("n2 dropped out %s after its last heartbeat (TTL %s)", gone, ttl)
	if n := c.peers["n2"].closed.Load(); n != 1 {
		t.Errorf("n2's client closed %d times, want 1", n)
	}

	// n2 comes back.
	c.peers["n2"].down.Store(false)
	start("n2")
	waitFor(t, c.disp, "n1:100 n2:50 n3:50", ttl)
	time.Sleep(ttl / 2) // some scans on n2 again
	close(stop)
	total := <-loadDone
	if total["n2"] == 0 || total["n1"] == 0 || total["n3"] == 0 {
		t.Errorf("scans by node %v", total)
	}
	if n := c.dialled("n2"); n != 2 {
		t.Errorf("n2 dialled %d times, want 2 (once per stay)", n)
	}
}

// waitFor polls the dispatcher until its members are want.
func waitFor(t *testing.T, d *scanner.Dispatcher, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := dispatching(d)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("dispatcher %q after %s, want %q", got, within, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestDegradedFallback(t *testing.T) {
	c := newCluster(t, map[string]int{"n1": 100, "n2": 50, "n3": 50})
	c.addNode("n9", 0)
	o := c.options("n1")
	o.TTL = 300 * time.Millisecond // a hanging store costs TTL/3
	o.Static = []members.Member{
		{ID: "n1", PeerAddr: "127.0.0.1:8000", Weight: 100}, // ourselves: Local is used
		{ID: "n2", PeerAddr: c.nodes["n2"].self().PeerAddr, Weight: 50},
		{ID: "n9", PeerAddr: "127.0.0.1:8099", Weight: 25}, // static only
	}
	r := New(o)
	c.beat(time.Minute, "n2", "n3")
	r.Refresh(context.Background())
	if got := dispatching(c.disp); got != "n1:100 n2:50 n3:50" || r.Degraded() {
		t.Fatalf("healthy store: %q degraded=%v", got, r.Degraded())
	}

	for _, how := range []string{"fail", "hang"} {
		t.Run(how, func(t *testing.T) {
			if how == "fail" {
				c.store.fail.Store(true)
			} else {
				c.store.hang.Store(true)
			}
			r.Refresh(context.Background())
			if got := dispatching(c.disp); got != "n1:100 n2:50 n9:25" || !r.Degraded() {
				t.Errorf("store down: %q degraded=%v", got, r.Degraded())
			}
			if ids := ids(r.Members()); ids != "n1,n2,n9" {
				t.Errorf("members while degraded: %s", ids)
			}
			got := scan(t, c.disp, 175)
			if !maps.Equal(got, map[string]int{"n1": 100, "n2": 50, "n9": 25}) {
				t.Errorf("scans while degraded: %v", got)
			}
			// Weight overrides (last good config) still apply.
			c.setWeights(map[string]int{"n9": 0})
			r.Refresh(context.Background())
			if got := dispatching(c.disp); got != "n1:100 n2:50" {
				t.Errorf("override while degraded: %q", got)
			}
			c.setWeights(nil)

			c.store.fail.Store(false)
			c.store.hang.Store(false)
			c.beat(time.Minute, "n2", "n3")
			r.Refresh(context.Background())
			if got := dispatching(c.disp); got != "n1:100 n2:50 n3:50" || r.Degraded() {
				t.Errorf("store back: %q degraded=%v", got, r.Degraded())
			}
		})
	}
	if n := c.peers["n9"].closed.Load(); n != 2 {
		t.Errorf("static-only n9 closed %d times after two outages, want 2", n)
	}
	if n := gatherValue(t, c.reg, "mxgate_membership_store_errors_total", "", ""); n != 4 {
		t.Errorf("store errors %g, want 4", n)
	}
}

// Run recovers by itself when the store comes back, and a store that hangs
// costs one refresh interval, not the heartbeat.
func TestDegradedRecoversInRun(t *testing.T) {
	c := newCluster(t, map[string]int{"n1": 100, "n2": 50})
	o := c.options("n1")
	o.TTL = 150 * time.Millisecond
	o.Static = []members.Member{{ID: "n2", PeerAddr: c.nodes["n2"].self().PeerAddr, Weight: 7}}
	r := New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	defer func() { cancel(); <-done }()
	c.beat(time.Minute, "n2")
	waitFor(t, c.disp, "n1:100 n2:50", time.Second)
	c.store.hang.Store(true)
	waitFor(t, c.disp, "n1:100 n2:7", time.Second)
	if !r.Degraded() {
		t.Error("not degraded")
	}
	c.store.hang.Store(false)
	waitFor(t, c.disp, "n1:100 n2:50", time.Second)
	if r.Degraded() {
		t.Error("still degraded")
	}
	if got := ids(r.Members()); got != "n1,n2" {
		t.Errorf("members %s", got)
	}
}

func TestPeerClientCache(t *testing.T) {
	c := newCluster(t, map[string]int{"n1": 100, "n2": 50})
	r := New(c.options("n1"))
	for range 10 {
		c.beat(time.Minute, "n2")
		r.Refresh(context.Background())
	}
	old := c.nodes["n2"].self().PeerAddr
	if c.dials["n2/"+old] != 1 {
		t.Errorf("dials %v", c.dials)
	}
	// n2 restarts on another address: a new client, the old one closed.
	c.nodes["n2"].set(func(m *members.Member) { m.PeerAddr = "127.0.0.1:9999" })
	c.beat(time.Minute, "n2")
	r.Refresh(context.Background())
	if c.dials["n2/127.0.0.1:9999"] != 1 || c.peers["n2"].closed.Load() != 1 {
		t.Errorf("dials %v, closed %d", c.dials, c.peers["n2"].closed.Load())
	}
	// Drained: no client kept.
	c.setWeights(map[string]int{"n2": 0})
	r.Refresh(context.Background())
	if c.peers["n2"].closed.Load() != 2 || len(r.peers) != 0 {
		t.Errorf("closed %d, cached %d", c.peers["n2"].closed.Load(), len(r.peers))
	}
}

func TestNewDefaultsAndPanics(t *testing.T) {
	c := newCluster(t, map[string]int{"n1": 1})
	r := New(Options{Self: c.nodes["n1"].self, Store: c.store, Dispatcher: c.disp, Local: c.pools["n1"]})
	if r.o.TTL != DefaultTTL || r.interval() != time.Second || r.log == nil {
		t.Errorf("ttl %s interval %s", r.o.TTL, r.interval())
	}
	for name, o := range map[string]Options{
		"Self":       {Store: c.store, Dispatcher: c.disp},
		"Store":      {Self: c.nodes["n1"].self, Dispatcher: c.disp},
		"Dispatcher": {Self: c.nodes["n1"].self, Store: c.store},
	} {
		func() {
			defer func() {
				if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), name) {
					t.Errorf("missing %s: panic %v", name, p)
				}
			}()
			New(o)
		}()
	}
	// Registering twice with one registry is a programming error too.
	reg := prometheus.NewRegistry()
	New(Options{Self: c.nodes["n1"].self, Store: c.store, Dispatcher: c.disp, Registerer: reg})
	func() {
		defer func() {
			if recover() == nil {
				t.Error("second registration did not panic")
			}
		}()
		New(Options{Self: c.nodes["n1"].self, Store: c.store, Dispatcher: c.disp, Registerer: reg})
	}()
}

// gatherValue returns the value of one metric series from reg.
func gatherValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	return testenv.MetricValue(t, reg, name, label, value)
}

// A member whose heartbeat expires is remembered as gone, as it last
// described itself, until it comes back; a degraded view (the static
// peers) neither adds nor removes any.
func TestGone(t *testing.T) {
	c := newCluster(t, map[string]int{"n1": 100, "n2": 50, "n3": 50})
	o := c.options("n1")
	o.Static = []members.Member{{ID: "n2", PeerAddr: c.nodes["n2"].self().PeerAddr, Weight: 50}}
	r := New(o)
	c.beat(time.Minute, "n2", "n3")
	r.Refresh(context.Background())
	if g := ids(r.Gone()); g != "" {
		t.Fatalf("gone with everyone live: %q", g)
	}
	steps := []struct {
		name   string
		expire []string // heartbeat again with a TTL that ends before the refresh
		beat   []string // heartbeat for a minute
		fail   bool     // the store fails
		want   string
	}{
		{"n3 expires", []string{"n3"}, nil, false, "n3"},
		{"store down: the static view adds none", nil, nil, true, "n3"},
		{"store back, n2 expires too", []string{"n2"}, nil, false, "n2,n3"},
		{"n3 comes back", nil, []string{"n3"}, false, "n2"},
		{"n2 comes back", nil, []string{"n2"}, false, ""},
	}
	for _, s := range steps {
		c.store.fail.Store(false)
		c.beat(10*time.Millisecond, s.expire...)
		c.beat(time.Minute, s.beat...)
		c.store.fail.Store(s.fail)
		time.Sleep(30 * time.Millisecond)
		r.Refresh(context.Background())
		if g := ids(r.Gone()); g != s.want {
			t.Errorf("%s: gone %q, want %q", s.name, g, s.want)
		}
	}
	// One goes twice: its newer record is kept, once.
	c.store.fail.Store(false)
	c.beat(10*time.Millisecond, "n3")
	time.Sleep(30 * time.Millisecond)
	r.Refresh(context.Background())
	if g := r.Gone(); len(g) != 1 || g[0].ID != "n3" || g[0].Seen.IsZero() {
		t.Errorf("gone after n3 left again: %+v", g)
	}
}

// Gone is bounded, keeping the most recently seen.
func TestGoneBounded(t *testing.T) {
	var old []members.Member
	t0 := time.Now()
	for i := range maxGone + 5 {
		old = append(old, members.Member{ID: fmt.Sprintf("x%03d", i), Seen: t0.Add(time.Duration(i) * time.Second)})
	}
	g := updateGone(nil, old, nil)
	if len(g) != maxGone || g[0].ID != "x005" || g[len(g)-1].ID != fmt.Sprintf("x%03d", maxGone+4) {
		t.Errorf("gone %d from %s to %s, want %d from x005", len(g), g[0].ID, g[len(g)-1].ID, maxGone)
	}
}
