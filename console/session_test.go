package console

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestSessionCookie(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	k := deriveKeys("token-one")
	good := k.encode(session{ID: "S1", Name: "alice", Exp: now.Add(time.Hour)})
	tests := []struct {
		name, value string
		at          time.Time
		ok          bool
	}{
		{"valid", good, now, true},
		{"expired", good, now.Add(time.Hour), false},
		{"other token", deriveKeys("token-two").encode(session{ID: "S1", Name: "alice", Exp: now.Add(time.Hour)}), now, false},
		{"body changed", "X" + good[1:], now, false},
		{"mac cut", good[:len(good)-2], now, false},
		{"no mac", strings.Split(good, ".")[0], now, false},
		{"no id", k.encode(session{Name: "alice", Exp: now.Add(time.Hour)}), now, false},
		{"too long", good + strings.Repeat("A", maxCookie), now, false},
		{"empty", "", now, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := k.decode(tt.value, tt.at)
			if ok != tt.ok || (ok && (s.ID != "S1" || s.Name != "alice")) {
				t.Errorf("decode = %+v, %v; want ok %v", s, ok, tt.ok)
			}
		})
	}
}

func TestLoginGate(t *testing.T) {
	g := newLoginGate()
	now := time.Now()
	for i := range maxLoginFailures {
		if !g.allowed("192.0.2.1", now) {
			t.Fatalf("refused after %d failures", i)
		}
		g.failed("192.0.2.1", now)
	}
	if g.allowed("192.0.2.1", now) {
		t.Error("allowed after the maximum of failures")
	}
	if !g.allowed("192.0.2.2", now) {
		t.Error("another client refused")
	}
	if !g.allowed("192.0.2.1", now.Add(loginWindow)) {
		t.Error("still refused after the window")
	}
	if a, b := clientKey("[2001:db8::1]:5"), clientKey("[2001:db8::ffff]:6"); a != b {
		t.Errorf("one /64 counted as two clients: %s, %s", a, b)
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/quarantine?page=2":    "/quarantine?page=2",
		"//evil.example/x":      "/",
		"https://evil.example/": "/",
		"/\\evil.example":       "/",
		"quarantine":            "/",
		"":                      "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzSessionCookie: whatever a client sends as its cookie, decode never
// panics and accepts only what encode made.
func FuzzSessionCookie(f *testing.F) {
	k := deriveKeys("fuzz")
	now := time.Now()
	f.Add(k.encode(session{ID: "x", Name: "n", Exp: now.Add(time.Hour)}))
	f.Add("e30.AAAA")
	f.Fuzz(func(t *testing.T, v string) {
		s, ok := k.decode(v, now)
		if ok && k.encode(*s) == "" {
			t.Fatal("accepted a cookie encode cannot make")
		}
	})
}

// TestCookieFlags: the session cookie is HttpOnly and SameSite=Strict
// always, and Secure when the console is served over TLS.
func TestCookieFlags(t *testing.T) {
	for _, tls := range []bool{false, true} {
		c := newConsole(Options{Token: "tok", TLS: tls, NodeID: "n1"}, nil)
		get := httptest.NewRecorder()
		c.ServeHTTP(get, httptest.NewRequest("GET", "/login", nil))
		var nonce *http.Cookie
		for _, ck := range get.Result().Cookies() {
			if ck.Name == loginCookie {
				nonce = ck
			}
		}
		if nonce == nil {
			t.Fatal("no login cookie")
		}
		form := url.Values{"token": {"tok"}, "csrf": {c.keys.sign(c.keys.csrf_, "login:"+nonce.Value)}}
		req := httptest.NewRequest("POST", "/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(nonce)
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, req)
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("TLS %v: login answered %d: %s", tls, rec.Code, rec.Body)
		}
		var sess *http.Cookie
		for _, ck := range rec.Result().Cookies() {
			if ck.Name == sessionCookie {
				sess = ck
			}
		}
		if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Secure != tls {
			t.Errorf("TLS %v: session cookie %+v, want HttpOnly, SameSite=Strict, Secure=%v", tls, sess, tls)
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("CSP %q", csp)
		}
	}
}

// TestRevocationsPending: a logout the store did not take is held here
// and offered to the store until it takes it.
func TestRevocationsPending(t *testing.T) {
	now := time.Now()
	v := newRevocations()
	v.add("stored", now.Add(time.Hour), now, false)
	v.add("held", now.Add(time.Hour), now, true)
	for _, tt := range []struct {
		id   string
		want bool
	}{{"stored", true}, {"held", true}, {"other", false}} {
		if got := v.has(tt.id); got != tt.want {
			t.Errorf("has(%s) = %v, want %v", tt.id, got, tt.want)
		}
	}
	if p := v.pending(); len(p) != 1 || !p["held"].Equal(now.Add(time.Hour)) {
		t.Fatalf("pending = %v, want held alone", p)
	}
	v.stored("held")
	if p := v.pending(); len(p) != 0 {
		t.Errorf("pending after stored = %v, want none", p)
	}
	if !v.has("held") {
		t.Error("a logout passed on to the store is no longer held here")
	}
}
