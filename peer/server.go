package peer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgate/mxgate/freebind"
	"github.com/mxgate/mxgate/httpserve"
	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/spool"
)

// ServerOptions configures a Server.
type ServerOptions struct {
	// NodeID is this node (required): requests signed for another node are
	// refused, and it is the verdict's Node when the worker leaves it empty.
	NodeID   string
	Secret   string         // cluster secret (required)
	Worker   scanner.Worker // this node's local pool (required)
	SpoolDir string         // bodies above spool's memory limit go to a file here ("" = system temp)
	MaxBytes int64          // larger bodies are refused with 413; 0 = 64 MiB
	Logger   *slog.Logger   // nil = discard
	// Nonces is the cluster's shared nonce store; nil = this process's
	// memory and the start floor only (see replayGuard).
	Nonces NonceStore
	// MaxConnections and MaxConnectionsPerIP bound the open connections
	// of the listener, in total and from one source address (IPv6: one
	// /64); 0 = DefaultMaxConnections, DefaultMaxConnectionsPerIP.
	MaxConnections      int
	MaxConnectionsPerIP int
	// Registerer receives the peer metrics; nil = not registered.
	Registerer prometheus.Registerer

	// headerTimeout and maxNonces replace the constants in tests.
	headerTimeout time.Duration
	maxNonces     int
}

// Server answers peer scan requests. Create it with NewServer.
type Server struct {
	o       ServerOptions
	secret  []byte
	log     *slog.Logger
	m       *metrics
	replay  *replayGuard
	handler http.Handler
	now     func() time.Time
	// headerTimeout is how long a connection may take to send a request's
	// headers, waiting for the first byte included.
	headerTimeout time.Duration
}

const (
	defaultMaxBytes = 64 << 20
	// spoolMemLimit is smtpfront's: ordinary messages stay in memory.
	spoolMemLimit = 1 << 20
	// bodyTimeout bounds receiving one body: peers are on the cluster
	// network, 64 MiB take well under a second there.
	bodyTimeout = time.Minute
	// replyTimeout bounds writing the verdict to a caller that stopped
	// reading.
	replyTimeout = 30 * time.Second
	// shutdownGrace lets scans under way finish when the node stops; the
	// master retries elsewhere what does not.
	shutdownGrace = 10 * time.Second
	// headerTimeout bounds sending the headers of a request, from the
	// connection's first byte (or the end of the previous request): a
	// peer sends them in one packet, a slowloris holds a connection no
	// longer than this.
	headerTimeout = 5 * time.Second
	// idleTimeout bounds an idle kept-alive connection, which only an
	// authenticated request leaves behind (every refusal closes). Longer
	// than the client's idle timeout, so the client drops an idle
	// connection before the server does.
	idleTimeout = 90 * time.Second
	// maxConnectionsLimit bounds both connection limits: each open
	// connection may hold a goroutine and about 20 KB of buffers before
	// it authenticates.
	maxConnectionsLimit = 65536
)

// Results counted in mxgate_peer_requests_total.
const (
	resultOK              = "ok"
	resultUnauthenticated = "unauthenticated"
	resultReplayed        = "replayed"
	resultStale           = "stale"
	resultTooLarge        = "too_large"
	resultOverloaded      = "overloaded"
	resultBadRequest      = "bad_request"
	resultCanceled        = "canceled"
	resultError           = "error"
	resultMisdirected     = "misdirected"
	resultOldProtocol     = "old_protocol"
)

var allResults = []string{
	resultOK, resultUnauthenticated, resultReplayed, resultStale, resultTooLarge,
	resultOverloaded, resultBadRequest, resultCanceled, resultError, resultMisdirected,
	resultOldProtocol,
}

type metrics struct {
	requests      *prometheus.CounterVec
	scanDuration  prometheus.Histogram
	connections   prometheus.Gauge
	connRefused   *prometheus.CounterVec
	nonceFallback prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgate_peer_requests_total",
			Help: "Peer scan requests by result (ok, unauthenticated, replayed, stale, misdirected, too_large, overloaded, bad_request, old_protocol, canceled, error).",
		}, []string{"result"}),
		scanDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mxgate_peer_scan_duration_seconds", Help: "Time to scan a message received from a peer, body receipt excluded.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mxgate_peer_connections", Help: "Open connections of the peer API listener.",
		}),
		connRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgate_peer_connections_refused_total",
			Help: "Connections to the peer API refused at accept, by the limit they hit (total, per_ip).",
		}, []string{"limit"}),
		nonceFallback: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxgate_peer_nonce_fallback_total",
			Help: "Peer requests whose nonce was checked in this node's memory only, because the shared store did not answer.",
		}),
	}
	// Every result from the start, so a dashboard's rate() of refusals
	// has a series before the first one happens.
	for _, r := range allResults {
		m.requests.WithLabelValues(r)
	}
	m.connRefused.WithLabelValues(refusedTotal)
	m.connRefused.WithLabelValues(refusedPerIP)
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.scanDuration, m.connections, m.connRefused, m.nonceFallback} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register peer metrics: %w", err)
		}
	}
	return m, nil
}

// NewServer checks o and builds the server. It does not listen: see Run
// and Serve.
func NewServer(o ServerOptions) (*Server, error) {
	if o.Secret == "" {
		return nil, errors.New("peer server: no secret configured")
	}
	if o.NodeID == "" || len(o.NodeID) > maxNodeIDLen {
		return nil, fmt.Errorf("peer server: node id %q: want 1 to %d bytes", o.NodeID, maxNodeIDLen)
	}
	if o.Worker == nil {
		return nil, errors.New("peer server: no scanner")
	}
	if o.MaxBytes < 0 {
		return nil, fmt.Errorf("peer server: max bytes %d is negative", o.MaxBytes)
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = defaultMaxBytes
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.MaxConnectionsPerIP == 0 {
		o.MaxConnectionsPerIP = min(DefaultMaxConnectionsPerIP, o.MaxConnections)
	}
	if o.MaxConnections < 1 || o.MaxConnections > maxConnectionsLimit {
		return nil, fmt.Errorf("peer server: max connections %d: want 1 to %d", o.MaxConnections, maxConnectionsLimit)
	}
	if o.MaxConnectionsPerIP < 1 || o.MaxConnectionsPerIP > o.MaxConnections {
		return nil, fmt.Errorf("peer server: max connections per IP %d: want 1 to max connections (%d)", o.MaxConnectionsPerIP, o.MaxConnections)
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Server{
		o: o, secret: []byte(o.Secret), log: o.Logger, m: m,
		now: time.Now, headerTimeout: headerTimeout,
	}
	if o.headerTimeout > 0 {
		s.headerTimeout = o.headerTimeout
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.replay = newReplayGuard(o.Nonces, time.Now(), s.log, m.nonceFallback)
	if o.maxNonces > 0 {
		s.replay.local = newNonceCache(nonceTTL, o.maxNonces)
	}
	s.handler = http.HandlerFunc(s.route)
	return s, nil
}

// route refuses everything but a version 2 scan without reading a body.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == Path && r.Method == http.MethodPost:
		s.scan(w, r)
	case r.URL.Path == Path:
		w.Header().Set("Allow", http.MethodPost)
		s.refuse(w, r, http.StatusMethodNotAllowed, resultBadRequest, "method not allowed")
	case r.URL.Path == oldPath:
		s.refuse(w, r, http.StatusGone, resultOldProtocol,
			"peer protocol v1 is not spoken here: this node speaks v2 ("+Path+"); upgrade the calling node")
	default:
		s.refuse(w, r, http.StatusNotFound, resultBadRequest, "not found")
	}
}

// Handler is the peer API.
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on listen and serves until ctx is done, then shuts down
// gracefully. A listen error is returned at once.
func (s *Server) Run(ctx context.Context, listen string) error {
	if listen == "" {
		// net.Listen would pick a random port on every interface.
		return errors.New("peer listen: no address configured")
	}
	// Free-bound, so a listener on the VIP answers once this node holds it.
	ln, err := freebind.Listen(ctx, listen)
	if err != nil {
		return fmt.Errorf("peer listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln (which it closes) until ctx is done, then shuts down
// gracefully: scans under way get 10 s to finish (the master retries
// elsewhere what does not).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.headerTimeout,
		// No ReadTimeout or WriteTimeout: they would run through the scan
		// (and an expiring read deadline cancels the request's context).
		// The handler sets deadlines for the body and the reply instead.
		IdleTimeout:    idleTimeout,
		MaxHeaderBytes: maxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	ln = newLimitListener(ln, s.o.MaxConnections, s.o.MaxConnectionsPerIP, s.m)
	if err := httpserve.Serve(ctx, hs, ln, shutdownGrace); err != nil {
		return fmt.Errorf("peer: %w", err)
	}
	return nil
}

// refuse answers an error and counts it, and closes the connection: the
// body (if any) is not read, so the connection cannot be reused, and a
// caller that was refused gets no second try on it. Texts are fixed:
// nothing from the request or from an internal error goes back to the
// caller.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, code int, result, text string, attrs ...any) {
	w.Header().Set("Connection", "close")
	s.answerError(w, r, code, result, text, attrs...)
}

// refuseScan answers an error after the whole body was read: the
// connection stays open for the caller's next scan.
func (s *Server) refuseScan(w http.ResponseWriter, r *http.Request, code int, result, text string, attrs ...any) {
	s.answerError(w, r, code, result, text, attrs...)
}

func (s *Server) answerError(w http.ResponseWriter, r *http.Request, code int, result, text string, attrs ...any) {
	s.m.requests.WithLabelValues(result).Inc()
	attrs = append(attrs, "remote", r.RemoteAddr, "node", cleanLog(r.Header.Get(HeaderNode)), "result", result, "status", code)
	level := slog.LevelWarn
	switch result {
	case resultOverloaded, resultCanceled:
		// Normal under load or when the master gives up; not an attack.
		level = slog.LevelInfo
	case resultError:
		level = slog.LevelError
	}
	s.log.Log(r.Context(), level, "peer scan refused", attrs...)
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, text+"\n")
}

// refusal is how a request is refused: status, counted result, body text.
type refusal struct {
	code   int
	result string
	text   string
}

var (
	refuseUnauthenticated = &refusal{http.StatusUnauthorized, resultUnauthenticated, "unauthenticated"}
	refuseStale           = &refusal{http.StatusUnauthorized, resultStale, "stale"}
	refuseReplayed        = &refusal{http.StatusUnauthorized, resultReplayed, "replayed"}
	refuseMisdirected     = &refusal{http.StatusMisdirectedRequest, resultMisdirected, "misdirected: signed for another node"}
	refuseOverloaded      = &refusal{http.StatusServiceUnavailable, resultOverloaded, "overloaded"}
	refuseCanceled        = &refusal{http.StatusServiceUnavailable, resultCanceled, "canceled"}
	refuseBadDate         = &refusal{http.StatusBadRequest, resultBadRequest, "bad date"}
)

// authenticate checks the headers of r, and nothing else of it. It
// returns the signed fields, or how to refuse.
func (s *Server) authenticate(r *http.Request) (requestAuth, *refusal) {
	a := authFromHeader(r.Header)
	if !a.wellFormed() || !macEqual(r.Header.Get(HeaderSignature), a.mac(s.secret)) {
		return a, refuseUnauthenticated
	}
	// Authentic from here on: a bad date is a peer's bug, not an attack,
	// and the date is what the peer's clock said.
	if a.target != s.o.NodeID {
		// Captured on its way to another node, or a peer that has this
		// node's address under another id (cluster.peers).
		return a, refuseMisdirected
	}
	ms, err := strconv.ParseInt(a.date, 10, 64)
	if err != nil {
		return a, refuseBadDate
	}
	now, date := s.now(), time.UnixMilli(ms)
	if d := now.Sub(date); d > dateWindow || d < -dateWindow {
		return a, refuseStale
	}
	var n [nonceLen]byte
	hex.Decode(n[:], []byte(a.nonce)) // wellFormed checked it
	switch err := s.replay.check(r.Context(), n, a.nonce, date, now); {
	case err == nil:
		return a, nil
	case errors.Is(err, errStale):
		return a, refuseStale
	case errors.Is(err, errReplayed):
		return a, refuseReplayed
	case errors.Is(err, errFull):
		return a, refuseOverloaded
	default:
		return a, refuseCanceled
	}
}

func (s *Server) scan(w http.ResponseWriter, r *http.Request) {
	a, ref := s.authenticate(r)
	if ref != nil {
		s.refuse(w, r, ref.code, ref.result, ref.text, "target", cleanLog(a.target))
		return
	}
	if r.ContentLength > envelopeLenSize+maxEnvelopeBytes+s.o.MaxBytes {
		s.refuse(w, r, http.StatusRequestEntityTooLarge, resultTooLarge, "too large", "bytes", r.ContentLength)
		return
	}

	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(bodyTimeout))
	msg, body, err := s.receive(w, r, a)
	// Cleared at once: the server's background read that notices a
	// vanished caller during the scan must not time out instead.
	rc.SetReadDeadline(time.Time{})
	if err != nil {
		var tooLarge *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.As(err, &tooLarge):
			s.refuse(w, r, http.StatusRequestEntityTooLarge, resultTooLarge, "too large", "id", msg.ID)
		case errors.Is(err, errBodyHash):
			s.refuse(w, r, http.StatusUnauthorized, resultUnauthenticated, "unauthenticated", "id", msg.ID, "err", err)
		case errors.As(err, &ne) && ne.Timeout():
			s.refuse(w, r, http.StatusRequestTimeout, resultBadRequest, "body timeout", "id", msg.ID)
		case errors.Is(err, errBadEnvelope):
			s.refuse(w, r, http.StatusBadRequest, resultBadRequest, "bad envelope", "err", err)
		default:
			s.refuse(w, r, http.StatusBadRequest, resultBadRequest, "bad body", "id", msg.ID, "err", err)
		}
		return
	}
	defer body.Close()
	msg.Body = body

	start := time.Now()
	// The request's context: a caller that disconnects (gave up, retried
	// elsewhere) cancels the scan.
	v, err := s.o.Worker.Scan(r.Context(), &msg)
	if err != nil {
		switch {
		case errors.Is(err, scanner.ErrOverloaded):
			s.refuseScan(w, r, http.StatusServiceUnavailable, resultOverloaded, "overloaded", "id", msg.ID)
		case r.Context().Err() != nil:
			s.refuseScan(w, r, http.StatusServiceUnavailable, resultCanceled, "canceled", "id", msg.ID, "err", err)
		default:
			s.refuseScan(w, r, http.StatusInternalServerError, resultError, "scan failed", "id", msg.ID, "err", err)
		}
		return
	}
	s.m.scanDuration.Observe(time.Since(start).Seconds())
	if v.Node == "" {
		v.Node = s.o.NodeID
	}
	out, err := json.Marshal(toWire(v))
	if err != nil {
		s.refuseScan(w, r, http.StatusInternalServerError, resultError, "scan failed", "id", msg.ID, "err", fmt.Errorf("encode verdict: %w", err))
		return
	}
	s.m.requests.WithLabelValues(resultOK).Inc()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(out)))
	h.Set(HeaderSignature, hex.EncodeToString(verdictMAC(s.secret, a.nonce, out)))
	rc.SetWriteDeadline(time.Now().Add(replyTimeout))
	w.WriteHeader(http.StatusOK)
	w.Write(out)
}

var (
	errBodyHash    = errors.New("body does not match its signed SHA-256")
	errBadEnvelope = errors.New("bad envelope")
)

// receive reads the authenticated request's body: the envelope, checked
// against its signed hash before it is decoded, then the message, spooled
// (at most MaxBytes) while it is hashed and checked against its own.
func (s *Server) receive(w http.ResponseWriter, r *http.Request, a requestAuth) (scanner.Message, *spool.Buffer, error) {
	raw, err := readEnvelope(r.Body)
	if err != nil {
		return scanner.Message{}, nil, fmt.Errorf("%w: %w", errBadEnvelope, err)
	}
	envSHA := sha256.Sum256(raw)
	if !macEqual(a.envelopeSHA, envSHA[:]) {
		return scanner.Message{}, nil, fmt.Errorf("envelope: %w", errBodyHash)
	}
	msg, err := decodeEnvelope(raw)
	if err != nil {
		return scanner.Message{}, nil, fmt.Errorf("%w: %w", errBadEnvelope, err)
	}
	sw := spool.NewWriter(s.o.SpoolDir, spoolMemLimit)
	hash := sha256.New()
	src := http.MaxBytesReader(w, r.Body, s.o.MaxBytes)
	if _, err := io.Copy(io.MultiWriter(sw, hash), src); err != nil {
		sw.Abort()
		return msg, nil, fmt.Errorf("receive body: %w", err)
	}
	buf := sw.Finish()
	if !macEqual(a.bodySHA, hash.Sum(nil)) {
		buf.Close()
		return msg, nil, errBodyHash
	}
	return msg, buf, nil
}

// cleanLog bounds a caller-supplied value for a log attribute.
func cleanLog(s string) string {
	const maxLen = 64
	if len(s) > maxLen {
		s = s[:maxLen]
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c >= 0x7f {
			b[i] = '?'
		}
	}
	return string(b)
}
