// Package engines is what the clients of the outside scanning engines
// (clamd, Rspamd, spamd: the packages below it) share: their addresses,
// the bound on calls in flight to one engine, the kinds of error the
// scanner's on_error and the metrics tell apart, and those metrics.
package engines

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Addr is where an engine listens: a TCP host:port or a unix socket path.
type Addr struct {
	Network string // "tcp" or "unix"
	Address string // host:port, or the socket's path
	Scheme  string // as written: tcp, unix or http
}

// ParseAddr reads tcp://host:port, unix:///path or http://host:port; only
// the schemes given are accepted (an engine names those it speaks).
func ParseAddr(s string, schemes ...string) (Addr, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return Addr{}, fmt.Errorf("engine address %q: want %s", s, forms(schemes))
	}
	if !slices.Contains(schemes, u.Scheme) {
		return Addr{}, fmt.Errorf("engine address %q: scheme %q not accepted; want %s", s, u.Scheme, forms(schemes))
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return Addr{}, fmt.Errorf("engine address %q: no user, query or fragment; want %s", s, forms(schemes))
	}
	if u.Scheme == "unix" {
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
			return Addr{}, fmt.Errorf("engine address %q: want unix:///absolute/path", s)
		}
		return Addr{Network: "unix", Address: u.Path, Scheme: u.Scheme}, nil
	}
	if u.Path != "" && u.Path != "/" {
		return Addr{}, fmt.Errorf("engine address %q: no path; want %s", s, forms(schemes))
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" || port == "" {
		return Addr{}, fmt.Errorf("engine address %q: want host:port", s)
	}
	return Addr{Network: "tcp", Address: u.Host, Scheme: u.Scheme}, nil
}

func forms(schemes []string) string {
	var f []string
	for _, s := range schemes {
		switch s {
		case "unix":
			f = append(f, "unix:///path")
		default:
			f = append(f, s+"://host:port")
		}
	}
	return strings.Join(f, " or ")
}

func (a Addr) String() string {
	if a.Network == "unix" {
		return "unix://" + a.Address
	}
	return a.Scheme + "://" + a.Address
}

// Dial connects to a within ctx.
func (a Addr) Dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, a.Network, a.Address)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", a, err)
	}
	return c, nil
}

// Limiter bounds the calls in flight to one engine, so that a slow engine
// holds at most that many of its connections and scans wait for a turn
// (within their deadline) instead of piling up on it.
type Limiter struct{ sem chan struct{} }

// NewLimiter allows n calls at once (n < 1 is taken as 1).
func NewLimiter(n int) *Limiter { return &Limiter{sem: make(chan struct{}, max(n, 1))} }

// Acquire waits for a turn; release gives it back. An ended ctx is an
// error of kind KindTimeout or KindCanceled.
func (l *Limiter) Acquire(ctx context.Context) (release func(), err error) {
	select {
	case l.sem <- struct{}{}:
		return func() { <-l.sem }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a free connection: %w", ctx.Err())
	}
}

// InFlight is how many calls hold a turn now.
func (l *Limiter) InFlight() int { return len(l.sem) }

// ErrTooLarge: the message is larger than the engine takes (its
// StreamMaxLength, max_size); the engine did not look at it.
var ErrTooLarge = errors.New("message larger than the engine takes")

// ErrProtocol: the engine's reply is not what its protocol says (empty,
// truncated, malformed). Never read as "nothing found".
var ErrProtocol = errors.New("engine reply not understood")

// Kinds of error, for metrics and logs.
const (
	KindTimeout  = "timeout"
	KindCanceled = "canceled"
	KindConnect  = "connect"
	KindTooLarge = "too_large"
	KindProtocol = "protocol"
	KindIO       = "io"
	// KindEngine: the engine answered with an error of its own
	// (clamd's "... ERROR", spamd's EX_ codes, an HTTP 5xx).
	KindEngine = "engine"
)

// ErrEngine wraps an error the engine reported about itself.
var ErrEngine = errors.New("engine reported an error")

// Kind names the kind of err (one of the Kind constants).
func Kind(err error) string {
	var ne net.Error
	var op *net.OpError
	switch {
	case errors.Is(err, ErrTooLarge):
		return KindTooLarge
	case errors.Is(err, ErrProtocol):
		return KindProtocol
	case errors.Is(err, ErrEngine):
		return KindEngine
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case errors.Is(err, context.Canceled):
		return KindCanceled
	case errors.As(err, &op) && op.Op == "dial", errors.Is(err, syscall.ECONNREFUSED):
		return KindConnect
	default:
		return KindIO
	}
}

// Metrics are the calls to every engine of a node: counts by outcome,
// errors by kind, latency. One set per node, shared by its clients.
type Metrics struct {
	calls   *prometheus.CounterVec
	errors  *prometheus.CounterVec
	seconds *prometheus.HistogramVec
}

// NewMetrics registers the engine metrics with reg (nil: not exported).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgate_engine_calls_total", Help: "Calls to outside scanning engines, by engine and outcome (ok, error).",
		}, []string{"engine", "outcome"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgate_engine_errors_total", Help: "Failed calls to outside scanning engines, by engine and kind (timeout, connect, too_large, protocol, engine, io, canceled).",
		}, []string{"engine", "kind"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mxgate_engine_duration_seconds", Help: "Time of one call to an outside scanning engine, waiting for a turn included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"engine"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.calls, m.errors, m.seconds} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register engine metrics: %w", err)
		}
	}
	return m, nil
}

// Observe counts one call to engine that began at start and ended with
// err. A nil *Metrics counts nothing.
func (m *Metrics) Observe(engine string, start time.Time, err error) {
	if m == nil {
		return
	}
	m.seconds.WithLabelValues(engine).Observe(time.Since(start).Seconds())
	if err == nil {
		m.calls.WithLabelValues(engine, "ok").Inc()
		return
	}
	m.calls.WithLabelValues(engine, "error").Inc()
	m.errors.WithLabelValues(engine, Kind(err)).Inc()
}
