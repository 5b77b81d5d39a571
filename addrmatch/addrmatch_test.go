package addrmatch

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"", "", ""},
		{"Alice@Example.ORG", "alice@example.org", ""},
		{"alice@example.org.", "alice@example.org", ""},
		{"@Example.org", "@example.org", ""},
		{".example.org", ".example.org", ""},
		{".Example.org.", ".example.org", ""},
		{`"a@b"@example.org`, `"a@b"@example.org`, ""},
		{"example.org", "", "write @example.org for the domain, .example.org for it"},
		{"bob", "", "neither an address nor a domain"},
		{"@", "", "empty domain"},
		{".", "", "empty domain"},
		{"alice@", "", "empty domain"},
		{"@a@b.example", "", "more than one @"},
		{"@a..example", "", "empty domain label"},
		{"..example", "", "empty domain label"},
		{".0..", "", "empty domain label"},
		{"a@example.org..", "", "empty domain label"},
		{"a b@example.org", "", "whitespace"},
		{"a@example.org\x00", "", "control characters"},
		{"\xff@example.org", "", "invalid UTF-8"},
		{strings.Repeat("a", 400) + "@x.example", "", "at most 320"},
	}
	for _, tt := range tests {
		p, err := Parse(tt.in)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("Parse(%q) = %v, %v; want an error with %q", tt.in, p, err, tt.err)
		case tt.err != "" && !strings.Contains(err.Error(), "@example.org"):
			t.Errorf("Parse(%q): error %q gives no hint of the forms", tt.in, err)
		case tt.err == "" && (err != nil || p.String() != tt.want):
			t.Errorf("Parse(%q) = %q, %v; want %q", tt.in, p, err, tt.want)
		}
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		filter string
		yes    []string
		no     []string
	}{
		{"", []string{"", "a@x.example", "anything"}, nil},
		{"bob@example.org", []string{"bob@example.org", "BOB@Example.Org"}, []string{"bob@example.org.uk", "xbob@example.org", "bob@sub.example.org", "bob", ""}},
		{"@example.org", []string{"a@example.org", "B@EXAMPLE.ORG"}, []string{"a@sub.example.org", "a@notexample.org", "a@example.org.uk", "example.org", ""}},
		{".example.org", []string{"a@example.org", "a@sub.example.org", "a@x.y.Example.Org"}, []string{"a@notexample.org", "a@example.org.uk", "a@xexample.org", "example.org", ""}},
	}
	for _, tt := range tests {
		p, err := Parse(tt.filter)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range tt.yes {
			if !p.Match(a) {
				t.Errorf("%q does not match %q", tt.filter, a)
			}
		}
		for _, a := range tt.no {
			if p.Match(a) {
				t.Errorf("%q matches %q", tt.filter, a)
			}
		}
		if !p.MatchAny(append(append([]string{}, tt.no...), tt.yes...)) && len(tt.yes) > 0 {
			t.Errorf("%q: MatchAny misses", tt.filter)
		}
		if p.MatchAny(tt.no) && !p.IsZero() {
			t.Errorf("%q: MatchAny(%q) matches", tt.filter, tt.no)
		}
	}
	if a, ok := mustParse(t, "Bob@Example.org").Address(); !ok || a != "bob@example.org" {
		t.Errorf("Address() = %q, %v", a, ok)
	}
	if _, ok := mustParse(t, "@example.org").Address(); ok {
		t.Error("a domain filter claims to be an address")
	}
}

func mustParse(t *testing.T, s string) Pattern {
	t.Helper()
	p, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// FuzzParse holds Parse to its contract on any input: an accepted filter
// parses again to itself from its normal form, and matches what it names.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "a@example.org", "@example.org", ".example.org", "example.org", "@", "a@b@c", "A@B.", ".x..y"} {
		f.Add(s, "a@sub.example.org")
	}
	f.Fuzz(func(t *testing.T, s, addr string) {
		p, err := Parse(s)
		if err != nil {
			if p != (Pattern{}) {
				t.Fatalf("Parse(%q) failed with a non-zero Pattern %v", s, p)
			}
			return
		}
		again, err := Parse(p.String())
		if err != nil || again != p {
			t.Fatalf("Parse(%q) = %q, which parses to %q, %v", s, p, again, err)
		}
		if a, ok := p.Address(); ok && !p.Match(a) {
			t.Fatalf("%q does not match its own address", s)
		}
		if p.Match(addr) != p.Match(strings.ToUpper(addr)) && strings.ToLower(strings.ToUpper(addr)) == strings.ToLower(addr) {
			t.Fatalf("%q matches %q and its upper case differently", s, addr)
		}
		switch p.kind {
		case domain, subtree:
			if !p.Match("x@" + p.value) {
				t.Fatalf("%q does not match an address in its domain", s)
			}
		}
	})
}

func TestEnvelope(t *testing.T) {
	if _, err := ParseEnvelope("bad", ""); err == nil || !strings.HasPrefix(err.Error(), "sender: ") {
		t.Errorf("bad sender: %v", err)
	}
	if _, err := ParseEnvelope("", "bad"); err == nil || !strings.HasPrefix(err.Error(), "recipient: ") {
		t.Errorf("bad recipient: %v", err)
	}
	tests := []struct {
		sender, rcpt string
		env          []string // sender, recipients...
		want         bool
	}{
		{"", "", []string{""}, true},
		{"", "", []string{"a@x.example", "b@y.example"}, true},
		{"@x.example", "", []string{"A@X.example"}, true},
		{"@x.example", "", []string{""}, false}, // the null sender
		{"", "@y.example", []string{"a@x.example", "b@x.example", "c@Y.example"}, true},
		{"", "@y.example", []string{"a@x.example"}, false},
		{".example", ".example", []string{"a@x.example", "b@y.example"}, true},
		{"@x.example", "b@y.example", []string{"a@x.example", "c@y.example"}, false},
	}
	for _, tt := range tests {
		e, err := ParseEnvelope(tt.sender, tt.rcpt)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Match(tt.env[0], tt.env[1:]); got != tt.want {
			t.Errorf("(%q, %q).Match(%q) = %v, want %v", tt.sender, tt.rcpt, tt.env, got, tt.want)
		}
	}
}
