package kv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// openTimeout bounds Open's first PING when ctx has no deadline, so that a
// wrong address fails start-up promptly instead of after every retry.
const openTimeout = 10 * time.Second

const urlForms = "accepted forms: redis://[user:password@]host:port[/db], rediss://... (TLS), " +
	"redis-sentinel://[user:password@]host:port[,host:port...]/mastername[/db], " +
	"redis+cluster://[user:password@]host:port[,host:port...] (rediss+cluster:// for TLS)"

// Open connects to the Redis named by rawURL and checks it with PING (Dial
// is the same without the check):
//
//	redis://[user:password@]host:port[/db][?go-redis options]
//	rediss://...                                    (TLS)
//	redis-sentinel://[user:password@]h1:p1,h2:p2/mastername[/db]
//	redis+cluster://[user:password@]h1:p1,h2:p2     (rediss+cluster:// for TLS)
//
// With Sentinel the password is the data nodes'; a password for the
// sentinels themselves goes in ?sentinel_password=. Errors name the URL
// with its password removed.
func Open(ctx context.Context, rawURL string) (redis.UniversalClient, error) {
	c, err := newClient(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis store %s: %w", redact(rawURL), err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, openTimeout)
		defer cancel()
	}
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis store %s: PING: %w", redact(rawURL), err)
	}
	return c, nil
}

func newClient(rawURL string) (redis.UniversalClient, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, fmt.Errorf("not a URL; %s", urlForms)
	}
	switch scheme {
	case "redis", "rediss":
		o, err := redis.ParseURL(rawURL)
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err // its text holds the whole URL, password included
		}
		if err != nil {
			return nil, fmt.Errorf("%w; %s", err, urlForms)
		}
		return redis.NewClient(o), nil
	case "redis-sentinel", "rediss-sentinel":
		o, err := parseSentinel(scheme == "rediss-sentinel", rest)
		if err != nil {
			return nil, fmt.Errorf("%w; %s", err, urlForms)
		}
		return redis.NewFailoverClient(o), nil
	case "redis+cluster", "rediss+cluster":
		o, err := parseCluster(scheme == "rediss+cluster", rest)
		if err != nil {
			return nil, fmt.Errorf("%w; %s", err, urlForms)
		}
		return redis.NewClusterClient(o), nil
	}
	return nil, fmt.Errorf("unknown scheme %q; %s", scheme, urlForms)
}

// multiHost is the part of a sentinel or cluster URL that go-redis's own
// parsers cannot take: several host:port pairs separated by commas.
type multiHost struct {
	user, password string
	addrs          []string
	path           []string // non-empty path segments
	query          url.Values
}

func parseMultiHost(rest string) (multiHost, error) {
	var m multiHost
	rest, rawQuery, _ := strings.Cut(rest, "?")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return m, fmt.Errorf("query: %w", err)
	}
	m.query = q
	hosts, path, _ := strings.Cut(rest, "/")
	if at := strings.LastIndexByte(hosts, '@'); at >= 0 {
		ui, err := url.Parse("redis://" + hosts[:at+1] + "x")
		if err != nil || ui.User == nil {
			return m, errors.New("bad user information")
		}
		m.user = ui.User.Username()
		m.password, _ = ui.User.Password()
		hosts = hosts[at+1:]
	}
	for h := range strings.SplitSeq(hosts, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil || host == "" {
			return m, fmt.Errorf("address %q is not host:port", h)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return m, fmt.Errorf("address %q: bad port", h)
		}
		m.addrs = append(m.addrs, net.JoinHostPort(host, port))
	}
	for s := range strings.SplitSeq(path, "/") {
		if s != "" {
			m.path = append(m.path, s)
		}
	}
	return m, nil
}

func parseSentinel(useTLS bool, rest string) (*redis.FailoverOptions, error) {
	m, err := parseMultiHost(rest)
	if err != nil {
		return nil, err
	}
	if len(m.path) < 1 || len(m.path) > 2 {
		return nil, errors.New("sentinel URL needs /mastername[/db] after the addresses")
	}
	o := &redis.FailoverOptions{
		MasterName:       m.path[0],
		SentinelAddrs:    m.addrs,
		Username:         m.user,
		Password:         m.password,
		SentinelPassword: m.query.Get("sentinel_password"),
	}
	if len(m.path) == 2 {
		if o.DB, err = strconv.Atoi(m.path[1]); err != nil || o.DB < 0 {
			return nil, fmt.Errorf("database %q is not a number", m.path[1])
		}
	}
	for k := range m.query {
		if k != "sentinel_password" {
			return nil, fmt.Errorf("unknown sentinel URL parameter %q (only sentinel_password)", k)
		}
	}
	if useTLS {
		o.TLSConfig = tlsConfig()
	}
	return o, nil
}

func parseCluster(useTLS bool, rest string) (*redis.ClusterOptions, error) {
	m, err := parseMultiHost(rest)
	if err != nil {
		return nil, err
	}
	if len(m.path) > 0 {
		return nil, errors.New("a cluster URL has no path: Redis Cluster has only database 0")
	}
	if len(m.query) > 0 {
		return nil, errors.New("a cluster URL takes no parameters")
	}
	o := &redis.ClusterOptions{Addrs: m.addrs, Username: m.user, Password: m.password}
	if useTLS {
		o.TLSConfig = tlsConfig()
	}
	return o, nil
}

// tlsConfig leaves ServerName empty: the TLS dialer then takes it from
// each address, which a multi-host URL needs.
func tlsConfig() *tls.Config { return &tls.Config{MinVersion: tls.VersionTLS12} }

// redact drops the user information (password) and the parameters (which
// may hold a sentinel password) from a Redis URL, for logs and messages.
func redact(rawURL string) string {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		if strings.Contains(rawURL, "@") {
			return "(unparsable URL)"
		}
		return strconv.Quote(rawURL)
	}
	hostEnd := strings.IndexAny(rest, "/?")
	if hostEnd < 0 {
		hostEnd = len(rest)
	}
	if at := strings.LastIndexByte(rest[:hostEnd], '@'); at >= 0 {
		rest = "xxx@" + rest[at+1:]
	}
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		rest = rest[:q]
	}
	return scheme + "://" + rest
}

// Dial builds the client for rawURL (the forms of Open) without contacting
// Redis, for a node that must start while the store is down: go-redis
// connects on first use and again after every failure.
func Dial(rawURL string) (redis.UniversalClient, error) {
	c, err := newClient(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis store %s: %w", redact(rawURL), err)
	}
	return c, nil
}

// Redact is rawURL with its password removed, for logs and errors.
func Redact(rawURL string) string { return redact(rawURL) }
