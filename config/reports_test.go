package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestReportsValidate(t *testing.T) {
	many := make([]string, MaxReportRecipients+1)
	for i := range many {
		many[i] = fmt.Sprintf("r%d@corp.test", i)
	}
	for _, c := range []struct {
		name string
		r    Reports
		want string // "" = valid; else in the error
	}{
		{"off", Reports{}, ""},
		{"addresses", Reports{MailTo: []string{"admin@corp.test", "Boss@Corp.Test"}, MailFrom: "mxgate@corp.test"}, ""},
		{"at the bound", Reports{MailTo: many[:MaxReportRecipients]}, ""},
		{"over the bound", Reports{MailTo: many}, "reports.mail_to: at most 50 addresses, got 51"},
		{"no domain", Reports{MailTo: []string{"admin"}}, "reports.mail_to[0]: \"admin\" is not a mail address"},
		{"display name", Reports{MailTo: []string{"ok@corp.test", "Admin <admin@corp.test>"}}, "reports.mail_to[1]"},
		{"brackets", Reports{MailTo: []string{"<admin@corp.test>"}}, "reports.mail_to[0]"},
		{"header injection", Reports{MailTo: []string{"a@corp.test\r\nBcc: x@evil.test"}}, "reports.mail_to[0]"},
		{"two addresses in one", Reports{MailTo: []string{"a@corp.test, b@corp.test"}}, "reports.mail_to[0]"},
		{"twice", Reports{MailTo: []string{"a@corp.test", "A@corp.test"}}, "reports.mail_to[1]: \"A@corp.test\" is listed twice"},
		{"bad from", Reports{MailTo: []string{"a@corp.test"}, MailFrom: "postmaster"}, "reports.mail_from"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.r.Normalize().Validate()
			switch {
			case c.want == "" && err != nil:
				t.Errorf("Validate = %v, want valid", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("Validate = %v, want %q", err, c.want)
			}
		})
	}
}

func TestReportsInFile(t *testing.T) {
	base := "downstream:\n  address: 127.0.0.1:25\n"
	c, err := Parse([]byte(base + "reports:\n  mail_to: [\" admin@corp.test \"]\n"))
	if err != nil || len(c.Reports.MailTo) != 1 || c.Reports.MailTo[0] != "admin@corp.test" {
		t.Fatalf("Parse = %+v, %v", c.Reports, err)
	}
	if _, err := Parse([]byte(base + "reports:\n  mail_to: [nobody]\n")); err == nil || !strings.Contains(err.Error(), "reports.mail_to[0]") {
		t.Errorf("bad address in the file: %v", err)
	}
}
