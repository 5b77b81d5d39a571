package smtpfront

import (
	"strings"
	"testing"

	"github.com/mxgate/mxgate/config"
)

// The README's Postfix example, read as the node reads it, then tried
// recipient by recipient in a real session: "example.org" is the domain,
// ".example.org" every subdomain of it (Postfix's relay_domains forms), and
// nothing else is relayed.
func TestAcceptDomainsFromTheFile(t *testing.T) {
	tests := []struct {
		name    string
		domains string
		rcpt    string
		want    string // reply prefix
	}{
		{"domain", "[example.org, .example.org]", "a@example.org", "250 "},
		{"subdomain", "[example.org, .example.org]", "a@lists.example.org", "250 "},
		{"deep subdomain", "[example.org, .example.org]", "a@x.y.Example.ORG", "250 "},
		{"look-alike", "[example.org, .example.org]", "a@badexample.org", "554 5.7.1 "},
		{"suffix elsewhere", "[example.org, .example.org]", "a@example.org.evil.test", "554 5.7.1 "},
		{"other domain", "[example.org, .example.org]", "a@foreign.test", "554 5.7.1 "},
		{"dot form is below only", "[.example.org]", "a@example.org", "554 5.7.1 "},
		{"dot form subdomain", "[.example.org]", "a@mail.example.org", "250 "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte("smtp:\n  hostname: mx1.example.org\n  accept_domains: " + tt.domains + "\n"))
			if err != nil {
				t.Fatalf("the file is refused: %v", err)
			}
			f := startFront(t, nil, func(o *Options) { o.AcceptDomains = cfg.SMTP.AcceptDomains })
			c := dial(t, f.addr)
			c.ehlo()
			if r := c.do("MAIL FROM:<s@sender.test>"); !strings.HasPrefix(r, "250 ") {
				t.Fatalf("MAIL: %s", r)
			}
			if r := c.do("RCPT TO:<" + tt.rcpt + ">"); !strings.HasPrefix(r, tt.want) {
				t.Errorf("RCPT TO:<%s> = %q, want %q…", tt.rcpt, r, tt.want)
			}
		})
	}
}
