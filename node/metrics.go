package node

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgate/mxgate/deliver"
	"github.com/mxgate/mxgate/quarantine"
)

// Version names the binary a node runs, for mxgate_build_info.
type Version struct {
	Version, Commit, GoVersion string
}

// Option changes how Build makes a node.
type Option func(*Node)

// WithVersion names the binary in mxgate_build_info (without it: "dev",
// the commit unknown, the running Go).
func WithVersion(v Version) Option { return func(n *Node) { n.version = v } }

// quarantineCountTimeout bounds the store read of one scrape: a store that
// does not answer must not hold the scraper (the series is then left out,
// and mxgate_degraded says why).
const quarantineCountTimeout = 2 * time.Second

// Outcomes of mxgate_quarantine_releases_total: a delivery attempt ended
// so, as the admin API answered it.
const (
	releaseDelivered = "delivered" // the downstream took it for every recipient
	releasePartial   = "partial"   // for some recipients; it counts as released
	releaseFailed    = "failed"    // refused or not reachable; the claim is given back
	releaseUnknown   = "unknown"   // the downstream's answer was lost; the claim stays
)

// nodeMetrics are the node's own series: what the binary is, its scanner
// queue, the quarantine and its releases, whether it runs degraded.
type nodeMetrics struct {
	releases *prometheus.CounterVec
}

func (n *Node) registerMetrics(reg prometheus.Registerer) *nodeMetrics {
	v := n.version
	if v.Version == "" {
		v.Version = "dev"
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	if v.GoVersion == "" {
		v.GoVersion = runtime.Version()
	}
	m := &nodeMetrics{releases: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mxgate_quarantine_releases_total",
		Help: "Quarantine releases tried on this node, by outcome (delivered, partial, failed, unknown).",
	}, []string{"outcome"})}
	for _, o := range []string{releaseDelivered, releasePartial, releaseFailed, releaseUnknown} {
		m.releases.WithLabelValues(o)
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "mxgate_build_info",
			Help:        "Always 1; the labels say which binary runs (as mxgate version prints it).",
			ConstLabels: prometheus.Labels{"version": v.Version, "commit": v.Commit, "goversion": v.GoVersion},
		}, func() float64 { return 1 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mxgate_scanner_queue_depth", Help: "Messages waiting for a scanner worker of this node.",
		}, func() float64 { _, queued := n.pool.Stats(); return float64(queued) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mxgate_scanner_busy", Help: "Scanner workers of this node scanning now.",
		}, func() float64 { busy, _ := n.pool.Stats(); return float64(busy) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mxgate_degraded",
			Help: "1 while the node works without its shared store: the cluster configuration (last good settings) or the membership (static peers) cannot be read.",
		}, func() float64 {
			if n.cluster.degraded() {
				return 1
			}
			return 0
		}),
		m.releases,
		newQuarantineCollector(n.store.Quarantine, n.log),
	)
	return m
}

// release counts each delivery attempt of release by its outcome.
func (m *nodeMetrics) release(release func(context.Context, quarantine.Item, []byte) (string, error)) func(context.Context, quarantine.Item, []byte) (string, error) {
	return func(ctx context.Context, it quarantine.Item, raw []byte) (string, error) {
		reply, err := release(ctx, it, raw)
		outcome := releaseDelivered
		switch {
		case err != nil && reply != "":
			outcome = releasePartial
		case errors.Is(err, deliver.ErrUnconfirmed):
			outcome = releaseUnknown
		case err != nil:
			outcome = releaseFailed
		}
		m.releases.WithLabelValues(outcome).Inc()
		return reply, err
	}
}

// quarantineCollector reads the quarantine's size at each scrape: one
// ZCARD on Redis, a page walk of one index on the embedded store, so it
// is never stale and needs no bookkeeping of its own.
type quarantineCollector struct {
	q     quarantine.Store
	log   *slog.Logger
	items *prometheus.Desc
}

func newQuarantineCollector(q quarantine.Store, log *slog.Logger) *quarantineCollector {
	return &quarantineCollector{q: q, log: log, items: prometheus.NewDesc("mxgate_quarantine_items",
		"Messages held in the quarantine (the whole cluster's with Redis), expired ones until the next expiry run.", nil, nil)}
}

func (c *quarantineCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.items }

func (c *quarantineCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), quarantineCountTimeout)
	defer cancel()
	count, err := c.q.Count(ctx)
	if err != nil {
		// Left out rather than failing the whole scrape.
		c.log.Debug("mxgate_quarantine_items left out of the scrape", "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.items, prometheus.GaugeValue, float64(count))
}
