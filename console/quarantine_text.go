package console

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/emersion/go-message"
	"golang.org/x/net/html"
)

// Bounds of what the message page shows of one message: a sender chooses
// the size and shape of the message, the page must stay small.
const (
	maxShownText   = 256 << 10 // body text over every part
	maxShownHeader = 64 << 10
	maxHTMLInput   = 1 << 20 // HTML read to convert, per part
	maxParts       = 200     // parts listed
)

// msgText is a quarantined message as the page shows it: text only. No
// HTML of the message is rendered, nothing remote is loaded, and
// attachments are only listed; every string here still goes through
// html/template's escaping.
type msgText struct {
	Header      string
	Parts       []textPart
	Attachments []attachment
	// Raw is the message as text when it could not be read as MIME.
	Raw string
	// Problem says what went wrong reading it ("" = nothing).
	Problem string
	// Cut: a bound was reached, so not everything is shown.
	Cut bool
}

type textPart struct {
	Type string // text/plain, text/html
	Text string
	Note string // e.g. "HTML shown as text", "charset x shown as UTF-8"
}

type attachment struct {
	Name, Type string
	Size       int64
	SizeCut    bool // more than Size; counting stopped
}

// readMessage turns raw into text to show, within the bounds above.
func readMessage(raw []byte) msgText {
	var m msgText
	head, _ := splitHeader(raw)
	m.Header, m.Cut = clip(head, maxShownHeader)
	e, readErr := message.Read(bytes.NewReader(raw))
	if err := readErr; err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		m.Problem = "not a well-formed MIME message (" + oneLineErr(readErr) + "): shown as it came"
		m.Raw, m.Cut = clip(raw, maxShownText)
		return m
	}
	budget := maxShownText
	err := e.Walk(func(path []int, ent *message.Entity, err error) error {
		if path == nil {
			// Walk tells the parts' charset errors, not the top's.
			err = readErr
		}
		if ent.MultipartReader() != nil {
			return nil
		}
		if len(m.Parts)+len(m.Attachments) >= maxParts {
			m.Cut = true
			return errStopWalk
		}
		ct, params, _ := ent.Header.ContentType()
		if ct == "" {
			ct = "text/plain"
		}
		disp, dparams, _ := ent.Header.ContentDisposition()
		name := dparams["filename"]
		if name == "" {
			name = params["name"]
		}
		if (ct != "text/plain" && ct != "text/html") || disp == "attachment" || name != "" {
			a := attachment{Name: name, Type: ct}
			// Counted, never looked into: the size is all the page needs.
			a.Size, _ = io.Copy(io.Discard, io.LimitReader(ent.Body, int64(len(raw))+1))
			if a.Size > int64(len(raw)) {
				a.Size, a.SizeCut = int64(len(raw)), true
			}
			m.Attachments = append(m.Attachments, a)
			return nil
		}
		p := textPart{Type: ct}
		var notes []string
		if message.IsUnknownEncoding(err) {
			notes = append(notes, "unknown transfer encoding, shown undecoded")
		}
		limit := budget + 1
		if ct == "text/html" {
			limit = maxHTMLInput
		}
		body, rerr := io.ReadAll(io.LimitReader(ent.Body, int64(limit)))
		if rerr != nil {
			notes = append(notes, "part broken: "+oneLineErr(rerr))
		}
		if message.IsUnknownCharset(err) {
			var note string
			body, note = decodeCharset(params["charset"], body)
			if note != "" {
				notes = append(notes, note)
			}
		}
		text := string(body)
		if ct == "text/html" {
			text = htmlText(text)
			notes = append(notes, "HTML shown as text: nothing rendered or loaded")
		}
		var cut bool
		p.Text, cut = clip([]byte(text), budget)
		if cut || len(body) >= limit {
			m.Cut = true
			notes = append(notes, "cut")
		}
		budget -= len(p.Text)
		p.Note = strings.Join(notes, "; ")
		m.Parts = append(m.Parts, p)
		if budget <= 0 {
			m.Cut = true
			return errStopWalk
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopWalk) {
		m.Problem = "the MIME structure is broken (" + oneLineErr(err) + "): the message as it came is below"
		m.Raw, _ = clip(raw, maxShownText)
	}
	return m
}

var errStopWalk = errors.New("stop")

// splitHeader cuts raw at its first empty line.
func splitHeader(raw []byte) (head, body []byte) {
	for _, sep := range [][]byte{[]byte("\r\n\r\n"), []byte("\n\n")} {
		if i := bytes.Index(raw, sep); i >= 0 {
			return raw[:i], raw[i+len(sep):]
		}
	}
	return raw, nil
}

// clip is b as valid UTF-8 text, at most max bytes, and whether it was
// cut. Control characters other than line breaks and tabs become U+FFFD,
// and so do the invisible bidirectional controls that make text read
// otherwise than it is.
func clip(b []byte, max int) (string, bool) {
	cut := false
	if len(b) > max {
		// A character cut in two becomes one U+FFFD below.
		b, cut = b[:max], true
	}
	s := strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r == '\r':
			return -1
		case unicode.IsControl(r), unicode.Is(unicode.Bidi_Control, r):
			return '\uFFFD'
		}
		return r
	}, strings.ToValidUTF8(string(b), "\uFFFD"))
	return s, cut
}

// decodeCharset decodes the Latin charsets (most non-UTF-8 mail) without
// tables; any other is shown as UTF-8 as far as it is, and said so.
func decodeCharset(cs string, b []byte) ([]byte, string) {
	switch strings.ToLower(cs) {
	case "iso-8859-1", "latin1", "iso-8859-15", "windows-1252", "cp1252":
		out := make([]rune, len(b))
		for i, c := range b {
			out[i] = rune(c)
		}
		return []byte(string(out)), ""
	}
	return b, fmt.Sprintf("charset %q shown as UTF-8", cs)
}

// htmlText is the text of an HTML document: tags dropped, scripts, styles
// and heads skipped, block ends as line breaks, link targets written out
// after their text so a fake link can be seen for what it is. The result
// is plain text; nothing of it is ever rendered as HTML.
func htmlText(src string) string {
	z := html.NewTokenizer(strings.NewReader(src))
	var b strings.Builder
	skip := 0 // inside script, style, head, title...
	nl := func() {
		if s := b.String(); len(s) > 0 && !strings.HasSuffix(s, "\n") {
			b.WriteByte('\n')
		}
	}
	var hrefs []string
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return strings.TrimSpace(collapseBlank(b.String()))
		case html.TextToken:
			if skip == 0 {
				b.WriteString(collapseSpace(string(z.Text())))
			}
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			name, hasAttr := z.TagName()
			tag := string(name)
			switch tag {
			case "script", "style", "head", "title", "noscript", "template", "svg", "math", "iframe", "object":
				if tt == html.StartTagToken {
					skip++
				} else if tt == html.EndTagToken && skip > 0 {
					skip--
				}
				continue
			}
			if skip > 0 {
				continue
			}
			switch tag {
			case "a":
				if tt == html.StartTagToken {
					href := ""
					for hasAttr {
						var k, v []byte
						k, v, hasAttr = z.TagAttr()
						if string(k) == "href" {
							href = strings.TrimSpace(string(v))
						}
					}
					hrefs = append(hrefs, href)
				} else if tt == html.EndTagToken && len(hrefs) > 0 {
					if h := hrefs[len(hrefs)-1]; h != "" {
						b.WriteString(" <" + h + ">")
					}
					hrefs = hrefs[:len(hrefs)-1]
				}
			case "img":
				for hasAttr {
					var k, v []byte
					k, v, hasAttr = z.TagAttr()
					if string(k) == "alt" && len(v) > 0 {
						b.WriteString("[image: " + collapseSpace(string(v)) + "]")
					}
				}
			case "br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote", "pre", "hr":
				nl()
				if tag == "li" && tt == html.StartTagToken {
					b.WriteString("• ")
				}
			case "td", "th":
				b.WriteByte(' ')
			}
		}
		if b.Len() > maxShownText {
			return b.String()
		}
	}
}

// collapseSpace turns runs of white space into one space, as a browser
// would show them.
func collapseSpace(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	if space {
		b.WriteByte(' ')
	}
	return b.String()
}

// collapseBlank keeps at most one empty line in a row, and no line
// starting with a space.
func collapseBlank(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	blank := 0
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" {
			if blank++; blank > 1 {
				continue
			}
		} else {
			blank = 0
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// oneLineErr is err's text on one line.
func oneLineErr(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
