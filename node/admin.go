package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/console"
	"github.com/mxgate/mxgate/deliver"
	"github.com/mxgate/mxgate/engines/rspamd"
	"github.com/mxgate/mxgate/mailauth"
	"github.com/mxgate/mxgate/quarantine"
	"github.com/mxgate/mxgate/recipients"
	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/store"
)

// newAdmin prepares the admin API over the node's stores, metrics and
// status; nil without admin.listen.
func (n *Node) newAdmin(reg *prometheus.Registry, nm *nodeMetrics) (*admin.Server, error) {
	cfg := n.cfg
	if cfg.Admin.Listen == "" {
		return nil, nil
	}
	var tlsConf *tls.Config
	if n.adminCert != nil {
		tlsConf = n.adminCert.ServerConfig()
	}
	if cfg.Admin.PlainRemote() {
		// Allowed (a token is required), for setups that predate
		// admin.tls or sit on a trusted network, but said at every start.
		n.log.Warn("the admin API listens beyond loopback over plain HTTP: the token and quarantined mail cross the network in clear; set admin.tls.cert and admin.tls.key",
			"admin", cfg.Admin.Listen)
	}
	down := downstream(cfg)
	learner, err := newLearner(cfg.Scanner.Local, cfg.Scanner.Policy.Engines.Rspamd)
	if err != nil {
		return nil, err
	}
	return admin.New(admin.Options{
		Listen:       cfg.Admin.Listen,
		Token:        cfg.Admin.Token,
		MetricsAuth:  cfg.Admin.MetricsAuth,
		TLS:          tlsConf,
		Quarantine:   n.store.Quarantine,
		Lists:        n.lists,
		Log:          n.store.Log,
		Config:       n.store.Config,
		Reports:      n.store.Reports,
		Release:      nm.release(releaser(down, cfg.Node.ID, n.authservID)),
		Learn:        learner,
		Gatherer:     reg,
		Health:       enginesHealth(n.pool, healthCheck(n.store, down)),
		Cluster:      n.cluster.statusFunc(),
		Status:       func(ctx context.Context) any { return n.Status(ctx) },
		Scan:         n.dispatcher.Scan,
		MaxScanBytes: cfg.SMTP.MaxMessageBytes,
		SpoolDir:     cfg.Node.DataDir,
		Backup:       n.backup,
		Digest:       n.digest,
		Recipients:   (&recipients.Pages{Store: n.store.Digest, Settings: n.digestSettings, Logger: n.log}).Handler,
		NodeID:       cfg.Node.ID,
		Logger:       n.log,
		Console: console.New(console.Options{
			Token: cfg.Admin.Token, TLS: tlsConf != nil, NodeID: cfg.Node.ID, Logger: n.log, Sessions: n.store.Sessions,
		}),
	})
}

// releaser delivers a quarantined message to its original recipients
// through the downstream server, marked so the recipient can tell.
//
// Forged Authentication-Results fields (claiming authservID) go too: the
// quarantine holds the message as it came.
func releaser(down deliver.Options, node string, authservID func() string) func(context.Context, quarantine.Item, []byte) (string, error) {
	return func(ctx context.Context, it quarantine.Item, raw []byte) (string, error) {
		hdr := []string{fmt.Sprintf("X-Mxgate-Released: %s by %s (was %s, score %.2f)", time.Now().UTC().Format(time.RFC1123Z), node, it.Verdict, it.Score)}
		body := mailauth.RemoveOwnResults(scanner.StripOwnHeaders(bytes.NewReader(raw)), authservID())
		return deliver.Send(ctx, down, it.Sender, it.Recipients, hdr, body)
	}
}

// newLearner teaches Rspamd through its controller (scanner.rspamd_controller,
// with scanner.rspamd); nil without one: the admin API then says learning
// needs it.
func newLearner(local scanner.Local, s scanner.EngineSettings) (func(context.Context, bool, []byte) error, error) {
	if !learns(local) {
		return nil, nil
	}
	c, err := rspamd.New(local.Rspamd, rspamd.Options{Timeout: s.Timeout.Duration, MaxConnections: s.MaxConnections, Controller: local.RspamdController})
	if err != nil {
		return nil, fmt.Errorf("scanner.rspamd_controller: %w", err)
	}
	return func(ctx context.Context, spam bool, raw []byte) error {
		return c.Learn(ctx, spam, bytes.NewReader(raw), int64(len(raw)))
	}, nil
}

// learns reports whether newLearner makes a learner of local.
func learns(local scanner.Local) bool { return local.RspamdController != "" && local.Rspamd != "" }

// enginesHealth reports the node unhealthy while an engine its policy
// needs (on_error not accept) does not answer, naming it; else next.
func enginesHealth(pool *scanner.Pool, next func() error) func() error {
	return func() error {
		if err := enginesCheck(pool)(context.Background()); err != nil {
			return err
		}
		return next()
	}
}

// healthCheck reports the node unhealthy when it could not do its job: the
// store does not answer, or the downstream server takes no connections.
func healthCheck(st *store.Backend, down deliver.Options) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := storeCheck(st)(ctx); err != nil {
			return err
		}
		return downstreamCheck(down)(ctx)
	}
}

// The checks of /healthz one by one, also what cluster.track runs: an
// error says what does not work.

// enginesCheck fails while an engine the policy needs (on_error not
// accept) does not answer; the pool's own probes decide that.
func enginesCheck(pool *scanner.Pool) func(context.Context) error {
	return func(context.Context) error {
		if down := pool.EnginesDown(); len(down) > 0 {
			return fmt.Errorf("engine down: %s", strings.Join(down, ", "))
		}
		return nil
	}
}

// storeCheck fails while the store does not answer a read.
func storeCheck(st *store.Backend) func(context.Context) error {
	return func(ctx context.Context) error {
		if _, err := st.Quarantine.List(ctx, quarantine.Filter{Limit: 1}); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		return nil
	}
}

// downstreamCheck fails while the downstream server takes no TCP
// connections.
func downstreamCheck(down deliver.Options) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", down.Addr)
		if err != nil {
			return fmt.Errorf("downstream %s: %w", down.Addr, err)
		}
		c.Close()
		return nil
	}
}
