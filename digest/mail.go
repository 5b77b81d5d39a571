package digest

import (
	"bytes"
	"fmt"
	"html/template"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/mail"

	"github.com/mxgate/mxgate/report"
)

// Row is one quarantined message in a digest.
type Row struct {
	Time       time.Time
	Sender     string // as the spammer wrote it: sanitized by Message
	Subject    string
	Score      float64
	Verdict    string
	ReleaseURL string
	DeleteURL  string
}

// Mail is what one recipient's digest says.
type Mail struct {
	Rcpt, From string
	Rows       []Row // newest first, at most MaxRows
	More       int   // new messages not listed: see the list
	ListURL    string
	OptOutURL  string
	Now        time.Time
}

// MaxRows bounds a digest; the rest are on the recipient's page.
const MaxRows = 200

// Caps of what a spammer wrote, in runes, in the digest and on the pages.
const (
	MaxSubject = 120
	MaxSender  = 100
)

// Clean makes a hostile header value safe to show and to put in a
// header: no control or format characters (CR, LF, bidi overrides), no
// invalid UTF-8, at most max runes.
func Clean(s string, max int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	s = report.Printable(s)
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max-1]) + "…"
	}
	return s
}

func (m Mail) total() int { return len(m.Rows) + m.More }

// Subject is the digest's subject line.
func (m Mail) Subject() string {
	n := m.total()
	s := "s"
	if n == 1 {
		s = ""
	}
	return fmt.Sprintf("Quarantine: %d new message%s for %s", n, s, Clean(m.Rcpt, maxRcpt))
}

type mailRow struct {
	Date, Sender, Subject, Score, Verdict, Release, Delete string
}

func (m Mail) rows() []mailRow {
	out := make([]mailRow, len(m.Rows))
	for i, r := range m.Rows {
		out[i] = mailRow{
			Date:    r.Time.UTC().Format("2006-01-02 15:04 UTC"),
			Sender:  Clean(r.Sender, MaxSender),
			Subject: Clean(r.Subject, MaxSubject),
			Score:   fmt.Sprintf("%.1f", r.Score),
			Verdict: Clean(r.Verdict, 20),
			Release: r.ReleaseURL,
			Delete:  r.DeleteURL,
		}
	}
	return out
}

var textMail = texttemplate.Must(texttemplate.New("text").Parse(`Quarantine digest for {{.Rcpt}}

{{.N}} new message(s) were held back for you because they looked like spam
or carried something dangerous. Release a message you want; the others are
deleted when the quarantine's retention ends.
{{range .Rows}}
{{.Date}}  score {{.Score}} ({{.Verdict}})
  From:    {{.Sender}}
  Subject: {{.Subject}}
  Release: {{.Release}}
  Delete:  {{.Delete}}
{{end}}{{if .More}}
... and {{.More}} more: see the list.
{{end}}
Your whole quarantine: {{.List}}
No more digests:       {{.OptOut}}
`))

var htmlMail = template.Must(template.New("html").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Quarantine digest</title></head>
<body style="font-family: sans-serif">
<h1 style="font-size: 1.2em">Quarantine digest for {{.Rcpt}}</h1>
<p>{{.N}} new message(s) were held back for you. Release a message you want; the others are deleted when the quarantine's retention ends.</p>
<table border="1" cellpadding="4" cellspacing="0">
<tr><th align="left">Date</th><th align="left">From</th><th align="left">Subject</th><th align="right">Score</th><th></th></tr>
{{range .Rows}}<tr><td>{{.Date}}</td><td>{{.Sender}}</td><td>{{.Subject}}</td><td align="right">{{.Score}}</td><td><a href="{{.Release}}">Release</a> <a href="{{.Delete}}">Delete</a></td></tr>
{{end}}</table>
{{if .More}}<p>... and {{.More}} more: see the list.</p>{{end}}
<p><a href="{{.List}}">Your whole quarantine</a> · <a href="{{.OptOut}}">No more digests</a></p>
</body></html>
`))

// Message is m as one mail: multipart/alternative, text and HTML, every
// value from the quarantined mail sanitized (and escaped in the HTML).
func Message(m Mail) ([]byte, error) {
	var h mail.Header
	h.SetDate(m.Now)
	h.SetSubject(m.Subject())
	h.SetAddressList("From", []*mail.Address{{Address: m.From}})
	h.SetAddressList("To", []*mail.Address{{Address: m.Rcpt}})
	_, dom, _ := strings.Cut(m.From, "@")
	if dom == "" {
		dom = "localhost"
	}
	if err := h.GenerateMessageIDWithHostname(dom); err != nil {
		return nil, fmt.Errorf("digest for %s: %w", m.Rcpt, err)
	}
	// RFC 3834: no vacation replies or other auto-responses to it.
	h.Set("Auto-Submitted", "auto-generated")
	data := struct {
		Rcpt         string
		N, More      int
		Rows         []mailRow
		List, OptOut string
	}{Clean(m.Rcpt, maxRcpt), m.total(), m.More, m.rows(), m.ListURL, m.OptOutURL}
	var text, html bytes.Buffer
	if err := textMail.Execute(&text, data); err != nil {
		return nil, fmt.Errorf("digest for %s: %w", m.Rcpt, err)
	}
	if err := htmlMail.Execute(&html, data); err != nil {
		return nil, fmt.Errorf("digest for %s: %w", m.Rcpt, err)
	}
	out, err := report.Alternative(h, text.Bytes(), html.Bytes())
	if err != nil {
		return nil, fmt.Errorf("digest for %s: %w", m.Rcpt, err)
	}
	return out, nil
}
