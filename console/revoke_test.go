package console_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/testenv"
)

// browserless is a console client without a browser: its own cookie jar,
// redirects not followed.
type browserless struct {
	hc   *http.Client
	base string
}

func newBrowserless(t *testing.T, base string) *browserless {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browserless{base: base, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// do sends a GET (form nil) or a POST of form to path and returns the
// status and the page.
func (b *browserless) do(t *testing.T, path string, form url.Values) (int, string) {
	t.Helper()
	var resp *http.Response
	var err error
	if form == nil {
		resp, err = b.hc.Get(b.base + path)
	} else {
		resp, err = b.hc.PostForm(b.base+path, form)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// csrf is the CSRF token of the form on the page at path.
func (b *browserless) csrf(t *testing.T, path string) string {
	t.Helper()
	code, page := b.do(t, path, nil)
	m := csrfField.FindStringSubmatch(page)
	if code != http.StatusOK || m == nil {
		t.Fatalf("GET %s: %d, no CSRF field in:\n%.500s", path, code, page)
	}
	return m[1]
}

// login logs in as name and returns the session cookie.
func (b *browserless) login(t *testing.T, name string) *http.Cookie {
	t.Helper()
	code, _ := b.do(t, "/login", url.Values{"csrf": {b.csrf(t, "/login")}, "token": {testToken}, "name": {name}})
	if code != http.StatusSeeOther {
		t.Fatalf("login as %s: %d, want 303", name, code)
	}
	u, _ := url.Parse(b.base)
	for _, c := range b.hc.Jar.Cookies(u) {
		if c.Name == "mxgate_session" {
			return c
		}
	}
	t.Fatalf("login as %s: no session cookie", name)
	return nil
}

// logout logs out with the CSRF token of a page and returns the page.
func (b *browserless) logout(t *testing.T, csrf string) string {
	t.Helper()
	code, page := b.do(t, "/logout", url.Values{"csrf": {csrf}})
	if code != http.StatusOK {
		t.Fatalf("logout: %d, want 200:\n%.500s", code, page)
	}
	return page
}

// with is a client of base holding the session cookie ck (a copy of a
// cookie taken elsewhere).
func with(t *testing.T, base string, ck *http.Cookie) *browserless {
	t.Helper()
	b := newBrowserless(t, base)
	u, _ := url.Parse(base)
	b.hc.Jar.SetCookies(u, []*http.Cookie{{Name: ck.Name, Value: ck.Value}})
	return b
}

// TestLogoutHoldsOnEveryNode: two nodes on one Redis accept each other's
// sessions; a logout on one makes a copy of the cookie worthless on both;
// while Redis is down a session is refused (fail closed) but a logout is
// taken, held on its node at once and passed on once Redis is back.
func TestLogoutHoldsOnEveryNode(t *testing.T) {
	r := testenv.StartRedis(t)
	a := startGateway(t, func(c *config.Config) { c.Store.Redis = r.URL })
	b := startGateway(t, func(c *config.Config) { c.Node.ID = "n2"; c.Store.Redis = r.URL })

	type want struct {
		on   *gateway
		code int
	}
	check := func(t *testing.T, when string, ck *http.Cookie, wants ...want) {
		t.Helper()
		for _, w := range wants {
			code, page := with(t, w.on.admin, ck).do(t, "/cluster", nil)
			if code != w.code {
				t.Errorf("%s: GET /cluster on %s = %d, want %d:\n%.300s", when, w.on.admin, code, w.code, page)
			}
			if w.code == http.StatusServiceUnavailable && !strings.Contains(page, "store does not answer") {
				t.Errorf("%s: the refusal on %s does not say the store does not answer:\n%.500s", when, w.on.admin, page)
			}
		}
	}

	alice := newBrowserless(t, a.admin)
	stolen := alice.login(t, "alice")
	check(t, "logged in on n1", stolen, want{a, http.StatusOK}, want{b, http.StatusOK})
	if msg := alice.logout(t, alice.csrf(t, "/cluster")); !strings.Contains(msg, "Logged out.") {
		t.Errorf("logout page: %.500s", msg)
	}
	check(t, "logged out on n1", stolen, want{a, http.StatusSeeOther}, want{b, http.StatusSeeOther})

	// The store down: a session is not taken on trust.
	bob := newBrowserless(t, a.admin)
	bobs := bob.login(t, "bob")
	csrf := bob.csrf(t, "/cluster") // the logout button of the page open
	r.Stop()
	check(t, "Redis down", bobs, want{a, http.StatusServiceUnavailable}, want{b, http.StatusServiceUnavailable})
	// A form neither: nothing is done.
	if code, page := with(t, b.admin, bobs).do(t, "/lists/add", url.Values{"csrf": {"x"}}); code != http.StatusServiceUnavailable {
		t.Errorf("form with Redis down: %d, want 503:\n%.300s", code, page)
	}
	// The logout is taken all the same, and holds on its node at once.
	if code, page := bob.do(t, "/cluster", nil); code != http.StatusServiceUnavailable || !strings.Contains(page, `id="logout"`) {
		t.Errorf("page with Redis down: %d, want 503 with the logout button:\n%.500s", code, page)
	}
	if msg := bob.logout(t, csrf); !strings.Contains(msg, "on this node") {
		t.Errorf("logout with Redis down does not say it holds on this node only: %.500s", msg)
	}
	if !strings.Contains(a.log.String(), "logout on this node only") {
		t.Error("the audit log does not say the logout held on one node only")
	}
	check(t, "logged out on n1, Redis down", bobs, want{a, http.StatusSeeOther}, want{b, http.StatusServiceUnavailable})

	r.Start()
	// The nodes' clients redial by themselves, within a few seconds.
	for _, g := range []*gateway{a, b} {
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if code, _ := with(t, g.admin, stolen).do(t, "/cluster", nil); code != http.StatusServiceUnavailable {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still finds no store 15 s after Redis came back", g.admin)
			}
		}
	}
	// What was stored before the outage is still there.
	check(t, "Redis back", stolen, want{a, http.StatusSeeOther}, want{b, http.StatusSeeOther})
	// n1 passes the logout on at its next session it checks.
	carol := newBrowserless(t, a.admin)
	carol.login(t, "carol")
	if code, _ := carol.do(t, "/cluster", nil); code != http.StatusOK {
		t.Fatalf("carol on n1 with Redis back: %d", code)
	}
	check(t, "logout passed on", bobs, want{a, http.StatusSeeOther}, want{b, http.StatusSeeOther})
}
