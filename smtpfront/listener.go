package smtpfront

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/mxgate/mxgate/coalesce"
)

// limitListener enforces the connection limits before go-smtp sees a
// connection (go-smtp has no connect hook: its session starts at EHLO), and
// resolves the client address from a PROXY header when the peer is a
// trusted load balancer.
type limitListener struct {
	inner         net.Listener
	maxTotal      int
	maxPerIP      int
	proxyTrusted  []netip.Prefix // nil: PROXY protocol off
	headerTimeout time.Duration
	hostname      string
	log           *slog.Logger
	onRefuse      func(reason string)
	bufs          *coalesce.Buffers

	ready     chan net.Conn
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	mu    sync.Mutex
	total int
	perIP map[netip.Addr]int
	conns map[*trackedConn]struct{}
}

func newLimitListener(inner net.Listener, o *Options, log *slog.Logger, onRefuse func(string)) *limitListener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &limitListener{
		inner:         inner,
		maxTotal:      o.MaxConnections,
		maxPerIP:      o.MaxConnectionsPerIP,
		headerTimeout: 10 * time.Second,
		hostname:      o.Hostname,
		log:           log,
		onRefuse:      onRefuse,
		ready:         make(chan net.Conn),
		ctx:           ctx,
		cancel:        cancel,
		perIP:         map[netip.Addr]int{},
		conns:         map[*trackedConn]struct{}{},
		bufs:          coalesce.NewBuffers(),
	}
	if o.ProxyProtocol {
		l.proxyTrusted = o.ProxyTrusted
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *limitListener) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		c, err := l.inner.Accept()
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and friends: back off like net/http does instead of spinning.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.log.Warn("accept failed", "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-l.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		if l.proxyTrusted != nil && l.fromTrustedProxy(c) {
			// The header is read in a goroutine of its own so that one slow
			// load balancer connection cannot stall the accept loop.
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				l.admit(l.unwrapProxy(c))
			}()
			continue
		}
		l.admit(c)
	}
}

func (l *limitListener) fromTrustedProxy(c net.Conn) bool {
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range l.proxyTrusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// unwrapProxy reads the PROXY v1/v2 header of a connection from a trusted
// balancer. The header is required from those: without it the balancer's
// own address would count as the client and bypass every per-IP limit.
func (l *limitListener) unwrapProxy(c net.Conn) net.Conn {
	pc := proxyproto.NewConn(c, proxyproto.WithPolicy(proxyproto.REQUIRE), proxyproto.SetReadHeaderTimeout(l.headerTimeout))
	if _, err := pc.Read(nil); err != nil {
		l.log.Warn("bad PROXY header from trusted balancer", "peer", c.RemoteAddr().String(), "err", err)
		l.onRefuse("proxy_header")
		c.Close()
		return nil
	}
	return pc
}

// admit applies the limits and hands the connection to Accept.
func (l *limitListener) admit(c net.Conn) {
	if c == nil {
		return
	}
	ip := remoteIP(c)
	l.mu.Lock()
	var refuse string
	switch {
	case l.maxTotal > 0 && l.total >= l.maxTotal:
		refuse = "max_connections"
	case l.maxPerIP > 0 && l.perIP[ip] >= l.maxPerIP:
		refuse = "max_connections_per_ip"
	default:
		l.total++
		l.perIP[ip]++
	}
	l.mu.Unlock()
	if refuse != "" {
		l.onRefuse(refuse)
		err := errTooManyConns
		if refuse == "max_connections_per_ip" {
			err = errTooManyFromIP
		}
		// RFC 5321 §3.1: a server may answer 421 instead of 220 and close.
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "%d %d.%d.%d %s %s\r\n", err.Code, err.EnhancedCode[0], err.EnhancedCode[1], err.EnhancedCode[2], l.hostname, err.Message)
		c.Close()
		return
	}
	t := &trackedConn{Conn: c, timeoutReply: timeoutReply(l.hostname)}
	t.release = func() { l.release(ip, t) }
	l.mu.Lock()
	l.conns[t] = struct{}{}
	l.mu.Unlock()
	tc := coalesce.New(t, l.bufs)
	select {
	case l.ready <- tc:
	case <-l.ctx.Done():
		tc.Close()
	}
}

func (l *limitListener) release(ip netip.Addr, c *trackedConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.total--
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
	l.mu.Unlock()
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close stops accepting and waits for the accept goroutines. Both the
// server's Shutdown and go-smtp close the listener: the second Close only
// waits.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() {
		l.cancel()
		l.closeErr = l.inner.Close()
	})
	l.wg.Wait()
	return l.closeErr
}

// closeConns closes every admitted connection still open and returns how
// many there were.
func (l *limitListener) closeConns() int {
	l.mu.Lock()
	conns := make([]*trackedConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close() // release takes l.mu
	}
	return len(conns)
}

func (l *limitListener) Addr() net.Addr { return l.inner.Addr() }

// orphan gives every open connection to the local address addr until
// cutoff to hear from its client again, and returns how many it found.
func (l *limitListener) orphan(addr netip.Addr, cutoff time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for c := range l.conns {
		if localIP(c) == addr {
			c.setCutoff(cutoff)
			n++
		}
	}
	return n
}

// open returns the number of admitted connections still open.
func (l *limitListener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

type trackedConn struct {
	net.Conn
	once    sync.Once
	release func()
	// cutoff (Unix ns, 0 = none) bounds every read deadline: go-smtp sets
	// its own before each command, which must not extend an orphan's wait.
	cutoff atomic.Int64

	// How the connection ends and what it has done wrong (endings.go).
	timeoutReply []byte // written in plain text when a read times out
	wmu          sync.Mutex
	discard      bool // under wmu: our final reply is out, drop what follows
	ending       atomic.Bool
	readErr      atomic.Pointer[error] // sticky: the first read timeout
	inTLS        atomic.Bool           // TLS runs above: never write plain text here
	errors       atomic.Int32          // refused commands (smtp.hard_error_limit)
}

func (c *trackedConn) setCutoff(t time.Time) {
	c.cutoff.Store(t.UnixNano())
	c.Conn.SetReadDeadline(t)
}

func (c *trackedConn) bound(t time.Time) time.Time {
	if ns := c.cutoff.Load(); ns != 0 {
		if cut := time.Unix(0, ns); t.IsZero() || t.After(cut) {
			return cut
		}
	}
	return t
}

func (c *trackedConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.bound(t))
}

func (c *trackedConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetReadDeadline(c.bound(t))
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func localIP(c net.Conn) netip.Addr {
	if ta, ok := c.LocalAddr().(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

func remoteIP(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
