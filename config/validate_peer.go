package config

// maxPeerConnections bounds both peer API connection limits: every open
// connection may hold a goroutine and some 20 KB of buffers before it
// authenticates (peer's own bound is the same).
const maxPeerConnections = 65536

// peerConnectionLimits checks cluster.peer_max_connections and
// cluster.peer_max_connections_per_ip (0 = derived from the scanner; see
// Cluster).
func (p *problems) peerConnectionLimits(cl Cluster) {
	if n := cl.PeerMaxConnections; n < 0 || n > maxPeerConnections {
		p.add("cluster.peer_max_connections", "must be 0 (derived) or 1 to %d, got %d", maxPeerConnections, n)
	}
	if n := cl.PeerMaxConnectionsPerIP; n < 0 || n > maxPeerConnections {
		p.add("cluster.peer_max_connections_per_ip", "must be 0 (derived) or 1 to %d, got %d", maxPeerConnections, n)
	} else if n > 0 && cl.PeerMaxConnections > 0 && n > cl.PeerMaxConnections {
		p.add("cluster.peer_max_connections_per_ip", "%d is more than cluster.peer_max_connections (%d)", n, cl.PeerMaxConnections)
	}
}
