package admin

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestLocalAPI: pages outside the guard act through the API in process,
// with the page's client address and operator in the audit trail, while
// the API itself still wants the token.
func TestLocalAPI(t *testing.T) {
	page := func(api LocalAPI) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			res, err := api(r, "alice").QuarantineRelease(r.Context(), "q1", ReleaseOptions{})
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			fmt.Fprintf(w, "released by %s", res.By)
		})
	}
	f := newFixture(t, func(o *Options) { o.Console = page; o.Recipients = page })
	tests := []struct {
		name, path string
		code       int
		body       string
	}{
		{"console without the token", "/quarantine", 200, "released by alice, admin API from 192.0.2.7:1"},
		{"released once only", "/", 502, "released already"},
		{"recipient page", "/my/x", 502, "released already"},
		{"API still guarded", "/api/v1/lists", 401, "token"},
		{"debug still guarded", "/debug/pprof/", 401, "token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := f.reqFrom("192.0.2.7:1", "", "GET", tt.path, "")
			if a.code != tt.code || !strings.Contains(a.body, tt.body) {
				t.Fatalf("%s: %d %q, want %d with %q", tt.path, a.code, a.body, tt.code, tt.body)
			}
		})
	}
	if len(f.released) != 1 || f.released[0] != "Q1" {
		t.Errorf("released %v, want [Q1]", f.released)
	}
}
