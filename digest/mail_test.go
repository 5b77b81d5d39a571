package digest

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
)

// A spammer's sender and subject cannot add a header, run in the HTML or
// grow the digest without bound; past MaxRows the rest is counted.
func TestMessageIsSafe(t *testing.T) {
	now := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	hostile := []struct{ name, sender, subject string }{
		{"header injection", "x@evil.example\r\nBcc: victim@example.org", "hi\r\nBcc: victim@example.org\r\n\r\nbody"},
		{"script", "<script>alert(1)</script>@evil.example", `<script>alert("x")</script><img src=x onerror=alert(1)>`},
		{"bidi and controls", "a\u202e@evil.example", "pay\u202eexe.pdf\x1b[31m\x00"},
		{"invalid UTF-8", "a\xff@evil.example", "caf\xe9 \xff"},
		{"very long", strings.Repeat("s", 5000) + "@evil.example", strings.Repeat("long ", 5000)},
	}
	var rows []Row
	for i := range MaxRows + 5 {
		h := hostile[i%len(hostile)]
		rows = append(rows, Row{Time: now.Add(-time.Duration(i) * time.Minute), Sender: h.sender, Subject: h.subject, Score: 9.5, Verdict: "spam",
			ReleaseURL: fmt.Sprintf("https://mx.example.org/my/release?t=R%d", i), DeleteURL: fmt.Sprintf("https://mx.example.org/my/delete?t=D%d", i)})
	}
	m := Mail{Rcpt: "alice@example.org", From: "postmaster@mx.example.org", Rows: rows[:MaxRows], More: 5,
		ListURL: "https://mx.example.org/my/?t=L", OptOutURL: "https://mx.example.org/my/optout?t=O", Now: now}
	raw, err := Message(m)
	if err != nil {
		t.Fatal(err)
	}
	r, err := mail.CreateReader(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Header.Get("Bcc"); got != "" {
		t.Errorf("a Bcc header got in: %q", got)
	}
	if s, _ := r.Header.Subject(); s != "Quarantine: 205 new messages for alice@example.org" {
		t.Errorf("subject %q", s)
	}
	if r.Header.Get("Auto-Submitted") != "auto-generated" {
		t.Error("no Auto-Submitted")
	}
	parts := map[string]string{}
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := p.Header.(*mail.InlineHeader).ContentType()
		b, _ := io.ReadAll(p.Body)
		parts[ct] = string(b)
	}
	text, html := parts["text/plain"], parts["text/html"]
	if text == "" || html == "" {
		t.Fatalf("parts: %v", len(parts))
	}
	for _, tt := range []struct {
		name, part, bad string
	}{
		{"CR LF in text", text, "\r\nBcc:"},
		{"LF Bcc in text", text, "\nBcc:"},
		{"script tag in HTML", html, "<script>"},
		{"img tag in HTML", html, "<img"},
		{"bidi override", text + html, "\u202e"},
		{"escape", text + html, "\x1b"},
		{"NUL", text + html, "\x00"},
		{"row past MaxRows", text + html, fmt.Sprintf("t=R%d", MaxRows)},
		{"5000 s", text, strings.Repeat("s", MaxSender+1)},
	} {
		if strings.Contains(tt.part, tt.bad) {
			t.Errorf("%s: %q found", tt.name, tt.bad)
		}
	}
	for _, want := range []string{fmt.Sprintf("t=R%d", MaxRows-1), "and 5 more: see the list", "https://mx.example.org/my/?t=L", "https://mx.example.org/my/optout?t=O", "2026-12-02 06:00 UTC", "score 9.5"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q", want)
		}
	}
	if !strings.Contains(html, `href="https://mx.example.org/my/release?t=R0"`) {
		t.Error("HTML lacks the first release link")
	}
}
