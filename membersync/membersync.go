// Package membersync keeps this node's record live in the membership store
// (package members) and its scan dispatcher in step with the cluster:
// every TTL/3 it heartbeats, reads the live members and hands the
// dispatcher the members the cluster mode allows, Self through the local pool and the others
// through peer clients. While the store cannot be read it falls back to the
// static peers of the node file and says so (Degraded); it recovers by
// itself on the first good read.
package membersync

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/members"
	"github.com/mxgate/mxgate/scanner"
)

// DefaultTTL is the heartbeat TTL when Options.TTL is 0.
const DefaultTTL = 3 * time.Second

// Options configure a Runner. Self, Store and Dispatcher are required.
type Options struct {
	// Self returns this node's current record (id, peer address, weight,
	// health, load, master, revision); called on every heartbeat.
	Self  func() members.Member
	Store members.Store
	// TTL is how long a heartbeat keeps a member live (default 3 s); the
	// Runner heartbeats every TTL/3, so two lost heartbeats in a row do not
	// drop a member, and a member that stopped drops out of the dispatcher
	// within TTL + 2×TTL/3 < 2×TTL.
	TTL time.Duration
	// Static are the node file's peers, dispatched to while the store is
	// down. Their Healthy field is not looked at: nothing says whether they
	// are, and a dead one costs a retry on another member.
	Static []members.Member
	// Local scans on this node (its pool); it is Self's worker, never
	// reached over HTTP.
	Local scanner.Worker
	// Dial returns the peer client of another member. It is called once
	// per member id and address; the result is kept while the member is in
	// use and closed (Close or CloseIdleConnections, if it has one) when it
	// drops out. Nil: no peers, Self only.
	Dial       func(m members.Member) scanner.Worker
	Dispatcher *scanner.Dispatcher
	// Mode returns config.ModeActiveActive or config.ModeActivePassive;
	// read on every refresh, so a change of the cluster config applies
	// within TTL/3. Nil means active-active. Anything else is treated as active-passive, which
	// works without any peer.
	Mode func() string
	// Weights returns the cluster config's per-node weight overrides (node
	// id → weight), which win over a member's own weight; read on every
	// refresh. May be nil, and may return nil.
	Weights    func() map[string]int
	Logger     *slog.Logger // nil = slog.Default()
	Registerer prometheus.Registerer
}

// Runner heartbeats and refreshes the dispatcher; see the package comment.
type Runner struct {
	o   Options
	log *slog.Logger
	met *metrics

	// refresh serialises Refresh (Run and callers), so the dispatcher
	// always gets the newest view last; it guards peers too.
	refresh sync.Mutex
	peers   map[peerKey]scanner.Worker

	mu       sync.Mutex
	view     []members.Member
	gone     []members.Member // see Gone; by id, at most maxGone
	lastLive []members.Member // the last view read from the store
	degraded bool
	badMode  string // last unknown mode warned about
}

// peerKey identifies a cached peer client: a member that comes back on
// another address gets a new one.
type peerKey struct{ id, addr string }

// New returns a Runner; it panics when Self, Store or Dispatcher is
// missing or the metrics cannot be registered (both programming errors,
// like prometheus.MustRegister).
func New(o Options) *Runner {
	switch {
	case o.Self == nil:
		panic("membersync: Options.Self is nil")
	case o.Store == nil:
		panic("membersync: Options.Store is nil")
	case o.Dispatcher == nil:
		panic("membersync: Options.Dispatcher is nil")
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Static = slices.Clone(o.Static)
	met, err := newMetrics(o.Registerer)
	if err != nil {
		panic("membersync: " + err.Error())
	}
	return &Runner{o: o, log: o.Logger, met: met, peers: map[peerKey]scanner.Worker{}}
}

// interval is the time between two heartbeats, and the time one
// heartbeat and read may take.
func (r *Runner) interval() time.Duration {
	return max(r.o.TTL/3, time.Millisecond)
}

// Run heartbeats and refreshes at once and then every TTL/3 until ctx
// ends. The record is not removed on the way out: it expires after TTL,
// and the other nodes have retried any scan sent to it meanwhile.
func (r *Runner) Run(ctx context.Context) {
	t := time.NewTicker(r.interval())
	defer t.Stop()
	for {
		r.Refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Members returns the last view: the live members as the store listed
// them, or while Degraded this node and the static peers.
func (r *Runner) Members() []members.Member {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.view)
}

// Gone returns the members that dropped out of the store's view while
// this runner watched (their heartbeat expired) and have not come back,
// each as it last described itself, sorted by id: a console shows them as
// gone rather than not at all. At most maxGone are kept, the most recently
// seen.
func (r *Runner) Gone() []members.Member {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.gone)
}

// maxGone bounds Gone: a cluster has a handful of nodes, and one that keeps
// coming back under new ids must not grow the list without end.
const maxGone = 32

// updateGone is gone after the view went from old to cur: the members of
// old missing from cur added (replacing an earlier record of the same id),
// the members of cur removed.
func updateGone(gone, old, cur []members.Member) []members.Member {
	live := func(id string) bool {
		return slices.ContainsFunc(cur, func(m members.Member) bool { return m.ID == id })
	}
	out := slices.DeleteFunc(slices.Clone(gone), func(m members.Member) bool { return live(m.ID) })
	for _, m := range old {
		if live(m.ID) {
			continue
		}
		out = slices.DeleteFunc(out, func(g members.Member) bool { return g.ID == m.ID })
		out = append(out, m)
	}
	if len(out) > maxGone {
		slices.SortFunc(out, func(a, b members.Member) int { return b.Seen.Compare(a.Seen) })
		out = out[:maxGone]
	}
	sortByID(out)
	return out
}

// Degraded reports whether the last heartbeat or read of the store failed,
// so that the dispatcher uses the static peers.
func (r *Runner) Degraded() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.degraded
}

// Refresh heartbeats, reads the live members and updates the dispatcher
// now. It returns when done; a store that does not answer within TTL/3
// counts as down.
func (r *Runner) Refresh(ctx context.Context) {
	r.refresh.Lock()
	defer r.refresh.Unlock()

	self := r.o.Self()
	opCtx, cancel := context.WithTimeout(ctx, r.interval())
	err := r.o.Store.Heartbeat(opCtx, self, r.o.TTL)
	var live []members.Member
	if err == nil {
		live, err = r.o.Store.Live(opCtx)
	}
	cancel()
	if err != nil && ctx.Err() != nil {
		return // shutting down, not a store failure
	}

	var view []members.Member
	if err != nil {
		r.met.storeErrors.Inc()
		// Self is known without the store; the static peers stand in
		// for the others.
		self.Seen = time.Now()
		view = append(view, self)
		for _, m := range r.o.Static {
			if m.ID != self.ID {
				m.Healthy = true
				view = append(view, m)
			}
		}
		sortByID(view)
	} else {
		view = live
	}

	mode := r.mode()
	weights := map[string]int(nil)
	if r.o.Weights != nil {
		weights = r.o.Weights()
	}
	set, states := r.dispatchSet(self, view, mode, weights)
	r.o.Dispatcher.SetMembers(set)
	r.met.set(states)

	r.mu.Lock()
	old, wasDegraded := r.view, r.degraded
	r.view, r.degraded = view, err != nil
	if err == nil {
		// Only views read from the store say who left: while degraded
		// the view is the static peers, alive or not.
		r.gone = updateGone(r.gone, r.lastLive, view)
		r.lastLive = view
	}
	r.mu.Unlock()

	switch {
	case err != nil && !wasDegraded:
		r.log.Warn("membership store unavailable, dispatching to the static peers", "err", err, "members", ids(view))
	case err == nil && wasDegraded:
		r.log.Info("membership store available again", "members", ids(view))
	}
	if err == nil && !wasDegraded {
		logChanges(r.log, old, view)
	}
}

// dispatchSet turns the view into dispatcher members and counts every
// member of the view by state for the metrics. The set is ordered by id so
// that the round robin's ties break the same way on every refresh.
func (r *Runner) dispatchSet(self members.Member, view []members.Member, mode string, weights map[string]int) ([]scanner.Member, map[string]int) {
	weight := func(m members.Member) int {
		if w, ok := weights[m.ID]; ok {
			return w
		}
		return m.Weight
	}
	states := map[string]int{}
	var set []scanner.Member
	used := map[peerKey]bool{}
	if mode == config.ModeActivePassive {
		// The master scans alone, whatever its weight: there is no one
		// to share with.
		set = append(set, scanner.Member{Name: self.ID, Weight: 1, Worker: r.o.Local})
	}
	cands := view
	if !slices.ContainsFunc(view, func(m members.Member) bool { return m.ID == self.ID }) {
		// Our own heartbeat may be missing from the store's answer
		// (written after the read on another connection, say); we know
		// ourselves anyway.
		cands = append(slices.Clone(view), self)
		sortByID(cands)
	}
	for _, m := range cands {
		isSelf := m.ID == self.ID
		if isSelf {
			m = self // fresher than the store's copy
		}
		w := weight(m)
		switch {
		case mode == config.ModeActivePassive:
			if isSelf {
				states[stateDispatching]++
			} else {
				states[stateStandby]++
			}
			continue
		case !m.Healthy && len(m.Down) == 0:
			// Draining.
			states[stateUnhealthy]++
			continue
		case w <= 0:
			states[stateDraining]++
			continue
		}
		var wk scanner.Worker
		if isSelf {
			wk = r.o.Local
		} else if m.PeerAddr != "" && r.o.Dial != nil {
			k := peerKey{m.ID, m.PeerAddr}
			if wk = r.peers[k]; wk == nil {
				wk = r.o.Dial(m)
				r.peers[k] = wk
			}
			used[k] = true
		}
		if wk == nil {
			states[stateStandby]++ // no way to reach it
			continue
		}
		// A member whose engines are down is kept as the last resort: the
		// dispatcher tries it only when no healthy member is left.
		unhealthy := !m.Healthy
		if unhealthy {
			states[stateUnhealthy]++
		} else {
			states[stateDispatching]++
		}
		set = append(set, scanner.Member{Name: m.ID, Weight: w, Worker: wk, Unhealthy: unhealthy})
	}
	for k, wk := range r.peers {
		if !used[k] {
			delete(r.peers, k)
			closeWorker(wk)
		}
	}
	if len(set) == 0 {
		// Draining or weight 0 keeps other masters' scans away, but this
		// node's own sessions (a drain after SIGTERM, a cluster of one)
		// must still be scanned somewhere rather than all answered 451.
		set = append(set, scanner.Member{Name: self.ID, Weight: 1, Worker: r.o.Local})
	}
	return set, states
}

func (r *Runner) mode() string {
	if r.o.Mode == nil {
		return config.ModeActiveActive
	}
	switch m := r.o.Mode(); m {
	case config.ModeActiveActive, config.ModeActivePassive:
		return m
	case "":
		return config.ModeActiveActive
	default:
		r.mu.Lock()
		warn := r.badMode != m
		r.badMode = m
		r.mu.Unlock()
		if warn {
			r.log.Warn("unknown cluster mode, scanning on this node alone", "mode", m)
		}
		return config.ModeActivePassive
	}
}

// closeWorker lets go of a peer client's connections once its member has
// dropped out; scans still running on it finish or are retried elsewhere.
func closeWorker(w scanner.Worker) {
	switch c := w.(type) {
	case interface{ Close() }:
		c.Close()
	case interface{ Close() error }:
		c.Close()
	case interface{ CloseIdleConnections() }:
		c.CloseIdleConnections()
	}
}

func logChanges(log *slog.Logger, old, cur []members.Member) {
	for _, m := range cur {
		if !slices.ContainsFunc(old, func(o members.Member) bool { return o.ID == m.ID }) {
			log.Info("cluster member joined", "member", m.ID, "peer", m.PeerAddr, "weight", m.Weight)
		}
	}
	for _, m := range old {
		if !slices.ContainsFunc(cur, func(c members.Member) bool { return c.ID == m.ID }) {
			log.Warn("cluster member left (heartbeat expired)", "member", m.ID, "last_seen", m.Seen)
		}
	}
}

func ids(ms []members.Member) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = m.ID
	}
	return strings.Join(s, ",")
}

func sortByID(ms []members.Member) {
	slices.SortFunc(ms, func(a, b members.Member) int { return strings.Compare(a.ID, b.ID) })
}
