// Package node is one gateway node built from its configuration: Build
// opens the store and makes every part without serving, Start binds every
// port and serves, Stop hands over, drains and closes in the one order that
// loses nothing. The binary's serve command is flags and signals around it;
// tests and benchmarks build real nodes in-process with it.
package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/certfile"
	"github.com/mxgate/mxgate/clusterconf"
	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/digest"
	"github.com/mxgate/mxgate/engines"
	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/smtpfront"
	"github.com/mxgate/mxgate/store"
)

// Node is one gateway node: the SMTP front end, the scanning pool and its
// dispatcher, the admin API and, in a cluster, the VRRP node, the peer API
// and the membership, over one store. Make it with Build.
type Node struct {
	cfg config.Config
	// file is the node file as running: cfg with the live keys of the
	// last Reload (only Reload uses it).
	file  config.Config
	log   *slog.Logger
	store *store.Backend
	pool  *scanner.Pool
	// dispatcher spreads scans over the live members, this node's pool
	// among them.
	dispatcher *scanner.Dispatcher
	lists      *lists.Cache
	follower   *clusterconf.Follower
	front      *smtpfront.Server
	admin      *admin.Server // nil without admin.listen
	digest     *digest.Digester
	cluster    *clusterParts
	failed     chan error
	// shared are the cluster-wide settings the node follows now.
	shared *sharedSettings
	// engines makes the outside engines' clients under a policy (each
	// revision makes new ones: their settings are cluster-wide).
	engines func(scanner.Policy) ([]scanner.Engine, error)
	// version names the binary (WithVersion).
	version Version
	// smtpCert and adminCert are the certificates served (nil: none),
	// read again on SIGHUP.
	smtpCert, adminCert *certfile.Pair

	// What Start has started, for Stop.
	started   time.Time
	ports     *boundPorts
	adminAddr net.Addr
	serving   bool // the front end took its listeners
	stopRun   context.CancelFunc
	wg        sync.WaitGroup
	stopVRRP  func()
	stopOnce  sync.Once
}

// Build makes every part of a node from cfg (validated) and opens its store,
// and serves nothing: Start does. It waits for the store, the cluster
// configuration and the lists; a ctx that ends meanwhile ends the build with
// an error that wraps ctx.Err(). On an error nothing is left open; otherwise
// Stop releases what Build opened, whether Start ran or not.
func Build(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) (*Node, error) {
	return buildWith(ctx, cfg, log, engineMakers(cfg.Scanner.Local), opts...)
}

// buildWith is Build with the engine clients makers gives.
func buildWith(ctx context.Context, cfg config.Config, log *slog.Logger, makers map[string]engineMaker, opts ...Option) (*Node, error) {
	// Before the store opens: a configured engine this build has no client
	// for fails the build at once.
	if _, err := buildEngines(cfg, cfg.Scanner.Policy, makers, nil, log); err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, file: cfg, log: log, store: st, failed: make(chan error, 1)}
	for _, o := range opts {
		o(n)
	}
	if err := n.build(ctx, makers); err != nil {
		n.release()
		return nil, err
	}
	return n, nil
}

// build makes the parts over the open store.
func (n *Node) build(ctx context.Context, makers map[string]engineMaker) error {
	cfg, st, log := n.cfg, n.store, n.log
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("opening the store: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	met, err := engines.NewMetrics(reg)
	if err != nil {
		return err
	}
	n.engines = func(p scanner.Policy) ([]scanner.Engine, error) { return buildEngines(cfg, p, makers, met, log) }
	opts, err := n.scannerOptions(cfg.Scanner.Policy)
	if err != nil {
		return err
	}
	if n.pool, err = scanner.NewPool(opts); err != nil {
		return fmt.Errorf("scanner: %w", err)
	}
	// Until the membership says otherwise, this node scans alone.
	dispatcher := scanner.NewDispatcher(scanner.Member{Name: cfg.Node.ID, Weight: 1, Worker: n.pool})
	n.dispatcher = dispatcher

	// Cluster-wide settings come from the store; the node file only seeds
	// them (and, on the embedded store, is their source).
	shared := newSharedSettings(cfg)
	n.shared = shared
	seedConfig(ctx, st, cfg, log, "at start")
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("seeding the cluster configuration: %w", err)
	}
	n.follower = clusterconf.NewFollower(st.Config, func(rev clusterconf.Revision) error {
		opts, err := n.scannerOptions(rev.Settings.Scanner)
		if err == nil {
			err = n.pool.Reconfigure(opts)
		}
		if err != nil {
			return fmt.Errorf("apply revision %d: %w", rev.Number, err)
		}
		// The follower logs the applied revision.
		shared.set(rev.Settings)
		return nil
	}, log)

	if err := n.loadLists(ctx); err != nil {
		return err
	}
	if err := n.loadCerts(); err != nil {
		return err
	}
	if n.front, err = newFront(cfg, n.smtpCert, dispatcher, n.lists, st, n.authservID, log, reg); err != nil {
		return err
	}
	if n.cluster, err = newClusterParts(cfg, st, n.pool, dispatcher, shared, n.follower, n.sessions, log, reg); err != nil {
		return err
	}
	nm := n.registerMetrics(reg)
	n.digest = &digest.Digester{Store: st.Digest, Quarantine: st.Quarantine, Node: cfg.Node.ID, Settings: n.digestSettings, Logger: log}
	n.admin, err = n.newAdmin(reg, nm)
	return err
}

// loadLists fills the list cache before SMTP answers, so the first session
// already sees every block entry.
func (n *Node) loadLists(ctx context.Context) error {
	n.lists = lists.NewCache(n.store.Lists)
	err := n.lists.Reload(ctx)
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("loading the lists: %w", ctx.Err())
	case err != nil && !n.store.Shared:
		return fmt.Errorf("load lists: %w", err)
	case err != nil:
		// The shared store may come back any moment; the cache reloads then.
		n.log.Warn("lists not loaded, the shared store does not answer; starting with none", "err", err)
	}
	return nil
}

// SMTPAddrs are the addresses SMTP listens on (the real ports where the
// configuration says port 0); nil before Start.
func (n *Node) SMTPAddrs() []net.Addr { return n.front.Addrs() }

// AdminAddr is the address the admin API listens on; nil before Start and
// without admin.listen.
func (n *Node) AdminAddr() net.Addr { return n.adminAddr }

// Failed delivers the error of the first part that stops by itself while
// the node runs (the admin or peer API, the VRRP node). The node then
// serves on without that part; stop it.
func (n *Node) Failed() <-chan error { return n.failed }

// fail reports a part's failure; Failed keeps the first one.
func (n *Node) fail(err error) {
	select {
	case n.failed <- err:
	default:
	}
}

// authservID is the authserv-id of this gateway's Authentication-Results
// now; fields claiming it that arrive with a message are forged.
func (n *Node) authservID() string { return n.shared.authservID(n.cfg.SMTP.Hostname) }
