package console_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/mxgate/mxgate/testenv"
)

func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// login logs the browser in with token as name, from the login form it
// shows or (base not "") from base's.
func login(t *testing.T, ctx context.Context, base, token, name string) {
	t.Helper()
	if base != "" {
		testenv.BrowserDo(t, ctx, "open the login", chromedp.Navigate(base+"/login"))
	}
	testenv.BrowserDo(t, ctx, "log in",
		chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", token),
		chromedp.SendKeys("#name", name),
		chromedp.Click("#login"),
		chromedp.WaitReady("body"),
	)
}

// TestLoginLogoutCSRF drives the console's door in Chromium against a real
// node: pages without a session go to the login, a wrong token is refused,
// the right one logs in, a form without its CSRF token does nothing, and
// after logout the old session cookie is worth nothing.
func TestLoginLogoutCSRF(t *testing.T) {
	g := startGateway(t, nil)
	ctx := testenv.Browser(t)

	testenv.BrowserDo(t, ctx, "open a page without a session", chromedp.Navigate(g.admin+"/quarantine"), chromedp.WaitVisible("#token"))
	if loc := location(t, ctx); !strings.HasPrefix(loc, g.admin+"/login?next=") || !strings.Contains(loc, "quarantine") {
		t.Errorf("without a session /quarantine went to %s, want the login with next=/quarantine", loc)
	}
	testenv.Screenshot(t, ctx, "login")

	login(t, ctx, "", "wrong-token", "mallory")
	if msg := testenv.BrowserText(t, ctx, "#login-message"); !strings.Contains(msg, "Wrong token") {
		t.Errorf("wrong token: page says %q", msg)
	}
	if strings.Contains(location(t, ctx), "/quarantine") {
		t.Errorf("wrong token reached %s", location(t, ctx))
	}
	testenv.Screenshot(t, ctx, "login-wrong-token")

	login(t, ctx, "", testToken, "alice")
	testenv.BrowserDo(t, ctx, "logged in", chromedp.WaitVisible("#logout"))
	if loc := location(t, ctx); loc != g.admin+"/quarantine" {
		t.Errorf("after login at %s, want %s/quarantine (next)", loc, g.admin)
	}
	if u := testenv.BrowserText(t, ctx, ".user"); u != "alice" {
		t.Errorf("user shown %q, want alice", u)
	}
	cookies, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.cookie"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(cookies, "mxgate_session") {
		t.Errorf("the session cookie is readable by scripts (not HttpOnly): %q", cookies)
	}

	// The logout form without its CSRF token: refused, still logged in.
	testenv.BrowserDo(t, ctx, "post a form without its CSRF token",
		chromedp.Evaluate[chromedp.Void](`document.querySelector("form.logout input[name=csrf]").remove(); document.querySelector("form.logout").submit();`),
		chromedp.WaitVisible("#error"),
	)
	if msg := testenv.BrowserText(t, ctx, "#error"); !strings.Contains(msg, "CSRF") {
		t.Errorf("form without CSRF: page says %q", msg)
	}
	testenv.Screenshot(t, ctx, "csrf-refused")
	testenv.BrowserDo(t, ctx, "still logged in", chromedp.Navigate(g.admin+"/cluster"), chromedp.WaitVisible("#logout"))

	// Keep the session cookie to try it again after logout.
	jar, _ := cookiejar.New(nil)
	sess := sessionCookie(t, ctx)
	u, _ := url.Parse(g.admin)
	jar.SetCookies(u, []*http.Cookie{sess})
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if code := get(t, hc, g.admin+"/cluster"); code != http.StatusOK {
		t.Fatalf("session cookie outside the browser: %d, want 200", code)
	}

	testenv.BrowserDo(t, ctx, "log out", chromedp.Click("#logout"), chromedp.WaitVisible("#token"))
	if msg := testenv.BrowserText(t, ctx, "#login-message"); !strings.Contains(msg, "Logged out") {
		t.Errorf("after logout: %q", msg)
	}
	testenv.BrowserDo(t, ctx, "page after logout", chromedp.Navigate(g.admin+"/cluster"), chromedp.WaitVisible("#token"))
	if code := get(t, hc, g.admin+"/cluster"); code != http.StatusSeeOther {
		t.Errorf("the logged-out session cookie still opens a page: %d, want 303 to the login", code)
	}

	for _, want := range []string{"action=login", "user=mallory", "login failed: wrong token", "action=logout", "refused: no valid CSRF token"} {
		if !strings.Contains(g.log.String(), want) {
			t.Errorf("audit log lacks %q", want)
		}
	}
}

func sessionCookie(t *testing.T, ctx context.Context) *http.Cookie {
	t.Helper()
	// document.cookie cannot see an HttpOnly cookie; DevTools can.
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == "mxgate_session" {
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict {
				t.Errorf("session cookie HttpOnly=%v SameSite=%q, want true and Strict", c.HTTPOnly, c.SameSite)
			}
			return &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	t.Fatal("no session cookie in the browser")
	return nil
}

func get(t *testing.T, hc *http.Client, u string) int {
	t.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestLoginTwoTabs: a login form stays good when the login is opened again
// in another tab (the second load keeps the browser's nonce).
func TestLoginTwoTabs(t *testing.T) {
	g := startGateway(t, nil)
	ctx := testenv.Browser(t)
	testenv.BrowserDo(t, ctx, "first tab", chromedp.Navigate(g.admin+"/login"), chromedp.WaitVisible("#token"))
	other, cancel := chromedp.NewContext(ctx)
	defer cancel()
	testenv.BrowserDo(t, other, "second tab", chromedp.Navigate(g.admin+"/login"), chromedp.WaitVisible("#token"))
	login(t, ctx, "", testToken, "alice")
	testenv.BrowserDo(t, ctx, "logged in from the first tab", chromedp.WaitVisible("#logout"))
}
