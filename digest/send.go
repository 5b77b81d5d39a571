package digest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mxgate/mxgate/deliver"
	"github.com/mxgate/mxgate/quarantine"
)

// Settings say whether, when and how digests go out; read at each run,
// as the cluster's settings change.
type Settings struct {
	Enabled bool
	// At is the time of day (UTC) of the daily run, as minutes past
	// midnight.
	At time.Duration
	// URL is the base of the links (the admin listener as recipients
	// reach it), without a trailing slash.
	URL  string
	From string
	// Domains limit the digests to recipients in them; none: all.
	Domains []string
	// Lifetime is the quarantine's retention: how long links live.
	Lifetime   time.Duration
	Downstream deliver.Options
}

// Digester sends the digests (admin.Digest).
type Digester struct {
	Store      Store
	Quarantine quarantine.Store
	Node       string
	Settings   func() Settings
	Now        func() time.Time // nil: time.Now
	Logger     *slog.Logger     // nil: discard
}

// claimTimeout is how long a claim may stay unfinished while its node is
// still sending; an older one is a send whose outcome is unknown.
const claimTimeout = 15 * time.Minute

// firstLookback is what a recipient's first digest covers.
const firstLookback = 24 * time.Hour

func (d *Digester) now() time.Time {
	if d.Now == nil {
		return time.Now().UTC()
	}
	return d.Now().UTC()
}

func (d *Digester) log() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

// Send sends today's digests (to rcpt only, when it is not ""): one per
// recipient with items quarantined since their last digest, unless they
// opted out or had today's already. The error is for what stopped the
// whole run; a recipient's failure is its outcome.
func (d *Digester) Send(ctx context.Context, rcpt string) ([]Outcome, error) {
	set := d.Settings()
	if !set.Enabled {
		return nil, ErrOff
	}
	now := d.now()
	// Every item of the retention may be new to someone (a recipient
	// who opted back in); first digests look back a day.
	f := quarantine.Filter{Since: now.Add(-set.Lifetime), Limit: quarantine.MaxLimit}
	if set.Lifetime <= 0 {
		f.Since = now.Add(-firstLookback)
	}
	if rcpt != "" {
		rcpt = Fold(rcpt)
		if err := checkRcpt(rcpt); err != nil {
			return nil, fmt.Errorf("digest: %w", err)
		}
		f.Rcpt = rcpt
	}
	items, err := d.Quarantine.List(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("digest: list the quarantine: %w", err)
	}
	byRcpt := map[string][]quarantine.Item{}
	for _, it := range items {
		for _, r := range it.Recipients {
			r = Fold(r)
			if (rcpt != "" && r != rcpt) || !inDomains(r, set.Domains) || checkRcpt(r) != nil || it.IsReleasedTo(r) {
				continue
			}
			if l := byRcpt[r]; len(l) == 0 || l[len(l)-1].ID != it.ID {
				byRcpt[r] = append(l, it)
			}
		}
	}
	rcpts := make([]string, 0, len(byRcpt))
	for r := range byRcpt {
		rcpts = append(rcpts, r)
	}
	if rcpt != "" && len(rcpts) == 0 {
		rcpts = []string{rcpt}
	}
	slices.Sort(rcpts)
	out := make([]Outcome, 0, len(rcpts))
	for _, r := range rcpts {
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("digest: %w", err)
		}
		o := d.sendOne(ctx, set, r, byRcpt[r], now)
		out = append(out, o)
	}
	return out, nil
}

func inDomains(rcpt string, domains []string) bool {
	if len(domains) == 0 {
		return true
	}
	_, dom, _ := strings.Cut(rcpt, "@")
	return slices.ContainsFunc(domains, func(d string) bool { return strings.EqualFold(d, dom) })
}

// sendOne sends rcpt's digest of the items (newest first) that are new.
func (d *Digester) sendOne(ctx context.Context, set Settings, rcpt string, items []quarantine.Item, now time.Time) Outcome {
	o := Outcome{Rcpt: rcpt}
	fail := func(reason string, err error) Outcome {
		d.log().Warn("digest not sent", "rcpt", rcpt, "reason", reason, "err", err)
		o.Result, o.Reason = Failed, reason
		return o
	}
	out, err := d.Store.OptedOut(ctx, rcpt)
	if err != nil {
		return fail("the store did not answer", err)
	}
	if out {
		o.Result = OptedOut
		return o
	}
	covered, err := d.Store.Covered(ctx, rcpt)
	if err != nil {
		return fail("the store did not answer", err)
	}
	if covered.IsZero() {
		covered = now.Add(-firstLookback)
	}
	dismissed, err := d.Store.Dismissed(ctx, rcpt, now)
	if err != nil {
		return fail("the store did not answer", err)
	}
	var fresh []quarantine.Item
	for _, it := range items {
		if it.Time.After(covered) && !dismissed[it.ID] && (it.Expires.IsZero() || now.Before(it.Expires)) {
			fresh = append(fresh, it)
		}
	}
	if len(fresh) == 0 {
		o.Result = NothingNew
		return o
	}
	o.Items = len(fresh)
	day := now.Format(DayFormat)
	claim := Sending{Token: rand.Text(), Node: d.Node, Claimed: now.Truncate(time.Millisecond), Items: len(fresh)}
	cur, claimed, err := d.Store.Claim(ctx, rcpt, day, claim)
	switch {
	case err != nil:
		return fail("not claimed in the store", err)
	case !claimed && !cur.Sent.IsZero():
		o.Result = AlreadySent
		return o
	case !claimed && now.Sub(cur.Claimed) < claimTimeout:
		return fail("another node ("+cur.Node+") is sending it now", nil)
	case !claimed:
		d.log().Error("digest claimed but never confirmed (the node stopped while sending, or the downstream's answer was lost): not sent again today, so as not to send it twice",
			"rcpt", rcpt, "day", day, "claimed_by", cur.Node, "claimed_at", cur.Claimed)
		o.Result = AlreadySent
		o.Reason = "outcome unknown: claimed by " + cur.Node + " at " + cur.Claimed.Format(time.RFC3339) + ", never confirmed"
		return o
	}
	msg, err := d.message(ctx, set, rcpt, fresh, now)
	if err != nil {
		d.giveBack(ctx, rcpt, day, claim)
		return fail("not built", err)
	}
	reply, err := deliver.Send(ctx, set.Downstream, set.From, []string{rcpt}, nil, bytes.NewReader(msg))
	switch {
	case errors.Is(err, deliver.ErrUnconfirmed):
		d.log().Error("digest: the downstream's answer was lost, it may have been delivered; not sent again today", "rcpt", rcpt, "err", err)
		return fail("the downstream's answer was lost: it may have been delivered", err)
	case err != nil:
		d.giveBack(ctx, rcpt, day, claim)
		return fail("the downstream refused it: "+oneLine(err), err)
	}
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	claim.Sent = d.now().Truncate(time.Millisecond)
	if err := d.Store.Finish(mctx, rcpt, day, claim, true); err != nil {
		// The claim stays, so no node sends it again today.
		d.log().Error("digest sent but not recorded as sent", "rcpt", rcpt, "err", err)
	}
	// fresh is newest first: the next digest starts after its first.
	if err := d.Store.SetCovered(mctx, rcpt, fresh[0].Time); err != nil {
		d.log().Error("digest sent but its coverage not recorded: tomorrow's repeats these messages", "rcpt", rcpt, "err", err)
	}
	d.log().Info("digest sent", "rcpt", rcpt, "items", len(fresh), "reply", reply)
	o.Result = Sent
	return o
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// giveBack removes a claim whose send certainly did not happen.
func (d *Digester) giveBack(ctx context.Context, rcpt, day string, claim Sending) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := d.Store.Finish(ctx, rcpt, day, claim, false); err != nil {
		d.log().Error("digest claim not given back: no digest for this recipient today", "rcpt", rcpt, "err", err)
	}
}

// message builds rcpt's digest of items, signing its links.
func (d *Digester) message(ctx context.Context, set Settings, rcpt string, items []quarantine.Item, now time.Time) ([]byte, error) {
	keys, err := signingKeys(ctx, d.Store, now)
	if err != nil {
		return nil, err
	}
	l := linker{base: set.URL, key: keys[0], lifetime: set.Lifetime}
	m := Mail{Rcpt: rcpt, From: set.From, Now: now}
	for i, it := range items {
		if i == MaxRows {
			m.More = len(items) - MaxRows
			break
		}
		rel, err := l.item(ActRelease, rcpt, it)
		if err != nil {
			return nil, err
		}
		del, err := l.item(ActDelete, rcpt, it)
		if err != nil {
			return nil, err
		}
		m.Rows = append(m.Rows, Row{Time: it.Time, Sender: it.Sender, Subject: it.Subject, Score: it.Score, Verdict: it.Verdict, ReleaseURL: rel, DeleteURL: del})
	}
	if m.ListURL, err = l.page(ActList, rcpt, now); err != nil {
		return nil, err
	}
	if m.OptOutURL, err = l.page(ActOptOut, rcpt, now); err != nil {
		return nil, err
	}
	return Message(m)
}

// linker signs the links of one digest or page.
type linker struct {
	base     string // "" on the pages: links relative to /my/
	key      Key
	lifetime time.Duration
}

// Path is the recipients' page (under /my/, package recipients) that a
// link for a leads to.
func Path(a Action) string {
	switch a {
	case ActRelease:
		return "/my/release"
	case ActDelete:
		return "/my/delete"
	case ActOptOut:
		return "/my/optout"
	}
	return "/my/"
}

// ItemExpiry is when links to it expire: with it.
func ItemExpiry(it quarantine.Item, lifetime time.Duration) time.Time {
	if !it.Expires.IsZero() {
		return it.Expires
	}
	return it.Time.Add(lifetime)
}

func (l linker) item(a Action, rcpt string, it quarantine.Item) (string, error) {
	return l.link(Token{Action: a, Rcpt: rcpt, Item: it.ID, Expires: ItemExpiry(it, l.lifetime)})
}

func (l linker) page(a Action, rcpt string, now time.Time) (string, error) {
	return l.link(Token{Action: a, Rcpt: rcpt, Expires: now.Add(l.lifetime)})
}

func (l linker) link(t Token) (string, error) {
	tok, err := Sign(l.key, t)
	if err != nil {
		return "", err
	}
	return l.base + Path(t.Action) + "?t=" + url.QueryEscape(tok), nil
}

// SetOptOut implements admin.Digest.
func (d *Digester) SetOptOut(ctx context.Context, rcpt string, out bool) error {
	return d.Store.SetOptOut(ctx, Fold(rcpt), out)
}

// OptOuts implements admin.Digest.
func (d *Digester) OptOuts(ctx context.Context) ([]string, error) { return d.Store.OptOuts(ctx) }

// RotateKey implements admin.Digest.
func (d *Digester) RotateKey(ctx context.Context) (string, []string, error) {
	return Rotate(ctx, d.Store, d.Settings().Lifetime, d.now())
}
