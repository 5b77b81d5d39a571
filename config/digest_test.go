package config

import (
	"strings"
	"testing"
	"time"
)

// Each bad digest key is refused naming it; the defaults and a full
// setting pass.
func TestDigestValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		d    Digest
		want string // "" = valid
	}{
		{"off by default", Digest{}, ""},
		{"full", Digest{Enabled: true, Time: "23:59", URL: "https://mx.example.org:8025", From: "q@example.org", Domains: []string{"example.org"}}, ""},
		{"enabled without url", Digest{Enabled: true}, "digest.url: required"},
		{"url not http", Digest{URL: "ftp://mx.example.org"}, "digest.url"},
		{"url with user", Digest{URL: "https://u:p@mx.example.org"}, "digest.url"},
		{"url with query", Digest{URL: "https://mx.example.org/?a=1"}, "digest.url"},
		{"time 24:00", Digest{Time: "24:00"}, "digest.time"},
		{"time 6:00", Digest{Time: "6:00"}, "digest.time"},
		{"time words", Digest{Time: "six"}, "digest.time"},
		{"from with name", Digest{From: "Q <q@example.org>"}, "digest.from"},
		{"domain with @", Digest{Domains: []string{"@example.org"}}, "digest.domains[0]"},
		{"empty domain", Digest{Domains: []string{"example.org", ""}}, "digest.domains[1]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.d.Normalize().Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
	if at, err := (Digest{}).At(); err != nil || at != 6*time.Hour {
		t.Errorf("default time = %v, %v; want 06:00", at, err)
	}
	if at, err := (Digest{Time: "23:59"}).At(); err != nil || at != 23*time.Hour+59*time.Minute {
		t.Errorf("23:59 = %v, %v", at, err)
	}
	if d := (Digest{URL: " https://mx.example.org/ ", Domains: []string{" Example.ORG. "}}).Normalize(); d.URL != "https://mx.example.org" || d.Domains[0] != "example.org" {
		t.Errorf("Normalize = %+v", d)
	}
}
