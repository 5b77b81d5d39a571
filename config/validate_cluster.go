package config

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// maxPeerConnections bounds both peer API connection limits: every open
// connection may hold a goroutine and some 20 KB of buffers before it
// authenticates (peer's own bound is the same).
const maxPeerConnections = 65536

// validate checks an enabled cluster: its VRRP, then the scanning it shares
// with the other nodes. nodeID is this node's (node.id).
func (cl Cluster) validate(p *problems, nodeID string) {
	cl.validateVRRP(p)
	cl.validateScanning(p)
	cl.validatePeers(p, nodeID)
}

func (cl Cluster) validateVRRP(p *problems) {
	if cl.Interface == "" {
		p.add("cluster.interface", "required when the cluster is enabled")
	}
	if cl.VRID < 1 || cl.VRID > 255 {
		p.add("cluster.vrid", "must be 1-255, got %d", cl.VRID)
	}
	// The VIP's family is the virtual router's (RFC 5798 §5.2.9: one
	// family per advert); source and unicast peers must share it.
	v6 := false
	if cl.VIP == "" {
		p.add("cluster.vip", "required when the cluster is enabled (address/prefix, e.g. 198.18.0.100/24 or fd00:198:18::100/64)")
	} else if pf, err := netip.ParsePrefix(cl.VIP); err != nil {
		p.add("cluster.vip", "%q is not address/prefix (e.g. 198.18.0.100/24 or fd00:198:18::100/64)", cl.VIP)
	} else {
		v6 = pf.Addr().Is6() && !pf.Addr().Is4In6()
	}
	if cl.Priority < 1 || cl.Priority > 255 {
		p.add("cluster.priority", "must be 1-254 (255 only for the address owner), got %d", cl.Priority)
	}
	// RFC 5798 §5.2.7: a 12-bit count of centiseconds.
	if ai := cl.AdvertInterval.Duration; ai < 10*time.Millisecond || ai > 40950*time.Millisecond {
		p.add("cluster.advert_interval", "must be 10ms to 40.95s, got %s", ai)
	} else if ai%(10*time.Millisecond) != 0 {
		p.add("cluster.advert_interval", "must be a whole number of centiseconds (10ms steps), got %s", ai)
	}
	if cl.PreemptDelay.Duration < 0 || cl.PreemptDelay.Duration > time.Hour {
		p.add("cluster.preempt_delay", "must be 0 to 1h, got %s", cl.PreemptDelay.Duration)
	}
	family := "an IPv4"
	if v6 {
		family = "an IPv6"
	}
	if cl.Source != "" {
		if a, err := netip.ParseAddr(cl.Source); err != nil || a.Zone() != "" || a.Is6() != v6 {
			p.add("cluster.source", "%q is not %s address like the VIP", cl.Source, family)
		} else if v6 && !a.IsLinkLocalUnicast() {
			// RFC 5798 §5.1.2.1: IPv6 adverts come from the link-local address.
			p.add("cluster.source", "%q: an IPv6 source must be the interface's link-local address (fe80::/10)", cl.Source)
		}
	}
	for i, a := range cl.UnicastPeers {
		if ip, err := netip.ParseAddr(a); err != nil || ip.Zone() != "" || ip.Is6() != v6 {
			p.add(fmt.Sprintf("cluster.unicast_peers[%d]", i), "%q is not %s address like the VIP", a, family)
		}
	}
	p.oneOf("cluster.checksum", cl.Checksum, "pseudo-header", "message")
	cl.validateGARP(p)
	if cl.Notify != "" && strings.TrimSpace(cl.Notify) == "" {
		p.add("cluster.notify", "is blank")
	}
}

// validateGARP checks the gratuitous ARPs that announce the VIP.
func (cl Cluster) validateGARP(p *problems) {
	if cl.GARPRepeat < 1 || cl.GARPRepeat > 100 {
		p.add("cluster.garp_repeat", "must be 1-100, got %d", cl.GARPRepeat)
	}
	if r := cl.GARPRefresh.Duration; r < 0 {
		p.add("cluster.garp_refresh", "must be 0 (none) or more, got %s", r)
	}
	p.durationAtMost("cluster.garp_refresh", cl.GARPRefresh, MaxGARPRefresh)
	if r := cl.GARPMasterRefresh.Duration; r != 0 && r < time.Second {
		p.add("cluster.garp_master_refresh", "must be 0 (never) or at least 1s, got %s", r)
	}
	p.durationAtMost("cluster.garp_master_refresh", cl.GARPMasterRefresh, MaxGARPRefresh)
}

// validateScanning checks how this node scans for the others: the mode,
// its weight, the peer API and the membership.
func (cl Cluster) validateScanning(p *problems) {
	p.oneOf("cluster.mode", cl.Mode, ModeActiveActive, ModeActivePassive)
	weight(p, "cluster.weight", cl.Weight)
	p.listenAddr("cluster.peer_listen", cl.PeerListen)
	// With a wildcard host the node advertises its VRRP source to the
	// others; an IPv6 virtual router's source is link-local (RFC 5798
	// §5.1.2.1), which another host can dial only with a zone of its own.
	if pf, err := netip.ParsePrefix(cl.VIP); err == nil && pf.Addr().Is6() && !pf.Addr().Is4In6() {
		if host, _, err := net.SplitHostPort(cl.PeerListen); err == nil {
			if a, err := netip.ParseAddr(host); host == "" || err == nil && a.IsUnspecified() {
				p.add("cluster.peer_listen", "%q: with an IPv6 VIP the VRRP source is link-local and cannot be advertised to the other nodes; listen on this node's own address", cl.PeerListen)
			}
		}
	}
	if n := cl.PeerMaxConnections; n < 0 || n > maxPeerConnections {
		p.add("cluster.peer_max_connections", "must be 0 (derived) or 1 to %d, got %d", maxPeerConnections, n)
	}
	if n := cl.PeerMaxConnectionsPerIP; n < 0 || n > maxPeerConnections {
		p.add("cluster.peer_max_connections_per_ip", "must be 0 (derived) or 1 to %d, got %d", maxPeerConnections, n)
	} else if n > 0 && cl.PeerMaxConnections > 0 && n > cl.PeerMaxConnections {
		p.add("cluster.peer_max_connections_per_ip", "%d is more than cluster.peer_max_connections (%d)", n, cl.PeerMaxConnections)
	}
	if cl.Secret == "" {
		p.add("cluster.secret", "required when the cluster is enabled (authenticates the peer API)")
	} else if len(cl.Secret) < 16 {
		p.add("cluster.secret", "too short: at least 16 characters (it authenticates the peer API)")
	}
	if ttl := cl.MembershipTTL.Duration; ttl < 300*time.Millisecond || ttl > 5*time.Minute {
		p.add("cluster.membership_ttl", "must be 300ms to 5m, got %s", ttl)
	}
}

// validatePeers checks the static peers, the members used while the store
// cannot be read.
func (cl Cluster) validatePeers(p *problems, nodeID string) {
	seen := map[string]bool{}
	for i, pe := range cl.Peers {
		key := fmt.Sprintf("cluster.peers[%d]", i)
		if !validNodeID(pe.ID) {
			p.add(key+".id", "%q is not a node id", pe.ID)
		} else if pe.ID == nodeID {
			p.add(key+".id", "%q is this node (node.id); list only the others", pe.ID)
		} else if seen[pe.ID] {
			p.add(key+".id", "%q is listed twice", pe.ID)
		}
		seen[pe.ID] = true
		if _, _, err := net.SplitHostPort(pe.Address); err != nil || pe.Address == "" {
			p.add(key+".address", "%q is not host:port", pe.Address)
		}
		weight(p, key+".weight", pe.Weight)
	}
}

// weight checks a member's share of the scans.
func weight(p *problems, key string, w int) {
	if w < 0 {
		p.add(key, "must be 0 or more, got %d", w)
	}
	p.atMost(key, int64(w), MaxWeight, "")
}
