package spamd

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/mxgate/mxgate/scanner"
)

// TestResult: spamd's reply in mxgate's terms. The symbols add up to
// spamd's score whatever its report's table says.
func TestResult(t *testing.T) {
	fake := " ---- ---------------------- ----------------\n-99 FAKE_NEGATIVE text\n"
	tests := []struct {
		name   string
		spam   string
		report string
		want   []scanner.Symbol
	}{
		{"spam with a table", "True ; 12.3 / 5.0", sampleReport, []scanner.Symbol{
			{Name: "SPAMD_BAYES_99", Score: 3.5, Detail: "BODY: Bayes spam probability is 99 to 100%"},
			{Name: "SPAMD_A_VERY_LONG_RULE_NAME_OVER_22", Score: 2, Detail: "URI: Contains a URL listed in a list with a very long description that wraps"},
			{Name: "SPAMD_NO_RELAYS", Detail: "Informational: message was not relayed via SMTP"},
			{Name: "SPAMD_LOTS", Score: 10, Detail: "BODY: many points"},
			{Name: "SPAMD_NEGATIVE", Score: -3.2, Detail: "Some whitelisting"},
			{Name: SymbolSpam, Detail: "spamd: Spam: True ; 12.3 / 5.0"},
		}},
		{"ham, table rounding is not unlisted", "False ; -0.0 / 5.0", "---- ---------------------- ----------\n 0.0 TINY  tiny\n", []scanner.Symbol{
			{Name: "SPAMD_TINY", Detail: "tiny"},
		}},
		{"a template without table", "True ; 7.5 / 5.0", "Custom report, no table.\n", []scanner.Symbol{
			{Name: SymbolUnlisted, Score: 7.5, Detail: "spamd's score 7.5, its report's rules 0.0"},
			{Name: SymbolSpam, Detail: "spamd: Spam: True ; 7.5 / 5.0"},
		}},
		// The message quoted in the preview imitates a table with a rule
		// taking points off: the real table below it wins.
		{"an imitated table above the real one", "True ; 12.3 / 5.0", fake + "\n" + sampleReport, nil},
		// Without a real table the imitation is read, and the symbols
		// still add up to spamd's score.
		{"only an imitated table", "True ; 6.0 / 5.0", "Content preview: x\n" + fake, []scanner.Symbol{
			{Name: "SPAMD_FAKE_NEGATIVE", Score: -99, Detail: "text"},
			{Name: SymbolUnlisted, Score: 105, Detail: "spamd's score 6.0, its report's rules -99.0"},
			{Name: SymbolSpam, Detail: "spamd: Spam: True ; 6.0 / 5.0"},
		}},
		{"control characters in a description", "False ; 1.0 / 5.0",
			"---- ---------------------- ----------\n 1.0 ODD   a\x1b[31mred\u202eevil\n", []scanner.Symbol{
				{Name: "SPAMD_ODD", Score: 1, Detail: "a?[31mred?evil"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := readReply(strings.NewReader(okReply(tt.spam, tt.report)))
			if err != nil {
				t.Fatal(err)
			}
			res := rep.result()
			checkSum(t, res)
			if res.Score == 0 && math.Signbit(res.Score) {
				t.Error("score -0: shown as \"-0.0\"")
			}
			if res.Score != rep.Score || res.Action != "" {
				t.Errorf("score %v action %q, want %v and none", res.Score, res.Action, rep.Score)
			}
			if tt.want == nil {
				for _, s := range res.Symbols {
					if s.Name == "SPAMD_FAKE_NEGATIVE" || s.Name == SymbolUnlisted {
						t.Errorf("symbol %+v from the imitated table", s)
					}
				}
				return
			}
			if got, want := fmt.Sprintf("%+v", res.Symbols), fmt.Sprintf("%+v", tt.want); got != want {
				t.Errorf("symbols\n %s\nwant\n %s", got, want)
			}
		})
	}
}

// TestLongDescription: a description is bounded however long spamd's is.
func TestLongDescription(t *testing.T) {
	report := "---- ---------------------- ----------\n 1.0 LONG  " + strings.Repeat("é", 300) + "\n" +
		strings.Repeat("                            more words\n", 100)
	rep, err := readReply(strings.NewReader(okReply("False ; 1.0 / 5.0", report)))
	if err != nil {
		t.Fatal(err)
	}
	if d := rep.Rules[0].Description; len(d) > maxDescription+len("…") || !strings.HasSuffix(d, "…") {
		t.Errorf("description of %d bytes: %q", len(d), d)
	}
}
