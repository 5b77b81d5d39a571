package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mxgate/mxgate/admin"
)

const (
	sessionCookie = "mxgate_session"
	loginCookie   = "mxgate_login"
	flashCookie   = "mxgate_flash"
	// sessionLife is absolute: a session from the morning ends at night,
	// however busy it was.
	sessionLife = 12 * time.Hour
	// maxCookie bounds what is decoded of a cookie.
	maxCookie = 1024
	// Failed logins allowed per client in loginWindow; then it waits for
	// the window to pass.
	maxLoginFailures = 5
	loginWindow      = 10 * time.Minute
	// maxTracked bounds the memory of failed logins and logged-out
	// sessions; past it, unknown clients may not log in (fail closed)
	// until entries expire.
	maxTracked = 10000
	// maxForm bounds a posted form.
	maxForm = 1 << 20
	// maxRevoked bounds the logged-out sessions remembered.
	maxRevoked = 100000
	// storeTimeout bounds a question to the store of revoked sessions,
	// so that a page waits for a store that hangs no longer than this.
	storeTimeout = 5 * time.Second
)

// keys sign the console's cookies and forms. They derive from the admin
// token, so every node with the token accepts the session, and a new token
// ends every session.
type keys struct {
	session, csrf_ []byte
	token          [sha256.Size]byte
	noToken        bool
}

func deriveKeys(token string) keys {
	root := []byte(token)
	if token == "" {
		// No token: loopback only; sessions last as long as the process.
		root = make([]byte, 32)
		_, _ = rand.Read(root)
	}
	mac := func(label string) []byte {
		m := hmac.New(sha256.New, root)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	return keys{
		session: mac("mxgate console session v1"),
		csrf_:   mac("mxgate console csrf v1"),
		token:   sha256.Sum256([]byte(token)),
		noToken: token == "",
	}
}

func (k keys) sign(key []byte, msg string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrf is the form token of session id.
func (k keys) csrf(id string) string { return k.sign(k.csrf_, "session:"+id) }

// tokenOK compares a login's token with the admin token in constant time.
func (k keys) tokenOK(given string) bool {
	if k.noToken {
		return true
	}
	sum := sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(sum[:], k.token[:]) == 1
}

// session is a logged-in user: the cookie carries it, signed.
type session struct {
	ID   string    `json:"id"`
	Name string    `json:"name"`
	Exp  time.Time `json:"exp"`
}

func (k keys) encode(s session) string {
	b, _ := json.Marshal(s)
	body := base64.RawURLEncoding.EncodeToString(b)
	return body + "." + k.sign(k.session, body)
}

func (k keys) decode(v string, now time.Time) (*session, bool) {
	if len(v) > maxCookie {
		return nil, false
	}
	body, mac, ok := strings.Cut(v, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(k.sign(k.session, body))) {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return nil, false
	}
	var s session
	if json.Unmarshal(b, &s) != nil || s.ID == "" || !now.Before(s.Exp) {
		return nil, false
	}
	return &s, true
}

// authed serves fn to a logged-in user only: a page asked for without a
// session goes to the login, a form without one or without its CSRF token
// is refused. A session the store cannot vouch for (it does not answer
// whether the session was logged out elsewhere) is refused too.
func (c *Console) authed(fn func(w http.ResponseWriter, r *http.Request, s *session)) http.HandlerFunc {
	return c.authedIf(fn, false)
}

// authedStoreDown is authed, but serves a session while the store does
// not answer: for the logout, which must hold here all the same.
func (c *Console) authedStoreDown(fn func(w http.ResponseWriter, r *http.Request, s *session)) http.HandlerFunc {
	return c.authedIf(fn, true)
}

func (c *Console) authedIf(fn func(w http.ResponseWriter, r *http.Request, s *session), storeDownOK bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := c.session(r)
		if err != nil && !storeDownOK {
			// Fail closed: the session may have been logged out on
			// another node.
			// The page keeps the logout button (s is signed and not
			// logged out here), which is served while the store is down.
			c.log.Warn("console session refused: the store of logged-out sessions does not answer", "err", err)
			c.render(w, r, s, http.StatusServiceUnavailable, "error", "Store unavailable",
				"The shared store does not answer, so this node cannot tell whether your session was logged out: nothing was done. Try again (or log in) later.")
			return
		}
		if s == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.render(w, r, nil, http.StatusUnauthorized, "error", "Not logged in", "Your session has ended: log in again, then repeat the action.")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			// The largest form is a page of ids and a list entry.
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if !c.sameOrigin(r) || !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(c.keys.csrf(s.ID))) {
				c.audit(r, s, "refused: no valid CSRF token", r.URL.Path, nil)
				c.render(w, r, s, http.StatusForbidden, "error", "Refused", "The form came without its CSRF token (or from another site), so nothing was done. Reload the page and try again.")
				return
			}
		}
		fn(w, r, s)
	}
}

// sameOrigin refuses a form whose browser says it came from elsewhere;
// clients that send neither header are judged by the CSRF token alone.
func (c *Console) sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	return true
}

// session is r's session: nil without a signed, live one that was not
// logged out on this node. err says the store could not tell whether it
// was logged out on another node; the session comes with it, for the
// logout alone.
func (c *Console) session(r *http.Request) (*session, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, nil
	}
	// The MAC first: only a cookie this node signed costs a store read.
	s, ok := c.keys.decode(ck.Value, c.o.Now())
	if !ok || c.revoked.has(s.ID) {
		return nil, nil
	}
	if c.o.Sessions == nil {
		return s, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	revoked, err := c.o.Sessions.Revoked(ctx, s.ID)
	if err != nil {
		return s, fmt.Errorf("check console session: %w", err)
	}
	if revoked {
		return nil, nil
	}
	c.passOn(ctx)
	return s, nil
}

// passOn stores the logouts the store did not take when they happened,
// now that it answers again.
func (c *Console) passOn(ctx context.Context) {
	for id, exp := range c.revoked.pending() {
		if err := c.o.Sessions.Revoke(ctx, id, exp); err != nil {
			c.log.Warn("console logout still held on this node only", "err", err)
			return
		}
		c.revoked.stored(id)
		c.log.Info("console logout passed on to the store: it holds on every node now")
	}
}

func (c *Console) cookie(name, value string, maxAge time.Duration) *http.Cookie {
	ck := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: c.o.TLS, SameSite: http.SameSiteStrictMode}
	if maxAge > 0 {
		ck.MaxAge = int(maxAge / time.Second)
	} else {
		ck.MaxAge = -1
	}
	return ck
}

type loginData struct {
	Next, Nonce, CSRF, Message string
	NoToken                    bool
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.showLogin(w, r, http.StatusOK, "")
}

// showLogin draws the login form with a fresh pre-login nonce: the form's
// CSRF token is bound to it, so another site cannot log a browser in.
func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	// A browser that has a nonce keeps it: a second login tab (or a page
	// fetched twice) must not make the first tab's form stale.
	nonce := ""
	if ck, err := r.Cookie(loginCookie); err == nil && len(ck.Value) == len(rand.Text()) {
		nonce = ck.Value
	} else {
		nonce = rand.Text()
	}
	http.SetCookie(w, c.cookie(loginCookie, nonce, 15*time.Minute))
	c.render(w, r, nil, status, "login", "Log in", loginData{
		Next: localPath(r.FormValue("next")), Nonce: nonce, CSRF: c.keys.sign(c.keys.csrf_, "login:"+nonce),
		Message: msg, NoToken: c.keys.noToken,
	})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	ck, err := r.Cookie(loginCookie)
	if err != nil || len(ck.Value) > maxCookie || !c.sameOrigin(r) ||
		!hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(c.keys.sign(c.keys.csrf_, "login:"+ck.Value))) {
		c.audit(r, nil, "login refused: no valid CSRF token", "", nil)
		c.showLogin(w, r, http.StatusForbidden, "The login form had expired or came from another site. Try again.")
		return
	}
	client := clientKey(r.RemoteAddr)
	now := c.o.Now()
	if !c.gate.allowed(client, now) {
		c.audit(r, nil, "login refused: too many failures", "", nil)
		c.showLogin(w, r, http.StatusTooManyRequests, "Too many failed logins from your address: wait ten minutes.")
		return
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" {
		name = "admin"
	}
	if admin.OperatorName(name, "") != name {
		c.showLogin(w, r, http.StatusBadRequest, "Your name may have letters, digits and . _ @ + - only, at most 64.")
		return
	}
	if !c.keys.tokenOK(r.PostFormValue("token")) {
		c.gate.failed(client, now)
		c.audit(r, &session{Name: name}, "login failed: wrong token", "", nil)
		c.showLogin(w, r, http.StatusUnauthorized, "Wrong token.")
		return
	}
	s := session{ID: rand.Text(), Name: name, Exp: now.Add(sessionLife)}
	http.SetCookie(w, c.cookie(sessionCookie, c.keys.encode(s), sessionLife))
	http.SetCookie(w, c.cookie(loginCookie, "", 0))
	c.audit(r, &s, "login", "", nil)
	http.Redirect(w, r, localPath(r.PostFormValue("next")), http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	msg, action := "Logged out.", "logout"
	var err error
	if c.o.Sessions != nil {
		ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
		err = c.o.Sessions.Revoke(ctx, s.ID, s.Exp)
		cancel()
	}
	// Kept here either way: this node refuses the session at once, and
	// passes the logout on when the store answers again.
	c.revoked.add(s.ID, s.Exp, c.o.Now(), err != nil)
	http.SetCookie(w, c.cookie(sessionCookie, "", 0))
	if err != nil {
		c.log.Error("console logout not stored: it holds on this node only until the store answers", "user", s.Name, "err", err)
		msg = "Logged out on this node. The shared store does not answer: until it does, other nodes may still accept a copy of this session."
		action = "logout on this node only"
	}
	c.audit(r, s, action, "", nil)
	c.showLogin(w, r, http.StatusOK, msg)
}

// clientKey groups a client by address, IPv6 by its /64 (one host has it
// all).
func clientKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// loginGate counts failed logins per client.
type loginGate struct {
	mu       sync.Mutex
	failures map[string][]time.Time
}

func newLoginGate() *loginGate { return &loginGate{failures: map[string][]time.Time{}} }

func (g *loginGate) recent(client string, now time.Time) []time.Time {
	var keep []time.Time
	for _, t := range g.failures[client] {
		if now.Sub(t) < loginWindow {
			keep = append(keep, t)
		}
	}
	if keep == nil {
		delete(g.failures, client)
	} else {
		g.failures[client] = keep
	}
	return keep
}

func (g *loginGate) allowed(client string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, known := g.failures[client]; !known && len(g.failures) >= maxTracked {
		for k := range g.failures {
			g.recent(k, now)
		}
		if len(g.failures) >= maxTracked {
			return false
		}
	}
	return len(g.recent(client, now)) < maxLoginFailures
}

func (g *loginGate) failed(client string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.failures) >= maxTracked {
		if _, known := g.failures[client]; !known {
			return // allowed() refuses it while the table is full
		}
	}
	g.failures[client] = append(g.recent(client, now), now)
}

// revocations are the sessions logged out on this node before they
// expire; pend are those of them the store has yet to take (a subset, and
// empty but for an outage: asked for on every request).
type revocations struct {
	mu   sync.Mutex
	ids  map[string]time.Time
	pend map[string]time.Time
}

func newRevocations() *revocations {
	return &revocations{ids: map[string]time.Time{}, pend: map[string]time.Time{}}
}

func (v *revocations) add(id string, exp, now time.Time, pending bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.ids) >= maxRevoked {
		for k, e := range v.ids {
			if !now.Before(e) {
				delete(v.ids, k)
				delete(v.pend, k)
			}
		}
	}
	// Still full of live sessions: the cookie is cleared, which is what
	// a logout is to the browser that asked.
	if len(v.ids) < maxRevoked {
		v.ids[id] = exp
		if pending {
			v.pend[id] = exp
		}
	}
}

func (v *revocations) has(id string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.ids[id]
	return ok
}

// pending are the ids the store has yet to take, with their expiry.
func (v *revocations) pending() map[string]time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.pend) == 0 {
		return nil
	}
	return maps.Clone(v.pend)
}

// stored marks id as taken by the store.
func (v *revocations) stored(id string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.pend, id)
}

// setFlash shows ok or bad once, on the next page drawn.
func (c *Console) setFlash(w http.ResponseWriter, ok, bad string) {
	v := "ok:" + ok
	if bad != "" {
		v = "err:" + bad
	}
	if len(v) > 900 {
		v = v[:900]
	}
	http.SetCookie(w, c.cookie(flashCookie, url.QueryEscape(v), time.Minute))
}

func (c *Console) takeFlash(w http.ResponseWriter, r *http.Request) (ok, bad string) {
	ck, err := r.Cookie(flashCookie)
	if err != nil {
		return "", ""
	}
	http.SetCookie(w, c.cookie(flashCookie, "", 0))
	v, err := url.QueryUnescape(ck.Value)
	if err != nil {
		return "", ""
	}
	if rest, found := strings.CutPrefix(v, "err:"); found {
		return "", rest
	}
	rest, _ := strings.CutPrefix(v, "ok:")
	return rest, ""
}
