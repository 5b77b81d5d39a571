package smtpfront

import (
	"net/netip"
	"strings"

	"github.com/emersion/go-smtp"
	"github.com/mxgate/mxgate/deliver"
)

// relayPolicy decides who may send mail to whom: never an open relay.
type relayPolicy struct {
	domains    map[string]bool // exact accepted domains
	subdomains []string        // ".example.org": every subdomain of it
	trusted    []netip.Prefix
}

func newRelayPolicy(domains []string, trusted []netip.Prefix) relayPolicy {
	p := relayPolicy{domains: map[string]bool{}, trusted: trusted}
	for _, d := range domains {
		d = strings.TrimSuffix(strings.ToLower(d), ".")
		if strings.HasPrefix(d, ".") {
			p.subdomains = append(p.subdomains, d)
			continue
		}
		p.domains[d] = true
	}
	return p
}

func (p relayPolicy) isTrusted(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, n := range p.trusted {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// checkRcpt returns nil when rcpt may be accepted from a client at ip.
//
// go-smtp has already dropped any source route (RFC 5321 §4.1.1.3 says a
// server SHOULD ignore it) and unquoted the local part, so what is checked
// is the final mailbox. Routing hidden in the local part — user%host,
// host!user, "user@host" — is how open-relay tests get through gateways
// whose downstream still honours those forms (Postfix: allow_untrusted_routing),
// so for untrusted clients only a plain dot-atom local part is accepted.
func (p relayPolicy) checkRcpt(ip netip.Addr, rcpt string) *smtp.SMTPError {
	at := strings.LastIndexByte(rcpt, '@')
	if at <= 0 || at == len(rcpt)-1 {
		return errBadRcptSyntax
	}
	if p.isTrusted(ip) {
		return nil
	}
	local, domain := rcpt[:at], strings.TrimSuffix(strings.ToLower(rcpt[at+1:]), ".")
	if !deliver.IsDotAtom(local) || strings.ContainsAny(local, "%!@") {
		return relayDenied(ip, "the recipient's local part is not a plain one (no %, !, @ or quotes)")
	}
	if p.domains[domain] {
		return nil
	}
	for _, s := range p.subdomains {
		if strings.HasSuffix(domain, s) {
			return nil
		}
	}
	return relayDenied(ip, "the recipient's domain is not in smtp.accept_domains")
}
