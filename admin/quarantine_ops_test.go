package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/mxgate/mxgate/msglog"
)

// An operator types ids in any case: every route finds the item.
func TestQuarantineIDAnyCase(t *testing.T) {
	f := newFixture(t, nil)
	for _, tt := range []struct{ method, path string }{
		{"GET", "/api/v1/quarantine/q1"},
		{"GET", "/api/v1/quarantine/q1/raw"},
		{"POST", "/api/v1/quarantine/q1/release"},
		{"DELETE", "/api/v1/quarantine/q2"},
	} {
		if a := f.req(tt.method, tt.path, ""); a.code >= 300 {
			t.Errorf("%s %s: %d %s", tt.method, tt.path, a.code, a.body)
		}
	}
	if !slices.Equal(f.released, []string{"Q1"}) {
		t.Errorf("released %v, want Q1 under its own id", f.released)
	}
	if a := f.req("GET", "/api/v1/quarantine/q9", ""); a.code != http.StatusNotFound || !strings.Contains(a.errMsg(t), `"q9"`) {
		t.Errorf("unknown id: %d %s", a.code, a.body)
	}
}

// Q3 goes to bob and alice: each is released once, on its own; a
// recipient released before needs force, the others are named.
func TestReleasePerRecipient(t *testing.T) {
	f := newFixture(t, nil)
	release := func(query string) (answer, ReleaseResult) {
		t.Helper()
		a := f.req("POST", "/api/v1/quarantine/Q3/release"+query, "")
		var res ReleaseResult
		if a.code == 200 {
			if err := json.Unmarshal([]byte(a.body), &res); err != nil {
				t.Fatal(err)
			}
		}
		return a, res
	}
	tests := []struct {
		name   string
		query  string
		code   int
		sentTo []string // nil: nothing delivered
		want   string   // in the error, or "" on success
	}{
		{"one recipient, any case", "?rcpt=BOB@example.org", 200, []string{"bob@example.org"}, ""},
		{"the same again", "?rcpt=bob@example.org", 409,
			nil, "release of Q3 refused: it was released to bob@example.org already, by admin API from 192.0.2.10:40000 (token) via n1 at "},
		{"all after one", "", 409, nil, "release the others with --rcpt (API: rcpt=) alice@example.org, or use --force"},
		{"a stranger", "?rcpt=eve@example.org", 400, nil, `"eve@example.org": not a recipient`},
		{"the other one", "?rcpt=alice@example.org", 200, []string{"alice@example.org"}, ""},
		{"all again", "", 409, nil, "it was released already, by admin API"},
		{"forced to one", "?rcpt=alice@example.org&force=true", 200, []string{"alice@example.org"}, ""},
	}
	for _, tt := range tests {
		n := len(f.sentTo)
		a, res := release(tt.query)
		if a.code != tt.code {
			t.Fatalf("%s: %d %s, want %d", tt.name, a.code, a.body, tt.code)
		}
		if tt.want != "" && !strings.Contains(a.errMsg(t), tt.want) {
			t.Errorf("%s: error %q lacks %q", tt.name, a.errMsg(t), tt.want)
		}
		if tt.sentTo == nil {
			if len(f.sentTo) != n {
				t.Errorf("%s: delivered to %v", tt.name, f.sentTo[n:])
			}
			continue
		}
		if len(f.sentTo) != n+1 || !slices.Equal(f.sentTo[n], tt.sentTo) {
			t.Errorf("%s: delivered to %v, want %v", tt.name, f.sentTo[n:], tt.sentTo)
		}
		if !slices.Equal(res.Rcpts, tt.sentTo) {
			t.Errorf("%s: answer names %v, want %v", tt.name, res.Rcpts, tt.sentTo)
		}
	}
	it, err := f.be.Quarantine.Get(context.Background(), "Q3")
	if err != nil || len(it.Releases) != 3 || !it.Releases[2].Forced || len(it.Unreleased()) != 0 {
		t.Errorf("item after the releases: %+v %v", it, err)
	}
}

// Releases and deletes are in the message log under the message's id,
// with who did them; the daily counts are not.
func TestQuarantineActionsLogged(t *testing.T) {
	f := newFixture(t, nil)
	op := func(method, path string) {
		t.Helper()
		r := f.reqFrom("192.0.2.10:40000", "Bearer "+testToken, method, path, "")
		if r.code >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, r.code, r.body)
		}
	}
	r := httptest.NewRequest("POST", "/api/v1/quarantine/Q3/release?rcpt=alice@example.org", nil)
	r.RemoteAddr = "192.0.2.10:40000"
	r.Header.Set("Authorization", "Bearer "+testToken)
	r.Header.Set(OperatorHeader, "alice@ops.example")
	w := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("release: %d %s", w.Code, w.Body)
	}
	op("DELETE", "/api/v1/quarantine/Q2")
	var recs []msglog.Record
	for _, tt := range []struct {
		query  string
		action string
		id     string
		rcpts  []string
		by     string
	}{
		{"?action=release", msglog.ActionRelease, "Q3", []string{"alice@example.org"}, "alice@ops.example, admin API from 192.0.2.10:40000 (token) via n1"},
		{"?action=delete", msglog.ActionDelete, "Q2", []string{"bob@example.org"}, "admin API from 192.0.2.10:40000 (token) via n1"},
		{"?id=q3&rcpt=alice@example.org", msglog.ActionRelease, "Q3", []string{"alice@example.org"}, "alice@ops.example, "},
	} {
		a := f.req("GET", "/api/v1/log"+tt.query, "")
		if err := json.Unmarshal([]byte(a.body), &recs); err != nil || len(recs) != 1 {
			t.Fatalf("%s: %s %v", tt.query, a.body, err)
		}
		r := recs[0]
		if r.Action != tt.action || r.ID != tt.id || r.QuarantineID != tt.id || !slices.Equal(r.Recipients, tt.rcpts) || !strings.HasPrefix(r.By, tt.by) || r.Node != "n1" {
			t.Errorf("%s: record %+v", tt.query, r)
		}
	}
	if recs[0].Downstream != "250 2.0.0 Ok: queued as X1" || recs[0].Sender != "spammer@bad.example" || recs[0].Verdict != "spam" {
		t.Errorf("release record lacks the message's details: %+v", recs[0])
	}
}
