package smtpfront

import (
	"context"
	"fmt"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/mxgate/mxgate/dnsbl"
	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/scanner"
)

// dnsblState is what the blocklists said in one session: the client's
// address is asked once per connection, the sender's domain once per
// transaction.
type dnsblState struct {
	ipDone bool
	ip     []dnsbl.Listing
	ipErr  bool
	txDone bool // the sender's domain was asked in this transaction
	domain []dnsbl.Listing
	domErr bool
}

// symDNSBLError marks a message whose blocklist lookups failed: it was
// not listed, and it says so.
const symDNSBLError = "DNSBL_ERROR"

// checkDNSBL asks the blocklists at RCPT (Postfix's reject_rbl_client and
// reject_rhsbl_sender): a listing in a reject zone refuses the recipient
// with 554 5.7.1 naming the zone. Trusted networks and allowlisted
// envelopes are not asked. A list that fails is logged and never refuses.
func (ss *session) checkDNSBL(kind lists.Kind) *smtp.SMTPError {
	c := ss.s.o.DNSBL
	if c == nil || kind == lists.Allow || ss.s.policy.isTrusted(ss.ip) {
		return nil
	}
	st := &ss.dnsbl
	if !st.ipDone {
		st.ipDone = true
		ctx, cancel := context.WithCancel(ss.s.ctx)
		ls, err := c.CheckIP(ctx, ss.ip)
		cancel()
		st.ip, st.ipErr = ls, err != nil
		if err != nil {
			ss.s.log.Warn("dnsbl lookup failed; client not treated as listed", "client", ss.ip.String(), "err", err)
		}
	}
	if !st.txDone && c.HasDomainZones() {
		st.txDone = true
		if dom := senderDomain(ss.from); dom != "" {
			ctx, cancel := context.WithCancel(ss.s.ctx)
			ls, err := c.CheckDomain(ctx, dom)
			cancel()
			st.domain, st.domErr = ls, err != nil
			if err != nil {
				ss.s.log.Warn("dnsbl lookup failed; sender domain not treated as listed", "id", ss.id, "domain", dom, "err", err)
			}
		}
	}
	for _, l := range st.ip {
		if l.Reject {
			return reply(554, smtp.EnhancedCode{5, 7, 1},
				fmt.Sprintf("Service unavailable; client [%s] blocked using %s", ss.ip, l.Zone))
		}
	}
	for _, l := range st.domain {
		if l.Reject {
			return reply(554, smtp.EnhancedCode{5, 7, 1},
				fmt.Sprintf("<%s>: Sender address rejected: blocked using %s", ss.from, l.Zone))
		}
	}
	return nil
}

// dnsblSymbols are the scored listings (and a lookup failure) for the
// message's verdict.
func (st *dnsblState) symbols() []scanner.Symbol {
	var out []scanner.Symbol
	for _, l := range st.ip {
		out = append(out, l.Symbol("client"))
	}
	for _, l := range st.domain {
		out = append(out, l.Symbol("sender domain"))
	}
	if st.ipErr || st.domErr {
		out = append(out, scanner.Symbol{Name: symDNSBLError, Detail: "a blocklist did not answer; not counted as listed"})
	}
	return out
}

// resetTx forgets the sender domain's answer at the end of a transaction.
func (st *dnsblState) resetTx() { st.txDone, st.domain, st.domErr = false, nil, false }

func senderDomain(from string) string {
	i := strings.LastIndexByte(from, '@')
	if i < 0 {
		return ""
	}
	return from[i+1:]
}
