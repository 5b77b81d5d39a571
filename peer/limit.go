package peer

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Connection limits of the peer listener when ServerOptions leaves them 0.
// A node (package node) sizes them from its scanner instead.
const (
	DefaultMaxConnections      = 256
	DefaultMaxConnectionsPerIP = 64
)

// Reasons counted in mxgate_peer_connections_refused_total.
const (
	refusedTotal = "total"
	refusedPerIP = "per_ip"
)

// tooManyConnections is written to a connection refused at accept, so a
// peer sees why (an HTTP client reads a 503 and tries another member); a
// caller that already sent a request may see a reset instead, which it
// treats the same way.
const tooManyConnections = "HTTP/1.1 503 Service Unavailable\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 21\r\nConnection: close\r\n\r\n" +
	"too many connections\n"

// refuseWriteTimeout bounds writing that answer; a fresh socket's send
// buffer takes it at once, this only guards against the impossible.
const refuseWriteTimeout = 100 * time.Millisecond

// limitListener admits at most max connections at once, and at most
// perSource from one source: one IPv4 address, or one IPv6 /64 (what one
// host can easily hold). Connections over either limit are answered 503
// and closed at accept, before anything is read from them.
type limitListener struct {
	net.Listener
	max, perSource int
	open           prometheus.Gauge
	refused        *prometheus.CounterVec

	mu      sync.Mutex
	total   int
	sources map[netip.Prefix]int // entries only while > 0: bounded by max
}

func newLimitListener(ln net.Listener, max, perSource int, m *metrics) *limitListener {
	return &limitListener{
		Listener: ln, max: max, perSource: perSource,
		open: m.connections, refused: m.connRefused,
		sources: make(map[netip.Prefix]int),
	}
}

// Accept returns the next connection within the limits; those over them
// are refused here and never reach the HTTP server.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := sourceOf(c.RemoteAddr())
		if reason := l.admit(src); reason != "" {
			l.refused.WithLabelValues(reason).Inc()
			c.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
			c.Write([]byte(tooManyConnections))
			c.Close()
			continue
		}
		return &limitedConn{Conn: c, l: l, src: src}, nil
	}
}

func (l *limitListener) admit(src netip.Prefix) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.max {
		return refusedTotal
	}
	if l.sources[src] >= l.perSource {
		return refusedPerIP
	}
	l.total++
	l.sources[src]++
	l.open.Inc()
	return ""
}

func (l *limitListener) release(src netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if n := l.sources[src] - 1; n > 0 {
		l.sources[src] = n
	} else {
		delete(l.sources, src)
	}
	l.open.Dec()
}

// sourceOf is the limit key of a remote address. An address that is not
// IP (a Unix socket in a test) shares the zero key.
func sourceOf(a net.Addr) netip.Prefix {
	var ip netip.Addr
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ = netip.AddrFromSlice(ta.IP)
	}
	ip = ip.Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	p, _ := ip.Prefix(bits)
	return p
}

// limitedConn gives its slot back when closed, once.
type limitedConn struct {
	net.Conn
	l    *limitListener
	src  netip.Prefix
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.src) })
	return err
}
