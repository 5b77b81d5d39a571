// Package smtpfront is the SMTP front end: it accepts sessions, applies the
// relay policy, limits and lists, mirrors the envelope to the downstream
// server, hands each message to the scanner and answers DATA only after the
// message is safely downstream or in quarantine.
package smtpfront

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgate/mxgate/coalesce"
	"github.com/mxgate/mxgate/deliver"
	"github.com/mxgate/mxgate/dnsbl"
	"github.com/mxgate/mxgate/freebind"
	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/msglog/journal"
	"github.com/mxgate/mxgate/quarantine"
	"github.com/mxgate/mxgate/scanner"
)

// ListSource gives the current compiled lists; it must be cheap, it is read
// on every RCPT.
type ListSource interface{ Set() *lists.Set }

// Options configure a front end. Zero limits mean "no limit".
type Options struct {
	NodeID   string
	Hostname string
	Listen   []string

	AcceptDomains   []string
	TrustedNetworks []netip.Prefix

	MaxMessageBytes     int64
	MaxRecipients       int
	MaxConnections      int
	MaxConnectionsPerIP int
	MaxLineLength       int
	HardErrorLimit      int // refused commands that end a connection (see session.failed)
	ReadTimeout         time.Duration
	WriteTimeout        time.Duration
	DataTimeout         time.Duration // the whole body must arrive within it
	ScanTimeout         time.Duration
	// AuthservID is this gateway's authserv-id in Authentication-Results
	// now (it follows the cluster's settings): a field claiming it that
	// arrives with a message is forged and removed before delivery (RFC
	// 8601 §5). nil or "" = none removed.
	AuthservID func() string

	TLS        *tls.Config // nil: no STARTTLS
	RequireTLS bool

	ProxyProtocol bool
	ProxyTrusted  []netip.Prefix

	Downstream deliver.Options

	Scanner             scanner.Worker
	DNSBL               *dnsbl.Checker // nil: no blocklists asked
	Lists               ListSource
	Quarantine          quarantine.Store
	QuarantineRetention time.Duration
	Log                 msglog.Store
	SpoolDir            string
	// LogJournalDir holds the message log journal (default: SpoolDir/
	// msglog-journal); LogJournalMax bounds it in bytes (0 = the default);
	// LogJournalSync is its journal.Options.SyncInterval.
	LogJournalDir  string
	LogJournalMax  int64
	LogJournalSync time.Duration

	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Server is a running front end.
type Server struct {
	o        Options
	log      *slog.Logger
	policy   relayPolicy
	smtp     *smtp.Server
	metrics  *metrics
	logw     *logWriter
	downPool *deliver.Pool
	copyBufs sync.Pool // *[]byte for receiving bodies without a fresh 32 KB each

	mu        sync.Mutex
	listeners []*limitListener
	started   bool // Start has bound the listeners and serves
	stopping  bool // Shutdown has begun: Start binds nothing more
	serveWG   sync.WaitGroup

	// ctx bounds every downstream and scan call; cancelled only when the
	// drain time is over.
	ctx    context.Context
	cancel context.CancelFunc
}

const (
	// spoolMemLimit keeps ordinary messages in memory; larger ones go to disk.
	spoolMemLimit = 1 << 20
	// Downstream connections kept between client sessions: enough for a
	// busy node's concurrency, and dropped well before Postfix's 300 s.
	downstreamIdle        = 64
	downstreamIdleTimeout = 30 * time.Second
)

// New checks the options and prepares a server; Start binds the listeners.
func New(o Options) (*Server, error) {
	if o.Scanner == nil || o.Lists == nil || o.Quarantine == nil || o.Log == nil {
		return nil, errors.New("smtpfront: scanner, lists, quarantine and log are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxLineLength <= 0 {
		o.MaxLineLength = 64 << 10
	}
	if o.DataTimeout <= 0 {
		o.DataTimeout = 10 * time.Minute
	}
	if o.ScanTimeout <= 0 {
		o.ScanTimeout = time.Minute
	}
	if o.Downstream.Buffers == nil {
		o.Downstream.Buffers = coalesce.NewBuffers()
	}
	if o.Downstream.Helo == "" {
		o.Downstream.Helo = o.Hostname
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		o:      o,
		log:    o.Logger,
		policy: newRelayPolicy(o.AcceptDomains, o.TrustedNetworks),
		ctx:    ctx,
		cancel: cancel,
	}
	m, err := newMetrics(o.Registerer, s.openConnections)
	if err != nil {
		cancel()
		return nil, err
	}
	s.metrics = m
	jm, err := journal.NewMetrics(o.Registerer)
	if err != nil {
		cancel()
		return nil, err
	}
	if s.logw, err = newLogWriter(ctx, o, jm); err != nil {
		cancel()
		return nil, err
	}
	s.copyBufs.New = func() any { b := make([]byte, 32<<10); return &b }
	s.downPool = deliver.NewPool(o.Downstream, downstreamIdle, downstreamIdleTimeout)

	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = o.Hostname
	srv.MaxMessageBytes = o.MaxMessageBytes
	srv.MaxRecipients = o.MaxRecipients
	// go-smtp applies the line limit inside DATA too; a shorter limit
	// would turn ordinary long-lined HTML mail into a dead session.
	srv.MaxLineLength = o.MaxLineLength
	srv.ReadTimeout = o.ReadTimeout
	srv.WriteTimeout = o.WriteTimeout
	srv.TLSConfig = markTLS(o.TLS)
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = slogErrorLog{o.Logger}
	s.smtp = srv
	return s, nil
}

// Start binds every listen address and serves in the background. An
// address that cannot be bound is an error before anything is served.
// Start after (or during) Shutdown binds nothing and returns
// ErrServerClosed.
func (s *Server) Start() error {
	s.mu.Lock()
	refused := s.stopping || s.started
	s.mu.Unlock()
	if refused {
		return ErrServerClosed
	}
	// The journal first: records an earlier run left are replayed, and
	// no session finishes before its journal is open.
	if err := s.logw.start(); err != nil {
		return err
	}
	var ls []*limitListener
	for _, addr := range s.o.Listen {
		inner, err := freebind.Listen(context.Background(), addr)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			s.logw.stop()
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		ls = append(ls, newLimitListener(inner, &s.o, s.log, s.metrics.refused))
	}
	// Shutdown may have begun while binding. Deciding under mu, together
	// with serveWG.Add, means Shutdown either sees these listeners (and
	// closes them) or Start sees the stop (and serves nothing).
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping || s.started {
		for _, l := range ls {
			l.Close()
		}
		s.logw.stop()
		return ErrServerClosed
	}
	s.listeners, s.started = ls, true
	for _, l := range ls {
		s.serveWG.Add(1)
		go func() {
			defer s.serveWG.Done()
			if err := s.smtp.Serve(l); err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				s.log.Error("smtp listener stopped", "addr", l.Addr().String(), "err", err)
			}
		}()
		s.log.Info("smtp listening", "addr", l.Addr().String())
	}
	return nil
}

// ErrServerClosed is Start's answer once Shutdown has begun.
var ErrServerClosed = errors.New("smtpfront: server is shut down")

// Addrs are the bound addresses (useful with port 0).
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []net.Addr
	for _, l := range s.listeners {
		out = append(out, l.Addr())
	}
	return out
}

// Shutdown stops accepting, lets sessions in progress finish until ctx
// ends, then cuts the rest. A message whose DATA was not answered was not
// accepted, so nothing is lost by cutting: the client retries it. It ends
// every Serve whatever the moment, also during Start; calls after the first
// return at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return nil
	}
	s.stopping = true
	ls, started := s.listeners, s.started
	s.mu.Unlock()

	// The listeners are ours: closing them ends Accept in every Serve,
	// also one that has not registered its listener with go-smtp yet
	// (go-smtp's Shutdown closes only the registered ones).
	for _, l := range ls {
		l.Close()
	}
	// go-smtp's Shutdown waits for its sessions; run it beside the drain
	// deadline so the sessions still running then can be cut and waited
	// for a little while they end.
	sessCtx, stopWaiting := context.WithCancel(context.Background())
	defer stopWaiting()
	sessionsDone := make(chan struct{})
	go func() {
		defer close(sessionsDone)
		s.smtp.Shutdown(sessCtx)
	}()
	select {
	case <-sessionsDone:
	case <-ctx.Done():
		// go-smtp's Close does nothing once Shutdown has begun: the
		// connections are closed here, and every scan and downstream
		// call under way is cancelled.
		n := 0
		for _, l := range ls {
			n += l.closeConns()
		}
		s.cancel()
		if n > 0 {
			s.log.Warn("drain timeout over; sessions cut", "sessions", n)
		}
		t := time.NewTimer(cutGrace)
		select {
		case <-sessionsDone:
		case <-t.C:
			s.log.Warn("sessions still ending after the cut; not waiting for them", "waited", cutGrace)
			stopWaiting()
			<-sessionsDone
		}
		t.Stop()
	}
	s.cancel()
	s.serveWG.Wait()
	s.downPool.Close()
	if started {
		s.logw.stop()
	}
	return nil
}

// cutGrace is how long Shutdown waits for the sessions it cut to end: their
// reads fail and their scans and downstream calls are cancelled at once, so
// only a store write under way can take longer.
const cutGrace = 5 * time.Second

// Orphan bounds the sessions on local address addr, for a VIP this node has
// just handed to another: their clients' packets now reach the other node,
// so a session waiting for its client would hold up a graceful stop until
// its read timeout. Each may still finish what it is doing (a scan, the
// relay, its reply) but waits at most grace for its client. It returns how
// many sessions it found.
func (s *Server) Orphan(addr netip.Addr, grace time.Duration) int {
	cutoff := time.Now().Add(grace)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.listeners {
		n += l.orphan(addr, cutoff)
	}
	return n
}

func (s *Server) openConnections() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.listeners {
		n += l.open()
	}
	return float64(n)
}

// slogErrorLog routes go-smtp's own complaints into the structured log.
type slogErrorLog struct{ l *slog.Logger }

func (e slogErrorLog) Printf(format string, v ...any) {
	e.l.Warn("smtp server", "detail", fmt.Sprintf(format, v...))
}
func (e slogErrorLog) Println(v ...any) { e.l.Warn("smtp server", "detail", fmt.Sprint(v...)) }
