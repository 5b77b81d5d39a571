package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/cluster"
	"github.com/mxgate/mxgate/cluster/vrrp"
	"github.com/mxgate/mxgate/clusterconf"
	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/deliver"
	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/quarantine"
	"github.com/mxgate/mxgate/report"
	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/smtpfront"
	"github.com/mxgate/mxgate/store"
)

func newServeCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "serve [-c FILE]",
		Short: "Run a gateway node",
		Long: `Run a gateway node: the SMTP front end, the scanning pool, the admin API.

Without -c the node runs on loopback with the embedded store in ./mxgate-data,
accepts mail from loopback clients for any domain and relays it to
127.0.0.1:2526.`,
		Example: "  mxgate serve -c /etc/mxgate/mxgate.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), cfg)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "configuration file (YAML)")
	return cmd
}

func loadConfig(path string) (config.Config, error) {
	if path == "" {
		cfg := config.Default()
		// Like Postfix's default mynetworks, a node started without a
		// configuration trusts only its own host, so a first message can go
		// through and nothing else can relay.
		cfg.SMTP.TrustedNetworks = []string{"127.0.0.0/8", "::1/128"}
		return cfg, cfg.Validate()
	}
	cfg, err := config.Load(path)
	if err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

func newLogger(cfg config.Node) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// serve runs one node until ctx ends or SIGTERM or SIGINT comes, then stops
// in order: a master hands over, sessions drain, then the background work,
// the scanners and the store. A stop during start-up ends the start where
// it is; a second signal ends the process at once.
func serve(ctx context.Context, cfg config.Config) error {
	log := newLogger(cfg.Node)
	guard := guardStop(ctx, log, cfg.SMTP.DrainTimeout.Duration+stopMargin)
	defer guard.release()
	ctx = guard.ctx
	if os.Getenv("GOGC") == "" {
		// The live heap of a node is small (a few MB plus the messages in
		// flight), so the default GOGC=100 collects every few dozen
		// messages; measured on 2 cores, GC was a quarter of the CPU per
		// message. 400 keeps the peak RSS under load near 40 MB.
		debug.SetGCPercent(400)
	}
	for _, e := range []struct{ key, val string }{{"scanner.clamd", cfg.Scanner.Clamd}, {"scanner.rspamd", cfg.Scanner.Rspamd}, {"scanner.spamd", cfg.Scanner.Spamd}} {
		if e.val != "" {
			return fmt.Errorf("%s: external engines are not available yet in this build; leave it empty", e.key)
		}
	}

	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if ctx.Err() != nil {
		return stoppedDuringStart(log, "opening the store")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	pool, err := scanner.NewPool(scannerOptions(cfg, cfg.Scanner.Policy))
	if err != nil {
		return fmt.Errorf("scanner: %w", err)
	}
	defer pool.Close()
	// Until the membership says otherwise, this node scans alone.
	dispatcher := scanner.NewDispatcher(scanner.Member{Name: cfg.Node.ID, Weight: 1, Worker: pool})

	// Cluster-wide settings come from the store; the node file only seeds
	// them (and, on the embedded store, is their source).
	shared := newSharedSettings(cfg)
	seedConfig(ctx, st, cfg, log)
	if ctx.Err() != nil {
		return stoppedDuringStart(log, "seeding the cluster configuration")
	}
	follower := clusterconf.NewFollower(st.Config, func(rev clusterconf.Revision) error {
		if err := pool.Reconfigure(scannerOptions(cfg, rev.Settings.Scanner)); err != nil {
			return fmt.Errorf("apply revision %d: %w", rev.Number, err)
		}
		// The follower logs the applied revision.
		shared.set(rev.Settings)
		return nil
	}, log)

	listCache := lists.NewCache(st.Lists)
	if err := listCache.Reload(ctx); ctx.Err() != nil {
		return stoppedDuringStart(log, "loading the lists")
	} else if err != nil {
		if !st.Shared {
			return fmt.Errorf("load lists: %w", err)
		}
		// The shared store may come back any moment; the cache reloads then.
		log.Warn("lists not loaded, the shared store does not answer; starting with none", "err", err)
	}

	tlsConf, err := tlsConfig(cfg.SMTP.TLS)
	if err != nil {
		return err
	}
	down := deliver.Options{Addr: cfg.Downstream.Address, Helo: cfg.Downstream.Helo, Timeout: cfg.Downstream.Timeout.Duration}
	front, err := smtpfront.New(smtpfront.Options{
		NodeID:              cfg.Node.ID,
		Hostname:            cfg.SMTP.Hostname,
		Listen:              cfg.SMTP.Listen,
		AcceptDomains:       cfg.SMTP.AcceptDomains,
		TrustedNetworks:     prefixes(cfg.SMTP.TrustedNetworks),
		MaxMessageBytes:     cfg.SMTP.MaxMessageBytes,
		MaxRecipients:       cfg.SMTP.MaxRecipients,
		MaxConnections:      cfg.SMTP.MaxConnections,
		MaxConnectionsPerIP: cfg.SMTP.MaxConnectionsPerIP,
		MaxLineLength:       cfg.SMTP.MaxLineLength,
		HardErrorLimit:      cfg.SMTP.HardErrorLimit,
		ReadTimeout:         cfg.SMTP.ReadTimeout.Duration,
		WriteTimeout:        cfg.SMTP.WriteTimeout.Duration,
		DataTimeout:         cfg.SMTP.DataTimeout.Duration,
		ScanTimeout:         cfg.Scanner.Timeout.Duration,
		TLS:                 tlsConf,
		RequireTLS:          cfg.SMTP.TLS.Require,
		ProxyProtocol:       cfg.SMTP.ProxyProtocol,
		ProxyTrusted:        prefixes(cfg.SMTP.ProxyTrusted),
		Downstream:          down,
		Scanner:             dispatcher,
		Lists:               listCache,
		Quarantine:          st.Quarantine,
		QuarantineRetention: cfg.Store.QuarantineRetention.Duration,
		Log:                 st.Log,
		SpoolDir:            cfg.Node.DataDir,
		LogJournalMax:       cfg.Store.LogJournalMax,
		LogJournalSync:      cfg.Store.LogJournalSync.Duration,
		Logger:              log,
		Registerer:          reg,
	})
	if err != nil {
		return err
	}

	cl, err := newClusterParts(cfg, st, pool, dispatcher, shared, follower, log, reg)
	if err != nil {
		return err
	}

	started := time.Now()
	var adm *admin.Server
	if cfg.Admin.Listen != "" {
		adm, err = admin.New(admin.Options{
			Listen:     cfg.Admin.Listen,
			Token:      cfg.Admin.Token,
			Quarantine: st.Quarantine,
			Lists:      listCache,
			Log:        st.Log,
			Config:     st.Config,
			Reports:    st.Reports,
			Release:    releaser(down, cfg.Node.ID),
			Gatherer:   reg,
			Health:     healthCheck(st, down),
			Cluster:    cl.statusFunc(),
			Status: func() any {
				busy, queued := pool.Stats()
				return map[string]any{
					"node": cfg.Node.ID, "role": cl.role(), "started": started.UTC(),
					"uptime":       time.Since(started).Round(time.Second).String(),
					"scanner_busy": busy, "scanner_queued": queued, "lists": listCache.Set().Len(),
					"config_revision": follower.Applied(), "degraded": cl.degraded(),
				}
			},
			NodeID: cfg.Node.ID,
			Logger: log,
		})
		if err != nil {
			return err
		}
	}

	// Every port is bound before SMTP answers, so a busy one stops the
	// start with its key named and nothing served.
	ports, err := bindPorts(ctx, cfg, cl)
	if err != nil {
		return err
	}
	defer ports.close()
	// The listeners come first: they bind the VIP before it is held
	// (IP_FREEBIND), so SMTP answers the moment this node becomes master.
	if err := front.Start(); err != nil {
		return fmt.Errorf("smtp.listen: %w", err)
	}
	// Every goroutine below is owned here and ends with runCtx.
	runCtx, stopRun := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Go(func() { listCache.Run(runCtx, 5*time.Second) })
	wg.Go(func() { follower.Run(runCtx) })
	wg.Go(func() { expireLoop(runCtx, st, cfg.Store.LogRetention.Duration, log) })
	wg.Go(func() {
		report.RunScheduler(runCtx, st.Reports, st.Log, cfg.Node.ID, cl.isMaster, time.Now, log)
	})
	if adm != nil {
		ln := ports.take(&ports.admin)
		wg.Go(func() {
			if err := adm.Serve(runCtx, ln); err != nil {
				errc <- fmt.Errorf("admin: %w", err)
			}
		})
	}
	cl.start(runCtx, &wg, errc, ports.take(&ports.peer))

	stopNode, err := runNode(cl.node, log)
	if err != nil {
		guard.stopping()
		stopRun()
		wg.Wait()
		drainCtx, cancel := context.WithTimeout(context.Background(), cfg.SMTP.DrainTimeout.Duration)
		front.Shutdown(drainCtx)
		cancel()
		return err
	}
	log.Info("mxgate node started", "node", cfg.Node.ID, "smtp", cfg.SMTP.Listen, "admin", cfg.Admin.Listen, "downstream", cfg.Downstream.Address, "data_dir", cfg.Node.DataDir, "store", st.Name)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	case runErr = <-stopNode.failed:
	}
	guard.stopping()
	// Peers stop sending scans here first, then a master hands over
	// (priority 0: the backups take over after Skew_Time, not three
	// intervals) and lets go of the VIP; sessions already open then finish
	// within the drain timeout.
	cl.drain()
	stopNode.stop()
	if cl.node != nil {
		// Sessions on the VIP now have their clients' packets delivered
		// to the new master; they finish what they are doing, but waiting
		// for their clients would only hold up the stop.
		vip, _ := netip.ParsePrefix(cfg.Cluster.VIP)
		if n := front.Orphan(vip.Addr(), orphanGrace); n > 0 {
			log.Info("sessions on the released VIP wait at most "+orphanGrace.String()+" for their clients", "sessions", n)
		}
	}
	log.Info("stopping: draining sessions", "drain_timeout", cfg.SMTP.DrainTimeout.Duration)
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.SMTP.DrainTimeout.Duration)
	front.Shutdown(drainCtx)
	cancel()
	stopRun()
	wg.Wait()
	log.Info("stopped")
	return runErr
}

// orphanGrace is how long a session on a released VIP may wait for its
// client: one whose ARP cache has not moved yet answers within it.
const orphanGrace = 2 * time.Second

// nodeRunner owns the cluster node's goroutine.
type nodeRunner struct {
	failed <-chan error // the node stopped by itself (nil channel without a cluster)
	stop   func()       // hand over and wait for the node to end
}

// runNode starts the VRRP node and waits until it listens for adverts. A
// node that cannot open its socket or find its interface fails the start.
func runNode(node *cluster.Node, log *slog.Logger) (nodeRunner, error) {
	if node == nil {
		return nodeRunner{stop: func() {}}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	select {
	case <-node.Ready():
	case err := <-done:
		cancel()
		return nodeRunner{}, fmt.Errorf("cluster: %w", err)
	}
	failed := make(chan error, 1)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		if err := <-done; err != nil && ctx.Err() == nil {
			log.Error("cluster node stopped", "err", err)
			failed <- fmt.Errorf("cluster: %w", err)
		}
	}()
	return nodeRunner{failed: failed, stop: func() { cancel(); <-ended }}, nil
}

func clusterOptions(cfg config.Config, log *slog.Logger, reg prometheus.Registerer) cluster.Options {
	cl := cfg.Cluster
	// Validate has checked every value; parsing again cannot fail.
	vip, _ := netip.ParsePrefix(cl.VIP)
	o := cluster.Options{
		Interface:         cl.Interface,
		VRID:              uint8(cl.VRID),
		VIP:               vip,
		Priority:          uint8(cl.Priority),
		Interval:          cl.AdvertInterval.Duration,
		Preempt:           cl.Preempt,
		PreemptDelay:      cl.PreemptDelay.Duration,
		Checksum:          vrrp.ChecksumPseudoHeader,
		GARPRepeat:        cl.GARPRepeat,
		GARPRefresh:       cl.GARPRefresh.Duration,
		GARPMasterRefresh: cl.GARPMasterRefresh.Duration,
		Notify:            cl.Notify,
		NodeID:            cfg.Node.ID,
		Logger:            log,
		Registerer:        reg,
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
	return o
}

// scannerOptions are the pool's options under policy (the node file's at
// start, then each revision's): the node-local settings come from the file.
func scannerOptions(cfg config.Config, policy scanner.Policy) scanner.Options {
	return scanner.Options{NodeID: cfg.Node.ID, Policy: policy, Local: cfg.Scanner.Local}
}

// releaser delivers a quarantined message to its original recipients
// through the downstream server, marked so the recipient can tell.
func releaser(down deliver.Options, node string) func(context.Context, quarantine.Item, []byte) (string, error) {
	return func(ctx context.Context, it quarantine.Item, raw []byte) (string, error) {
		hdr := []string{fmt.Sprintf("X-Mxgate-Released: %s by %s (was %s, score %.2f)", time.Now().UTC().Format(time.RFC1123Z), node, it.Verdict, it.Score)}
		return deliver.Send(ctx, down, it.Sender, it.Recipients, hdr, scanner.StripOwnHeaders(bytes.NewReader(raw)))
	}
}

// healthCheck reports the node unhealthy when it could not do its job: the
// store does not answer, or the downstream server takes no connections.
func healthCheck(st *store.Backend, down deliver.Options) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := st.Quarantine.List(ctx, quarantine.Filter{Limit: 1}); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", down.Addr)
		if err != nil {
			return fmt.Errorf("downstream %s: %w", down.Addr, err)
		}
		c.Close()
		return nil
	}
}

func expireLoop(ctx context.Context, st *store.Backend, logRetention time.Duration, log *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		now := time.Now()
		if n, err := st.Quarantine.Expire(ctx, now); err != nil {
			log.Warn("quarantine expiry failed", "err", err)
		} else if n > 0 {
			log.Info("quarantine expired", "items", n)
		}
		if n, err := st.Log.Expire(ctx, now.Add(-logRetention)); err != nil {
			log.Warn("message log expiry failed", "err", err)
		} else if n > 0 {
			log.Info("message log expired", "records", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func tlsConfig(c config.TLS) (*tls.Config, error) {
	if c.Cert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
	if err != nil {
		return nil, fmt.Errorf("smtp.tls: load certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// prefixes converts validated CIDRs (a bare address counts as a /32 or /128).
func prefixes(ss []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		if !strings.Contains(s, "/") {
			if a, err := netip.ParseAddr(s); err == nil {
				out = append(out, netip.PrefixFrom(a, a.BitLen()))
			}
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}
