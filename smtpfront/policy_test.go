package smtpfront

import (
	"net/netip"
	"strings"
	"testing"
)

func TestRelayPolicy(t *testing.T) {
	p := newRelayPolicy([]string{"example.org", ".sub.example.net"}, []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")})
	outside := netip.MustParseAddr("198.18.0.9")
	trusted := netip.MustParseAddr("10.1.2.3")
	cases := []struct {
		client netip.Addr
		rcpt   string
		code   int // 0 = accepted
	}{
		{outside, "user@example.org", 0},
		{outside, "User@EXAMPLE.ORG", 0},
		{outside, "user@example.org.", 0},
		{outside, "user@a.sub.example.net", 0},
		{outside, "user@sub.example.net", 554}, // ".sub" means below it only
		{outside, "user@foreign.test", 554},
		{outside, "user@example.org.foreign.test", 554},
		{outside, "user%foreign.test@example.org", 554},
		{outside, "foreign.test!user@example.org", 554},
		{outside, "user@foreign.test@example.org", 554}, // "user@foreign.test"@example.org unquoted by go-smtp
		{outside, "john doe@example.org", 554},          // quoted local part
		{outside, "user@[198.18.0.50]", 554},
		{outside, "user.@example.org", 554},
		{outside, "@example.org", 501},
		{outside, "user@", 501},
		{outside, "nodomain", 501},
		{trusted, "user@foreign.test", 0},
		{trusted, "user%x@foreign.test", 0},
		{netip.MustParseAddr("::ffff:10.1.9.9"), "user@foreign.test", 0},
	}
	for _, c := range cases {
		err := p.checkRcpt(c.client, c.rcpt)
		got := 0
		if err != nil {
			got = err.Code
		}
		if got != c.code {
			t.Errorf("checkRcpt(%s, %q) = %d, want %d", c.client, c.rcpt, got, c.code)
		}
	}
}

// A refused relay names the client and the keys that would let it through:
// behind a Postfix, that text is what its log and bounce show the admin.
func TestRelayDeniedSaysWhy(t *testing.T) {
	p := newRelayPolicy([]string{"example.org"}, []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")})
	cases := []struct {
		client, rcpt, want string
	}{
		{"127.0.0.1", "bob@outside.test", "Relay access denied: client [127.0.0.1] is not in smtp.trusted_networks and the recipient's domain is not in smtp.accept_domains"},
		{"::ffff:198.18.0.11", "bob@outside.test", "Relay access denied: client [198.18.0.11] is not in smtp.trusted_networks and the recipient's domain is not in smtp.accept_domains"},
		{"2001:db8::25", "bob@outside.test", "Relay access denied: client [2001:db8::25] is not in smtp.trusted_networks and the recipient's domain is not in smtp.accept_domains"},
		{"127.0.0.1", "bob%outside.test@example.org", "Relay access denied: client [127.0.0.1] is not in smtp.trusted_networks and the recipient's local part is not a plain one (no %, !, @ or quotes)"},
	}
	for _, c := range cases {
		err := p.checkRcpt(netip.MustParseAddr(c.client), c.rcpt)
		if err == nil || err.Code != 554 || err.EnhancedCode != [3]int{5, 7, 1} || err.Message != c.want {
			t.Errorf("checkRcpt(%s, %q) = %v, want 554 5.7.1 %s", c.client, c.rcpt, err, c.want)
		}
	}
}

// FuzzRelayPolicy: whatever the address, an untrusted client is only ever
// accepted for a plain local part at an accepted domain.
func FuzzRelayPolicy(f *testing.F) {
	for _, s := range []string{"user@example.org", "a%b@example.org", "a@b@example.org", "\"x\"@example.org", "@", "a@EXAMPLE.org."} {
		f.Add(s)
	}
	p := newRelayPolicy([]string{"example.org"}, nil)
	ip := netip.MustParseAddr("198.18.0.9")
	f.Fuzz(func(t *testing.T, rcpt string) {
		if err := p.checkRcpt(ip, rcpt); err != nil {
			// "554 5.7.1 " + text + CRLF within RFC 5321's 512 octets.
			if n := len(err.Message) + 12; n > 512 {
				t.Fatalf("reply to %q is %d octets", rcpt, n)
			}
			return
		}
		at := strings.LastIndexByte(rcpt, '@')
		local, domain := rcpt[:at], strings.TrimSuffix(strings.ToLower(rcpt[at+1:]), ".")
		if domain != "example.org" || strings.ContainsAny(local, "%!@\" ") {
			t.Fatalf("accepted %q from an untrusted client", rcpt)
		}
	})
}
