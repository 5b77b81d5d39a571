package scanner

import (
	"fmt"
	"maps"
	"math"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/mxgate/mxgate/config/duration"
)

// AuthPolicy is sender authentication (package mailauth): SPF, DKIM and
// DMARC checked for every message, the results as symbols with scores and
// one Authentication-Results header on delivered mail. It is part of the
// cluster's Policy (scanner.auth). The zero value is the default: off,
// and every empty field stands for its documented default, so that a
// revision stored before these keys existed reads back unchanged.
type AuthPolicy struct {
	// Enabled turns the checks on. Off by default: they need DNS, and the
	// resolver a node is given (scanner.dns.resolver) should be a local
	// caching one.
	Enabled bool `yaml:"enabled" json:"enabled,omitempty"`
	// AuthservID names this gateway in Authentication-Results (RFC 8601
	// §2.5); empty = smtp.hostname. Fields claiming it that arrive with
	// a message are removed before ours is added.
	AuthservID string `yaml:"authserv_id" json:"authserv_id,omitempty"`
	// SPFTimeout, DKIMTimeout and DMARCTimeout bound each check on its
	// own (its DNS lookups included); 0 = DefaultAuthTimeout. A check that
	// runs out gets its TEMPERROR symbol.
	SPFTimeout   duration.Duration `yaml:"spf_timeout" json:"spf_timeout,omitzero"`
	DKIMTimeout  duration.Duration `yaml:"dkim_timeout" json:"dkim_timeout,omitzero"`
	DMARCTimeout duration.Duration `yaml:"dmarc_timeout" json:"dmarc_timeout,omitzero"`
	// OnReject is what a message failing DMARC under p=reject gets:
	// reject (550 5.7.1, the default), quarantine or none (only the
	// symbol and its score).
	OnReject string `yaml:"on_reject" json:"on_reject,omitempty"`
	// OnQuarantine is what a message failing DMARC under p=quarantine
	// gets: quarantine (the default) or none.
	OnQuarantine string `yaml:"on_quarantine" json:"on_quarantine,omitempty"`
	// Scores override the default score of a symbol (see
	// DefaultAuthScores), e.g. {SPF_SOFTFAIL: 1.5}.
	Scores map[string]float64 `yaml:"scores,omitempty" json:"scores,omitempty"`
}

// DNSBLPolicy is the DNS blocklists (package dnsbl) asked about each
// connection's client, and optionally its sender's domain. Part of the
// cluster's Policy (scanner.dnsbl); the zero value (no zones) is the
// default and checks nothing.
type DNSBLPolicy struct {
	// Zones are the lists asked, in order.
	Zones []DNSBLZone `yaml:"zones,omitempty" json:"zones,omitempty"`
	// Timeout bounds the lookups of one connection, all zones together
	// (they are asked concurrently); 0 = 2s.
	Timeout duration.Duration `yaml:"timeout" json:"timeout,omitzero"`
	// CacheTTL is how long an answer (listed or not) is reused; 0 = 5m.
	// Errors are never cached.
	CacheTTL duration.Duration `yaml:"cache_ttl" json:"cache_ttl,omitzero"`
	// CacheSize bounds the answers kept per node; 0 = 10000.
	CacheSize int `yaml:"cache_size" json:"cache_size,omitempty"`
}

// DNSBLZone is one blocklist.
type DNSBLZone struct {
	// Zone is the list's DNS zone, e.g. zen.spamhaus.org.
	Zone string `yaml:"zone" json:"zone"`
	// Type is what is looked up: ip (the client address, reversed; the
	// default) or domain (the sender's domain, a DBL-style list).
	Type string `yaml:"type" json:"type,omitempty"`
	// Reject refuses every recipient of a listed client at RCPT with 554
	// 5.7.1 naming the zone; otherwise Score is added to the message's.
	Reject bool `yaml:"reject" json:"reject,omitempty"`
	// Score is added to the message's score when listed (without Reject).
	Score float64 `yaml:"score" json:"score,omitempty"`
}

// DNSLocal is where this node asks DNS for sender authentication and
// DNSBLs. It is node-local (scanner.dns in the node file, never in a
// revision): each node has its own nearby caching resolver.
type DNSLocal struct {
	// Resolver is host:port of the DNS server asked for everything;
	// empty = the system's (/etc/resolv.conf).
	Resolver string `yaml:"resolver" json:"resolver,omitempty"`
}

// Defaults of the empty fields of AuthPolicy and DNSBLPolicy.
const (
	DefaultAuthTimeout    = 5 * time.Second
	DefaultDNSBLTimeout   = 2 * time.Second
	DefaultDNSBLCacheTTL  = 5 * time.Minute
	DefaultDNSBLCacheSize = 10000
	// DNSBLTypeIP and DNSBLTypeDomain are DNSBLZone.Type's values.
	DNSBLTypeIP     = "ip"
	DNSBLTypeDomain = "domain"
	// DMARC actions (OnReject, OnQuarantine).
	DMARCReject     = "reject"
	DMARCQuarantine = "quarantine"
	DMARCNone       = "none"
)

// DefaultAuthScores are the scores of the sender authentication symbols,
// in the spirit of rspamd's (R_SPF_FAIL 1, R_SPF_SOFTFAIL 0, R_DKIM_REJECT
// 1, DMARC_POLICY_REJECT 2 …) but weighed for a gateway whose quarantine
// threshold is 6: a pass lowers the score a little, a failure raises it
// without deciding alone; the DMARC policy decides through OnReject and
// OnQuarantine, not through its score. Errors (the sender's DNS broken)
// and absence score 0.
func DefaultAuthScores() map[string]float64 {
	return map[string]float64{
		"SPF_PASS":              -0.5,
		"SPF_FAIL":              2,
		"SPF_SOFTFAIL":          0.5,
		"SPF_NEUTRAL":           0,
		"SPF_NONE":              0,
		"SPF_PERMERROR":         0.5,
		"SPF_TEMPERROR":         0,
		"DKIM_PASS":             -0.5,
		"DKIM_FAIL":             1,
		"DKIM_PERMERROR":        0.5,
		"DKIM_TEMPERROR":        0,
		"DKIM_NONE":             0,
		"DMARC_PASS":            -1,
		"DMARC_FAIL_REJECT":     4,
		"DMARC_FAIL_QUARANTINE": 3,
		"DMARC_FAIL_NONE":       0.5,
		"DMARC_NONE":            0,
		"DMARC_PERMERROR":       0,
		"DMARC_TEMPERROR":       0,
	}
}

// orDefault is d, or def when d is 0.
func orDefault(d duration.Duration, def time.Duration) time.Duration {
	if d.Duration == 0 {
		return def
	}
	return d.Duration
}

// Timeouts are the SPF, DKIM and DMARC timeouts, defaults filled in.
func (a AuthPolicy) Timeouts() (spf, dkim, dmarc time.Duration) {
	return orDefault(a.SPFTimeout, DefaultAuthTimeout), orDefault(a.DKIMTimeout, DefaultAuthTimeout), orDefault(a.DMARCTimeout, DefaultAuthTimeout)
}

// Actions are OnReject and OnQuarantine, defaults filled in.
func (a AuthPolicy) Actions() (onReject, onQuarantine string) {
	onReject, onQuarantine = a.OnReject, a.OnQuarantine
	if onReject == "" {
		onReject = DMARCReject
	}
	if onQuarantine == "" {
		onQuarantine = DMARCQuarantine
	}
	return onReject, onQuarantine
}

// ScoreTable is DefaultAuthScores with Scores applied.
func (a AuthPolicy) ScoreTable() map[string]float64 {
	t := DefaultAuthScores()
	maps.Copy(t, a.Scores)
	return t
}

// Settings are the DNSBL timeout, cache TTL and cache size, defaults
// filled in.
func (d DNSBLPolicy) Settings() (timeout, cacheTTL time.Duration, cacheSize int) {
	cacheSize = d.CacheSize
	if cacheSize == 0 {
		cacheSize = DefaultDNSBLCacheSize
	}
	return orDefault(d.Timeout, DefaultDNSBLTimeout), orDefault(d.CacheTTL, DefaultDNSBLCacheTTL), cacheSize
}

func (a AuthPolicy) clone() AuthPolicy {
	a.Scores = maps.Clone(a.Scores)
	return a
}

func (d DNSBLPolicy) clone() DNSBLPolicy {
	d.Zones = slices.Clone(d.Zones)
	return d
}

// Bounds of the settings above.
const (
	maxAuthTimeout  = time.Minute
	maxDNSBLZones   = 32
	maxDNSBLCache   = 1_000_000
	maxDNSBLTTL     = 24 * time.Hour
	maxAuthservID   = 255
	maxDNSBLTimeout = time.Minute
)

func (a AuthPolicy) problems() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, settingError("auth."+key, format, args...))
	}
	if a.AuthservID != "" && !validAuthservID(a.AuthservID) {
		bad("authserv_id", "%q is not a host name (letters, digits, dots, hyphens; at most %d)", a.AuthservID, maxAuthservID)
	}
	for _, t := range []struct {
		key string
		d   time.Duration
	}{{"spf_timeout", a.SPFTimeout.Duration}, {"dkim_timeout", a.DKIMTimeout.Duration}, {"dmarc_timeout", a.DMARCTimeout.Duration}} {
		if t.d < 0 || t.d > maxAuthTimeout {
			bad(t.key, "must be 0 (default %s) to %s, got %s", DefaultAuthTimeout, maxAuthTimeout, t.d)
		}
	}
	if !slices.Contains([]string{"", DMARCReject, DMARCQuarantine, DMARCNone}, a.OnReject) {
		bad("on_reject", "%q is not one of reject, quarantine, none", a.OnReject)
	}
	if !slices.Contains([]string{"", DMARCQuarantine, DMARCNone}, a.OnQuarantine) {
		bad("on_quarantine", "%q is not one of quarantine, none", a.OnQuarantine)
	}
	known := DefaultAuthScores()
	for _, name := range slices.Sorted(maps.Keys(a.Scores)) {
		v := a.Scores[name]
		switch _, ok := known[name]; {
		case !ok:
			bad("scores."+name, "not a sender authentication symbol (one of %s)", strings.Join(slices.Sorted(maps.Keys(known)), ", "))
		case math.IsNaN(v) || math.IsInf(v, 0) || v > MaxThreshold || v < -MaxThreshold:
			bad("scores."+name, "must be -%d to %d, got %g", MaxThreshold, MaxThreshold, v)
		}
	}
	return errs
}

func (d DNSBLPolicy) problems() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, settingError("dnsbl."+key, format, args...))
	}
	if len(d.Zones) > maxDNSBLZones {
		bad("zones", "at most %d zones, got %d", maxDNSBLZones, len(d.Zones))
	}
	seen := map[string]int{}
	for i, z := range d.Zones {
		key := fmt.Sprintf("zones[%d]", i)
		name := strings.ToLower(strings.TrimSuffix(z.Zone, "."))
		if !IsHostname(name) || !strings.Contains(name, ".") {
			bad(key+".zone", "%q is not a DNS zone (e.g. zen.spamhaus.org)", z.Zone)
		}
		if !slices.Contains([]string{"", DNSBLTypeIP, DNSBLTypeDomain}, z.Type) {
			bad(key+".type", "%q is not one of ip, domain", z.Type)
		}
		if math.IsNaN(z.Score) || math.IsInf(z.Score, 0) || z.Score > MaxThreshold || z.Score < -MaxThreshold {
			bad(key+".score", "must be -%d to %d, got %g", MaxThreshold, MaxThreshold, z.Score)
		}
		typ := z.Type
		if typ == "" {
			typ = DNSBLTypeIP
		}
		id := name + "/" + typ
		if j, dup := seen[id]; dup {
			bad(key+".zone", "%s is already zones[%d]", z.Zone, j)
		}
		seen[id] = i
	}
	if t := d.Timeout.Duration; t < 0 || t > maxDNSBLTimeout {
		bad("timeout", "must be 0 (default %s) to %s, got %s", DefaultDNSBLTimeout, maxDNSBLTimeout, t)
	}
	if t := d.CacheTTL.Duration; t < 0 || t > maxDNSBLTTL {
		bad("cache_ttl", "must be 0 (default %s) to %s, got %s", DefaultDNSBLCacheTTL, maxDNSBLTTL, t)
	}
	if d.CacheSize < 0 || d.CacheSize > maxDNSBLCache {
		bad("cache_size", "must be 0 (default %d) to %d, got %d", DefaultDNSBLCacheSize, maxDNSBLCache, d.CacheSize)
	}
	return errs
}

func (l DNSLocal) problems() []error {
	if l.Resolver == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(l.Resolver)
	if err != nil || host == "" || !validPort(port) {
		return []error{settingError("dns.resolver", "%q: want host:port of a DNS server (e.g. 127.0.0.1:53)", l.Resolver)}
	}
	return nil
}

// validAuthservID keeps the authserv-id to what can be written unquoted
// in a header: a host name.
func validAuthservID(s string) bool { return len(s) <= maxAuthservID && IsHostname(s) }

// IsHostname reports whether s is a DNS name of letters, digits, hyphens
// and underscores (DKIM selectors, DNSBL zones) in labels of at most 63,
// 253 in all: what the auth and DNSBL code will put into a query or a
// header.
func IsHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
