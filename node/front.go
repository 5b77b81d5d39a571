package node

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgate/mxgate/certfile"
	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/deliver"
	"github.com/mxgate/mxgate/dnsbl"
	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/mailauth"
	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/smtpfront"
	"github.com/mxgate/mxgate/store"
)

// newFront prepares the SMTP front end: its limits and policy from cfg, its
// scans through d, its lists from the cache, its quarantine and message log
// in st.
func newFront(cfg config.Config, cert *certfile.Pair, d *scanner.Dispatcher, lc *lists.Cache, st *store.Backend, authservID func() string, log *slog.Logger, reg prometheus.Registerer) (*smtpfront.Server, error) {
	var tlsConf *tls.Config
	if cert != nil {
		tlsConf = cert.ServerConfig()
	}
	bl, err := newDNSBL(cfg, log, reg)
	if err != nil {
		return nil, err
	}
	s := cfg.SMTP
	return smtpfront.New(smtpfront.Options{
		NodeID:              cfg.Node.ID,
		Hostname:            s.Hostname,
		Listen:              smtpListen(cfg),
		AcceptDomains:       s.AcceptDomains,
		TrustedNetworks:     prefixes(s.TrustedNetworks),
		MaxMessageBytes:     s.MaxMessageBytes,
		MaxRecipients:       s.MaxRecipients,
		MaxConnections:      s.MaxConnections,
		MaxConnectionsPerIP: s.MaxConnectionsPerIP,
		MaxLineLength:       s.MaxLineLength,
		HardErrorLimit:      s.HardErrorLimit,
		ReadTimeout:         s.ReadTimeout.Duration,
		WriteTimeout:        s.WriteTimeout.Duration,
		DataTimeout:         s.DataTimeout.Duration,
		ScanTimeout:         cfg.Scanner.Timeout.Duration,
		AuthservID:          authservID,
		TLS:                 tlsConf,
		RequireTLS:          s.TLS.Require,
		ProxyProtocol:       s.ProxyProtocol,
		ProxyTrusted:        prefixes(s.ProxyTrusted),
		Downstream:          downstream(cfg),
		Scanner:             d,
		DNSBL:               bl,
		Lists:               lc,
		Quarantine:          st.Quarantine,
		QuarantineRetention: cfg.Store.QuarantineRetention.Duration,
		Log:                 st.Log,
		SpoolDir:            cfg.Node.DataDir,
		LogJournalMax:       cfg.Store.LogJournalMax,
		LogJournalSync:      cfg.Store.LogJournalSync.Duration,
		Logger:              log,
		Registerer:          reg,
	})
}

// newDNSBL is the blocklist checker of the node file's scanner.dnsbl
// (nil without zones), asking the node's resolver. Zones changed by a
// later revision apply at the next start.
func newDNSBL(cfg config.Config, log *slog.Logger, reg prometheus.Registerer) (*dnsbl.Checker, error) {
	if len(cfg.Scanner.DNSBL.Zones) == 0 {
		return nil, nil
	}
	c, err := dnsbl.New(dnsbl.Options{Policy: cfg.Scanner.DNSBL, Resolver: mailauth.NewResolver(cfg.Scanner.DNS.Resolver), Logger: log, Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("scanner.dnsbl: %w", err)
	}
	return c, nil
}

// downstream is the mail server that gets clean and released mail.
func downstream(cfg config.Config) deliver.Options {
	return deliver.Options{Addr: cfg.Downstream.Address, Helo: cfg.Downstream.Helo, Timeout: cfg.Downstream.Timeout.Duration}
}

// prefixes converts validated CIDRs (a bare address counts as a /32 or /128).
func prefixes(ss []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		if !strings.Contains(s, "/") {
			if a, err := netip.ParseAddr(s); err == nil {
				out = append(out, netip.PrefixFrom(a, a.BitLen()))
			}
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// scannerOptions are the pool's options under policy (the node file's at
// start, then each revision's): the node-local settings come from the file.
func scannerOptions(cfg config.Config, policy scanner.Policy) scanner.Options {
	return scanner.Options{NodeID: cfg.Node.ID, Policy: policy, Local: cfg.Scanner.Local}
}
