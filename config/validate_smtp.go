package config

import (
	"fmt"
	"strings"
)

// maxHardErrorLimit bounds smtp.hard_error_limit: each refused recipient
// costs a downstream round trip, and a client should not get thousands.
const maxHardErrorLimit = 1000

func (s SMTP) validate(p *problems) {
	if len(s.Listen) == 0 {
		p.add("smtp.listen", "at least one host:port is required")
	}
	for i, a := range s.Listen {
		p.listenAddr(fmt.Sprintf("smtp.listen[%d]", i), a)
	}
	if !validHostname(s.Hostname) {
		p.add("smtp.hostname", "%q is not a host name", s.Hostname)
	}
	for i, d := range s.AcceptDomains {
		// ".example.org" is every subdomain of example.org, as in Postfix's
		// relay_domains (smtpfront's relay policy matches it so).
		if !validDomain(strings.TrimPrefix(d, ".")) {
			p.add(fmt.Sprintf("smtp.accept_domains[%d]", i), "%q is not a domain name (write example.org, or .example.org for its subdomains, without @)", d)
		}
	}
	p.cidrs("smtp.trusted_networks", s.TrustedNetworks)
	s.validateLimits(p)
	for _, t := range []struct {
		key string
		d   Duration
	}{
		{"smtp.read_timeout", s.ReadTimeout}, {"smtp.write_timeout", s.WriteTimeout},
		{"smtp.data_timeout", s.DataTimeout}, {"smtp.drain_timeout", s.DrainTimeout},
	} {
		p.durationUpTo(t.key, t.d, MaxTimeout)
	}
	s.TLS.validate(p)
	if s.ProxyProtocol && len(s.ProxyTrusted) == 0 {
		p.add("smtp.proxy_trusted", "required when smtp.proxy_protocol is true: anyone else could forge the client address")
	}
	p.cidrs("smtp.proxy_trusted", s.ProxyTrusted)
}

// validateLimits checks what a client can make a session hold.
func (s SMTP) validateLimits(p *problems) {
	p.countUpTo("smtp.max_message_bytes", s.MaxMessageBytes, MaxMessageBytes, "1 GiB")
	p.countUpTo("smtp.max_recipients", int64(s.MaxRecipients), MaxRecipients, "")
	p.countUpTo("smtp.max_connections", int64(s.MaxConnections), MaxConnections, "")
	p.positive("smtp.max_connections_per_ip", int64(s.MaxConnectionsPerIP))
	if s.MaxConnectionsPerIP > s.MaxConnections && s.MaxConnections > 0 {
		p.add("smtp.max_connections_per_ip", "must be at most smtp.max_connections (%d), got %d", s.MaxConnections, s.MaxConnectionsPerIP)
	}
	if s.MaxLineLength < 1000 {
		p.add("smtp.max_line_length", "must be at least 1000 (RFC 5321 §4.5.3.1.6), got %d", s.MaxLineLength)
	}
	p.atMost("smtp.max_line_length", int64(s.MaxLineLength), MaxLineLength, "1 MiB")
	if n := s.HardErrorLimit; n < 1 || n > maxHardErrorLimit {
		p.add("smtp.hard_error_limit", "must be 1-%d (refused commands before a client is disconnected), got %d", maxHardErrorLimit, n)
	}
}

func (t TLS) validate(p *problems) {
	if t.Cert == "" && t.Key == "" && t.Require {
		p.add("smtp.tls.require", "needs smtp.tls.cert and smtp.tls.key")
	}
	p.certPair("smtp.tls", t.Cert, t.Key)
}
