package clusterconf

import (
	"slices"
	"testing"
)

// SeedHash changes with the cluster-wide settings and only with them
// (normalisation included), and DiffKeys names the dotted keys that differ.
func TestSeedHashAndDiffKeys(t *testing.T) {
	base := Defaults()
	for _, tt := range []struct {
		name     string
		edit     func(*Settings)
		wantKeys []string
	}{
		{"same", func(*Settings) {}, nil},
		{"empty weights are none", func(s *Settings) { s.Weights = map[string]int{} }, nil},
		{"threshold", func(s *Settings) { s.Scanner.Thresholds.Quarantine = 1 }, []string{"scanner.thresholds.quarantine"}},
		{"mode and a rule", func(s *Settings) {
			s.Mode = "active-passive"
			s.Scanner.Rules = append(slices.Clone(s.Scanner.Rules), `header Subject /x/ 1 X`)
		}, []string{"mode", "scanner.rules"}},
		{"a weight", func(s *Settings) { s.Weights = map[string]int{"n2": 0} }, []string{"weights.n2"}},
		{"no report recipients are none", func(s *Settings) { s.Reports.MailTo = []string{} }, nil},
		{"report recipients", func(s *Settings) { s.Reports.MailTo = []string{"admin@corp.test"} }, []string{"reports.mail_to"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := Defaults()
			s.Scanner = s.Scanner.Clone()
			tt.edit(&s)
			if got := DiffKeys(base, s); !slices.Equal(got, tt.wantKeys) {
				t.Errorf("DiffKeys = %v, want %v", got, tt.wantKeys)
			}
			if same := SeedHash(base) == SeedHash(s); same != (len(tt.wantKeys) == 0) {
				t.Errorf("hashes equal: %v, want %v", same, len(tt.wantKeys) == 0)
			}
		})
	}
}
