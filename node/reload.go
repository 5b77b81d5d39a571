package node

import (
	"context"

	"github.com/mxgate/mxgate/clusterconf"
	"github.com/mxgate/mxgate/config"
)

// Reload applies a new read of the node file (SIGHUP) as far as it can
// change live, and returns the keys that changed but take a restart: they
// keep their running value. Live are node.log_level (the caller owns the
// logger), the certificates of smtp.tls and admin.tls (read again, from
// new files too, while TLS stays on) and the cluster-wide settings (the
// scanner policy, cluster.mode): they seed a new revision under
// seedConfig's rule, which every node, this one included, then applies as
// it applies any revision. cfg must be validated. Call it from one
// goroutine at a time.
func (n *Node) Reload(ctx context.Context, cfg config.Config) (restart []string) {
	cfg = n.reloadCerts(cfg)
	restart = clusterconf.DiffJSONKeys(withoutLive(n.file), withoutLive(cfg))
	// The node-local keys stay as running (node.id among them): only the
	// file's cluster-wide part is new.
	seedConfig(ctx, n.store, clusterconf.FromConfig(cfg).Apply(n.cfg), n.log, "on SIGHUP")
	n.file = clusterconf.FromConfig(cfg).Apply(n.file)
	n.file.Node.LogLevel = cfg.Node.LogLevel
	return restart
}

// withoutLive is c without the keys Reload applies live, to compare the rest.
func withoutLive(c config.Config) config.Config {
	c = clusterconf.Settings{}.Apply(c)
	c.Node.LogLevel = ""
	return c
}
