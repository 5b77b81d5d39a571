package clusterconf

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/scanner"
)

// The cluster-wide settings refuse what the node file refuses: each
// numeric key passes at its bound and fails one past it, named, both as
// `mxgate config set` parses a file and as a store validates a revision.
func TestSettingsBounds(t *testing.T) {
	tests := []struct {
		key      string
		at, past string // YAML
	}{
		{"scanner.thresholds.reject", "scanner: {thresholds: {reject: 1000}}", "scanner: {thresholds: {reject: 1000.5}}"},
		{"scanner.thresholds.quarantine", "scanner: {thresholds: {quarantine: -1000}}", "scanner: {thresholds: {quarantine: -1000.5}}"},
		{"scanner.max_mime_depth", fmt.Sprintf("scanner: {max_mime_depth: %d}", scanner.MaxMIMEDepth), fmt.Sprintf("scanner: {max_mime_depth: %d}", scanner.MaxMIMEDepth+1)},
		{"scanner.max_mime_parts", fmt.Sprintf("scanner: {max_mime_parts: %d}", scanner.MaxMIMEParts), fmt.Sprintf("scanner: {max_mime_parts: %d}", scanner.MaxMIMEParts+1)},
		{"weights.n2", fmt.Sprintf("weights: {n2: %d}", config.MaxWeight), fmt.Sprintf("weights: {n2: %d}", config.MaxWeight+1)},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			s, err := Parse([]byte(tt.at))
			if err != nil {
				t.Fatalf("at the bound: %v", err)
			}
			if err := s.Validate(); err != nil {
				t.Errorf("at the bound, Validate: %v", err)
			}
			_, err = Parse([]byte(tt.past))
			if err == nil || !strings.Contains(err.Error(), tt.key+": ") {
				t.Errorf("one past the bound, Parse: %v, want an error naming %s", err, tt.key)
			}
			// A revision built in code (the admin API's JSON) meets the
			// same check in the store.
			s = Defaults()
			if err := config.DecodeStrict([]byte(tt.past), &s); err != nil {
				t.Fatal(err)
			}
			if _, err := newRevision(s, "test", "", 0); err == nil || !strings.Contains(err.Error(), tt.key+": ") {
				t.Errorf("one past the bound, a stored revision: %v, want an error naming %s", err, tt.key)
			}
		})
	}
}
