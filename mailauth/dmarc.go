package mailauth

import (
	"strings"

	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"
)

// orgDomain is the organizational domain of d (RFC 7489 §3.2): the public
// suffix plus one label, by the public suffix list; d itself when it is a
// public suffix or not a name the list can judge.
func orgDomain(d string) string {
	d = strings.TrimSuffix(strings.ToLower(d), ".")
	org, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return d
	}
	return org
}

// aligned reports whether an authenticated domain is aligned with the
// From domain (RFC 7489 §3.1): the same name under strict alignment, the
// same organizational domain under relaxed alignment.
func aligned(authenticated, from string, mode dmarc.AlignmentMode) bool {
	a := strings.TrimSuffix(strings.ToLower(authenticated), ".")
	f := strings.TrimSuffix(strings.ToLower(from), ".")
	if a == "" || f == "" {
		return false
	}
	if mode == dmarc.AlignmentStrict {
		return a == f
	}
	return orgDomain(a) == orgDomain(f)
}

// policyFor is the policy that applies to mail from fromDomain under rec,
// found at recDomain: the sp= of an organizational domain's record for its
// subdomains (RFC 7489 §6.3), else p=.
func policyFor(rec *dmarc.Record, recDomain, fromDomain string) dmarc.Policy {
	if recDomain != fromDomain && rec.SubdomainPolicy != "" {
		return rec.SubdomainPolicy
	}
	return rec.Policy
}

// sampled applies pct= (RFC 7489 §6.6.4): a message outside the
// percentage gets the next milder policy (reject → quarantine →
// none). roll is a number in [0, 100).
func sampled(p dmarc.Policy, rec *dmarc.Record, roll int) dmarc.Policy {
	if rec.Percent == nil || roll < *rec.Percent {
		return p
	}
	switch p {
	case dmarc.PolicyReject:
		return dmarc.PolicyQuarantine
	case dmarc.PolicyQuarantine:
		return dmarc.PolicyNone
	}
	return p
}
