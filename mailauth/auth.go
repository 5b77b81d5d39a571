// Package mailauth checks a message's sender authentication: SPF for the
// envelope sender (blitiri.com.ar/go/spf), DKIM signatures and the
// author domain's DMARC policy (github.com/emersion/go-msgauth), with the
// DMARC alignment and organizational domain of RFC 7489 written here. The
// results are symbols with scores, one Authentication-Results header (RFC
// 8601) and, for DMARC p=reject and p=quarantine, an action. A Checker is
// a scanner.Engine.
package mailauth

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"

	"github.com/mxgate/mxgate/scanner"
)

// Options configure a Checker.
type Options struct {
	// Policy is the cluster's scanner.auth.
	Policy scanner.AuthPolicy
	// Hostname (smtp.hostname) is the authserv-id when the policy names
	// none.
	Hostname string
	// Resolver asks DNS for every check; nil = the system's. See
	// NewResolver.
	Resolver *net.Resolver
	Logger   *slog.Logger // nil = slog.Default()
}

// Checker checks sender authentication. It is safe for concurrent use.
type Checker struct {
	id                     string
	r                      *net.Resolver
	spfT, dkimT, dmarcT    time.Duration
	onReject, onQuarantine string
	scores                 map[string]float64
	log                    *slog.Logger
	roll                   func() int // pct sampling: [0, 100)
}

// maxSignatures bounds the DKIM signatures verified per message (each
// costs a DNS lookup and a pass over the body).
const maxSignatures = 5

// New makes a Checker; the policy must have passed scanner.Policy's
// Validate.
func New(o Options) (*Checker, error) {
	id := o.Policy.AuthservID
	if id == "" {
		id = o.Hostname
	}
	if id == "" || !scanner.IsHostname(id) {
		return nil, fmt.Errorf("mailauth: authserv-id %q is not a host name", id)
	}
	if o.Resolver == nil {
		o.Resolver = NewResolver("")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	c := &Checker{id: id, r: o.Resolver, scores: o.Policy.ScoreTable(), log: o.Logger,
		roll: func() int { return rand.IntN(100) }}
	c.spfT, c.dkimT, c.dmarcT = o.Policy.Timeouts()
	c.onReject, c.onQuarantine = o.Policy.Actions()
	return c, nil
}

// AuthservID is the id this checker writes into Authentication-Results,
// for RemoveOwnResults on delivery.
func (c *Checker) AuthservID() string { return c.id }

// Name is the engine's name in symbols, metrics and logs.
func (c *Checker) Name() string { return "auth" }

// Ping reports nothing: there is no daemon, and a DNS server that does
// not answer shows as TEMPERROR results, never as a failed scan.
func (c *Checker) Ping(context.Context) error { return nil }

// Scan checks m's SPF, DKIM and DMARC, each within its own timeout. DNS
// failures are results (the TEMPERROR symbols), not errors; Scan fails
// only when ctx ends or the body cannot be read.
func (c *Checker) Scan(ctx context.Context, m *scanner.Message) (scanner.EngineResult, error) {
	if m == nil || m.Body == nil {
		return scanner.EngineResult{}, errors.New("auth: message without body")
	}
	var res scanner.EngineResult
	var ar []string // resinfo items of Authentication-Results
	add := func(sym, detail string) {
		res.Symbols = append(res.Symbols, scanner.Symbol{Name: sym, Score: c.scores[sym], Detail: detail})
		res.Score += c.scores[sym]
	}

	spfRes, spfDomain, spfItem := c.checkSPF(ctx, m.Env)
	add("SPF_"+strings.ToUpper(string(spfRes)), spfItem)
	ar = append(ar, spfItem)

	br := bufio.NewReaderSize(m.Body.Reader(), 32<<10)
	raw, err := readHeader(br)
	var fs []field
	var dkims []dkimResult
	switch {
	case errors.Is(err, errHeaderTooLarge):
		add("DKIM_PERMERROR", err.Error())
		ar = append(ar, "dkim=permerror (header too large)")
	case err != nil:
		return scanner.EngineResult{}, fmt.Errorf("auth %s: read message: %w", m.ID, err)
	default:
		fs = fields(raw)
		dkims = c.checkDKIM(ctx, raw, br, fs)
		sym, items := dkimSummary(dkims)
		add(sym, strings.Join(items, "; "))
		ar = append(ar, items...)
	}

	if fs != nil {
		sym, action, item := c.checkDMARC(ctx, fs, spfRes, spfDomain, dkims)
		add(sym, item)
		ar = append(ar, item)
		res.Action = action
		if action != "" {
			// What the client reads in the 550 (or the admin in the
			// quarantine): the domain's own policy refused it.
			res.Class, res.Reason = "policy", "Message rejected: DMARC policy of "+dmarcDomainOf(fs)+" ("+sym+")"
			if action == scanner.ActionQuarantine {
				res.Reason = "Message held: DMARC policy of " + dmarcDomainOf(fs) + " (" + sym + ")"
			}
		}
	} else {
		add("DMARC_PERMERROR", "header not read")
		ar = append(ar, "dmarc=permerror")
	}
	if err := ctx.Err(); err != nil {
		return scanner.EngineResult{}, fmt.Errorf("auth %s: %w", m.ID, err)
	}
	res.Headers = []string{c.header(ar)}
	return res, nil
}

// header is our Authentication-Results field: one resinfo per line.
func (c *Checker) header(items []string) string {
	return resultsField + ": " + c.id + ";\r\n\t" + strings.Join(items, ";\r\n\t")
}

// checkSPF checks the client against the envelope sender's domain, or the
// HELO name for a null sender (RFC 7208 §2.4). It returns the result, the
// domain checked and the resinfo.
func (c *Checker) checkSPF(ctx context.Context, env scanner.Envelope) (spf.Result, string, string) {
	sender, prop, domain := env.Sender, "smtp.mailfrom", domainOf(env.Sender)
	if env.Sender == "" {
		sender, prop, domain = "postmaster@"+env.Helo, "smtp.helo", strings.ToLower(strings.TrimSuffix(env.Helo, "."))
	}
	item := func(r spf.Result, comment string) string {
		s := "spf=" + string(r)
		if comment != "" {
			s += " (" + comment + ")"
		}
		if prop == "smtp.helo" {
			return s + " smtp.helo=" + pvalue(env.Helo)
		}
		return s + " smtp.mailfrom=" + pvalue(env.Sender)
	}
	if !env.ClientIP.IsValid() {
		return spf.None, domain, item(spf.None, "client address unknown")
	}
	if domain == "" || !scanner.IsHostname(domain) {
		return spf.None, "", item(spf.None, "no domain to check")
	}
	ctx, cancel := context.WithTimeout(ctx, c.spfT)
	defer cancel()
	ip := net.IP(env.ClientIP.Unmap().AsSlice())
	r, err := spf.CheckHostWithSender(ip, fqdn(domain), sender, spf.WithResolver(c.r), spf.WithContext(ctx))
	if r == spf.TempError || r == spf.PermError {
		c.log.Debug("spf", "domain", domain, "result", string(r), "err", err)
	}
	return r, domain, item(r, "")
}

// dkimResult is one signature's outcome.
type dkimResult struct {
	result   string // pass, fail, temperror, permerror
	domain   string
	selector string
}

// checkDKIM verifies up to maxSignatures signatures. go-msgauth takes no
// context: its key lookups go through the resolver under a context with
// the DKIM timeout, so a DNS server that hangs costs at most that.
func (c *Checker) checkDKIM(ctx context.Context, raw []byte, body io.Reader, fs []field) []dkimResult {
	var sigs []string
	for _, f := range fs {
		if strings.EqualFold(f.name, "DKIM-Signature") && len(sigs) < maxSignatures {
			sigs = append(sigs, f.value)
		}
	}
	if len(sigs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.dkimT)
	defer cancel()
	verifs, err := dkim.VerifyWithOptions(io.MultiReader(bytes.NewReader(raw), body), &dkim.VerifyOptions{
		LookupTXT:        func(name string) ([]string, error) { return c.r.LookupTXT(ctx, fqdn(name)) },
		MaxVerifications: maxSignatures,
	})
	out := make([]dkimResult, len(sigs))
	for i, sig := range sigs {
		out[i] = dkimResult{result: "permerror", domain: dkimTag(sig, "d"), selector: dkimTag(sig, "s")}
		switch {
		case i >= len(verifs):
			// go-msgauth gives no verification at all when it cannot read
			// the message (err): that is the message's fault.
		case verifs[i].Err == nil:
			out[i].result = "pass"
		case dkim.IsTempFail(verifs[i].Err):
			out[i].result = "temperror"
		case dkim.IsPermFail(verifs[i].Err):
			out[i].result = "permerror"
		default:
			out[i].result = "fail" // a signature or body hash that does not verify
		}
		if i < len(verifs) && verifs[i].Err != nil {
			c.log.Debug("dkim", "domain", out[i].domain, "result", out[i].result, "err", verifs[i].Err)
		}
	}
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		c.log.Debug("dkim: message not verifiable", "err", err)
	}
	return out
}

// dkimSummary is the message's DKIM symbol (a pass wins, then a
// temporary error, then a failure) and one resinfo per signature.
func dkimSummary(rs []dkimResult) (string, []string) {
	if len(rs) == 0 {
		return "DKIM_NONE", []string{"dkim=none"}
	}
	rank := map[string]int{"pass": 4, "temperror": 3, "fail": 2, "permerror": 1}
	best := rs[0].result
	items := make([]string, len(rs))
	for i, r := range rs {
		if rank[r.result] > rank[best] {
			best = r.result
		}
		items[i] = "dkim=" + r.result + " header.d=" + pvalue(r.domain) + " header.s=" + pvalue(r.selector)
	}
	return "DKIM_" + strings.ToUpper(best), items
}

// checkDMARC looks up the author domain's policy (the organizational
// domain's when the author domain has none) and applies it to the SPF and
// DKIM results, with the record's alignment modes.
func (c *Checker) checkDMARC(ctx context.Context, fs []field, spfRes spf.Result, spfDomain string, dkims []dkimResult) (string, scanner.Action, string) {
	from, ok := fromDomain(fs)
	if !ok {
		return "DMARC_PERMERROR", "", "dmarc=permerror (no single From domain)"
	}
	item := func(res, comment string) string {
		s := "dmarc=" + res
		if comment != "" {
			s += " (" + comment + ")"
		}
		return s + " header.from=" + pvalue(from)
	}
	ctx, cancel := context.WithTimeout(ctx, c.dmarcT)
	defer cancel()
	opts := &dmarc.LookupOptions{LookupTXT: func(name string) ([]string, error) { return c.r.LookupTXT(ctx, fqdn(name)) }}
	recDomain := from
	rec, err := dmarc.LookupWithOptions(from, opts)
	if org := orgDomain(from); errors.Is(err, dmarc.ErrNoPolicy) && org != from {
		recDomain = org
		rec, err = dmarc.LookupWithOptions(org, opts)
	}
	switch {
	case errors.Is(err, dmarc.ErrNoPolicy):
		return "DMARC_NONE", "", item("none", "")
	case dmarc.IsTempFail(err):
		c.log.Debug("dmarc", "domain", from, "err", err)
		return "DMARC_TEMPERROR", "", item("temperror", "")
	case err != nil:
		c.log.Debug("dmarc", "domain", from, "err", err)
		return "DMARC_PERMERROR", "", item("permerror", "")
	}

	pass := spfRes == spf.Pass && aligned(spfDomain, from, rec.SPFAlignment)
	for _, d := range dkims {
		pass = pass || d.result == "pass" && aligned(d.domain, from, rec.DKIMAlignment)
	}
	policy := policyFor(rec, recDomain, from)
	if pass {
		return "DMARC_PASS", "", item("pass", "p="+string(policy))
	}
	applied := sampled(policy, rec, c.roll())
	comment := "p=" + string(policy)
	if applied != policy {
		comment += " pct sampled out: " + string(applied)
	}
	switch applied {
	case dmarc.PolicyReject:
		return "DMARC_FAIL_REJECT", dmarcAction(c.onReject), item("fail", comment)
	case dmarc.PolicyQuarantine:
		return "DMARC_FAIL_QUARANTINE", dmarcAction(c.onQuarantine), item("fail", comment)
	}
	return "DMARC_FAIL_NONE", "", item("fail", comment)
}

func dmarcAction(a string) scanner.Action {
	switch a {
	case scanner.DMARCReject:
		return scanner.ActionReject
	case scanner.DMARCQuarantine:
		return scanner.ActionQuarantine
	}
	return ""
}

// dmarcDomainOf is the From domain a DMARC result was for ("" when there is
// no single one, which never carries an action).
func dmarcDomainOf(fs []field) string {
	d, _ := fromDomain(fs)
	return d
}
