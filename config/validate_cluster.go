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
	if len(cl.Instances) == 0 {
		vrid(p, "cluster.vrid", cl.VRID)
		vip(p, "cluster.vip", cl.VIP)
	} else {
		cl.validateInstances(p)
	}
	priority(p, "cluster.priority", cl.Priority)
	advertInterval(p, "cluster.advert_interval", cl.AdvertInterval)
	preemptDelay(p, "cluster.preempt_delay", cl.PreemptDelay)
	validateStart(p, "cluster.", cl.StartState, cl.Preempt, cl.PreemptDelay.Duration)
	// The VIPs' family is the node's (RFC 5798 §5.2.9: one family per
	// advert, and one socket and source serve every virtual router); source
	// and unicast peers must share it.
	v6 := cl.ipv6()
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
	cl.validateTrack(p)
	if cl.Notify != "" && strings.TrimSpace(cl.Notify) == "" {
		p.add("cluster.notify", "is blank")
	}
}

// Start states: cluster.start_state (keepalived's state MASTER|BACKUP).
const (
	StartStateMaster = "master" // take the VIP and advertise at once
	StartStateBackup = "backup" // wait as backup (the default: what nodes did before the key existed)
)

// validateStart checks a start state against the preempt keys it goes
// with; prefix is "cluster." or an instance's "cluster.instances[i].".
// keepalived clears nopreempt and preempt_delay under state MASTER with a
// warning; refusing says so where the administrator looks.
func validateStart(p *problems, prefix, startState string, preempt bool, delay time.Duration) {
	p.oneOf(prefix+"start_state", startState, StartStateMaster, StartStateBackup)
	if startState != StartStateMaster {
		return
	}
	if !preempt {
		p.add(prefix+"preempt", "false (never take the VIP from a live master, keepalived's nopreempt) contradicts start_state master (take it at start); use start_state backup")
	}
	if delay > 0 {
		p.add(prefix+"preempt_delay", "applies only to start_state backup: a node that starts as master takes over at once")
	}
}

// ipv6 reports whether the node's virtual routers are IPv6: the family of
// its (first) VIP.
func (cl Cluster) ipv6() bool {
	v := cl.VIP
	if len(cl.Instances) > 0 {
		v = cl.Instances[0].VIP
	}
	pf, err := netip.ParsePrefix(v)
	return err == nil && pf.Addr().Is6() && !pf.Addr().Is4In6()
}

// validateInstances checks cluster.instances: each item's keys, and that
// no two share a VRID (their adverts would be each other's) or a VIP.
func (cl Cluster) validateInstances(p *problems) {
	if n := len(cl.Instances); n > MaxInstances {
		p.add("cluster.instances", "at most %d virtual routers, got %d", MaxInstances, n)
		return
	}
	if cl.VIP != "" {
		p.add("cluster.vip", "must be empty with cluster.instances: give each VIP in its item")
	}
	vrids := map[int]int{}
	vips := map[netip.Addr]int{}
	for i, in := range cl.Instances {
		key := fmt.Sprintf("cluster.instances[%d]", i)
		if vrid(p, key+".vrid", in.VRID) {
			if j, dup := vrids[in.VRID]; dup {
				p.add(key+".vrid", "%d is also cluster.instances[%d]'s", in.VRID, j)
			} else {
				vrids[in.VRID] = i
			}
		}
		if a, ok := vip(p, key+".vip", in.VIP); ok {
			if a.Is6() != cl.ipv6() {
				p.add(key+".vip", "%s is not of cluster.instances[0]'s family: one VRRP socket and source serve every virtual router of a node", a)
			}
			if j, dup := vips[a]; dup {
				p.add(key+".vip", "%s is also cluster.instances[%d]'s", a, j)
			} else {
				vips[a] = i
			}
		}
		if in.Priority != 0 {
			priority(p, key+".priority", in.Priority)
		}
		if in.AdvertInterval.Duration != 0 {
			advertInterval(p, key+".advert_interval", in.AdvertInterval)
		}
		if in.PreemptDelay != nil {
			preemptDelay(p, key+".preempt_delay", *in.PreemptDelay)
		}
		// An item that sets none of these keys has the cluster's, checked above.
		if in.StartState != "" || in.Preempt != nil || in.PreemptDelay != nil {
			eff := cl.VirtualRouters()[i]
			if in.StartState != "" || eff.StartState == StartStateMaster || eff.StartState == StartStateBackup {
				validateStart(p, key+".", eff.StartState, *eff.Preempt, eff.PreemptDelay.Duration)
			}
		}
	}
}

// vrid checks a virtual router id; it reports whether it is one.
func vrid(p *problems, key string, v int) bool {
	if v < 1 || v > 255 {
		p.add(key, "must be 1-255, got %d", v)
		return false
	}
	return true
}

// vip checks a virtual address with its prefix length and returns the address.
func vip(p *problems, key, v string) (netip.Addr, bool) {
	pf, err := netip.ParsePrefix(v)
	switch {
	case v == "":
		p.add(key, "required when the cluster is enabled (address/prefix, e.g. 198.18.0.100/24 or fd00:198:18::100/64)")
	case err != nil || pf.Addr().Zone() != "":
		p.add(key, "%q is not address/prefix (e.g. 198.18.0.100/24 or fd00:198:18::100/64)", v)
	default:
		return pf.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

func priority(p *problems, key string, v int) {
	if v < 1 || v > 255 {
		p.add(key, "must be 1-254 (255 only for the address owner), got %d", v)
	}
}

func advertInterval(p *problems, key string, d Duration) {
	// RFC 5798 §5.2.7: a 12-bit count of centiseconds.
	if ai := d.Duration; ai < 10*time.Millisecond || ai > 40950*time.Millisecond {
		p.add(key, "must be 10ms to 40.95s, got %s", ai)
	} else if ai%(10*time.Millisecond) != 0 {
		p.add(key, "must be a whole number of centiseconds (10ms steps), got %s", ai)
	}
}

func preemptDelay(p *problems, key string, d Duration) {
	if d.Duration < 0 || d.Duration > time.Hour {
		p.add(key, "must be 0 to 1h, got %s", d.Duration)
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
	if cl.ipv6() {
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

// validateTrack checks cluster.track: a known check, listed once, weight
// XOR fault, and timings that make sense (none for the interface, whose
// link is watched rather than polled).
func (cl Cluster) validateTrack(p *problems) {
	seen := map[string]bool{}
	for i, t := range cl.Track {
		key := fmt.Sprintf("cluster.track[%d]", i)
		p.oneOf(key+".check", t.Check, TrackDownstream, TrackStore, TrackEngines, TrackInterface)
		if seen[t.Check] {
			p.add(key+".check", "%q is listed twice", t.Check)
		}
		seen[t.Check] = true
		switch {
		case t.Fault && t.Weight != 0:
			p.add(key, "weight and fault: true exclude each other (fault gives up the VIP whatever the weight)")
		case !t.Fault && t.Weight == 0:
			p.add(key, "needs weight (-254 to -1) or fault: true")
		case t.Weight > 0 || t.Weight < -254:
			p.add(key+".weight", "must be -254 to -1 (the priority is lowered while the check fails), got %d", t.Weight)
		}
		if t.Check == TrackInterface {
			if t.Interval.Duration != 0 || t.Fall != 0 || t.Rise != 0 {
				p.add(key, "interval, fall and rise do not apply to the interface: link changes count at once")
			}
			continue
		}
		if iv := t.Interval.Duration; iv != 0 && (iv < 100*time.Millisecond || iv > time.Hour) {
			p.add(key+".interval", "must be 0 (default %s) or 100ms to 1h, got %s", DefaultTrackInterval, iv)
		}
		if t.Fall < 0 || t.Fall > 100 {
			p.add(key+".fall", "must be 0 (default %d) or 1 to 100, got %d", DefaultTrackFall, t.Fall)
		}
		if t.Rise < 0 || t.Rise > 100 {
			p.add(key+".rise", "must be 0 (default %d) or 1 to 100, got %d", DefaultTrackRise, t.Rise)
		}
	}
}
