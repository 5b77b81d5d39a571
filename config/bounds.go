package config

import (
	"fmt"
	"time"
)

// Upper bounds of the numeric settings. Each is far above what a real
// installation needs and far below what would exhaust a node: a value past
// one is a typo or a tampered file, and is refused naming the key and the
// bound, where it used to be accepted and then grow a node until the
// kernel killed it (scanner.workers: 100000000 reserved 22 GB).
const (
	// MaxMessageBytes bounds smtp.max_message_bytes: 1 GiB is 40 times
	// the usual 25 MB of the large providers; a message is spooled, parsed
	// and sent downstream whole.
	MaxMessageBytes = 1 << 30
	// MaxRecipients bounds smtp.max_recipients: 100 times the 100 that
	// RFC 5321 §4.5.3.1.8 asks a server to take, 10 times Postfix's
	// smtpd_recipient_limit; every recipient is mirrored and kept.
	MaxRecipients = 10_000
	// MaxConnections bounds smtp.max_connections (and with it
	// max_connections_per_ip): ten times C10k; each session costs a few
	// tens of KB, a downstream connection and two file descriptors.
	MaxConnections = 100_000
	// MaxLineLength bounds smtp.max_line_length: a line is held whole in
	// memory, per session; 1 MiB is far past any unwrapped HTML line.
	MaxLineLength = 1 << 20
	// MaxTimeout bounds every timeout (smtp read, write, data and drain,
	// downstream; the scanner's is scanner.MaxTimeout, the same): RFC 5321
	// §4.5.3.2 suggests minutes; an hour is beyond any real client or
	// server, and keeps a stop bounded.
	MaxTimeout = time.Hour
	// MaxRetention bounds store.quarantine_retention and
	// store.log_retention: ten years covers the longest legal retention
	// of business mail.
	MaxRetention = 10 * 365 * 24 * time.Hour
	// MaxWeight bounds cluster.weight, cluster.peers[].weight and the
	// revision's weights: shares are relative, 10 000 gives 0.01 %
	// steps, and the dispatcher's running sums stay far from overflow.
	MaxWeight = 10_000
	// MaxGARPRefresh bounds cluster.garp_refresh and
	// cluster.garp_master_refresh: an announcement an hour apart is the
	// sparsest that still finds a switch that forgot the VIP.
	MaxGARPRefresh = time.Hour
)

// validateBounds adds a problem for every numeric key above its bound.
// The lower bounds stay in Validate with the rest of each key's checks;
// the scanner's keys are bounded by the scanner (scanner/bounds.go).
func (c Config) validateBounds(p *problems) {
	s := c.SMTP
	p.atMost("smtp.max_message_bytes", s.MaxMessageBytes, MaxMessageBytes, "1 GiB")
	p.atMost("smtp.max_recipients", int64(s.MaxRecipients), MaxRecipients, "")
	p.atMost("smtp.max_connections", int64(s.MaxConnections), MaxConnections, "")
	if s.MaxConnectionsPerIP > s.MaxConnections && s.MaxConnections > 0 {
		p.add("smtp.max_connections_per_ip", "must be at most smtp.max_connections (%d), got %d", s.MaxConnections, s.MaxConnectionsPerIP)
	}
	p.atMost("smtp.max_line_length", int64(s.MaxLineLength), MaxLineLength, "1 MiB")
	for _, t := range []struct {
		key string
		d   Duration
	}{
		{"smtp.read_timeout", s.ReadTimeout}, {"smtp.write_timeout", s.WriteTimeout},
		{"smtp.data_timeout", s.DataTimeout}, {"smtp.drain_timeout", s.DrainTimeout},
		{"downstream.timeout", c.Downstream.Timeout},
	} {
		p.durationAtMost(t.key, t.d, MaxTimeout)
	}

	p.durationAtMost("store.quarantine_retention", c.Store.QuarantineRetention, MaxRetention)
	p.durationAtMost("store.log_retention", c.Store.LogRetention, MaxRetention)

	if cl := c.Cluster; cl.Enabled {
		p.atMost("cluster.weight", int64(cl.Weight), MaxWeight, "")
		for i, pe := range cl.Peers {
			p.atMost(fmt.Sprintf("cluster.peers[%d].weight", i), int64(pe.Weight), MaxWeight, "")
		}
		p.durationAtMost("cluster.garp_refresh", cl.GARPRefresh, MaxGARPRefresh)
		p.durationAtMost("cluster.garp_master_refresh", cl.GARPMasterRefresh, MaxGARPRefresh)
	}
}

// atMost refuses v above max; unit, when given, says max in words.
func (p *problems) atMost(key string, v, max int64, unit string) {
	if v <= max {
		return
	}
	if unit != "" {
		p.add(key, "must be at most %d (%s), got %d", max, unit, v)
		return
	}
	p.add(key, "must be at most %d, got %d", max, v)
}

func (p *problems) durationAtMost(key string, d Duration, max time.Duration) {
	if d.Duration > max {
		p.add(key, "must be at most %s, got %s", max, d.Duration)
	}
}
