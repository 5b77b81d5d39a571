package smtpfront

import (
	"net/netip"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/mxgate/mxgate/deliver"
)

func TestCheckAddress(t *testing.T) {
	cases := []struct {
		addr string
		utf8 bool
		want addrFault
	}{
		{"user@example.org", false, addrOK},
		{"john doe@example.org", false, addrOK}, // quoted on the wire
		{strings.Repeat("a", 242) + "@example.org", false, addrOK},
		{strings.Repeat("a", 243) + "@example.org", false, addrTooLong},
		{strings.Repeat(`"`, 120) + "@example.org", false, addrOK}, // 240 octets escaped, 256 with quotes and brackets
		{strings.Repeat(`"`, 121) + "@example.org", false, addrTooLong},
		{"a\x00b@example.org", false, addrBadChars},
		{"a@example.org\x00", false, addrBadChars},
		{"a\tb@example.org", false, addrBadChars},
		{"a\rb@example.org", false, addrBadChars},
		{"a\nb@example.org", false, addrBadChars},
		{"a\x7fb@example.org", false, addrBadChars},
		{"a\xffb@example.org", true, addrBadChars},
		{"a\xc3@example.org", true, addrBadChars},
		{"a\u0085b@example.org", true, addrBadChars},
		{"jörg@example.org", false, addrNeedsUTF8},
		{"jörg@example.org", true, addrOK},
		{"user@bücher.example", true, addrOK},
	}
	for _, c := range cases {
		if got := checkAddress(c.addr, c.utf8); got != c.want {
			t.Errorf("checkAddress(%.40q, %v) = %d, want %d", c.addr, c.utf8, got, c.want)
		}
	}
}

func TestCheckHelo(t *testing.T) {
	for helo, ok := range map[string]bool{
		"client.test":                      true,
		"[198.18.0.9]":                     true,
		"[IPv6:2001:db8::1]":               true,
		strings.Repeat("a", 250) + ".test": true,
		strings.Repeat("a", 251) + ".test": false,
		"a\x00b":                           false,
		"a\x1bb":                           false,
		"a\xffb":                           false,
		"bücher.example":                   true,
	} {
		if got := checkHelo(helo) == nil; got != ok {
			t.Errorf("checkHelo(%.40q) accepted = %v, want %v", helo, got, ok)
		}
	}
}

// FuzzEnvelopeAddress is every check a MAIL or RCPT address passes before
// it reaches the lists and the downstream: its form (length, characters,
// UTF-8) and, for a recipient, the relay policy. Whatever the input, what
// is accepted fits in an RFC 5321 path, has no NUL, CR, LF or other
// control character, is valid UTF-8, is ASCII unless SMTPUTF8 was given,
// and for an untrusted client is a plain local part at an accepted domain.
func FuzzEnvelopeAddress(f *testing.F) {
	for _, s := range []string{
		"user@example.org", "a%b@example.org", "a@b@example.org", "\"x\"@example.org", "@", "a@EXAMPLE.org.",
		"jörg@example.org", "a\x00@example.org", "a\r\n@example.org", "a\xff@example.org", strings.Repeat("a", 300) + "@example.org",
		"\"" + strings.Repeat("\\", 200) + "\"@example.org", "a\u2028b@example.org",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	p := newRelayPolicy([]string{"example.org"}, nil)
	ip := netip.MustParseAddr("198.18.0.9")
	f.Fuzz(func(t *testing.T, addr string, smtputf8 bool) {
		sender := checkSender(addr, smtputf8) == nil
		form := checkRecipient(addr, smtputf8) == nil
		rcpt := form && p.checkRcpt(ip, addr) == nil
		if !sender && !form {
			return
		}
		if addr == "" {
			if rcpt {
				t.Fatal("empty recipient accepted")
			}
			return // the null reverse-path
		}
		if n := len(deliver.QuoteAddress(addr)) + 2; n > maxPathOctets {
			t.Fatalf("accepted a path of %d octets: %.60q", n, addr)
		}
		if !utf8.ValidString(addr) {
			t.Fatalf("accepted invalid UTF-8: %q", addr)
		}
		for _, r := range addr {
			if r == 0 || r == '\r' || r == '\n' || unicode.IsControl(r) {
				t.Fatalf("accepted a control character %U: %q", r, addr)
			}
			if r >= utf8.RuneSelf && !smtputf8 {
				t.Fatalf("accepted UTF-8 without SMTPUTF8: %q", addr)
			}
		}
		if !rcpt {
			return
		}
		at := strings.LastIndexByte(addr, '@')
		local, domain := addr[:at], strings.TrimSuffix(strings.ToLower(addr[at+1:]), ".")
		if domain != "example.org" || strings.ContainsAny(local, "%!@\" ") {
			t.Fatalf("relayed %q for an untrusted client", addr)
		}
	})
}
