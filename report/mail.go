package report

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/mxgate/mxgate/deliver"
)

// MailSettings say whether and how the daily report is mailed; the
// scheduler reads them at each run, as the cluster's settings change.
type MailSettings struct {
	To   []string // empty: the report is not mailed
	From string   // the envelope sender and From:
	// Name names the cluster and node in the subject.
	Name string
	// Downstream is the organisation's mail server (as for releases).
	Downstream deliver.Options
}

// claimTimeout is how long a claim may stay unfinished while its node is
// still sending (connect, greet and DATA under the downstream's timeouts);
// an older one is a send whose outcome is unknown.
const claimTimeout = 15 * time.Minute

// Retries of a failed send, doubling from the first to the last: the
// downstream may be down for a while, and a refusal is logged each time.
const (
	firstRetry = time.Minute
	maxRetry   = time.Hour
)

var htmlReport = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>mxgate daily report {{.R.Day}}</title></head>
<body style="font-family: sans-serif">
<h1>Report for {{.R.Day}}</h1>
<p>{{.State}}</p>
<p>Messages: <b>{{.R.Total}}</b></p>
{{range .Sections}}<h2>{{.Title}}</h2>
{{if .Counts}}<table border="1" cellpadding="4" cellspacing="0">
<tr><th align="right">Count</th><th align="left">Value</th></tr>
{{range .Counts}}<tr><td align="right">{{.N}}</td><td>{{.Key}}</td></tr>
{{end}}</table>
{{else}}<p>(none)</p>
{{end}}{{end}}</body></html>
`))

// Message is r as one mail from from to to: multipart/alternative with
// WriteText's text and the same figures as HTML tables, every value
// escaped by html/template. The report is the stored one.
func Message(r Report, from string, to []string, name string, now time.Time) ([]byte, error) {
	var h mail.Header
	h.SetDate(now)
	h.SetSubject(fmt.Sprintf("mxgate daily report %s (%s)", r.Day, name))
	h.SetAddressList("From", []*mail.Address{{Address: from}})
	rcpts := make([]*mail.Address, len(to))
	for i, a := range to {
		rcpts[i] = &mail.Address{Address: a}
	}
	h.SetAddressList("To", rcpts)
	if err := h.GenerateMessageIDWithHostname(domainOf(from)); err != nil {
		return nil, fmt.Errorf("report mail %s: %w", r.Day, err)
	}
	// RFC 3834: no vacation replies or other auto-responses to it.
	h.Set("Auto-Submitted", "auto-generated")

	var text, html bytes.Buffer
	if err := WriteText(&text, r, true); err != nil {
		return nil, err
	}
	sections := r.Sections()
	for i := range sections {
		cs := make([]Count, len(sections[i].Counts))
		for j, c := range sections[i].Counts {
			cs[j] = Count{Key: Printable(c.Key), N: c.N}
		}
		sections[i].Counts = cs
	}
	data := struct {
		R        Report
		State    string
		Sections []Section
	}{r, r.State(true), sections}
	if err := htmlReport.Execute(&html, data); err != nil {
		return nil, fmt.Errorf("report mail %s: %w", r.Day, err)
	}

	out, err := Alternative(h, text.Bytes(), html.Bytes())
	if err != nil {
		return nil, fmt.Errorf("report mail %s: %w", r.Day, err)
	}
	return out, nil
}

// Alternative is a multipart/alternative message with header h and a
// text/plain and a text/html part (UTF-8): a mail for every client.
func Alternative(h mail.Header, text, html []byte) ([]byte, error) {
	var out bytes.Buffer
	w, err := mail.CreateInlineWriter(&out, h)
	if err != nil {
		return nil, err
	}
	for _, p := range []struct {
		typ  string
		body []byte
	}{{"text/plain", text}, {"text/html", html}} {
		var ph mail.InlineHeader
		ph.SetContentType(p.typ, map[string]string{"charset": "utf-8"})
		pw, err := w.CreatePart(ph)
		if err != nil {
			return nil, err
		}
		if _, err := pw.Write(p.body); err != nil {
			return nil, err
		}
		if err := pw.Close(); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func domainOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == '@' {
			return addr[i+1:]
		}
	}
	return "localhost"
}

// mailer mails the stored report of a day once, whichever node runs it:
// the store records the claim before the send and the send after it.
type mailer struct {
	s        Store
	node     string
	settings func() MailSettings
	now      func() time.Time
	logger   *slog.Logger

	day   string    // the day being mailed
	done  bool      // day needs nothing more from this node
	next  time.Time // no attempt before
	wait  time.Duration
	tries int
}

// run mails day's report (stored) unless mailing is off, done, or a retry
// is not due yet.
func (m *mailer) run(ctx context.Context, day string) {
	if m.day != day {
		if m.day != "" && !m.done && m.tries > 0 {
			m.logger.Error("daily report mail never sent: giving up, the next day's report is due", "day", m.day, "tries", m.tries)
		}
		*m = mailer{s: m.s, node: m.node, settings: m.settings, now: m.now, logger: m.logger, day: day}
	}
	set := m.settings()
	if m.done || len(set.To) == 0 || m.now().Before(m.next) {
		return
	}
	if m.mail(ctx, day, set) {
		m.done = true
		return
	}
	if ctx.Err() != nil {
		return
	}
	m.tries++
	m.wait = min(max(2*m.wait, firstRetry), maxRetry)
	m.next = m.now().Add(m.wait)
}

// mail makes one attempt; true when the day needs nothing more.
func (m *mailer) mail(ctx context.Context, day string, set MailSettings) bool {
	r, err := m.s.Get(ctx, day)
	if err != nil {
		m.logger.Warn("daily report mail: report not read; retrying", "day", day, "err", err)
		return false
	}
	now := m.now().UTC()
	claim := Mailing{Token: rand.Text(), Node: m.node, Claimed: now.Truncate(time.Millisecond), To: set.To}
	cur, claimed, err := m.s.ClaimMail(ctx, day, claim)
	switch {
	case err != nil:
		m.logger.Warn("daily report mail: not claimed; retrying", "day", day, "err", err)
		return false
	case !claimed && !cur.Sent.IsZero():
		m.logger.Info("daily report mail already sent", "day", day, "by", cur.Node, "at", cur.Sent)
		return true
	case !claimed && now.Sub(cur.Claimed) < claimTimeout:
		// Another node is sending it now; if it gives its claim back, a
		// later run here sends.
		return false
	case !claimed:
		m.logger.Error("daily report mail claimed but never confirmed (the node stopped while sending, or the downstream's answer was lost): not sent again, so as not to send it twice; check the recipients' mailboxes",
			"day", day, "claimed_by", cur.Node, "claimed_at", cur.Claimed, "to", cur.To)
		return true
	}
	msg, err := Message(r, set.From, set.To, set.Name, now)
	if err != nil {
		m.giveBack(ctx, day, claim)
		m.logger.Error("daily report mail not built", "day", day, "err", err)
		return false
	}
	reply, err := deliver.Send(ctx, set.Downstream, set.From, set.To, nil, bytes.NewReader(msg))
	switch {
	case errors.Is(err, deliver.ErrUnconfirmed):
		m.logger.Error("daily report mail: the downstream's answer was lost, it may have been delivered; not sent again", "day", day, "to", set.To, "err", err)
		return true
	case err != nil && reply == "":
		// Refused or not reachable: nothing was taken.
		m.giveBack(ctx, day, claim)
		m.logger.Warn("daily report mail not sent; retrying later today", "day", day, "to", set.To, "err", err)
		return false
	case err != nil:
		m.logger.Warn("daily report mail refused by some recipients", "day", day, "err", err)
	}
	claim.Sent = m.now().UTC().Truncate(time.Millisecond)
	if err := m.s.FinishMail(ctx, day, claim, true); err != nil {
		// The claim stays, so no other node sends it again.
		m.logger.Error("daily report mail sent but not recorded as sent", "day", day, "err", err)
	}
	m.logger.Info("daily report mailed", "day", day, "to", set.To, "reply", reply)
	return true
}

// giveBack removes a claim whose send certainly did not happen.
func (m *mailer) giveBack(ctx context.Context, day string, claim Mailing) {
	// Also when the node is stopping: a claim left behind is never sent.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := m.s.FinishMail(ctx, day, claim, false); err != nil {
		m.logger.Error("daily report mail claim not given back: the day will not be mailed", "day", day, "err", err)
	}
}
