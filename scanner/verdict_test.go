package scanner

import (
	"fmt"
	"strings"
	"testing"
)

func TestHeaders(t *testing.T) {
	v := Verdict{
		Action: ActionDeliver, Class: classClean, Score: 1.5, Node: "n1",
		Symbols: []Symbol{{Name: "RULE_X", Score: 0.5}, {Name: symMIMEMalformed, Score: 1, Detail: "x\r\ny"}},
	}
	want := []string{
		"X-Mxgate-Verdict: deliver (clean)",
		"X-Mxgate-Score: 1.50",
		"X-Mxgate-Symbols: MIME_MALFORMED(1.00), RULE_X(0.50)",
		"X-Mxgate-Node: n1",
	}
	if got := v.Headers(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if v.Symbols[0].Name != "RULE_X" {
		t.Error("Headers reordered the caller's symbols")
	}

	v = Verdict{Action: ActionQuarantine, Class: classSpam, Score: -0.004}
	if got := v.Headers(); len(got) != 4 || got[1] != "X-Mxgate-Score: -0.00" || got[2] != "X-Mxgate-Symbols:" {
		t.Errorf("no symbols: %q", got)
	}
}

func TestHeadersFolded(t *testing.T) {
	var v Verdict
	for i := range 30 {
		v.Symbols = append(v.Symbols, Symbol{Name: fmt.Sprintf("SOME_LONG_RULE_NAME_%02d", i), Score: float64(i) / 3})
	}
	h := v.Headers()[2]
	lines := strings.Split(h, "\r\n")
	if len(lines) < 5 {
		t.Fatalf("not folded: %q", h)
	}
	for i, l := range lines {
		if len(l) > maxHeaderLine {
			t.Errorf("line %d is %d long: %q", i, len(l), l)
		}
		if i > 0 && !strings.HasPrefix(l, "\t") {
			t.Errorf("continuation line %d does not start with a tab: %q", i, l)
		}
		if strings.ContainsAny(l, "\r\n") {
			t.Errorf("bare CR or LF in line %d: %q", i, l)
		}
	}
	unfolded := strings.ReplaceAll(h, "\r\n\t", " ")
	if n := strings.Count(unfolded, "SOME_LONG_RULE_NAME_"); n != 30 {
		t.Errorf("%d symbols after unfolding", n)
	}
}

func TestHeadersSanitised(t *testing.T) {
	// A verdict can come from a peer: nothing in it may start a header.
	v := Verdict{
		Action:  "deliver\r\nBcc: victim@example.com",
		Class:   "clean)\nX-Evil: 1",
		Node:    "n1\r\nX-Evil: 1",
		Symbols: []Symbol{{Name: "A\r\nX-Evil: 1", Score: 1}, {Name: "", Score: 2}},
	}
	for _, h := range v.Headers() {
		if strings.ContainsAny(strings.ReplaceAll(h, "\r\n\t", ""), "\r\n") {
			t.Errorf("CR/LF in %q", h)
		}
		if !strings.HasPrefix(h, "X-Mxgate-") {
			t.Errorf("unexpected line %q", h)
		}
	}
	if got := v.Headers()[2]; got != "X-Mxgate-Symbols: _(2.00), A__X-Evil__1(1.00)" {
		t.Errorf("symbols %q", got)
	}
}

func TestCleanDetail(t *testing.T) {
	tests := []struct{ in, want string }{
		{"invoice.pdf", "invoice.pdf"},
		{"a\r\nb\x00", "a??b?"},
		{"evil\u202Efdp.exe", "evil?fdp.exe"},
		{"bad\xffutf8", "bad?utf8"},
		{"résumé", "résumé"},
	}
	for _, tc := range tests {
		if got := cleanDetail(tc.in); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := cleanDetail(strings.Repeat("x", 1000)); len(got) > 210 {
		t.Errorf("not bounded: %d", len(got))
	}
}
