package rspamd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mxgate/mxgate/engines"
	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/testenv"
)

// canned is a loopback HTTP server answering every request with one
// status and body, and keeping the last request it got.
type canned struct {
	srv    *httptest.Server
	mu     sync.Mutex
	last   *http.Request
	body   []byte
	handle func(w http.ResponseWriter, r *http.Request)
}

func newCanned(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *canned {
	t.Helper()
	c := &canned{handle: handle}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.last, c.body = r, b
		handle := c.handle
		c.mu.Unlock()
		w.Header().Set("Connection", "close")
		handle(w, r)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func reply(status int, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func (c *canned) set(handle func(w http.ResponseWriter, r *http.Request)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.handle = handle
}

func (c *canned) request() (*http.Request, []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last, c.body
}

// TestCannedReplies: what the real rspamd cannot be made to answer.
func TestCannedReplies(t *testing.T) {
	huge := `{"action":"no action","score":0,"symbols":{"A":{"score":0,"options":["` + strings.Repeat("x", maxReply) + `"]}}}`
	for _, tc := range []struct {
		name    string
		handle  func(http.ResponseWriter, *http.Request)
		kind    string // of the error; "" = none
		action  scanner.Action
		headers []string
		subject string
	}{
		{name: "empty 200", handle: reply(200, ""), kind: engines.KindProtocol},
		{name: "blank 200", handle: reply(200, " \r\n"), kind: engines.KindProtocol},
		{name: "malformed json", handle: reply(200, `{"action":"no action","score":0`), kind: engines.KindProtocol},
		{name: "trailing garbage", handle: reply(200, `{"action":"no action","score":0} x`), kind: engines.KindProtocol},
		{name: "not an object", handle: reply(200, `["no action"]`), kind: engines.KindProtocol},
		{name: "missing action", handle: reply(200, `{"score":0,"symbols":{}}`), kind: engines.KindProtocol},
		{name: "null action", handle: reply(200, `{"action":null,"score":0}`), kind: engines.KindProtocol},
		{name: "unknown action", handle: reply(200, `{"action":"spam","score":20}`), kind: engines.KindProtocol},
		{name: "empty action", handle: reply(200, `{"action":"","score":0}`), kind: engines.KindProtocol},
		{name: "missing score", handle: reply(200, `{"action":"no action"}`), kind: engines.KindProtocol},
		{name: "score not a number", handle: reply(200, `{"action":"no action","score":"0"}`), kind: engines.KindProtocol},
		{name: "symbol options not strings", handle: reply(200, `{"action":"no action","score":0,"symbols":{"A":{"score":1,"options":[1]}}}`), kind: engines.KindProtocol},
		{name: "header neither string nor object", handle: reply(200, `{"action":"no action","score":0,"milter":{"add_headers":{"X-A":5}}}`), kind: engines.KindProtocol},
		{name: "header object without value", handle: reply(200, `{"action":"no action","score":0,"milter":{"add_headers":{"X-A":{"order":1}}}}`), kind: engines.KindProtocol},
		{name: "rewrite subject without subject", handle: reply(200, `{"action":"rewrite subject","score":7}`), kind: engines.KindProtocol},
		{name: "500", handle: reply(500, `{"error":"cannot process task"}`), kind: engines.KindEngine},
		{name: "503 empty", handle: reply(503, ""), kind: engines.KindEngine},
		{name: "400", handle: reply(400, `{"error":"bad request"}`), kind: engines.KindProtocol},
		{name: "404", handle: reply(404, `not found`), kind: engines.KindProtocol},
		{name: "redirect", handle: func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) }, kind: engines.KindProtocol},
		{name: "huge reply", handle: reply(200, huge), kind: engines.KindProtocol},
		{name: "huge reply, chunked", handle: func(w http.ResponseWriter, _ *http.Request) {
			for i := 0; i < len(huge); i += 64 << 10 {
				io.WriteString(w, huge[i:min(i+64<<10, len(huge))])
				w.(http.Flusher).Flush()
			}
		}, kind: engines.KindProtocol},
		{name: "truncated", handle: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "200")
			w.WriteHeader(200)
			io.WriteString(w, `{"action":"no action",`)
			w.(http.Flusher).Flush()
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
		}, kind: engines.KindIO},
		{name: "reject", handle: reply(200, `{"action":"reject","score":20,"required_score":15}`), action: scanner.ActionReject},
		{name: "soft reject", handle: reply(200, `{"action":"soft reject","score":0}`), action: scanner.ActionTempfail},
		{name: "greylist", handle: reply(200, `{"action":"greylist","score":4}`), action: scanner.ActionTempfail},
		{name: "quarantine", handle: reply(200, `{"action":"quarantine","score":4}`), action: scanner.ActionQuarantine},
		{name: "discard", handle: reply(200, `{"action":"discard","score":4}`), action: scanner.ActionQuarantine},
		{name: "headers sanitised", handle: reply(200, `{"action":"add header","score":6,"milter":{"add_headers":{
			"X-Evil":"a\r\nBcc: victim@example.net",
			"X-Fold":{"value":"a;\r\n\tb\u0000c","order":1},
			"Bad Name":"x", "X-A:B":"x", "":"x",
			"X-List":["one",{"value":"two","order":2}],
			"X-Mxgate-Verdict":"clean",
			"X-Long":"`+strings.Repeat("y", 2000)+`",
			"X-Utf8":"Grüße"}}}`),
			action: scanner.ActionDeliver,
			headers: []string{"X-Evil: a Bcc: victim@example.net", "X-List: one", "X-Long: " + strings.Repeat("y", maxHeaderLine-len("X-Long: ")),
				"X-Utf8: =?utf-8?q?Gr=C3=BC=C3=9Fe?=", "X-Fold: a;\tb c", "X-List: two", "X-Spam: Yes"}},
		{name: "X-Spam given", handle: reply(200, `{"action":"add header","score":6,"milter":{"add_headers":{"X-Spam":"yes, 6"}}}`),
			action: scanner.ActionDeliver, headers: []string{"X-Spam: yes, 6"}},
		{name: "subject sanitised", handle: reply(200, `{"action":"rewrite subject","score":7,"subject":"[SPAM] hi\r\nBcc: x\u0000"}`),
			action: scanner.ActionDeliver, subject: "[SPAM] hi Bcc: x"},
		{name: "subject not ascii", handle: reply(200, `{"action":"rewrite subject","score":7,"subject":"[SPAM] Grüße"}`),
			action: scanner.ActionDeliver, subject: "=?utf-8?q?[SPAM]_Gr=C3=BC=C3=9Fe?="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newCanned(t, tc.handle)
			c, err := New(srv.srv.URL, Options{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.Scan(testenv.Context(t, 30*time.Second), scanMessage("q1", []byte("Subject: x\r\n\r\nbody\r\n")))
			if tc.kind != "" {
				if err == nil || engines.Kind(err) != tc.kind {
					t.Fatalf("got %+v, %v (kind %s); want an error of kind %s", res, err, engines.Kind(err), tc.kind)
				}
				if len(err.Error()) > 1000 {
					t.Errorf("error message of %d bytes", len(err.Error()))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Action != tc.action {
				t.Errorf("action %q, want %q", res.Action, tc.action)
			}
			if tc.headers != nil && !slices.Equal(res.Headers, tc.headers) {
				t.Errorf("headers\n%q\nwant\n%q", res.Headers, tc.headers)
			}
			if res.Subject != tc.subject {
				t.Errorf("subject %q, want %q", res.Subject, tc.subject)
			}
		})
	}
}

// TestRequest: what Scan, Learn and Ping send.
func TestRequest(t *testing.T) {
	srv := newCanned(t, reply(200, `{"action":"no action","score":0}`))
	c, err := New(srv.srv.URL, Options{Controller: srv.srv.URL, Password: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Context(t, 30*time.Second)
	body := []byte("Subject: x\r\n\r\nbody\r\n")
	m := scanMessage("Q42", body)
	m.Env.Sender = ""
	m.Env.Helo = "evil\x00\r\nX-Injected: 1\tx"
	if _, err := c.Scan(ctx, m); err != nil {
		t.Fatal(err)
	}
	r, got := srv.request()
	for _, tc := range []struct{ field, want string }{
		{"IP", "192.0.2.10"},
		{"Helo", "evil???X-Injected: 1?x"},
		{"Hostname", "unknown"},
		{"From", "<>"},
		{"Queue-Id", "Q42"},
	} {
		if v := r.Header.Values(tc.field); len(v) != 1 || v[0] != tc.want {
			t.Errorf("%s: %q, want %q", tc.field, v, tc.want)
		}
	}
	if v := r.Header.Values("Rcpt"); !slices.Equal(v, []string{"bob@example.org", "carol@example.org"}) {
		t.Errorf("Rcpt: %q", v)
	}
	if r.Method != "POST" || r.URL.Path != "/checkv2" || r.ContentLength != int64(len(body)) || !bytes.Equal(got, body) {
		t.Errorf("%s %s, length %d, body %q", r.Method, r.URL.Path, r.ContentLength, got)
	}
	if r.Header.Get("X-Injected") != "" {
		t.Error("HELO injected a header")
	}
	if r.Header.Get("Password") != "" {
		t.Error("the controller's password went to the normal worker")
	}

	for _, tc := range []struct {
		name   string
		status int
		reply  string
		spam   bool
		ok     bool
	}{
		{"learned", 200, `{"success":true}`, true, true},
		{"already learned", 208, `{"error":"<x> has been already learned as spam, ignore it"}`, true, true},
		{"ham", 200, `{"success":true}`, false, true},
		{"no success", 200, `{}`, true, false},
		{"success false", 200, `{"success":false}`, true, false},
		{"error", 500, `{"error":"no statfiles"}`, true, false},
		{"empty", 200, ``, true, false},
		// Rspamd without a Redis backend for its classifier learns nothing.
		{"nothing learned", 204, ``, true, false},
	} {
		t.Run("learn "+tc.name, func(t *testing.T) {
			srv.set(reply(tc.status, tc.reply))
			err := c.Learn(ctx, tc.spam, bytes.NewReader(body), int64(len(body)))
			if (err == nil) != tc.ok {
				t.Fatalf("Learn: %v, want ok=%v", err, tc.ok)
			}
			r, _ := srv.request()
			path := map[bool]string{true: "/learnspam", false: "/learnham"}[tc.spam]
			if r.URL.Path != path || r.Header.Get("Password") != "secret" {
				t.Errorf("learn went to %s with password %q", r.URL.Path, r.Header.Get("Password"))
			}
		})
	}

	for _, tc := range []struct {
		reply string
		ok    bool
	}{{"pong\r\n", true}, {"pong", true}, {"", false}, {"nope", false}} {
		t.Run(fmt.Sprintf("ping %q", tc.reply), func(t *testing.T) {
			srv.set(reply(200, tc.reply))
			if err := c.Ping(ctx); (err == nil) != tc.ok {
				t.Fatalf("Ping: %v, want ok=%v", err, tc.ok)
			}
			if r, _ := srv.request(); r.Method != "GET" || r.URL.Path != "/ping" {
				t.Errorf("ping sent %s %s", r.Method, r.URL.Path)
			}
		})
	}
}

// TestDeadline: an rspamd that never answers costs the client's timeout,
// not the caller's whole deadline; and calls beyond MaxConnections wait.
func TestDeadline(t *testing.T) {
	release := make(chan struct{})
	srv := newCanned(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	c, err := New(srv.srv.URL, Options{Timeout: 300 * time.Millisecond, MaxConnections: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Scan(testenv.Context(t, time.Minute), scanMessage("q", []byte("x\r\n")))
	if engines.Kind(err) != engines.KindTimeout {
		t.Fatalf("scan of a hanging rspamd: %v (kind %s), want a timeout", err, engines.Kind(err))
	}
}

// TestAddr: only http://host:port is an rspamd address.
func TestAddr(t *testing.T) {
	for _, tc := range []struct {
		addr, controller string
		ok               bool
	}{
		{"http://127.0.0.1:11333", "", true},
		{"http://127.0.0.1:11333", "http://127.0.0.1:11334", true},
		{"tcp://127.0.0.1:11333", "", false},
		{"unix:///run/rspamd.sock", "", false},
		{"127.0.0.1:11333", "", false},
		{"http://127.0.0.1:11333/checkv2", "", false},
		{"http://127.0.0.1:11333", "127.0.0.1:11334", false},
	} {
		_, err := New(tc.addr, Options{Controller: tc.controller})
		if (err == nil) != tc.ok {
			t.Errorf("New(%q, controller %q): %v, want ok=%v", tc.addr, tc.controller, err, tc.ok)
		}
	}
}

// TestConnectionRefused: nothing listening is an error of kind connect.
func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := New("http://"+addr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Scan(testenv.Context(t, 30*time.Second), scanMessage("q", []byte("x\r\n")))
	if err == nil || engines.Kind(err) != engines.KindConnect {
		t.Fatalf("scan with nothing listening: %v (kind %s)", err, engines.Kind(err))
	}
}

func FuzzReply(f *testing.F) {
	for _, s := range []string{
		`{"is_skipped":false,"score":-0.1,"required_score":15.0,"action":"no action","symbols":{"MIME_GOOD":{"name":"MIME_GOOD","score":-0.1,"metric_score":-0.1,"options":["text/plain"]}},"messages":{},"milter":{"add_headers":{"X-Spamd-Result":{"value":"default: False [-0.10 / 15.00];\r\n\tMIME_GOOD(-0.10)[text/plain]","order":-1}},"remove_headers":{"X-Spam":0}}}`,
		`{"is_skipped":true,"score":15.0,"required_score":15.0,"action":"reject","symbols":{"GTUBE":{"name":"GTUBE","score":0.0}},"messages":{"smtp_message":"Gtube pattern"}}`,
		`{"action":"rewrite subject","score":7,"subject":"*** SPAM *** hi"}`,
		`{"action":"add header","score":6,"milter":{"add_headers":{"X-A":["a",{"value":"b","order":2}],"X-B":"c\r\nd"}}}`,
		`{"action":"soft reject","score":0}`,
		``, `{}`, `null`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseReply(b)
		if err != nil {
			if engines.Kind(err) != engines.KindProtocol {
				t.Fatalf("error of kind %s: %v", engines.Kind(err), err)
			}
			return
		}
		if _, ok := actions[r.Action]; !ok {
			t.Fatalf("accepted unknown action %q", r.Action)
		}
		res := r.result()
		if res.Action == "" {
			t.Fatal("accepted reply without a mapped action")
		}
		if len(res.Headers) > maxHeaders+1 || len(res.Symbols) > maxSymbols+1 {
			t.Fatalf("%d headers, %d symbols", len(res.Headers), len(res.Symbols))
		}
		for _, h := range append(slices.Clone(res.Headers), "Subject: "+res.Subject) {
			name, value, ok := strings.Cut(h, ": ")
			if !ok || len(h) > maxHeaderLine || !fieldName(name) && name != "Subject" || !utf8.ValidString(h) ||
				strings.ContainsFunc(value, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f || r >= 0x80 }) {
				t.Fatalf("header not sane: %q", h)
			}
		}
		for _, s := range res.Symbols {
			if !strings.HasPrefix(s.Name, "RSPAMD_") || len(s.Name) > len("RSPAMD_")+maxSymbolName || len(s.Detail) > maxDetail ||
				strings.ContainsAny(s.Name+s.Detail, "\r\n\x00") {
				t.Fatalf("symbol not sane: %+v", s)
			}
		}
		sum := 0.0
		for _, s := range res.Symbols {
			sum += s.Score
		}
		if !math.IsInf(r.Score, 0) && math.Abs(r.Score) < 1e9 && math.Abs(sum-r.Score) > 0.01 {
			t.Fatalf("symbols add up to %v, the score is %v", sum, r.Score)
		}
		if r.Action == "rewrite subject" && res.Subject == "" {
			t.Fatal("rewrite subject without a subject")
		}
	})
}

// A message over MaxSize is not sent: an error of kind too_large, no
// connection made (nothing listens at the address).
func TestMaxSize(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := New("http://"+addr, Options{MaxSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Scan(testenv.Context(t, 30*time.Second), scanMessage("q", []byte("Subject: x\r\n\r\nmore than ten bytes\r\n")))
	if engines.Kind(err) != engines.KindTooLarge {
		t.Fatalf("scan over max_size: %v (kind %s), want too_large", err, engines.Kind(err))
	}
}

// A ping answers while every turn is taken by a scan Rspamd is slow on: a
// busy engine is not a down one.
func TestPingWhileBusy(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/checkv2" {
			<-release
		}
		io.WriteString(w, "pong")
	}))
	defer srv.Close()
	defer close(release)
	c, err := New(srv.URL, Options{MaxConnections: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Context(t, 30*time.Second)
	go c.Check(ctx, Request{}, strings.NewReader("x"), 1)
	for c.limit.InFlight() == 0 {
		time.Sleep(time.Millisecond)
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := c.Ping(pctx); err != nil {
		t.Errorf("ping while the only turn is taken: %v", err)
	}
}
