// Package dnsbl asks DNS blocklists about an SMTP client's address
// (reject_rbl_client) and a sender's domain (reject_rhsbl_sender, DBL
// style), with a bounded cache of the answers.
//
// An answer in 127.0.0.0/8 is a listing, except 127.255.255.0/24: lists
// such as Spamhaus answer that when they refuse the query (a public
// resolver, or a volume past the free use), and reading it as a listing
// would refuse all mail. It is an error, logged and counted, like a
// timeout, a SERVFAIL or an answer outside 127.0.0.0/8 (an expired zone
// answering with a wildcard). NXDOMAIN (or no A record) is "not listed".
//
// An error never lists and never blocks: a gateway must not refuse mail
// because a blocklist is down. The caller gets the error beside the
// listings the other zones gave, to log and to mark the message with.
package dnsbl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgate/mxgate/scanner"
)

// Options configure a Checker.
type Options struct {
	Policy     scanner.DNSBLPolicy   // the cluster's scanner.dnsbl; must have passed Validate
	Resolver   *net.Resolver         // nil = the system's
	Logger     *slog.Logger          // nil = slog.Default()
	Registerer prometheus.Registerer // nil = metrics not registered
}

// Listing is one zone that lists what was asked.
type Listing struct {
	Zone   string
	Type   string // scanner.DNSBLTypeIP or scanner.DNSBLTypeDomain
	Reject bool
	Score  float64
	Answer netip.Addr // the list's return code, e.g. 127.0.0.2
}

// Symbol is the listing as a scanner symbol: DNSBL_ and the zone in
// capitals, dots as underscores (DNSBL_ZEN_SPAMHAUS_ORG).
func (l Listing) Symbol(what string) scanner.Symbol {
	return scanner.Symbol{Name: SymbolName(l.Zone), Score: l.Score, Detail: what + " listed in " + l.Zone + " (" + l.Answer.String() + ")"}
}

// SymbolName is the symbol of a zone.
func SymbolName(zone string) string {
	return "DNSBL_" + strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, strings.TrimSuffix(zone, "."))
}

// ErrBlocked is the error of an answer in 127.255.255.0/24: the list
// refused the query.
var ErrBlocked = errors.New("query refused by the list (127.255.255.x answer)")

// Checker asks the configured zones. It is safe for concurrent use.
type Checker struct {
	zones   []scanner.DNSBLZone
	timeout time.Duration
	r       *net.Resolver
	log     *slog.Logger
	cache   *cache
	lookups *prometheus.CounterVec
}

// New makes a Checker over o.Policy's zones.
func New(o Options) (*Checker, error) {
	timeout, ttl, size := o.Policy.Settings()
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	c := &Checker{
		zones: slices.Clone(o.Policy.Zones), timeout: timeout, r: o.Resolver, log: o.Logger,
		cache: newCache(size, ttl),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgate_dnsbl_lookups_total",
			Help: "DNSBL lookups by zone and result (listed, clean, error, cached).",
		}, []string{"zone", "result"}),
	}
	for i := range c.zones {
		c.zones[i].Zone = strings.ToLower(strings.TrimSuffix(c.zones[i].Zone, "."))
		if c.zones[i].Type == "" {
			c.zones[i].Type = scanner.DNSBLTypeIP
		}
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(c.lookups); err != nil {
			return nil, fmt.Errorf("register dnsbl metrics: %w", err)
		}
	}
	return c, nil
}

// HasDomainZones reports whether any zone lists sender domains.
func (c *Checker) HasDomainZones() bool {
	for _, z := range c.zones {
		if z.Type == scanner.DNSBLTypeDomain {
			return true
		}
	}
	return false
}

// CheckIP asks every ip zone about ip, concurrently, within the timeout.
// It returns the listings and, joined, the zones that failed.
func (c *Checker) CheckIP(ctx context.Context, ip netip.Addr) ([]Listing, error) {
	if !ip.IsValid() {
		return nil, nil
	}
	return c.check(ctx, scanner.DNSBLTypeIP, reverse(ip.Unmap()))
}

// CheckDomain asks every domain zone about a sender's domain; a domain
// that is no host name is not asked.
func (c *Checker) CheckDomain(ctx context.Context, domain string) ([]Listing, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if !scanner.IsHostname(domain) {
		return nil, nil
	}
	return c.check(ctx, scanner.DNSBLTypeDomain, domain)
}

func (c *Checker) check(ctx context.Context, typ, label string) ([]Listing, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	type answer struct {
		l   *Listing
		err error
	}
	var zones []scanner.DNSBLZone
	for _, z := range c.zones {
		if z.Type == typ {
			zones = append(zones, z)
		}
	}
	answers := make([]answer, len(zones))
	var wg sync.WaitGroup
	for i, z := range zones {
		wg.Go(func() {
			a, err := c.lookup(ctx, label+"."+z.Zone+".", z.Zone)
			if err != nil {
				answers[i].err = fmt.Errorf("dnsbl %s: %s: %w", z.Zone, label, err)
			} else if a.IsValid() {
				answers[i].l = &Listing{Zone: z.Zone, Type: z.Type, Reject: z.Reject, Score: z.Score, Answer: a}
			}
		})
	}
	wg.Wait()
	var out []Listing
	var errs []error
	for _, a := range answers {
		if a.l != nil {
			out = append(out, *a.l)
		}
		if a.err != nil {
			errs = append(errs, a.err)
		}
	}
	return out, errors.Join(errs...)
}

// lookup asks name's A record: the listing's return code, or the zero
// Addr when not listed.
func (c *Checker) lookup(ctx context.Context, name, zone string) (netip.Addr, error) {
	if a, ok := c.cache.get(name); ok {
		c.lookups.WithLabelValues(zone, "cached").Inc()
		return a, nil
	}
	addrs, err := c.r.LookupNetIP(ctx, "ip4", name)
	a, err := classify(addrs, err)
	switch {
	case err != nil:
		c.lookups.WithLabelValues(zone, "error").Inc()
		c.log.Warn("dnsbl lookup failed; not counted as a listing", "zone", zone, "name", name, "err", err)
		return netip.Addr{}, err
	case a.IsValid():
		c.lookups.WithLabelValues(zone, "listed").Inc()
	default:
		c.lookups.WithLabelValues(zone, "clean").Inc()
	}
	c.cache.put(name, a)
	return a, nil
}

// classify reads a lookup's outcome: a listing's address, the zero Addr
// for "not listed", or an error.
func classify(addrs []netip.Addr, err error) (netip.Addr, error) {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return netip.Addr{}, nil
	}
	if err != nil {
		return netip.Addr{}, err
	}
	blocked := netip.MustParsePrefix("127.255.255.0/24")
	loop := netip.MustParsePrefix("127.0.0.0/8")
	var listed netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		switch {
		case blocked.Contains(a):
			return netip.Addr{}, fmt.Errorf("%w: %s", ErrBlocked, a)
		case !loop.Contains(a):
			return netip.Addr{}, fmt.Errorf("answer %s is outside 127.0.0.0/8: not a list's return code", a)
		case !listed.IsValid() || a.Less(listed):
			listed = a
		}
	}
	if !listed.IsValid() {
		return netip.Addr{}, nil
	}
	return listed, nil
}

// reverse is the query label of an address: octets reversed for IPv4
// (2.0.0.127), nibbles reversed for IPv6 (RFC 5782 §2.4).
func reverse(ip netip.Addr) string {
	b := ip.AsSlice()
	var s strings.Builder
	if ip.Is4() {
		for i := len(b) - 1; i >= 0; i-- {
			if i < len(b)-1 {
				s.WriteByte('.')
			}
			fmt.Fprintf(&s, "%d", b[i])
		}
		return s.String()
	}
	const hex = "0123456789abcdef"
	for i := len(b) - 1; i >= 0; i-- {
		if i < len(b)-1 {
			s.WriteByte('.')
		}
		s.WriteByte(hex[b[i]&0xf])
		s.WriteByte('.')
		s.WriteByte(hex[b[i]>>4])
	}
	return s.String()
}

// cache keeps answers (listed or not, never errors) for ttl, at most size
// of them: when full, expired entries go first, then arbitrary ones.
type cache struct {
	mu   sync.Mutex
	size int
	ttl  time.Duration
	m    map[string]cacheEntry
	now  func() time.Time
}

type cacheEntry struct {
	a       netip.Addr
	expires time.Time
}

func newCache(size int, ttl time.Duration) *cache {
	return &cache{size: size, ttl: ttl, m: make(map[string]cacheEntry), now: time.Now}
}

func (c *cache) get(name string) (netip.Addr, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[name]
	if !ok || !c.now().Before(e.expires) {
		return netip.Addr{}, false
	}
	return e.a, true
}

func (c *cache) put(name string, a netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if _, ok := c.m[name]; !ok && len(c.m) >= c.size {
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < c.size {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[name] = cacheEntry{a: a, expires: now.Add(c.ttl)}
}
