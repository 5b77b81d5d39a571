package peer

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
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
	NodeID   string         // this node; the verdict's Node when the worker leaves it empty
	Secret   string         // cluster secret (required)
	Worker   scanner.Worker // this node's local pool (required)
	SpoolDir string         // bodies above spool's memory limit go to a file here ("" = system temp)
	MaxBytes int64          // larger bodies are refused with 413; 0 = 64 MiB
	Logger   *slog.Logger   // nil = discard
	// Registerer receives the peer metrics; nil = not registered.
	Registerer prometheus.Registerer
}

// Server answers peer scan requests. Create it with NewServer.
type Server struct {
	o       ServerOptions
	secret  []byte
	log     *slog.Logger
	m       *metrics
	nonces  *nonceCache
	handler http.Handler
	now     func() time.Time
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
)

var allResults = []string{
	resultOK, resultUnauthenticated, resultReplayed, resultStale, resultTooLarge,
	resultOverloaded, resultBadRequest, resultCanceled, resultError,
}

type metrics struct {
	requests     *prometheus.CounterVec
	scanDuration prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgate_peer_requests_total",
			Help: "Peer scan requests by result (ok, unauthenticated, replayed, stale, too_large, overloaded, bad_request, canceled, error).",
		}, []string{"result"}),
		scanDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mxgate_peer_scan_duration_seconds", Help: "Time to scan a message received from a peer, body receipt excluded.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
	}
	// Every result from the start, so a dashboard's rate() of refusals
	// has a series before the first one happens.
	for _, r := range allResults {
		m.requests.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.scanDuration} {
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
	if o.Worker == nil {
		return nil, errors.New("peer server: no scanner")
	}
	if o.MaxBytes < 0 {
		return nil, fmt.Errorf("peer server: max bytes %d is negative", o.MaxBytes)
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = defaultMaxBytes
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Server{
		o: o, secret: []byte(o.Secret), log: o.Logger, m: m,
		nonces: newNonceCache(nonceTTL, maxNonces), now: time.Now,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+Path, s.scan)
	s.handler = mux
	return s, nil
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
		ReadHeaderTimeout: 10 * time.Second,
		// No ReadTimeout or WriteTimeout: they would run through the scan
		// (and an expiring read deadline cancels the request's context).
		// The handler sets deadlines for the body and the reply instead.
		// Longer than the client's idle timeout, so the client drops an
		// idle connection before the server does.
		IdleTimeout: 2 * time.Minute,
		// The envelope header is the large one.
		MaxHeaderBytes: maxEnvelopeHeader + 64<<10,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if err := httpserve.Serve(ctx, hs, ln, shutdownGrace); err != nil {
		return fmt.Errorf("peer: %w", err)
	}
	return nil
}

// refuse answers an error and counts it. Texts are fixed: nothing from the
// request or from an internal error goes back to the caller.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, code int, result, text string, attrs ...any) {
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
	if code == http.StatusRequestEntityTooLarge || code == http.StatusRequestTimeout || code == http.StatusBadRequest {
		// The rest of the body is not read; the connection cannot be
		// reused.
		h.Set("Connection", "close")
	}
	w.WriteHeader(code)
	io.WriteString(w, text+"\n")
}

// authenticate checks the headers of r. It returns the nonce on success, or
// the status, result and text to refuse with.
func (s *Server) authenticate(r *http.Request) (nonce string, code int, result, text string) {
	h := r.Header
	date, nonce, env, bodySHA, sig := h.Get(HeaderDate), h.Get(HeaderNonce), h.Get(HeaderEnvelope), h.Get(HeaderBodySHA), h.Get(HeaderSignature)
	if date == "" || nonce == "" || env == "" || bodySHA == "" || sig == "" {
		return "", http.StatusUnauthorized, resultUnauthenticated, "unauthenticated"
	}
	if !macEqual(sig, requestMAC(s.secret, date, nonce, env, bodySHA)) {
		return "", http.StatusUnauthorized, resultUnauthenticated, "unauthenticated"
	}
	// Authentic from here on: malformed values are a peer's bug, not an
	// attack, and the date is what the peer's clock said.
	ms, err := strconv.ParseInt(date, 10, 64)
	if err != nil {
		return "", http.StatusBadRequest, resultBadRequest, "bad date"
	}
	if d := s.now().Sub(time.UnixMilli(ms)); d > dateWindow || d < -dateWindow {
		return "", http.StatusUnauthorized, resultStale, "stale"
	}
	var n [nonceLen]byte
	if len(nonce) != 2*nonceLen {
		return "", http.StatusBadRequest, resultBadRequest, "bad nonce"
	}
	if _, err := hex.Decode(n[:], []byte(nonce)); err != nil {
		return "", http.StatusBadRequest, resultBadRequest, "bad nonce"
	}
	fresh, err := s.nonces.add(n, s.now())
	if err != nil {
		return "", http.StatusServiceUnavailable, resultOverloaded, "overloaded"
	}
	if !fresh {
		return "", http.StatusUnauthorized, resultReplayed, "replayed"
	}
	return nonce, 0, "", ""
}

func (s *Server) scan(w http.ResponseWriter, r *http.Request) {
	nonce, code, result, text := s.authenticate(r)
	if code != 0 {
		s.refuse(w, r, code, result, text)
		return
	}
	msg, err := decodeEnvelope(r.Header.Get(HeaderEnvelope))
	if err != nil {
		s.refuse(w, r, http.StatusBadRequest, resultBadRequest, "bad envelope", "err", err)
		return
	}
	wantSHA, err := hex.DecodeString(r.Header.Get(HeaderBodySHA))
	if err != nil || len(wantSHA) != sha256.Size {
		s.refuse(w, r, http.StatusBadRequest, resultBadRequest, "bad body hash", "id", msg.ID)
		return
	}
	if r.ContentLength > s.o.MaxBytes {
		s.refuse(w, r, http.StatusRequestEntityTooLarge, resultTooLarge, "too large", "id", msg.ID, "bytes", r.ContentLength)
		return
	}

	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(bodyTimeout))
	body, err := s.receive(w, r, wantSHA)
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
			s.refuse(w, r, http.StatusServiceUnavailable, resultOverloaded, "overloaded", "id", msg.ID)
		case r.Context().Err() != nil:
			s.refuse(w, r, http.StatusServiceUnavailable, resultCanceled, "canceled", "id", msg.ID, "err", err)
		default:
			s.refuse(w, r, http.StatusInternalServerError, resultError, "scan failed", "id", msg.ID, "err", err)
		}
		return
	}
	s.m.scanDuration.Observe(time.Since(start).Seconds())
	if v.Node == "" {
		v.Node = s.o.NodeID
	}
	out, err := json.Marshal(toWire(v))
	if err != nil {
		s.refuse(w, r, http.StatusInternalServerError, resultError, "scan failed", "id", msg.ID, "err", fmt.Errorf("encode verdict: %w", err))
		return
	}
	s.m.requests.WithLabelValues(resultOK).Inc()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(out)))
	h.Set(HeaderSignature, hex.EncodeToString(verdictMAC(s.secret, nonce, out)))
	rc.SetWriteDeadline(time.Now().Add(replyTimeout))
	w.WriteHeader(http.StatusOK)
	w.Write(out)
}

var errBodyHash = errors.New("body does not match its signed SHA-256")

// receive spools r's body (at most MaxBytes) while hashing it, and checks
// the hash against the signed one.
func (s *Server) receive(w http.ResponseWriter, r *http.Request, wantSHA []byte) (*spool.Buffer, error) {
	sw := spool.NewWriter(s.o.SpoolDir, spoolMemLimit)
	hash := sha256.New()
	src := http.MaxBytesReader(w, r.Body, s.o.MaxBytes)
	if _, err := io.Copy(io.MultiWriter(sw, hash), src); err != nil {
		sw.Abort()
		return nil, fmt.Errorf("receive body: %w", err)
	}
	buf := sw.Finish()
	if subtle.ConstantTimeCompare(hash.Sum(nil), wantSHA) != 1 {
		buf.Close()
		return nil, errBodyHash
	}
	return buf, nil
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
