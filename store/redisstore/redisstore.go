// Package redisstore is the shared store of an active-active cluster: the
// quarantine, the block and allow lists and the message log in Redis, held
// to the same conformance suite (store/storetest) as the embedded bbolt
// backend.
//
// Every key starts with the hash tag "{mxgate}:", so that all of them live
// in one Redis Cluster slot and MULTI/EXEC and scripts work on a cluster as
// on a single server. Time-ordered indexes are sorted sets whose members
// all have score 0 and are the bbolt index keys themselves (8-byte
// big-endian unix nanoseconds, then the id, optionally preceded by a
// length-prefixed value): Redis orders equal-score members bytewise, like
// bbolt's cursor, so both backends list in exactly the same order, and a
// float score could not hold nanoseconds anyway. Ranges are walked with
// ZRANGE BYLEX.
package redisstore

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

	"github.com/mxgate/mxgate/boltkv"
)

// Prefix starts every key and channel this package uses.
const Prefix = "{mxgate}:"

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

// lexRange walks the members of the lex-ordered sorted set key that start
// with prefix and whose TimeKey after prefix may lie in since <= t < until
// (zero or non-Indexable bounds do not bound; fn must check the range
// itself), page members per ZRANGE, newest first when rev, else oldest
// first. fn gets each page's members with prefix removed and returns
// whether to go on. It mirrors boltkv.WalkBack, so both backends visit the
// same keys in the same order.
func lexRange(ctx context.Context, c redis.UniversalClient, key string, prefix []byte, since, until time.Time, rev bool, page int64, fn func(tks []string) (more bool, err error)) error {
	if !until.IsZero() && until.Before(time.Unix(0, 0)) {
		return nil // nothing is stored before 1970
	}
	p := string(prefix)
	lo, hi := "-", "+"
	if p != "" {
		lo = "[" + p
		if end := prefixEnd(prefix); end != nil {
			hi = "(" + string(end)
		}
	}
	if !since.IsZero() && boltkv.Indexable(since) {
		lo = "[" + p + string(boltkv.TimeKey(since, ""))
	}
	if !until.IsZero() && boltkv.Indexable(until) {
		hi = "(" + p + string(boltkv.TimeKey(until, ""))
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		args := redis.ZRangeArgs{Key: key, Start: lo, Stop: hi, ByLex: true, Count: page}
		if rev {
			args.Start, args.Stop, args.Rev = hi, lo, true
		}
		members, err := c.ZRangeArgs(ctx, args).Result()
		if err != nil {
			return err
		}
		tks := make([]string, 0, len(members))
		for _, m := range members {
			if len(m) >= len(p)+8 {
				tks = append(tks, m[len(p):])
			}
		}
		if len(tks) > 0 {
			if more, err := fn(tks); err != nil || !more {
				return err
			}
		}
		if int64(len(members)) < page {
			return nil
		}
		last := members[len(members)-1]
		if rev {
			hi = "(" + last
		} else {
			lo = "(" + last
		}
	}
}

// prefixEnd is the smallest string above every string starting with p,
// or nil when there is none (p empty or all 0xff).
func prefixEnd(p []byte) []byte {
	end := []byte(string(p))
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
