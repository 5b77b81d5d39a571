// Package lists holds the block and allow lists checked at MAIL/RCPT time:
// sender addresses and domains and client IPs and networks, global or for
// one recipient or recipient domain.
package lists

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Kind says what a matching entry does.
type Kind string

const (
	Block Kind = "block"
	Allow Kind = "allow"
)

// ErrNotFound is returned (wrapped) by Remove when the entry does not exist.
var ErrNotFound = errors.New("list entry not found")

// Entry is one list line. Value is in ParseValue's form, Rcpt in
// ParseRcpt's form ("" = every recipient).
type Entry struct {
	Kind    Kind      `json:"kind"`
	Value   string    `json:"value"`
	Rcpt    string    `json:"rcpt"`
	Added   time.Time `json:"added,omitzero"`
	Comment string    `json:"comment,omitempty"`
	// By is who added the entry, as the admin API names the actor ("" for
	// entries from before it was kept, or added to a store directly).
	By string `json:"by,omitempty"`
	// SkipAttachments makes an allow entry waive the attachment policy as
	// well as the score. Without it an allowlisted sender's banned
	// attachments are still quarantined: a MAIL FROM is easily forged.
	// Viruses and content past a scan limit are never waived. Allow
	// entries only.
	SkipAttachments bool `json:"skip_attachments,omitempty"`
}

// Store is the list storage as every backend implements it. Entries are
// identified by kind, recipient and value, compared case-insensitively.
type Store interface {
	// Add validates e (ParseValue, ParseRcpt) and stores it, and returns
	// it as stored and true. Adding an entry that exists already is not an
	// error and changes nothing: it returns the stored entry and false.
	Add(ctx context.Context, e Entry) (Entry, bool, error)
	// Remove deletes an entry; ErrNotFound when absent.
	Remove(ctx context.Context, kind Kind, value, rcpt string) error
	All(ctx context.Context) ([]Entry, error)
	// Changes signals, coalesced, that the entries may have changed (a
	// write by this or, on a shared store, any node) until ctx ends, then
	// is closed. Signals can be lost while a shared store is unreachable:
	// readers also poll (Cache.Run).
	Changes(ctx context.Context) <-chan struct{}
}

const valueForms = `accepted forms: user@example.org (address), @example.org (that domain), ` +
	`.example.org (the domain and all its subdomains), an IP address, or a CIDR such as 192.0.2.0/24`

const rcptForms = `accepted forms: user@example.org (one recipient), @example.org (every recipient ` +
	`in the domain), or empty for all recipients`

// ParseValue validates a list value and returns its normal form: domains
// lower-cased without a trailing dot (the local part of an address is kept
// as given), IPv4-mapped IPv6 addresses unmapped, networks masked, and a
// single-address network written as the address. Internationalised domains
// must be given in their xn-- form.
func ParseValue(v string) (string, error) {
	if v == "" {
		return "", fmt.Errorf("empty list value; %s", valueForms)
	}
	if err := checkChars(v); err != nil {
		return "", fmt.Errorf("list value %q %v; %s", v, err, valueForms)
	}
	if hint := neverMatches(v); hint != "" {
		return "", fmt.Errorf("list value %q can never match: %s", v, hint)
	}
	switch {
	case strings.HasPrefix(v, "@"):
		d, err := parseDomain(v[1:])
		if err != nil {
			return "", fmt.Errorf("list value %q: %v; %s", v, err, valueForms)
		}
		return "@" + d, nil
	case strings.HasPrefix(v, "."):
		d, err := parseDomain(v[1:])
		if err != nil {
			return "", fmt.Errorf("list value %q: %v; %s", v, err, valueForms)
		}
		return "." + d, nil
	case strings.Contains(v, "@"):
		a, err := parseAddress(v)
		if err != nil {
			return "", fmt.Errorf("list value %q: %v; %s", v, err, valueForms)
		}
		return a, nil
	case strings.Contains(v, "/"):
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return "", fmt.Errorf("list value %q is not a valid CIDR; %s", v, valueForms)
		}
		p = normPrefix(p)
		if p.IsSingleIP() {
			return p.Addr().String(), nil
		}
		return p.String(), nil
	}
	if a, err := netip.ParseAddr(v); err == nil {
		if a.Zone() != "" {
			return "", fmt.Errorf("list value %q: an IP address with a zone cannot match a client; %s", v, valueForms)
		}
		return a.Unmap().String(), nil
	}
	if d, err := parseDomain(v); err == nil {
		return "", fmt.Errorf("list value %q is a bare domain: write @%s for the domain or .%s for it and its subdomains", v, d, d)
	}
	return "", fmt.Errorf("list value %q is not valid; %s", v, valueForms)
}

// ParseRcpt validates the recipient of a per-recipient entry and returns its
// normal form: "" (global), an address, or "@domain" for every recipient in
// the domain.
func ParseRcpt(r string) (string, error) {
	if r == "" {
		return "", nil
	}
	if err := checkChars(r); err != nil {
		return "", fmt.Errorf("recipient %q %v; %s", r, err, rcptForms)
	}
	if strings.HasPrefix(r, "@") {
		d, err := parseDomain(r[1:])
		if err != nil {
			return "", fmt.Errorf("recipient %q: %v; %s", r, err, rcptForms)
		}
		return "@" + d, nil
	}
	if strings.Contains(r, "*") {
		if local, d, ok := strings.Cut(r, "@"); ok && strings.Trim(local, "*") == "" && !strings.Contains(d, "*") {
			return "", fmt.Errorf("recipient %q: wildcards are not supported: use @%s for every recipient in the domain", r, d)
		}
		return "", fmt.Errorf("recipient %q: wildcards are not supported; %s", r, rcptForms)
	}
	if !strings.Contains(r, "@") {
		return "", fmt.Errorf("recipient %q is not an address; %s", r, rcptForms)
	}
	a, err := parseAddress(r)
	if err != nil {
		return "", fmt.Errorf("recipient %q: %v; %s", r, err, rcptForms)
	}
	return a, nil
}

// neverMatches returns a hint for the shapes administrators write from
// habit (glob patterns, Postfix-style angle brackets) that would be stored
// as an address no sender ever has, or "" when v is not one of them.
// RFC 5322 allows "*" in a local part, but no real mailbox is "*@" or
// "x*@": an entry like that is a wildcard that silently never matches.
func neverMatches(v string) string {
	switch {
	case v == "<>":
		return "the null sender cannot be listed: list the client's address or network instead"
	case strings.HasPrefix(v, "<") && strings.HasSuffix(v, ">"):
		return fmt.Sprintf("write it without angle brackets: %s", v[1:len(v)-1])
	case !strings.Contains(v, "*"):
		return ""
	}
	const wild = "wildcards are not supported"
	domainHint := func(d string) string {
		return fmt.Sprintf("%s: use @%s for the domain or .%s for it and its subdomains", wild, d, d)
	}
	// The domain meant, when the pattern is one of *@x.com, @*.x.com or
	// *.x.com and x.com is a domain name.
	meant := ""
	local, d, hasAt := strings.Cut(v, "@")
	switch {
	case hasAt && local == "" && strings.HasPrefix(d, "*."):
		meant = d[2:]
	case hasAt && strings.Trim(local, "*") == "":
		meant = d
	case !hasAt && strings.HasPrefix(v, "*."):
		meant = v[2:]
	}
	if d, err := parseDomain(meant); err == nil {
		return domainHint(d)
	}
	if p, ok := globNetwork(v); ok {
		return fmt.Sprintf("%s: use the network %s", wild, p)
	}
	return wild + "; " + valueForms
}

// globNetwork turns an IPv4 glob with trailing "*" octets (192.0.2.*) into
// the network it means.
func globNetwork(v string) (netip.Prefix, bool) {
	parts := strings.Split(v, ".")
	if len(parts) != 4 || parts[0] == "*" {
		return netip.Prefix{}, false
	}
	fixed := 0
	for fixed < 4 && parts[fixed] != "*" {
		fixed++
	}
	for i := fixed; i < 4; i++ {
		if parts[i] != "*" {
			return netip.Prefix{}, false
		}
		parts[i] = "0"
	}
	a, err := netip.ParseAddr(strings.Join(parts, "."))
	if err != nil {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, fixed*8), true
}

func checkChars(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return errors.New("contains whitespace or control characters")
	}
	return nil
}

func parseAddress(a string) (string, error) {
	at := strings.IndexByte(a, '@')
	if at != strings.LastIndexByte(a, '@') {
		return "", errors.New("more than one @")
	}
	local := a[:at]
	if local == "" {
		return "", errors.New("empty local part")
	}
	if len(local) > 64 {
		return "", errors.New("local part longer than 64 bytes")
	}
	// RFC 5322 specials: quoted local parts are not supported.
	if strings.ContainsAny(local, `<>()[]\,;:"`) {
		return "", errors.New(`local part contains one of <>()[]\,;:"`)
	}
	d, err := parseDomain(a[at+1:])
	if err != nil {
		return "", err
	}
	return local + "@" + d, nil
}

// parseDomain checks DNS host-name syntax (letters, digits, hyphen, and
// underscore, which real mail domains sometimes carry) and lower-cases.
func parseDomain(d string) (string, error) {
	d = strings.TrimSuffix(d, ".")
	if d == "" {
		return "", errors.New("empty domain")
	}
	if len(d) > 253 {
		return "", errors.New("domain longer than 253 bytes")
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" {
			return "", fmt.Errorf("domain %q has an empty label", d)
		}
		if len(label) > 63 {
			return "", fmt.Errorf("domain %q has a label longer than 63 bytes", d)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return "", fmt.Errorf("domain %q has a label starting or ending with -", d)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", fmt.Errorf("domain %q has an invalid character (internationalised domains go in xn-- form)", d)
			}
		}
	}
	// An all-numeric last label is an IP address mistyped, never a domain
	// (RFC 3696 §2).
	if strings.Trim(d[strings.LastIndexByte(d, '.')+1:], "0123456789") == "" {
		return "", fmt.Errorf("domain %q ends in a numeric label (an IP address is written without @ or .)", d)
	}
	return strings.ToLower(d), nil
}

// normPrefix unmaps IPv4-mapped networks (a client address is unmapped
// before matching, so a mapped network would never match) and masks.
func normPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked()
}

func parseKind(k Kind) error {
	if k != Allow && k != Block {
		return fmt.Errorf("list kind %q: use %q or %q", k, Block, Allow)
	}
	return nil
}

// Normalize validates e and returns it in the one form every store keeps:
// values and recipients parsed, as ParseValue and ParseRcpt give them.
func Normalize(e Entry) (Entry, error) {
	if err := parseKind(e.Kind); err != nil {
		return Entry{}, err
	}
	v, err := ParseValue(e.Value)
	if err != nil {
		return Entry{}, err
	}
	r, err := ParseRcpt(e.Rcpt)
	if err != nil {
		return Entry{}, err
	}
	if e.SkipAttachments && e.Kind != Allow {
		return Entry{}, fmt.Errorf("list entry %s %s: skip_attachments is for allow entries only", e.Kind, v)
	}
	e.Value, e.Rcpt = v, r
	return e, nil
}

// EntryKey identifies an entry in every store. Addresses match
// case-insensitively, so entries differing only in case are the same entry.
// Normal forms contain no NUL, which makes NUL a safe separator.
func EntryKey(kind Kind, value, rcpt string) string {
	return string(kind) + "\x00" + strings.ToLower(rcpt) + "\x00" + strings.ToLower(value)
}
