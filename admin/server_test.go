package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgate/mxgate/deliver"
	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/quarantine"
	"github.com/mxgate/mxgate/store"
)

const testToken = "s3cret-token"

var testRaw = []byte("From: a@sender.example\r\nTo: b@example.org\r\nSubject: hello\r\n\r\nbody\r\n")

// fixture is an admin server over a real embedded store holding three
// quarantined messages and three log records.
type fixture struct {
	t        *testing.T
	srv      *Server
	be       *store.Backend
	now      time.Time
	released []string
	sentTo   [][]string // the recipients of each release
}

func newFixture(t *testing.T, mod func(*Options)) *fixture {
	t.Helper()
	be, err := store.OpenEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	f := &fixture{t: t, be: be, now: time.Now().UTC().Truncate(time.Second)}
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "mxgate_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Inc()
	o := Options{
		Token:      testToken,
		Quarantine: be.Quarantine,
		Lists:      be.Lists,
		Log:        be.Log,
		Release: func(ctx context.Context, it quarantine.Item, raw []byte) (string, error) {
			if !bytes.Equal(raw, testRaw) {
				return "", errors.New("raw message not passed on")
			}
			f.released = append(f.released, it.ID)
			f.sentTo = append(f.sentTo, it.Recipients)
			return "250 2.0.0 Ok: queued as X1", nil
		},
		Gatherer: reg,
		NodeID:   "n1",
		Status:   func(context.Context) any { return map[string]string{"role": "master"} },
	}
	if mod != nil {
		mod(&o)
	}
	f.srv, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	items := []quarantine.Item{
		{ID: "Q1", Time: f.now.Add(-2 * time.Hour), Sender: "spammer@bad.example", Recipients: []string{"alice@example.org"}, Verdict: "spam", Score: 9.5, Symbols: []string{"GTUBE(9.50)"}, Node: "n1", Subject: "buy"},
		{ID: "Q2", Time: f.now.Add(-30 * time.Minute), Sender: "x@virus.example", Recipients: []string{"bob@example.org"}, Verdict: "virus", Viruses: []string{"Eicar-Test-Signature"}, Node: "n2"},
		{ID: "Q3", Time: f.now.Add(-48 * time.Hour), Sender: "spammer@bad.example", Recipients: []string{"bob@example.org", "alice@example.org"}, Verdict: "spam", Score: 7},
	}
	for _, it := range items {
		it.Size = int64(len(testRaw))
		if err := be.Quarantine.Put(ctx, it, testRaw); err != nil {
			t.Fatal(err)
		}
	}
	recs := []msglog.Record{
		{ID: "L1", Time: f.now.Add(-3 * time.Hour), Sender: "a@one.example", Recipients: []string{"alice@example.org"}, Action: "deliver", Verdict: "clean", Node: "n1", Reply: "250 2.0.0 ok"},
		{ID: "L2", Time: f.now.Add(-2 * time.Hour), Sender: "<script>alert(1)</script>@evil.example", Recipients: []string{"bob@example.org"}, Action: "reject", Verdict: "virus", Node: "n1"},
		{ID: "Q1", Time: f.now.Add(-time.Hour), Sender: "spammer@bad.example", Recipients: []string{"alice@example.org"}, Action: "quarantine", Verdict: "spam", QuarantineID: "Q1"},
	}
	for _, r := range recs {
		if err := be.Log.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

type answer struct {
	code int
	hdr  http.Header
	body string
}

// req serves one request from remote with the given Authorization header.
func (f *fixture) reqFrom(remote, auth, method, path, body string) answer {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	r.RemoteAddr = remote
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(w, r)
	return answer{w.Code, w.Header(), w.Body.String()}
}

func (f *fixture) req(method, path, body string) answer {
	f.t.Helper()
	return f.reqFrom("192.0.2.10:40000", "Bearer "+testToken, method, path, body)
}

func (a answer) errMsg(t *testing.T) string {
	t.Helper()
	var eb errorBody
	if err := json.Unmarshal([]byte(a.body), &eb); err != nil || eb.Error == "" {
		t.Fatalf("not a JSON error: %d %q", a.code, a.body)
	}
	return eb.Error
}

func ids[T any](t *testing.T, body string, id func(T) string) []string {
	t.Helper()
	var v []T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	out := []string{}
	for _, x := range v {
		out = append(out, id(x))
	}
	return out
}

func itemIDs(t *testing.T, body string) string {
	return strings.Join(ids(t, body, func(it quarantine.Item) string { return it.ID }), ",")
}

func recIDs(t *testing.T, body string) string {
	return strings.Join(ids(t, body, func(r msglog.Record) string { return r.ID }), ",")
}

func TestAuth(t *testing.T) {
	f := newFixture(t, nil)
	basic := func(pw string) string {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth("admin", pw)
		return r.Header.Get("Authorization")
	}
	tests := []struct {
		name, remote, auth, path string
		code                     int
		wwwAuth                  string
	}{
		{"no token", "192.0.2.1:1", "", "/api/v1/lists", 401, "Bearer"},
		{"wrong token", "192.0.2.1:1", "Bearer nope", "/api/v1/lists", 401, "Bearer"},
		{"token prefix", "192.0.2.1:1", "Bearer " + testToken[:5], "/api/v1/lists", 401, "Bearer"},
		{"right token", "192.0.2.1:1", "Bearer " + testToken, "/api/v1/lists", 200, ""},
		{"scheme case", "192.0.2.1:1", "bearer " + testToken, "/api/v1/lists", 200, ""},
		{"basic password", "192.0.2.1:1", basic(testToken), "/api/v1/lists", 200, ""},
		{"basic wrong", "192.0.2.1:1", basic("x"), "/", 401, "Basic"},
		{"loopback needs token too", "127.0.0.1:1", "", "/api/v1/lists", 401, "Bearer"},
		{"status page", "192.0.2.1:1", "", "/", 401, "Basic"},
		{"unknown route protected", "192.0.2.1:1", "", "/nothing", 401, "Basic"},
		{"backup needs the token", "192.0.2.1:1", "", "/api/v1/backup", 401, "Bearer"},
		{"backup needs the token from loopback too", "127.0.0.1:1", "Bearer nope", "/api/v1/backup", 401, "Bearer"},
		{"metrics open", "192.0.2.1:1", "", "/metrics", 200, ""},
		{"healthz open", "192.0.2.1:1", "", "/healthz", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := f.reqFrom(tt.remote, tt.auth, "GET", tt.path, "")
			if a.code != tt.code {
				t.Fatalf("code %d, want %d: %s", a.code, tt.code, a.body)
			}
			if got := a.hdr.Get("WWW-Authenticate"); !strings.HasPrefix(got, tt.wwwAuth) || (tt.wwwAuth == "") != (got == "") {
				t.Errorf("WWW-Authenticate %q, want %q", got, tt.wwwAuth)
			}
			if tt.code == 401 && !strings.Contains(a.errMsg(t), "token") {
				t.Errorf("401 body %q", a.body)
			}
		})
	}
}

// TestMetricsAuth: with MetricsAuth, /metrics needs the token like the
// API (401 and a Bearer challenge without it); /healthz stays open.
func TestMetricsAuth(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MetricsAuth = true })
	tests := []struct {
		name, auth, path string
		code             int
	}{
		{"metrics without token", "", "/metrics", 401},
		{"metrics wrong token", "Bearer nope", "/metrics", 401},
		{"metrics with token", "Bearer " + testToken, "/metrics", 200},
		{"healthz still open", "", "/healthz", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := f.reqFrom("192.0.2.1:1", tt.auth, "GET", tt.path, "")
			if a.code != tt.code {
				t.Fatalf("code %d, want %d: %s", a.code, tt.code, a.body)
			}
			switch tt.code {
			case 401:
				if !strings.HasPrefix(a.hdr.Get("WWW-Authenticate"), "Basic") || strings.Contains(a.body, "mxgate_test_total") {
					t.Errorf("401 leaks or lacks a challenge: %v %q", a.hdr, a.body)
				}
			case 200:
				if tt.path == "/metrics" && !strings.Contains(a.body, "mxgate_test_total 1") {
					t.Errorf("metrics body %.200q", a.body)
				}
			}
		})
	}
}

func TestNoTokenLoopbackOnly(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Token = "" })
	tests := []struct {
		remote string
		code   int
	}{
		{"127.0.0.1:5000", 200},
		{"[::1]:5000", 200},
		{"[::ffff:127.0.0.1]:5000", 200},
		{"192.0.2.7:5000", 403},
		{"[2001:db8::1]:5000", 403},
		{"10.0.0.1:5000", 403},
		{"garbage", 403},
	}
	for _, tt := range tests {
		for _, path := range []string{"/api/v1/quarantine", "/healthz", "/"} {
			a := f.reqFrom(tt.remote, "", "GET", path, "")
			if a.code != tt.code {
				t.Errorf("%s %s: code %d, want %d", tt.remote, path, a.code, tt.code)
			}
			if tt.code == 403 && !strings.Contains(a.errMsg(t), "loopback") {
				t.Errorf("403 body %q", a.body)
			}
		}
	}
	// A forwarding header is the client's word, not its address.
	r := httptest.NewRequest("GET", "/api/v1/lists", nil)
	r.RemoteAddr = "192.0.2.7:5000"
	r.Header.Set("X-Forwarded-For", "127.0.0.1")
	w := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(w, r)
	if w.Code != 403 {
		t.Errorf("X-Forwarded-For honoured: %d", w.Code)
	}
}

func TestQuarantineList(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		query string
		want  string
	}{
		{"", "Q2,Q1,Q3"},
		{"?rcpt=alice@example.org", "Q1,Q3"},
		{"?rcpt=ALICE@example.org", "Q1,Q3"},
		{"?sender=spammer@bad.example", "Q1,Q3"},
		{"?verdict=virus", "Q2"},
		{"?verdict=SPAM&rcpt=bob@example.org", "Q3"},
		{"?since=24h", "Q2,Q1"},
		{"?since=1h", "Q2"},
		{"?since=" + f.now.Add(-3*time.Hour).Format(time.RFC3339), "Q2,Q1"},
		{"?until=1h", "Q1,Q3"},
		{"?until=" + f.now.Add(-time.Hour).Format(time.RFC3339) + "&since=24h", "Q1"},
		{"?limit=1", "Q2"},
		{"?limit=0", "Q2,Q1,Q3"},
		{"?rcpt=nobody@example.org", ""},
		{"?subject=BU", "Q1"},
		{"?subject=nothing", ""},
		{"?before=" + quarantine.Cursor{Time: f.now.Add(-30 * time.Minute), ID: "Q2"}.String(), "Q1,Q3"},
		{"?before=" + quarantine.Cursor{Time: f.now.Add(-2 * time.Hour), ID: "Q1"}.String() + "&limit=1", "Q3"},
		{"?rcpt=bob@example.org&before=" + quarantine.Cursor{Time: f.now.Add(-30 * time.Minute), ID: "Q2"}.String(), "Q3"},
	}
	for _, tt := range tests {
		a := f.req("GET", "/api/v1/quarantine"+tt.query, "")
		if a.code != 200 {
			t.Errorf("%s: %d %s", tt.query, a.code, a.body)
			continue
		}
		if got := itemIDs(t, a.body); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.query, got, tt.want)
		}
		if tt.want == "" && strings.TrimSpace(a.body) != "[]" {
			t.Errorf("empty answer %q, want []", a.body)
		}
	}
}

func TestBadInput(t *testing.T) {
	f := newFixture(t, nil)
	long := strings.Repeat("a", 600)
	tests := []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"GET", "/api/v1/quarantine?since=later", "", 400, "since: want a duration like 90m, 24h or 7d"},
		{"GET", "/api/v1/quarantine?since=1x", "", 400, "a date like 2026-12-02"},
		{"GET", "/api/v1/quarantine?day=tomorrow", "", 400, "day: want today, yesterday or a date"},
		{"GET", "/api/v1/quarantine?day=today&since=1h", "", 400, "day: a whole day, so neither since nor until"},
		{"GET", "/api/v1/log?day=2026-13-01", "", 400, "day: want today"},
		{"GET", "/api/v1/quarantine?rcpt=bob", "", 400, "rcpt: address filter \"bob\" is neither an address nor a domain"},
		{"GET", "/api/v1/log?sender=example.org", "", 400, "sender: address filter \"example.org\" is a bare domain: write @example.org"},
		{"POST", "/api/v1/quarantine/Q1/release?rcpt=eve@example.org", "", 400, `rcpt: "eve@example.org": not a recipient of the quarantined message (recipients: alice@example.org)`},
		{"GET", "/api/v1/quarantine?since=-5h", "", 400, "since: the duration must be positive"},
		{"GET", "/api/v1/quarantine?until=2026-13-01", "", 400, "until:"},
		{"GET", "/api/v1/quarantine?limit=x", "", 400, "limit: want a whole number"},
		{"GET", "/api/v1/quarantine?limit=-1", "", 400, "limit:"},
		{"GET", "/api/v1/quarantine?limit=10001", "", 400, "limit:"},
		{"GET", "/api/v1/quarantine?verdict=ham", "", 400, `verdict: "ham" is not one of spam, virus, banned, unscannable, engine_failed, policy`},
		{"GET", "/api/v1/quarantine?sender=" + long, "", 400, "sender: not a valid filter value"},
		{"GET", "/api/v1/quarantine?rcpt=a%0Ab", "", 400, "rcpt: not a valid filter value"},
		{"GET", "/api/v1/quarantine?before=Q1", "", 400, "before: not a cursor this gateway gave"},
		{"GET", "/api/v1/quarantine?before=" + strings.Repeat("_", 20), "", 400, "before: not a cursor"},
		{"GET", "/api/v1/quarantine?subject=a%00b", "", 400, "subject: not a valid filter value"},
		{"GET", "/api/v1/quarantine?since=x&limit=y", "", 400, "limit:"},
		{"GET", "/api/v1/log?since=x", "", 400, "since:"},
		{"GET", "/api/v1/log?limit=20000", "", 400, "limit:"},
		{"GET", "/api/v1/quarantine/a%20b", "", 400, "id:"},
		{"GET", "/api/v1/quarantine/" + strings.Repeat("x", 300), "", 400, "id:"},
		{"GET", "/api/v1/quarantine/nope", "", 404, `no quarantined message with id "nope"`},
		{"GET", "/api/v1/quarantine/nope/raw", "", 404, "no quarantined message"},
		{"POST", "/api/v1/quarantine/nope/release", "", 404, "no quarantined message"},
		{"DELETE", "/api/v1/quarantine/nope", "", 404, "no quarantined message"},
		{"POST", "/api/v1/lists", `{"kind":"deny","value":"a@b.example"}`, 400, `kind: "deny" is not block or allow`},
		{"POST", "/api/v1/lists", `{"kind":"block","value":"a@b.example","skip_attachments":true}`, 400, "skip_attachments: only an allow entry"},
		{"POST", "/api/v1/lists", `{"kind":"block","value":"example.com"}`, 400, "is a bare domain"},
		{"POST", "/api/v1/lists", `{"kind":"block","value":""}`, 400, "empty list value"},
		{"POST", "/api/v1/lists", `{"kind":"block","value":"@x.example","rcpt":"bob"}`, 400, `recipient "bob"`},
		{"POST", "/api/v1/lists", `{"kind":"block","value":"@x.example","recipient":"bob@example.org"}`, 400, "body: invalid JSON"},
		{"POST", "/api/v1/lists", `{"kind":"block"`, 400, "body: invalid JSON"},
		{"POST", "/api/v1/lists", `{"kind":"block","value":"@x.example"} {}`, 400, "more than one JSON value"},
		{"POST", "/api/v1/lists", `{"kind":"block","value":"@x.example","comment":"` + strings.Repeat("c", 2<<20) + `"}`, 400, "body: larger than"},
		{"POST", "/api/v1/lists", `{"kind":"block","value":"@x.example","comment":"` + strings.Repeat("c", 501) + `"}`, 400, "comment: longer than 500"},
		{"POST", "/api/v1/lists", `{"kind":"block","value":"@x.example","comment":"a\u001bb"}`, 400, "comment: contains control"},
		{"DELETE", "/api/v1/lists?kind=x&value=@a.example", "", 400, "kind:"},
		{"DELETE", "/api/v1/lists?kind=block&value=a.example", "", 400, "bare domain"},
		{"POST", "/api/v1/lists", `{"kind":"block","value":"*@x.example"}`, 400, "wildcards are not supported: use @x.example"},
		{"DELETE", "/api/v1/lists?kind=block&value=@none.example", "", 404, "no block entry @none.example (global)"},
		{"DELETE", "/api/v1/lists?kind=allow&value=@none.example&rcpt=bob@example.org", "", 404, "no allow entry @none.example (for bob@example.org)"},
		{"GET", "/api/v2/whatever", "", 404, "no API route GET /api/v2/whatever"},
		{"PUT", "/api/v1/lists", "", 404, "no API route PUT"},
	}
	for _, tt := range tests {
		a := f.req(tt.method, tt.path, tt.body)
		if a.code != tt.code {
			t.Errorf("%s %.60s: code %d, want %d (%s)", tt.method, tt.path, a.code, tt.code, a.body)
			continue
		}
		if msg := a.errMsg(t); !strings.Contains(msg, tt.want) {
			t.Errorf("%s %.60s: error %q lacks %q", tt.method, tt.path, msg, tt.want)
		}
		if ct := a.hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s %.60s: Content-Type %q", tt.method, tt.path, ct)
		}
	}
}

func TestQuarantineItem(t *testing.T) {
	f := newFixture(t, nil)
	a := f.req("GET", "/api/v1/quarantine/Q2", "")
	if a.code != 200 {
		t.Fatalf("%d %s", a.code, a.body)
	}
	var it quarantine.Item
	if err := json.Unmarshal([]byte(a.body), &it); err != nil {
		t.Fatal(err)
	}
	if it.ID != "Q2" || it.Verdict != "virus" || len(it.Viruses) != 1 || it.Viruses[0] != "Eicar-Test-Signature" {
		t.Errorf("item = %+v", it)
	}

	a = f.req("GET", "/api/v1/quarantine/Q2/raw", "")
	if a.code != 200 || a.body != string(testRaw) {
		t.Fatalf("raw: %d %q", a.code, a.body)
	}
	if ct := a.hdr.Get("Content-Type"); ct != "message/rfc822" {
		t.Errorf("raw Content-Type %q", ct)
	}
	if cd := a.hdr.Get("Content-Disposition"); cd != `attachment; filename="Q2.eml"` {
		t.Errorf("Content-Disposition %q", cd)
	}

	if a := f.req("DELETE", "/api/v1/quarantine/Q2", ""); a.code != 204 || a.body != "" {
		t.Fatalf("delete: %d %q", a.code, a.body)
	}
	if a := f.req("GET", "/api/v1/quarantine/Q2", ""); a.code != 404 {
		t.Errorf("after delete: %d", a.code)
	}
	if a := f.req("GET", "/api/v1/quarantine/Q2/raw", ""); a.code != 404 {
		t.Errorf("raw after delete: %d", a.code)
	}
	if got := itemIDs(t, f.req("GET", "/api/v1/quarantine", "").body); got != "Q1,Q3" {
		t.Errorf("list after delete %q", got)
	}
}

func TestRelease(t *testing.T) {
	f := newFixture(t, nil)
	a := f.req("POST", "/api/v1/quarantine/Q1/release", "")
	if a.code != 200 {
		t.Fatalf("%d %s", a.code, a.body)
	}
	var res ReleaseResult
	if err := json.Unmarshal([]byte(a.body), &res); err != nil {
		t.Fatal(err)
	}
	if res.ID != "Q1" || res.Reply != "250 2.0.0 Ok: queued as X1" || res.ReleasedAt.IsZero() || !res.PreviousRelease.IsZero() || res.Warning != "" {
		t.Errorf("first release = %+v", res)
	}
	it, err := f.be.Quarantine.Get(context.Background(), "Q1")
	if err != nil || !it.Released.Equal(res.ReleasedAt) {
		t.Errorf("not marked released: %v %v", it.Released, err)
	}

	if len(it.Releases) != 1 || it.Releases[0].By != "admin API from 192.0.2.10:40000 (token) via n1" || it.Claim != nil {
		t.Errorf("release record %+v, claim %+v", it.Releases, it.Claim)
	}

	// A second release is refused, naming the first (who and when).
	a = f.req("POST", "/api/v1/quarantine/Q1/release", "")
	if a.code != http.StatusConflict {
		t.Fatalf("second release: %d %s", a.code, a.body)
	}
	for _, want := range []string{"release of Q1 refused: it was released already, by admin API from 192.0.2.10:40000 (token) via n1 at " + res.ReleasedAt.Format(time.RFC3339), "--force"} {
		if msg := a.errMsg(t); !strings.Contains(msg, want) {
			t.Errorf("409 says %q, want %q in it", msg, want)
		}
	}

	// Forced: delivered again, said so, and recorded as forced.
	a = f.req("POST", "/api/v1/quarantine/Q1/release?force=true", "")
	var again ReleaseResult
	if err := json.Unmarshal([]byte(a.body), &again); err != nil || a.code != 200 {
		t.Fatalf("%d %s", a.code, a.body)
	}
	if !again.PreviousRelease.Equal(res.ReleasedAt) || !again.Forced || again.Overridden == nil || !again.Overridden.Done.Equal(res.ReleasedAt) {
		t.Errorf("forced release = %+v, want it to name the first at %v", again, res.ReleasedAt)
	}
	if strings.Join(f.released, ",") != "Q1,Q1" {
		t.Errorf("Release called for %q", f.released)
	}
	it, _ = f.be.Quarantine.Get(context.Background(), "Q1")
	if len(it.Releases) != 2 || it.Releases[0].Forced || !it.Releases[1].Forced {
		t.Errorf("releases recorded as %+v, want the second forced", it.Releases)
	}

	// force=false is a plain release; anything but a boolean is refused.
	if a := f.req("POST", "/api/v1/quarantine/Q1/release?force=false", ""); a.code != http.StatusConflict {
		t.Errorf("force=false: %d %s", a.code, a.body)
	}
	if a := f.req("POST", "/api/v1/quarantine/Q1/release?force=yes", ""); a.code != http.StatusBadRequest || !strings.Contains(a.errMsg(t), `force: want true or false, got "yes"`) {
		t.Errorf("force=yes: %d %s", a.code, a.body)
	}
	if a := f.req("POST", "/api/v1/quarantine/nope/release?force=true", ""); a.code != http.StatusNotFound {
		t.Errorf("forced release of a missing id: %d %s", a.code, a.body)
	}
}

// TestReleaseOperator: the name the CLI sends leads the actor's name when
// it is a plain user@host, and is ignored otherwise.
func TestReleaseOperator(t *testing.T) {
	for _, tc := range []struct{ header, want string }{
		{"alice@ops1.example", "alice@ops1.example, admin API from 192.0.2.10:40000 (token) via n1"},
		{"", "admin API from 192.0.2.10:40000 (token) via n1"},
		{"alice, admin API from 10.0.0.1:1 via n9", "admin API from 192.0.2.10:40000 (token) via n1"},
		{"evil\x1b[31m", "admin API from 192.0.2.10:40000 (token) via n1"},
		{strings.Repeat("a", 65), "admin API from 192.0.2.10:40000 (token) via n1"},
	} {
		f := newFixture(t, nil)
		r := httptest.NewRequest("POST", "/api/v1/quarantine/Q2/release", nil)
		r.RemoteAddr = "192.0.2.10:40000"
		r.Header.Set("Authorization", "Bearer "+testToken)
		r.Header.Set(OperatorHeader, tc.header)
		w := httptest.NewRecorder()
		f.srv.Handler().ServeHTTP(w, r)
		var res ReleaseResult
		if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || w.Code != 200 || res.By != tc.want {
			t.Errorf("operator %q: %d, by %q, want %q", tc.header, w.Code, res.By, tc.want)
		}
	}
	if got := OperatorName("Jürgen Smith", "ops1.example"); got != "J_rgen_Smith@ops1.example" {
		t.Errorf("OperatorName = %q", got)
	}
	if got := OperatorName(strings.Repeat("u", 100), "h"); len(got) != maxOperator || !validOperator(got) {
		t.Errorf("OperatorName of a long name = %q", got)
	}
	if OperatorName("", "h") != "" {
		t.Error("OperatorName without a user is not empty")
	}
}

// TestConcurrentReleases: while one release is under way, every other one
// is refused with 409 naming it, and only one delivery happens.
func TestConcurrentReleases(t *testing.T) {
	entered, proceed := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	f := newFixture(t, func(o *Options) {
		o.Release = func(ctx context.Context, it quarantine.Item, raw []byte) (string, error) {
			calls.Add(1)
			close(entered) // a second call panics: that is the failure
			<-proceed
			return "250 2.0.0 Ok", nil
		}
	})
	first := make(chan answer)
	go func() {
		first <- f.reqFrom("192.0.2.1:1001", "Bearer "+testToken, "POST", "/api/v1/quarantine/Q1/release", "")
	}()
	<-entered
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			a := f.reqFrom(fmt.Sprintf("192.0.2.%d:1002", i+2), "Bearer "+testToken, "POST", "/api/v1/quarantine/Q1/release", "")
			if a.code != http.StatusConflict {
				t.Errorf("concurrent release: %d %s", a.code, a.body)
				return
			}
			for _, want := range []string{"admin API from 192.0.2.1:1001 (token) via n1 claimed it for release at", "has not finished"} {
				if msg := a.errMsg(t); !strings.Contains(msg, want) {
					t.Errorf("409 says %q, want %q in it", msg, want)
				}
			}
		})
	}
	wg.Wait()
	close(proceed)
	if a := <-first; a.code != 200 {
		t.Errorf("first release: %d %s", a.code, a.body)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d deliveries, want 1", n)
	}
}

func TestReleaseFailures(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		o.Release = func(context.Context, quarantine.Item, []byte) (string, error) {
			return "", errors.New("550 5.1.1 <alice@example.org>: user unknown")
		}
	})
	a := f.req("POST", "/api/v1/quarantine/Q1/release", "")
	if a.code != http.StatusBadGateway || !strings.Contains(a.errMsg(t), "release Q1: delivery failed: 550 5.1.1") {
		t.Fatalf("%d %s", a.code, a.body)
	}
	if it, _ := f.be.Quarantine.Get(context.Background(), "Q1"); it.WasReleased() || it.Claim != nil {
		t.Errorf("failed release left released %v, claim %+v", it.Released, it.Claim)
	}
	// The claim was given back: the next release goes ahead unforced.
	a = f.req("POST", "/api/v1/quarantine/Q1/release", "")
	if a.code != http.StatusBadGateway || !strings.Contains(a.errMsg(t), "delivery failed") {
		t.Errorf("release after a failed one: %d %s, want the delivery tried again", a.code, a.body)
	}

	// Delivered to some recipients, refused for others: released, with a
	// warning, so a second release sends nobody a second copy.
	f = newFixture(t, func(o *Options) {
		o.Release = func(context.Context, quarantine.Item, []byte) (string, error) {
			return "2.0.0 Ok", errors.New("1 of 2 recipients refused: 550 5.1.1 <bob@example.org>: user unknown")
		}
	})
	a = f.req("POST", "/api/v1/quarantine/Q1/release", "")
	var res ReleaseResult
	if a.code != http.StatusOK || json.Unmarshal([]byte(a.body), &res) != nil || !strings.Contains(res.Warning, "1 of 2 recipients refused") {
		t.Fatalf("partial release: %d %s", a.code, a.body)
	}
	if it, _ := f.be.Quarantine.Get(context.Background(), "Q1"); it.Released.IsZero() {
		t.Error("partly delivered release not marked as released")
	}
	if a := f.req("POST", "/api/v1/quarantine/Q1/release", ""); a.code != http.StatusConflict {
		t.Errorf("release after a partial one: %d %s, want 409", a.code, a.body)
	}

	// The downstream's answer to the message was lost: it may have been
	// delivered, so the claim stays and only --force goes ahead.
	var logs bytes.Buffer
	unconfirmed := true
	f = newFixture(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		o.Release = func(context.Context, quarantine.Item, []byte) (string, error) {
			if unconfirmed {
				return "", fmt.Errorf("DATA at downstream 192.0.2.25:25: %w: read: connection reset by peer", deliver.ErrUnconfirmed)
			}
			return "250 2.0.0 Ok", nil
		}
	})
	a = f.req("POST", "/api/v1/quarantine/Q1/release", "")
	if a.code != http.StatusBadGateway || !strings.Contains(a.errMsg(t), "may have been delivered, so the release stays claimed") {
		t.Fatalf("unconfirmed release: %d %s", a.code, a.body)
	}
	unconfirmed = false
	a = f.req("POST", "/api/v1/quarantine/Q1/release", "")
	if a.code != http.StatusConflict || !strings.Contains(a.errMsg(t), "has not finished") {
		t.Fatalf("release after an unconfirmed one: %d %s, want 409", a.code, a.body)
	}
	a = f.req("POST", "/api/v1/quarantine/Q1/release?force=1", "")
	if a.code != http.StatusOK || json.Unmarshal([]byte(a.body), &res) != nil || !res.Forced || res.Overridden == nil || !res.Overridden.Done.IsZero() {
		t.Fatalf("forced release over the open claim: %d %s", a.code, a.body)
	}
	if !strings.Contains(logs.String(), `msg="quarantine release forced: a second copy" id=Q1`) {
		t.Errorf("no log line saying the release was forced:\n%s", logs.String())
	}
	if it, _ := f.be.Quarantine.Get(context.Background(), "Q1"); it.Claim != nil || len(it.Releases) != 1 || !it.Releases[0].Forced {
		t.Errorf("after the forced release: claim %+v, releases %+v", it.Claim, it.Releases)
	}

	f = newFixture(t, func(o *Options) { o.Release = nil })
	if a := f.req("POST", "/api/v1/quarantine/Q1/release", ""); a.code != http.StatusNotImplemented {
		t.Errorf("nil Release: %d %s", a.code, a.body)
	}
}

func TestLists(t *testing.T) {
	f := newFixture(t, nil)
	a := f.req("POST", "/api/v1/lists", `{"kind":"block","value":"Bad@Spam.EXAMPLE","comment":"ticket 42"}`)
	if a.code != 201 {
		t.Fatalf("%d %s", a.code, a.body)
	}
	var e lists.Entry
	if err := json.Unmarshal([]byte(a.body), &e); err != nil {
		t.Fatal(err)
	}
	if e.Kind != lists.Block || e.Value != "Bad@spam.example" || e.Rcpt != "" || e.Comment != "ticket 42" || e.Added.IsZero() {
		t.Errorf("created = %+v", e)
	}
	if a := f.req("POST", "/api/v1/lists", `{"kind":"allow","value":"192.0.2.0/24","rcpt":"Bob@Example.org"}`); a.code != 201 || !strings.Contains(a.body, `"existing": false`) {
		t.Fatalf("%d %s", a.code, a.body)
	}
	// The same entry again: 200, the first one unchanged, and "existing".
	a = f.req("POST", "/api/v1/lists", `{"kind":"block","value":"bad@spam.example","comment":"again"}`)
	var again ListAddResult
	if err := json.Unmarshal([]byte(a.body), &again); err != nil || a.code != 200 || !again.Existing || again.Comment != "ticket 42" || !again.Added.Equal(e.Added) {
		t.Errorf("adding an existing entry: %d %s (%v)", a.code, a.body, err)
	}
	a = f.req("GET", "/api/v1/lists", "")
	got := ids(t, a.body, func(e lists.Entry) string { return string(e.Kind) + " " + e.Value + " " + e.Rcpt })
	if strings.Join(got, "|") != "allow 192.0.2.0/24 Bob@example.org|block Bad@spam.example " {
		t.Errorf("lists = %q", got)
	}
	// Removal accepts the value as the user typed it.
	if a := f.req("DELETE", "/api/v1/lists?kind=block&value=bad@SPAM.example", ""); a.code != 204 {
		t.Fatalf("remove: %d %s", a.code, a.body)
	}
	if a := f.req("DELETE", "/api/v1/lists?kind=block&value=bad@SPAM.example", ""); a.code != 404 {
		t.Errorf("second remove: %d %s", a.code, a.body)
	}
	if a := f.req("DELETE", "/api/v1/lists?kind=allow&value=192.0.2.0/24", ""); a.code != 404 {
		t.Errorf("global remove of a per-recipient entry: %d", a.code)
	}
	if a := f.req("DELETE", "/api/v1/lists?kind=allow&value=192.0.2.0/24&rcpt=bob@example.org", ""); a.code != 204 {
		t.Errorf("per-recipient remove: %d %s", a.code, a.body)
	}
	if a := f.req("GET", "/api/v1/lists", ""); strings.TrimSpace(a.body) != "[]" {
		t.Errorf("empty lists = %q", a.body)
	}
	// An allow entry that waives the attachment policy says so, stored
	// and listed.
	if a := f.req("POST", "/api/v1/lists", `{"kind":"allow","value":"billing@partner.example","skip_attachments":true}`); a.code != 201 || !strings.Contains(a.body, `"skip_attachments": true`) {
		t.Fatalf("allow with skip_attachments: %d %s", a.code, a.body)
	}
	a = f.req("GET", "/api/v1/lists", "")
	var all []lists.Entry
	if err := json.Unmarshal([]byte(a.body), &all); err != nil || len(all) != 1 || !all[0].SkipAttachments {
		t.Errorf("listed %s (%v)", a.body, err)
	}
}

func TestLog(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct{ query, want string }{
		{"", "Q1,L2,L1"},
		{"?id=L1", "L1"},
		{"?id=q1", "Q1"},
		{"?sender=A@ONE.example", "L1"},
		{"?sender=@one.example", "L1"},
		{"?sender=.example", "Q1,L2,L1"},
		{"?sender=@example", ""},
		{"?rcpt=bob@example.org", "L2"},
		{"?rcpt=@example.org", "Q1,L2,L1"},
		{"?rcpt=.org", "Q1,L2,L1"},
		{"?rcpt=@org", ""},
		{"?since=1d", "Q1,L2,L1"},
		{"?since=" + f.now.Add(24*time.Hour).Format(time.DateOnly), ""},
		{"?day=" + f.now.Add(24*time.Hour).Format(time.DateOnly), ""},
		{"?day=" + f.now.Add(-48*time.Hour).Format(time.DateOnly), ""},
		{"?action=quarantine", "Q1"},
		{"?since=150m", "Q1,L2"},
		{"?until=" + f.now.Add(-90*time.Minute).Format(time.RFC3339), "L2,L1"},
		{"?limit=2", "Q1,L2"},
		{"?action=deliver&rcpt=bob@example.org", ""},
	}
	for _, tt := range tests {
		a := f.req("GET", "/api/v1/log"+tt.query, "")
		if a.code != 200 {
			t.Errorf("%s: %d %s", tt.query, a.code, a.body)
			continue
		}
		if got := recIDs(t, a.body); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.query, got, tt.want)
		}
	}
}

func TestMetricsHealthStatus(t *testing.T) {
	healthErr := error(nil)
	f := newFixture(t, func(o *Options) { o.Health = func() error { return healthErr } })
	if a := f.req("GET", "/metrics", ""); a.code != 200 || !strings.Contains(a.body, "mxgate_test_total 1") {
		t.Errorf("metrics: %d %.200s", a.code, a.body)
	}
	if a := f.req("GET", "/healthz", ""); a.code != 200 || a.body != "ok\n" {
		t.Errorf("healthz: %d %q", a.code, a.body)
	}
	a := f.req("GET", "/", "")
	if a.code != 200 || !strings.HasPrefix(a.hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("status: %d %v", a.code, a.hdr)
	}
	for _, want := range []string{
		"mxgate node n1", "<b>2</b>", // Q1 and Q2 are within 24 h
		"&lt;script&gt;alert(1)&lt;/script&gt;@evil.example", // escaped sender
		"&#34;role&#34;: &#34;master&#34;",                   // Status, escaped
		"spammer@bad.example",
	} {
		if !strings.Contains(a.body, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if strings.Contains(a.body, "<script>") {
		t.Error("status page has an unescaped script")
	}

	healthErr = errors.New("store unreachable")
	if a := f.req("GET", "/healthz", ""); a.code != 503 || !strings.Contains(a.body, "store unreachable") {
		t.Errorf("unhealthy: %d %q", a.code, a.body)
	}
	if a := f.req("GET", "/", ""); a.code != 200 || !strings.Contains(a.body, "store unreachable") {
		t.Errorf("status page when unhealthy: %d", a.code)
	}
	if a := f.req("GET", "/nothing", ""); a.code != 404 {
		t.Errorf("unknown page: %d", a.code)
	}
}

func TestNoGathererNoMetrics(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Gatherer = nil })
	if a := f.req("GET", "/metrics", ""); a.code != 404 {
		t.Errorf("metrics without gatherer: %d", a.code)
	}
}

// brokenStore fails with an error that names internals.
type brokenStore struct{ quarantine.Store }

var errInternal = errors.New("open /var/lib/mxgate/mxgate.db: permission denied")

func (brokenStore) List(context.Context, quarantine.Filter) ([]quarantine.Item, error) {
	return nil, errInternal
}

func (brokenStore) Get(context.Context, string) (quarantine.Item, error) {
	return quarantine.Item{}, errInternal
}

func TestInternalErrorsHidden(t *testing.T) {
	var logBuf bytes.Buffer
	f := newFixture(t, nil)
	o := f.srv.o
	o.Quarantine = brokenStore{o.Quarantine}
	o.Logger = slogTo(&logBuf)
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	for _, path := range []string{"/api/v1/quarantine", "/api/v1/quarantine/Q1"} {
		a := f.req("GET", path, "")
		if a.code != 500 || strings.Contains(a.body, "/var/lib") || !strings.Contains(a.errMsg(t), "internal error") {
			t.Errorf("%s: %d %s", path, a.code, a.body)
		}
	}
	if !strings.Contains(logBuf.String(), "permission denied") {
		t.Errorf("cause not logged: %q", logBuf.String())
	}
	// The status page still renders, saying what is missing.
	if a := f.req("GET", "/", ""); a.code != 200 || !strings.Contains(a.body, "unavailable") {
		t.Errorf("status page with broken store: %d", a.code)
	}
}

func TestNewNeedsStores(t *testing.T) {
	_, err := New(Options{})
	if err == nil || !strings.Contains(err.Error(), "Quarantine, Lists, Log") {
		t.Fatalf("err = %v", err)
	}
}

func TestRun(t *testing.T) {
	f := newFixture(t, nil)
	// An address in use is reported at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	o := f.srv.o
	o.Listen = ln.Addr().String()
	busy, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := busy.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "admin listen") {
		t.Fatalf("Run on a busy address: %v", err)
	}

	// Serve answers until its context is done, then returns nil.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.srv.Serve(ctx, ln) }()
	c, err := NewClient("http://"+ln.Addr().String(), testToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lists(context.Background()); err != nil {
		t.Fatalf("while serving: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
	if _, err := c.Lists(context.Background()); err == nil || !strings.Contains(err.Error(), "cannot reach the admin API at http://"+ln.Addr().String()) {
		t.Fatalf("after shutdown: %v", err)
	}
}
