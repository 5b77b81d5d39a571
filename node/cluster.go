package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgate/mxgate/cluster"
	"github.com/mxgate/mxgate/cluster/vrrp"
	"github.com/mxgate/mxgate/clusterconf"
	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/members"
	"github.com/mxgate/mxgate/membersync"
	"github.com/mxgate/mxgate/peer"
	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/store"
)

// sharedSettings are the parts of the cluster-wide settings that are read
// on every dispatch decision, swapped whole when a revision is applied.
type sharedSettings struct {
	v atomic.Pointer[clusterconf.Settings]
	// changed wakes the membership, so a new mode or weight reaches the
	// dispatcher with the revision rather than at the next heartbeat.
	changed chan struct{}
}

func newSharedSettings(cfg config.Config) *sharedSettings {
	s := &sharedSettings{changed: make(chan struct{}, 1)}
	first := clusterconf.FromConfig(cfg)
	s.v.Store(&first)
	return s
}

func (s *sharedSettings) set(v clusterconf.Settings) {
	s.v.Store(&v)
	select {
	case s.changed <- struct{}{}:
	default: // a wake-up is pending already
	}
}
func (s *sharedSettings) mode() string { return s.v.Load().Mode }

// authservID is the authserv-id of Authentication-Results under the
// cluster's settings now: scanner.auth.authserv_id, else hostname.
func (s *sharedSettings) authservID(hostname string) string {
	if id := s.v.Load().Scanner.Auth.AuthservID; id != "" {
		return id
	}
	return hostname
}
func (s *sharedSettings) weights() map[string]int { return s.v.Load().Weights }

// clusterParts are the pieces a clustered node runs besides a single one:
// the VRRP node, the peer scan API and the membership that feeds the
// dispatcher. On a single node all are nil and the methods say so.
type clusterParts struct {
	node     *cluster.Node
	peer     *peer.Server
	members  *membersync.Runner
	follower *clusterconf.Follower
	shared   *sharedSettings
	draining atomic.Bool
}

func newClusterParts(cfg config.Config, st *store.Backend, pool *scanner.Pool, d *scanner.Dispatcher, shared *sharedSettings,
	follower *clusterconf.Follower, sessions func() int, log *slog.Logger, reg prometheus.Registerer) (*clusterParts, error) {
	cp := &clusterParts{follower: follower, shared: shared}
	if !cfg.Cluster.Enabled {
		return cp, nil
	}
	var err error
	checks := map[string]func(context.Context) error{
		config.TrackDownstream: downstreamCheck(downstream(cfg)),
		config.TrackStore:      storeCheck(st),
		config.TrackEngines:    enginesCheck(pool),
	}
	if cp.node, err = cluster.New(clusterOptions(cfg, checks, log, reg)); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	peerConns, peerConnsPerIP := peerConnectionLimits(cfg)
	if cp.peer, err = peer.NewServer(peer.ServerOptions{
		NodeID: cfg.Node.ID, Secret: cfg.Cluster.Secret, Worker: pool, SpoolDir: cfg.Node.DataDir,
		MaxBytes: cfg.SMTP.MaxMessageBytes, Logger: log, Registerer: reg,
		Nonces: st.PeerNonces, MaxConnections: peerConns, MaxConnectionsPerIP: peerConnsPerIP,
	}); err != nil {
		return nil, fmt.Errorf("peer API: %w", err)
	}
	peerAddr := advertisedPeerAddr(cfg.Cluster.PeerListen, cp.node.Status().Source)
	var static []members.Member
	for _, p := range cfg.Cluster.Peers {
		static = append(static, members.Member{ID: p.ID, PeerAddr: p.Address, Weight: p.Weight, Healthy: true})
	}
	scanWorkers := workers(cfg)
	cp.members = membersync.New(membersync.Options{
		Self: func() members.Member {
			busy, _ := pool.Stats()
			var down []string
			if !cp.draining.Load() {
				down = pool.EnginesDown()
			}
			routers, changes := routerStates(cp.node.Status())
			return members.Member{
				ID: cfg.Node.ID, PeerAddr: peerAddr, Weight: cfg.Cluster.Weight,
				Healthy: !cp.draining.Load() && len(down) == 0, Down: down, Busy: busy, Workers: scanWorkers,
				Master: cp.node.IsMaster(), Revision: follower.Applied(),
				Sessions: sessions(), Routers: routers, Changes: changes,
			}
		},
		Store:  st.Members,
		TTL:    cfg.Cluster.MembershipTTL.Duration,
		Static: static,
		Local:  pool,
		// The runner keeps one client (one keep-alive pool) per member,
		// signing for that member's id: no other node accepts its requests.
		Dial: func(m members.Member) scanner.Worker {
			return peer.NewClient(cfg.Node.ID, m.ID, m.PeerAddr, cfg.Cluster.Secret)
		},
		Dispatcher: d,
		Mode:       shared.mode,
		Weights:    shared.weights,
		Logger:     log,
		Registerer: reg,
	})
	return cp, nil
}

// routerStates are the VRRP parts of this node's heartbeat: every virtual
// router's state, and the last members.MaxChanges transitions of them all,
// newest first.
func routerStates(st cluster.Status) ([]members.Router, []members.Change) {
	var rs []members.Router
	var cs []members.Change
	for _, in := range st.Instances {
		rs = append(rs, members.Router{VRID: in.VRID, VIP: in.VIP, State: in.State, Priority: in.EffectivePriority, Configured: in.Priority, Held: in.VIPHeld})
		for _, tr := range in.Recent {
			cs = append(cs, members.Change{Time: tr.Time, VRID: in.VRID, From: tr.From, To: tr.To, Reason: tr.Reason})
		}
	}
	slices.SortStableFunc(cs, func(a, b members.Change) int { return b.Time.Compare(a.Time) })
	return rs, cs[:min(len(cs), members.MaxChanges)]
}

// clusterOptions are the VRRP node's options from cfg; checks are the
// functions cluster.track names (all but the interface, which the cluster
// package watches itself).
func clusterOptions(cfg config.Config, checks map[string]func(context.Context) error, log *slog.Logger, reg prometheus.Registerer) cluster.Options {
	cl := cfg.Cluster
	o := cluster.Options{
		Interface:         cl.Interface,
		Checksum:          vrrp.ChecksumPseudoHeader,
		GARPRepeat:        cl.GARPRepeat,
		GARPRefresh:       cl.GARPRefresh.Duration,
		GARPMasterRefresh: cl.GARPMasterRefresh.Duration,
		Notify:            cl.Notify,
		NodeID:            cfg.Node.ID,
		Logger:            log,
		Registerer:        reg,
	}
	for _, in := range cl.VirtualRouters() {
		// Validate has checked every value; parsing again cannot fail.
		vip, _ := netip.ParsePrefix(in.VIP)
		o.Instances = append(o.Instances, cluster.Instance{
			VRID:         uint8(in.VRID),
			VIP:          vip,
			Priority:     uint8(in.Priority),
			Interval:     in.AdvertInterval.Duration,
			Preempt:      *in.Preempt,
			PreemptDelay: in.PreemptDelay.Duration,
			StartMaster:  in.StartState == config.StartStateMaster,
		})
	}
	if cl.Checksum == "message" {
		o.Checksum = vrrp.ChecksumMessageOnly
	}
	if cl.Source != "" {
		o.Source, _ = netip.ParseAddr(cl.Source)
	}
	for _, p := range cl.UnicastPeers {
		a, _ := netip.ParseAddr(p)
		o.UnicastPeers = append(o.UnicastPeers, a)
	}
	for _, t := range cl.Tracks() {
		iv, fall, rise := t.Timing()
		// The interface has no check function: nil tells cluster to watch the link.
		o.Track = append(o.Track, cluster.Track{Name: t.Check, Check: checks[t.Check], Weight: t.Weight, Fault: t.Fault, Interval: iv, Fall: fall, Rise: rise})
	}
	return o
}

// advertisedPeerAddr is the address other nodes reach this node's peer API
// on: the listen address, or with a wildcard host the node's own VRRP
// source address.
func advertisedPeerAddr(listen, source string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	wildcard := host == ""
	if a, err := netip.ParseAddr(host); err == nil && a.IsUnspecified() {
		wildcard = true
	}
	if wildcard && source != "" {
		host = source
	}
	return net.JoinHostPort(host, port)
}

// start runs the peer API on peerLn (which it closes) and the membership
// until ctx ends, in wg; a peer API that fails is reported to fail.
func (cp *clusterParts) start(ctx context.Context, wg *sync.WaitGroup, fail func(error), peerLn net.Listener) {
	if cp.node == nil {
		return
	}
	cp.members.Refresh(ctx)
	wg.Go(func() { cp.members.Run(ctx) })
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-cp.shared.changed:
				cp.members.Refresh(ctx)
			}
		}
	})
	wg.Go(func() {
		if err := cp.peer.Serve(ctx, peerLn); err != nil {
			fail(fmt.Errorf("peer API: %w", err))
		}
	})
}

// drain tells the other nodes at once that this one takes no new scans,
// instead of letting its heartbeat run out.
func (cp *clusterParts) drain(ctx context.Context) {
	if cp.members == nil {
		return
	}
	cp.draining.Store(true)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cp.members.Refresh(ctx)
}

// isMaster: a single node, or master of the first virtual router (with
// several, exactly one node is that at a time; see cluster.Node.IsMaster).
func (cp *clusterParts) isMaster() bool { return cp.node == nil || cp.node.IsMaster() }

// role is the node's state in its first virtual router.
func (cp *clusterParts) role() string {
	if cp.node == nil {
		return "single"
	}
	return cp.node.Status().State
}

func (cp *clusterParts) degraded() bool {
	return cp.follower.Degraded() || cp.members != nil && cp.members.Degraded()
}

// ClusterView is what GET /api/v1/cluster answers and `mxgate cluster
// status` shows: the VRRP state plus the scanning members and the applied
// revision.
type ClusterView struct {
	cluster.Status
	Mode     string           `json:"mode"`
	Revision int64            `json:"revision"`
	Degraded bool             `json:"degraded"`
	Members  []members.Member `json:"members"`
	// Gone are the members this node saw live whose heartbeat has since
	// expired, each as it last described itself (see membersync.Gone).
	Gone []members.Member `json:"gone,omitempty"`
}

func (cp *clusterParts) statusFunc() func() any {
	if cp.node == nil {
		return nil
	}
	return func() any {
		ms := cp.members.Members()
		if ms == nil {
			ms = []members.Member{}
		}
		return ClusterView{Status: cp.node.Status(), Mode: cp.shared.mode(), Revision: cp.follower.Applied(), Degraded: cp.degraded(), Members: ms, Gone: cp.members.Gone()}
	}
}

// vipAddrs are the addresses of cfg's virtual routers (none without a cluster).
func vipAddrs(cfg config.Config) []netip.Addr {
	if !cfg.Cluster.Enabled {
		return nil
	}
	var out []netip.Addr
	for _, in := range cfg.Cluster.VirtualRouters() {
		if p, err := netip.ParsePrefix(in.VIP); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out
}

// smtpListen is smtp.listen with every VIP: an address on one of the
// cluster's VIPs stands for the same port on each of them, so that each
// virtual router's VIP answers mail without the list repeating them.
func smtpListen(cfg config.Config) []string {
	vips := vipAddrs(cfg)
	out := slices.Clone(cfg.SMTP.Listen)
	for _, l := range cfg.SMTP.Listen {
		host, port, err := net.SplitHostPort(l)
		a, perr := netip.ParseAddr(host)
		if err != nil || perr != nil || !slices.Contains(vips, a.Unmap()) {
			continue
		}
		for _, v := range vips {
			if hp := net.JoinHostPort(v.String(), port); !slices.Contains(out, hp) {
				out = append(out, hp)
			}
		}
	}
	return out
}
