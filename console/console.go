// Package console is the web console on the admin listener: server-rendered
// pages over the admin API for people, with a login by the admin token into
// a signed session cookie, CSRF protection on every form and a content
// security policy that allows the console's own script and style only.
//
// The console acts through admin.LocalAPI, so a release from the console is
// the same claim, message-log record and audit name as one from the CLI.
// Every action it takes, and every login, is also one "console audit" line
// in the node's log.
package console

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/console/sessions"
)

// Options configures the console.
type Options struct {
	// Token is the admin token: the login's password, and the root of the
	// session and CSRF keys (nodes with the same token accept each other's
	// sessions, so a session survives a failover to another master).
	// "" = the admin listener serves loopback only, and the login takes
	// any token.
	Token string
	// TLS marks the session cookie Secure.
	TLS bool
	// NodeID names the node in the page header and audit lines.
	NodeID string
	// Logger receives the audit lines and errors; nil = discard.
	Logger *slog.Logger
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// Sessions is the store's memory of logged-out sessions, shared by
	// the nodes, so that a logout holds on every node and across
	// restarts; nil = this process only.
	Sessions sessions.Store
}

// Console serves the pages. Create it with New.
type Console struct {
	o     Options
	api   admin.LocalAPI
	log   *slog.Logger
	keys  keys
	pages *template.Template
	mux   *http.ServeMux
	// gate counts failed logins per client, so that guessing the token
	// from one address is slowed to a crawl.
	gate *loginGate
	// revoked holds the sessions logged out on this node before they
	// expire: it answers without the store, and holds the logouts the
	// store did not take until it does.
	revoked *revocations
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// New returns the constructor admin.Options.Console wants.
func New(o Options) func(api admin.LocalAPI) http.Handler {
	return func(api admin.LocalAPI) http.Handler { return newConsole(o, api) }
}

func newConsole(o Options, api admin.LocalAPI) *Console {
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Console{
		o: o, api: api, log: o.Logger,
		keys:    deriveKeys(o.Token),
		gate:    newLoginGate(),
		revoked: newRevocations(),
		mux:     http.NewServeMux(),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.pages = template.Must(template.New("").Funcs(c.funcs()).ParseFS(templateFS, "templates/*.html"))

	static, _ := fs.Sub(staticFS, "static")
	c.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET /login", c.loginPage)
	c.mux.HandleFunc("POST /login", c.login)
	// A logout is taken while the store is down: it holds here at once.
	c.mux.HandleFunc("POST /logout", c.authedStoreDown(c.logout))
	c.mux.HandleFunc("GET /{$}", c.authed(func(w http.ResponseWriter, r *http.Request, _ *session) {
		http.Redirect(w, r, "/cluster", http.StatusSeeOther)
	}))
	c.routes()
	return c
}

// ServeHTTP sets the headers every answer carries and serves the route.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Only the console's own files may run or style anything: a sender's
	// <script> in a subject stays text even if escaping ever failed.
	// connect-src: console.js asks whether the page answers before it
	// reloads one that refreshes itself.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "+
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Content-Type-Options", "nosniff")
	if !strings.HasPrefix(r.URL.Path, "/static/") {
		h.Set("Cache-Control", "no-store")
	}
	c.mux.ServeHTTP(w, r)
}

// page is what every page template gets: its own data and the frame's.
type page struct {
	Title   string
	Nav     string // the menu entry to highlight
	Node    string
	User    string
	CSRF    string
	Flash   string
	Error   string
	Data    any
	Request *http.Request
}

// render writes the page named name (templates/name.html defines it) in the
// frame. A template error is the console's bug: 500, logged.
func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, status int, name, title string, data any) {
	p := page{Title: title, Nav: name, Node: c.o.NodeID, Data: data, Request: r}
	if s != nil {
		p.User, p.CSRF = s.Name, c.keys.csrf(s.ID)
		p.Flash, p.Error = c.takeFlash(w, r)
	}
	var buf bytes.Buffer
	if err := c.pages.ExecuteTemplate(&buf, name, p); err != nil {
		c.log.Error("console page failed", "page", name, "err", err)
		http.Error(w, "the page could not be drawn (see the node's log)", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// fail shows an error in the frame; msg is for the user (no internals).
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	c.render(w, r, s, status, "error", "Error", msg)
}

// done ends an action: the audit line, then back to where the user was
// (back, a path of this console) with its outcome shown once.
func (c *Console) done(w http.ResponseWriter, r *http.Request, s *session, action, target string, err error, ok string, back string) {
	c.audit(r, s, action, target, err)
	if err != nil {
		c.setFlash(w, "", apiMessage(err))
	} else {
		c.setFlash(w, ok, "")
	}
	http.Redirect(w, r, localPath(back), http.StatusSeeOther)
}

// audit writes one line per console action with who did it from where.
func (c *Console) audit(r *http.Request, s *session, action, target string, err error) {
	user := ""
	if s != nil {
		user = s.Name
	}
	attrs := []any{"user", user, "client", r.RemoteAddr, "action", action, "target", target}
	if err != nil {
		c.log.Warn("console audit", append(attrs, "outcome", "failed", "err", err)...)
		return
	}
	c.log.Info("console audit", append(attrs, "outcome", "ok")...)
}

// client is the API acting for s's user from r's client.
func (c *Console) client(r *http.Request, s *session) *admin.Client {
	return c.api(r, admin.OperatorName(s.Name, "console"))
}

// apiMessage is what the user is shown of an API error: the API's own
// explanation, which never names internals (see admin's internal()).
func apiMessage(err error) string {
	if e, ok := err.(*admin.Error); ok {
		return e.Message
	}
	return err.Error()
}

// localPath keeps a redirect on this console: only an absolute path
// without a host, else the start page.
func localPath(p string) string {
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") {
		return "/"
	}
	return u.RequestURI()
}
