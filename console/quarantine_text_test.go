package console

import (
	"strings"
	"testing"
)

func TestReadMessage(t *testing.T) {
	crlf := func(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }
	big := strings.Repeat("0123456789abcdef", maxShownText/16+10)
	tests := []struct {
		name          string
		raw           []byte
		texts         []string // each part's text contains
		attach        string   // "name type size" of the first attachment
		problem, raw2 string
		cut           bool
		notText       string // must appear in no part
	}{
		{name: "plain", raw: crlf("Subject: a\n\nhello\nworld\n"), texts: []string{"hello\nworld"}},
		{name: "no content type is text", raw: crlf("Subject: a\n\n<b>x</b>\n"), texts: []string{"<b>x</b>"}},
		{name: "html as text", raw: crlf("Content-Type: text/html\n\n<html><head><style>p{}</style><script>evil()</script></head><body><p>one</p><p>two &amp; <a href=\"http://x.example/\">link</a></p><img src=\"http://x.example/p.gif\" alt=\"logo\"></body></html>\n"),
			texts: []string{"one\ntwo & link <http://x.example/>\n[image: logo]"}, notText: "evil"},
		{name: "attachment listed, not shown", raw: crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nbody\n--b\nContent-Type: application/zip\nContent-Disposition: attachment; filename=\"a.zip\"\nContent-Transfer-Encoding: base64\n\nUEsDBA==\n--b--\n"),
			texts: []string{"body"}, attach: "a.zip application/zip 4", notText: "PK"},
		{name: "quoted-printable latin1", raw: crlf("Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nGr=FC=DFe\n"), texts: []string{"Grüße"}},
		{name: "unknown charset said", raw: crlf("Content-Type: text/plain; charset=x-weird\n\nabc\n"), texts: []string{"abc"}},
		{name: "control characters made visible", raw: crlf("\n\na\x1b[31mb\u202ec\n"), texts: []string{"a\uFFFD[31mb\uFFFDc"}},
		{name: "long text cut", raw: crlf("\n\n" + big), texts: []string{"0123456789abcdef"}, cut: true},
		{name: "broken multipart", raw: crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nfirst\n"), problem: "broken", raw2: "first"},
		{name: "broken header", raw: []byte("Subject a\r\nno colon\r\n\r\nbody"), problem: "not a well-formed MIME message", raw2: "no colon"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := readMessage(tc.raw)
			if len(m.Parts) < len(tc.texts) {
				t.Fatalf("parts %+v, want %d (problem %q)", m.Parts, len(tc.texts), m.Problem)
			}
			for i, want := range tc.texts {
				if !strings.Contains(m.Parts[i].Text, want) {
					t.Errorf("part %d = %q, want it to contain %q", i, m.Parts[i].Text, want)
				}
			}
			for _, p := range m.Parts {
				if tc.notText != "" && strings.Contains(p.Text, tc.notText) {
					t.Errorf("part %q shows %q", p.Text, tc.notText)
				}
				if len(p.Text) > maxShownText {
					t.Errorf("part of %d bytes shown, bound %d", len(p.Text), maxShownText)
				}
			}
			if tc.attach != "" {
				if len(m.Attachments) == 0 {
					t.Fatalf("no attachment listed")
				}
				a := m.Attachments[0]
				if got := strings.Join([]string{a.Name, a.Type, itoa(a.Size)}, " "); got != tc.attach {
					t.Errorf("attachment %q, want %q", got, tc.attach)
				}
			}
			if !strings.Contains(m.Problem, tc.problem) || (tc.problem == "") != (m.Problem == "") {
				t.Errorf("problem %q, want %q", m.Problem, tc.problem)
			}
			if !strings.Contains(m.Raw, tc.raw2) || (tc.raw2 == "") != (m.Raw == "") {
				t.Errorf("raw %q, want it to contain %q", m.Raw, tc.raw2)
			}
			if m.Cut != tc.cut {
				t.Errorf("cut %v, want %v", m.Cut, tc.cut)
			}
		})
	}
}

func itoa(n int64) string { return strings.TrimSuffix(size(n), " B") }

// FuzzReadMessage: whatever a sender sends, the message page's text is
// bounded, valid UTF-8 and free of control characters but line breaks
// and tabs.
func FuzzReadMessage(f *testing.F) {
	f.Add([]byte("Subject: a\r\n\r\nhello"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>x<script>y</script>\r\n--b\r\nContent-Disposition: attachment; filename=a\r\n\r\nzz\r\n--b--\r\n"))
	f.Add([]byte("Content-Type: text/plain; charset=latin1\r\nContent-Transfer-Encoding: base64\r\n\r\n/w==\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m := readMessage(raw)
		texts := []string{m.Header, m.Raw, m.Problem}
		total := 0
		for _, p := range m.Parts {
			texts = append(texts, p.Text, p.Note)
			total += len(p.Text)
		}
		if total > maxShownText+len(m.Parts)*4 {
			t.Fatalf("%d bytes of text shown, bound %d", total, maxShownText)
		}
		if len(m.Parts)+len(m.Attachments) > maxParts {
			t.Fatalf("%d parts listed", len(m.Parts)+len(m.Attachments))
		}
		for _, s := range append(texts[:2], partTexts(m)...) {
			for _, r := range s {
				if r == '\r' || (r < ' ' && r != '\n' && r != '\t') || r == 0x7f || r == 0x202e {
					t.Fatalf("control character %U shown in %q", r, s)
				}
			}
		}
	})
}

func partTexts(m msgText) []string {
	var out []string
	for _, p := range m.Parts {
		out = append(out, p.Text)
	}
	return out
}
