package node

import (
	"runtime"

	"github.com/mxgate/mxgate/config"
)

// Bounds of the derived peer API connection limits (config's own bound is
// the upper one).
const (
	minPeerConnectionsPerIP = 16
	minPeerConnections      = 64
	maxPeerConnections      = 65536
)

// peerConnectionLimits are the peer API's connection limits, total and per
// source address. Unset (0), they follow the legitimate load: the master's
// concurrent scans to this node, of which this node's pool takes workers +
// queue at once and refuses the rest as overloaded. Per source twice that
// (a scan's connection is briefly busy after its verdict, and a connection
// beyond the pool's capacity would only carry a 503), total four times the
// per-source limit (an old and a new master during a failover, and the
// static peers while the store is down).
func peerConnectionLimits(cfg config.Config) (total, perIP int) {
	total, perIP = cfg.Cluster.PeerMaxConnections, cfg.Cluster.PeerMaxConnectionsPerIP
	if perIP == 0 {
		perIP = min(max(2*(workers(cfg)+max(cfg.Scanner.Queue, 0)), minPeerConnectionsPerIP), maxPeerConnections)
		if total > 0 {
			perIP = min(perIP, total)
		}
	}
	if total == 0 {
		total = min(max(4*perIP, minPeerConnections), maxPeerConnections)
	}
	return total, perIP
}

// workers is the number of concurrent scans of this node's pool.
func workers(cfg config.Config) int {
	if cfg.Scanner.Workers <= 0 {
		return runtime.NumCPU()
	}
	return cfg.Scanner.Workers
}
