package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mxgate/mxgate/scanner"
)

// maxHardErrorLimit bounds smtp.hard_error_limit: each refused recipient
// costs a downstream round trip, and a client should not get thousands.
const maxHardErrorLimit = 1000

// Validate reports every problem of c at once (errors.Join), each naming its
// key, so that one edit-and-retry fixes a file. Cluster keys are checked only
// when the cluster is enabled.
func (c Config) Validate() error {
	var p problems

	// node
	if !validNodeID(c.Node.ID) {
		p.add("node.id", "%q is not a node id: 1-64 letters, digits, '.', '_' or '-'", c.Node.ID)
	}
	if c.Node.DataDir == "" {
		p.add("node.data_dir", "required")
	}
	p.oneOf("node.log_level", c.Node.LogLevel, "debug", "info", "warn", "error")
	p.oneOf("node.log_format", c.Node.LogFormat, "text", "json")

	// smtp
	if len(c.SMTP.Listen) == 0 {
		p.add("smtp.listen", "at least one host:port is required")
	}
	for i, a := range c.SMTP.Listen {
		p.listenAddr(fmt.Sprintf("smtp.listen[%d]", i), a)
	}
	if !validHostname(c.SMTP.Hostname) {
		p.add("smtp.hostname", "%q is not a host name", c.SMTP.Hostname)
	}
	for i, d := range c.SMTP.AcceptDomains {
		if !validDomain(d) {
			p.add(fmt.Sprintf("smtp.accept_domains[%d]", i), "%q is not a domain name (write example.org, without @)", d)
		}
	}
	p.cidrs("smtp.trusted_networks", c.SMTP.TrustedNetworks)
	p.positive("smtp.max_message_bytes", c.SMTP.MaxMessageBytes)
	p.positive("smtp.max_recipients", int64(c.SMTP.MaxRecipients))
	p.positive("smtp.max_connections", int64(c.SMTP.MaxConnections))
	p.positive("smtp.max_connections_per_ip", int64(c.SMTP.MaxConnectionsPerIP))
	p.duration("smtp.read_timeout", c.SMTP.ReadTimeout)
	p.duration("smtp.write_timeout", c.SMTP.WriteTimeout)
	p.duration("smtp.data_timeout", c.SMTP.DataTimeout)
	p.duration("smtp.drain_timeout", c.SMTP.DrainTimeout)
	if c.SMTP.MaxLineLength < 1000 {
		p.add("smtp.max_line_length", "must be at least 1000 (RFC 5321 §4.5.3.1.6), got %d", c.SMTP.MaxLineLength)
	}
	if n := c.SMTP.HardErrorLimit; n < 1 || n > maxHardErrorLimit {
		p.add("smtp.hard_error_limit", "must be 1-%d (refused commands before a client is disconnected), got %d", maxHardErrorLimit, n)
	}
	switch t := c.SMTP.TLS; {
	case t.Cert == "" && t.Key == "":
		if t.Require {
			p.add("smtp.tls.require", "needs smtp.tls.cert and smtp.tls.key")
		}
	case t.Cert == "":
		p.add("smtp.tls.cert", "required when smtp.tls.key is set")
	case t.Key == "":
		p.add("smtp.tls.key", "required when smtp.tls.cert is set")
	default:
		p.readable("smtp.tls.cert", t.Cert)
		p.readable("smtp.tls.key", t.Key)
	}
	if c.SMTP.ProxyProtocol && len(c.SMTP.ProxyTrusted) == 0 {
		p.add("smtp.proxy_trusted", "required when smtp.proxy_protocol is true: anyone else could forge the client address")
	}
	p.cidrs("smtp.proxy_trusted", c.SMTP.ProxyTrusted)

	// downstream
	if c.Downstream.Address == "" {
		p.add("downstream.address", "required (host:port of the mail server that gets clean mail)")
	} else {
		p.dialAddr("downstream.address", c.Downstream.Address)
	}
	p.duration("downstream.timeout", c.Downstream.Timeout)
	if c.Downstream.Helo != "" && !validHelo(c.Downstream.Helo) {
		p.add("downstream.helo", "%q is not a host name or address literal", c.Downstream.Helo)
	}

	// scanner: its own types check themselves, keys relative to scanner:
	p = append(p, scanner.Under("scanner", c.Scanner.Policy.Validate())...)
	p = append(p, scanner.Under("scanner", c.Scanner.Local.Validate())...)

	// store
	if c.Store.Redis != "" {
		// The URL may carry a password: never echo it.
		u, err := url.Parse(c.Store.Redis)
		switch {
		case err != nil:
			p.add("store.redis", "not a valid URL")
		case !strings.HasPrefix(u.Scheme, "redis"):
			p.add("store.redis", "want a redis://, rediss://, redis-sentinel:// or redis+cluster URL, got scheme %q", u.Scheme)
		case u.Host == "":
			p.add("store.redis", "the URL has no host")
		}
	}
	p.duration("store.quarantine_retention", c.Store.QuarantineRetention)
	p.duration("store.log_retention", c.Store.LogRetention)
	if m := c.Store.LogJournalMax; m < 1<<20 || m > 16<<30 {
		p.add("store.log_journal_max", "must be 1048576 (1 MiB) to 17179869184 (16 GiB) bytes, got %d", m)
	}
	if d := c.Store.LogJournalSync.Duration; d < 0 || d > 10*time.Second {
		p.add("store.log_journal_sync", "must be 0 (sync before the reply) to 10s, got %s", d)
	}

	// admin
	if c.Admin.Listen != "" {
		if p.listenAddr("admin.listen", c.Admin.Listen) && c.Admin.Token == "" && !loopbackListen(c.Admin.Listen) {
			p.add("admin.token", "required when admin.listen (%s) is not a loopback address", c.Admin.Listen)
		}
	}

	// cluster
	if cl := c.Cluster; cl.Enabled {
		if cl.Interface == "" {
			p.add("cluster.interface", "required when the cluster is enabled")
		}
		if cl.VRID < 1 || cl.VRID > 255 {
			p.add("cluster.vrid", "must be 1-255, got %d", cl.VRID)
		}
		if cl.VIP == "" {
			p.add("cluster.vip", "required when the cluster is enabled (address/prefix, e.g. 198.18.0.100/24)")
		} else if pf, err := netip.ParsePrefix(cl.VIP); err != nil {
			p.add("cluster.vip", "%q is not address/prefix (e.g. 198.18.0.100/24)", cl.VIP)
		} else if !pf.Addr().Is4() {
			p.add("cluster.vip", "%q: only IPv4 VIPs are supported", cl.VIP)
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
		if cl.Source != "" {
			if a, err := netip.ParseAddr(cl.Source); err != nil || !a.Is4() {
				p.add("cluster.source", "%q is not an IPv4 address", cl.Source)
			}
		}
		for i, a := range cl.UnicastPeers {
			if ip, err := netip.ParseAddr(a); err != nil || !ip.Is4() {
				p.add(fmt.Sprintf("cluster.unicast_peers[%d]", i), "%q is not an IPv4 address", a)
			}
		}
		p.oneOf("cluster.checksum", cl.Checksum, "pseudo-header", "message")
		if cl.GARPRepeat < 1 || cl.GARPRepeat > 100 {
			p.add("cluster.garp_repeat", "must be 1-100, got %d", cl.GARPRepeat)
		}
		if r := cl.GARPRefresh.Duration; r < 0 {
			p.add("cluster.garp_refresh", "must be 0 (none) or more, got %s", r)
		}
		if r := cl.GARPMasterRefresh.Duration; r != 0 && r < time.Second {
			p.add("cluster.garp_master_refresh", "must be 0 (never) or at least 1s, got %s", r)
		}
		if cl.Notify != "" && strings.TrimSpace(cl.Notify) == "" {
			p.add("cluster.notify", "is blank")
		}
		p.oneOf("cluster.mode", cl.Mode, ModeActiveActive, ModeActivePassive)
		if cl.Weight < 0 {
			p.add("cluster.weight", "must be 0 or more, got %d", cl.Weight)
		}
		p.listenAddr("cluster.peer_listen", cl.PeerListen)
		p.peerConnectionLimits(cl)
		if cl.Secret == "" {
			p.add("cluster.secret", "required when the cluster is enabled (authenticates the peer API)")
		} else if len(cl.Secret) < 16 {
			p.add("cluster.secret", "too short: at least 16 characters (it authenticates the peer API)")
		}
		if ttl := cl.MembershipTTL.Duration; ttl < 300*time.Millisecond || ttl > 5*time.Minute {
			p.add("cluster.membership_ttl", "must be 300ms to 5m, got %s", ttl)
		}
		seenPeer := map[string]bool{}
		for i, pe := range cl.Peers {
			key := fmt.Sprintf("cluster.peers[%d]", i)
			if !validNodeID(pe.ID) {
				p.add(key+".id", "%q is not a node id", pe.ID)
			} else if pe.ID == c.Node.ID {
				p.add(key+".id", "%q is this node (node.id); list only the others", pe.ID)
			} else if seenPeer[pe.ID] {
				p.add(key+".id", "%q is listed twice", pe.ID)
			}
			seenPeer[pe.ID] = true
			if _, _, err := net.SplitHostPort(pe.Address); err != nil || pe.Address == "" {
				p.add(key+".address", "%q is not host:port", pe.Address)
			}
			if pe.Weight < 0 {
				p.add(key+".weight", "must be 0 or more, got %d", pe.Weight)
			}
		}
	}
	c.validateBounds(&p)
	return p.err()
}

type problems []error

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

func (p problems) err() error { return errors.Join(p...) }

func (p *problems) oneOf(key, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	p.add(key, "%q is not one of %s", v, strings.Join(allowed, ", "))
}

func (p *problems) positive(key string, v int64) {
	if v <= 0 {
		p.add(key, "must be positive, got %d", v)
	}
}

func (p *problems) duration(key string, d Duration) {
	if d.Duration <= 0 {
		p.add(key, "must be a positive duration, got %s", d.Duration)
	}
}

func (p *problems) cidrs(key string, list []string) {
	for i, s := range list {
		if _, err := netip.ParsePrefix(s); err != nil {
			hint := ""
			if _, err := netip.ParseAddr(s); err == nil {
				hint = " (a single address is written with /32 or /128)"
			}
			p.add(fmt.Sprintf("%s[%d]", key, i), "%q is not a CIDR%s", s, hint)
		}
	}
}

// listenAddr checks host:port for a listener: the host may be empty (all
// addresses), an IP or a name; port 0 picks a free port.
func (p *problems) listenAddr(key, a string) bool {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		p.add(key, "%q is not host:port", a)
		return false
	}
	if !validPort(port, true) {
		p.add(key, "%q: port must be 0-65535", a)
		return false
	}
	if host != "" && !validHost(host) {
		p.add(key, "%q: %q is not an IP address or host name", a, host)
		return false
	}
	return true
}

// dialAddr checks host:port of a server to connect to.
func (p *problems) dialAddr(key, a string) {
	host, port, err := net.SplitHostPort(a)
	switch {
	case err != nil:
		p.add(key, "%q is not host:port", a)
	case host == "" || !validHost(host):
		p.add(key, "%q: the host must be an IP address or host name", a)
	case !validPort(port, false):
		p.add(key, "%q: port must be 1-65535", a)
	}
}

func (p *problems) readable(key, path string) {
	// Stat first: opening a FIFO or device would block or read forever.
	st, err := os.Stat(path)
	if err == nil && !st.Mode().IsRegular() {
		p.add(key, "%s is not a regular file", path)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		p.add(key, "cannot read %s: %v", path, unwrapPath(err))
		return
	}
	f.Close()
}

// unwrapPath drops the *PathError's repetition of the path.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func validPort(s string, zeroOK bool) bool {
	n, err := strconv.Atoi(s)
	if err != nil || n > 65535 || n < 0 {
		return false
	}
	return n > 0 || zeroOK
}

func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return validHostname(h)
}

func loopbackListen(a string) bool {
	host, _, err := net.SplitHostPort(a)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// ValidNodeID reports whether s can name a node: 1-64 letters, digits,
// '.', '_' or '-'.
func ValidNodeID(s string) bool { return validNodeID(s) }

func validNodeID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// validHostname accepts what real hosts are called, '_' included (container
// and Windows names have it): it is announced, never resolved, here.
func validHostname(s string) bool {
	return validLabels(strings.TrimSuffix(s, "."), true)
}

// validDomain is a mail domain: letters, digits and '-' in dot-separated labels.
func validDomain(s string) bool {
	return validLabels(s, false)
}

func validLabels(s string, underscore bool) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || underscore && r == '_') {
				return false
			}
		}
	}
	return true
}

// validHelo is a host name or an address literal ([192.0.2.1], [IPv6:...]).
func validHelo(s string) bool {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		ip := strings.TrimPrefix(s[1:len(s)-1], "IPv6:")
		_, err := netip.ParseAddr(ip)
		return err == nil
	}
	return validHostname(s)
}
