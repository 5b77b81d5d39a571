// Package admin is the node's HTTP management interface: the JSON admin API
// over quarantine, lists and message log, Prometheus metrics, a health
// endpoint and a small status page, plus Client, the Go client the mxgate
// management commands use.
//
// Authentication: with a token, every route but /healthz (and /metrics
// unless MetricsAuth) needs "Authorization: Bearer TOKEN" (or HTTP Basic
// with the token as password, so that a browser can open the status page).
// Without a token only loopback clients are served at all; config
// validation refuses a non-loopback admin.listen without a token. With TLS
// the server speaks HTTPS only.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mxgate/mxgate/clusterconf"
	"github.com/mxgate/mxgate/freebind"
	"github.com/mxgate/mxgate/httpserve"
	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/quarantine"
	"github.com/mxgate/mxgate/report"
	"github.com/mxgate/mxgate/scanner"
)

// Options configures a Server.
type Options struct {
	// Listen is the host:port Run listens on.
	Listen string
	// Token is the bearer token; "" = serve loopback clients only.
	Token string
	// MetricsAuth makes /metrics need the token as well (with a Token).
	MetricsAuth bool
	// TLS serves HTTPS with this configuration; nil = plain HTTP.
	TLS *tls.Config
	// Quarantine, Lists and Log are the stores the API works on (required).
	Quarantine quarantine.Store
	Lists      lists.Store
	Log        msglog.Store
	// Release delivers a quarantined message to its recipients through the
	// downstream server and returns the downstream's reply. nil = releasing
	// is not available on this node (501).
	Release func(ctx context.Context, it quarantine.Item, raw []byte) (reply string, err error)
	// Gatherer serves /metrics; nil = no /metrics route.
	Gatherer prometheus.Gatherer
	// Health reports the node's health for /healthz and the status page;
	// nil = always healthy.
	Health func() error
	// Status reports the node (role, uptime, load, store, downstream,
	// engines) for GET /api/v1/status (`mxgate status`) and the status
	// page, which shows it as indented JSON; ctx bounds the checks it
	// makes. nil = 404 and nothing shown.
	Status func(ctx context.Context) any
	// Config is the cluster-wide configuration (GET/PUT /api/v1/config,
	// push, history); nil = 404.
	Config clusterconf.Store
	// Reports holds the daily reports (GET /api/v1/report); nil = 404.
	Reports report.Store
	// Cluster reports the node's VRRP state for GET /api/v1/cluster
	// (`mxgate cluster status`); nil = 404, clustering is off.
	Cluster func() any
	// Learn teaches the spam engine (Rspamd's controller) a message as
	// spam or ham (`quarantine learn-spam`, `release --learn-ham`); nil =
	// 501, no engine learns on this node.
	Learn func(ctx context.Context, spam bool, raw []byte) error
	// Scan runs a message through the node's scanning pipeline (POST
	// /api/v1/scan, `mxgate scan`); nil = 404. Messages larger than
	// MaxScanBytes are refused (413); SpoolDir holds the larger ones
	// while they are scanned ("" = the system's temporary directory).
	Scan         func(ctx context.Context, m *scanner.Message) (scanner.Verdict, error)
	MaxScanBytes int64
	SpoolDir     string
	// Backup takes a consistent copy of the node's embedded store (GET
	// /api/v1/backup) and returns it to read, with its size; the server
	// closes it. An error wrapping ErrBackupElsewhere is a 409 saying how
	// to back this store up instead; nil = 404.
	Backup func() (io.ReadCloser, int64, error)
	// Console serves the web console: every path outside /api/, /my/,
	// /metrics, /healthz and /debug/. It authenticates its users itself
	// (the admin token once, then a session) and acts through api. nil =
	// the read-only status page at / (HTTP Basic with the token).
	Console func(api LocalAPI) http.Handler
	// Recipients serves /my/: the pages a recipient reaches from a
	// quarantine digest, authorized by the signed link alone (no token),
	// acting through api. nil = 404.
	Recipients func(api LocalAPI) http.Handler
	// Digest sends the recipients' quarantine digests and keeps their
	// opt-outs and signing keys (/api/v1/digest/...); nil = 404.
	Digest Digest
	// NodeID names the node on the status page.
	NodeID string
	// Logger receives errors the client is not shown; nil = discard.
	Logger *slog.Logger
}

// Server is the admin HTTP server. Create it with New.
type Server struct {
	o       Options
	token   [sha256.Size]byte
	handler http.Handler
	// api is the routes without the guard, for LocalAPI.
	api        http.Handler
	console    http.Handler
	recipients http.Handler
	log        *slog.Logger
	now        func() time.Time
}

const (
	// maxBody bounds request bodies: the largest is a list entry.
	maxBody = 1 << 20
	// defaultMaxScanBytes is smtp.max_message_bytes' default.
	defaultMaxScanBytes = 25 << 20
	// shutdownGrace is how long Run lets running requests (a release
	// talking to the downstream) finish after its context is done.
	shutdownGrace = 10 * time.Second
)

// New checks o and builds the server. It does not listen: see Run and Serve.
func New(o Options) (*Server, error) {
	var missing []string
	if o.Quarantine == nil {
		missing = append(missing, "Quarantine")
	}
	if o.Lists == nil {
		missing = append(missing, "Lists")
	}
	if o.Log == nil {
		missing = append(missing, "Log")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("admin server: missing store(s): %s", strings.Join(missing, ", "))
	}
	if o.MaxScanBytes <= 0 {
		o.MaxScanBytes = defaultMaxScanBytes
	}
	s := &Server{o: o, log: o.Logger, now: time.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	// Comparing hashes keeps the comparison constant-time in the token's
	// length as well.
	s.token = sha256.Sum256([]byte(o.Token))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/quarantine", s.quarantineList)
	mux.HandleFunc("GET /api/v1/quarantine/{id}", s.quarantineGet)
	mux.HandleFunc("GET /api/v1/quarantine/{id}/raw", s.quarantineRaw)
	mux.HandleFunc("POST /api/v1/quarantine/{id}/release", s.quarantineRelease)
	mux.HandleFunc("POST /api/v1/quarantine/{id}/learn", s.quarantineLearn)
	mux.HandleFunc("DELETE /api/v1/quarantine/{id}", s.quarantineDelete)
	mux.HandleFunc("GET /api/v1/lists", s.listsAll)
	mux.HandleFunc("POST /api/v1/lists", s.listsAdd)
	mux.HandleFunc("DELETE /api/v1/lists", s.listsRemove)
	mux.HandleFunc("GET /api/v1/log", s.logSearch)
	mux.HandleFunc("GET /api/v1/status", s.nodeStatus)
	mux.HandleFunc("GET /api/v1/cluster", s.clusterStatus)
	mux.HandleFunc("GET /api/v1/config", s.configGet)
	mux.HandleFunc("PUT /api/v1/config", s.configPut)
	mux.HandleFunc("POST /api/v1/config/push", s.configPush)
	mux.HandleFunc("GET /api/v1/config/history", s.configHistory)
	mux.HandleFunc("GET /api/v1/report", s.reportGet)
	mux.HandleFunc("POST /api/v1/scan", s.scan)
	mux.HandleFunc("GET /api/v1/backup", s.backup)
	mux.HandleFunc("POST /api/v1/digest/send", s.digestSend)
	mux.HandleFunc("POST /api/v1/digest/optout", s.digestOptOut)
	mux.HandleFunc("GET /api/v1/digest/optouts", s.digestOptOuts)
	mux.HandleFunc("POST /api/v1/digest/rotate-key", s.digestRotate)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no API route %s %s", r.Method, r.URL.Path))
	})
	if o.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /healthz", s.healthz)
	if o.Console == nil {
		mux.HandleFunc("GET /{$}", s.statusPage)
	}
	// Profiles of a node under real load; behind the same auth as the API.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	s.api = mux
	if o.Console != nil {
		s.console = o.Console(s.localAPI)
	}
	if o.Recipients != nil {
		s.recipients = o.Recipients(s.localAPI)
	}
	s.handler = s.guard(mux)
	return s, nil
}

// Handler is the whole admin interface, authentication included.
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on Options.Listen and serves until ctx is done, then shuts
// down gracefully. A listen error is returned at once.
func (s *Server) Run(ctx context.Context) error {
	if s.o.Listen == "" {
		// net.Listen would pick a random port on every interface.
		return errors.New("admin listen: no address configured")
	}
	// Free-bound, so a listener on the VIP answers once this node holds it.
	ln, err := freebind.Listen(ctx, s.o.Listen)
	if err != nil {
		return fmt.Errorf("admin listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln (which it closes) until ctx is done, then shuts down
// gracefully, giving running requests a few seconds.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Long enough for a release (downstream timeouts) and a large raw
		// message download.
		WriteTimeout:   5 * time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		TLSConfig:      s.o.TLS,
	}
	if err := httpserve.Serve(ctx, hs, ln, shutdownGrace); err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	return nil
}

// openPaths need no token: scrapers and health checkers do not carry one,
// and neither route shows mail data.
var openPaths = map[string]bool{"/metrics": true, "/healthz": true}

// guard applies the authentication rules of the package comment. It lists
// the open paths rather than the protected ones, so a route added later is
// protected by default.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		if pages := s.pages(r.URL.Path); pages != nil {
			// They authenticate their users themselves; without a token the
			// admin listener is on loopback (config validation), and so
			// are they.
			if s.o.Token == "" && !loopbackClient(r.RemoteAddr) {
				writeError(w, http.StatusForbidden, "this admin API has no token configured and serves loopback clients only")
				return
			}
			pages.ServeHTTP(w, r)
			return
		}
		if s.o.Token == "" {
			if !loopbackClient(r.RemoteAddr) {
				writeError(w, http.StatusForbidden, "this admin API has no token configured and serves loopback clients only")
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if s.open(r.URL.Path) || s.authorized(r) {
			next.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/api/") {
			h.Set("WWW-Authenticate", `Bearer realm="mxgate"`)
		} else {
			h.Set("WWW-Authenticate", `Basic realm="mxgate", charset="UTF-8"`)
		}
		writeError(w, http.StatusUnauthorized, "missing or wrong token (Authorization: Bearer TOKEN)")
	})
}

// pages is the handler that serves path outside the API's guard, or nil.
func (s *Server) pages(path string) http.Handler {
	switch {
	case path == "/my" || strings.HasPrefix(path, "/my/"):
		if s.recipients != nil {
			return s.recipients
		}
		return nil
	case strings.HasPrefix(path, "/api/"), strings.HasPrefix(path, "/debug/"), openPaths[path]:
		return nil
	}
	return s.console
}

// open reports whether path is served without the token.
func (s *Server) open(path string) bool {
	if path == "/metrics" && s.o.MetricsAuth {
		return false
	}
	return openPaths[path]
}

func (s *Server) authorized(r *http.Request) bool {
	var given string
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		given = strings.TrimSpace(a[7:])
	} else if _, pw, ok := r.BasicAuth(); ok {
		given = pw
	} else {
		return false
	}
	sum := sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(sum[:], s.token[:]) == 1
}

// loopbackClient looks at the connection's own address only: a forwarding
// header is whatever the client wants it to be.
func loopbackClient(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.health(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, err)
		return
	}
	fmt.Fprintln(w, "ok")
}

func (s *Server) health() error {
	if s.o.Health == nil {
		return nil
	}
	return s.o.Health()
}

// errorBody is every error answer of the API.
type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// The status line is out; an encoding failure can only cut the body.
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

// internal answers 500 without the cause, which goes to the log: store
// errors name files, hosts and keys the client has no business seeing.
func (s *Server) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client left; nobody reads the answer
	}
	s.log.Error("admin request failed", "method", r.Method, "path", r.URL.Path, "op", what, "err", err)
	writeError(w, http.StatusInternalServerError, what+" failed: internal error (see the node's log)")
}
