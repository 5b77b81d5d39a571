// Package addrmatch is the one way an operator's address filter (the
// --rcpt and --sender of `mxgate quarantine list` and `mxgate log`)
// matches an envelope address, so that the quarantine and the message log
// find the same messages for the same words.
package addrmatch

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Forms is the hint every parse error ends with.
const Forms = `accepted forms: user@example.org (that address), @example.org (that domain), ` +
	`.example.org (the domain and all its subdomains)`

// Pattern is a parsed filter. The zero Pattern matches every address.
type Pattern struct {
	kind  kind
	value string // folded: the address, or the domain without its @ or .
}

type kind uint8

const (
	all     kind = iota
	address      // exactly this address
	domain       // every address in exactly this domain
	subtree      // every address in this domain or below it
)

// maxLen bounds a filter: no address is longer (RFC 5321: 64 + 1 + 255).
const maxLen = 320

// Parse reads a filter: "" (everything), user@domain, @domain or .domain.
// Case is ignored everywhere (local parts too, as Postfix's tables do), and
// a trailing dot of the domain is dropped.
func Parse(s string) (Pattern, error) {
	if s == "" {
		return Pattern{}, nil
	}
	if len(s) > maxLen {
		return Pattern{}, fmt.Errorf("address filter of %d bytes (at most %d); %s", len(s), maxLen, Forms)
	}
	if !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return Pattern{}, fmt.Errorf("address filter %q contains whitespace, control characters or invalid UTF-8; %s", s, Forms)
	}
	f := strings.ToLower(s)
	switch {
	case f[0] == '@' || f[0] == '.':
		d, err := checkDomain(f[1:])
		if err != nil {
			return Pattern{}, fmt.Errorf("address filter %q: %v; %s", s, err, Forms)
		}
		if f[0] == '@' {
			return Pattern{domain, d}, nil
		}
		return Pattern{subtree, d}, nil
	case strings.Contains(f, "@"):
		at := strings.LastIndexByte(f, '@')
		d, err := checkDomain(f[at+1:])
		if err != nil {
			return Pattern{}, fmt.Errorf("address filter %q: %v; %s", s, err, Forms)
		}
		return Pattern{address, f[:at+1] + d}, nil
	}
	if strings.Contains(f, ".") {
		return Pattern{}, fmt.Errorf("address filter %q is a bare domain: write @%s for the domain, .%s for it and its subdomains", s, f, f)
	}
	return Pattern{}, fmt.Errorf("address filter %q is neither an address nor a domain; %s", s, Forms)
}

// checkDomain accepts what can follow the @ of an address well enough
// for a filter: no empty labels, no second @.
func checkDomain(d string) (string, error) {
	d = strings.TrimSuffix(d, ".")
	switch {
	case d == "":
		return "", errors.New("empty domain")
	case strings.Contains(d, "@"):
		return "", errors.New("more than one @")
	case strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, ".."):
		return "", errors.New("empty domain label")
	}
	return d, nil
}

// Match reports whether addr (an envelope address as received, in any
// case) passes the filter. The null sender "" matches only the zero
// Pattern.
func (p Pattern) Match(addr string) bool {
	if p.kind == all {
		return true
	}
	a := strings.ToLower(addr)
	if p.kind == address {
		return a == p.value
	}
	at := strings.LastIndexByte(a, '@')
	if at < 0 {
		return false
	}
	d := a[at+1:]
	return d == p.value || p.kind == subtree && strings.HasSuffix(d, "."+p.value)
}

// MatchAny reports whether any of addrs passes the filter (a message
// passes a recipient filter when one of its recipients does).
func (p Pattern) MatchAny(addrs []string) bool {
	if p.kind == all {
		return true
	}
	for _, a := range addrs {
		if p.Match(a) {
			return true
		}
	}
	return false
}

// Address is the folded address of an exact-address Pattern, for an
// index lookup; ok is false for the other forms.
func (p Pattern) Address() (addr string, ok bool) {
	return p.value, p.kind == address
}

// IsZero reports whether p matches everything.
func (p Pattern) IsZero() bool { return p.kind == all }

// String is the filter in its normal form ("" for the zero Pattern).
func (p Pattern) String() string {
	switch p.kind {
	case domain:
		return "@" + p.value
	case subtree:
		return "." + p.value
	}
	return p.value
}

// Envelope is a sender and a recipient filter, as both the quarantine and
// the message log take them.
type Envelope struct {
	Sender, Rcpt Pattern
}

// ParseEnvelope parses both filters, naming the one that is wrong.
func ParseEnvelope(sender, rcpt string) (Envelope, error) {
	s, err := Parse(sender)
	if err != nil {
		return Envelope{}, fmt.Errorf("sender: %w", err)
	}
	r, err := Parse(rcpt)
	if err != nil {
		return Envelope{}, fmt.Errorf("recipient: %w", err)
	}
	return Envelope{Sender: s, Rcpt: r}, nil
}

// Match reports whether an envelope passes both filters: its sender the
// sender filter (the null sender only the zero one), and any of its
// recipients the recipient filter.
func (e Envelope) Match(sender string, rcpts []string) bool {
	return e.Sender.Match(sender) && e.Rcpt.MatchAny(rcpts)
}
