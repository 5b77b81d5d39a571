package config

import (
	"fmt"
	"net/mail"
	"strings"
)

// MaxReportRecipients bounds reports.mail_to: the report goes out in one
// transaction, and a downstream limits the recipients of one.
const MaxReportRecipients = 50

// Reports say who gets the daily report by mail, cluster-wide (the node
// file seeds them, as the scanner policy).
type Reports struct {
	// MailTo are the addresses the daily report is mailed to; none: it is
	// not mailed.
	MailTo []string `yaml:"mail_to" json:"mail_to,omitempty"`
	// MailFrom is its sender (envelope and From:). Default: postmaster@
	// the sending node's smtp.hostname.
	MailFrom string `yaml:"mail_from" json:"mail_from,omitempty"`
}

// Normalize trims the addresses; no address reads as nil, as absent.
func (r Reports) Normalize() Reports {
	var to []string
	for _, a := range r.MailTo {
		to = append(to, strings.TrimSpace(a))
	}
	return Reports{MailTo: to, MailFrom: strings.TrimSpace(r.MailFrom)}
}

// Validate reports every problem of r, each naming its key under reports.
func (r Reports) Validate() error {
	var p problems
	r.validate(&p)
	return p.err()
}

func (r Reports) validate(p *problems) {
	if len(r.MailTo) > MaxReportRecipients {
		p.add("reports.mail_to", "at most %d addresses, got %d", MaxReportRecipients, len(r.MailTo))
	}
	seen := map[string]bool{}
	for i, a := range r.MailTo {
		key := fmt.Sprintf("reports.mail_to[%d]", i)
		if err := bareAddress(a); err != nil {
			p.add(key, "%v", err)
			continue
		}
		if seen[strings.ToLower(a)] {
			p.add(key, "%q is listed twice", a)
		}
		seen[strings.ToLower(a)] = true
	}
	if r.MailFrom != "" {
		if err := bareAddress(r.MailFrom); err != nil {
			p.add("reports.mail_from", "%v", err)
		}
	}
}

// bareAddress accepts an address as an SMTP envelope holds it
// (local@domain), without a display name or angle brackets.
func bareAddress(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || strings.HasPrefix(s, "<") {
		return fmt.Errorf("%q is not a mail address (local@domain, no name or brackets)", s)
	}
	return nil
}
