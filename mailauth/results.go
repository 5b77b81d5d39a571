package mailauth

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

const resultsField = "Authentication-Results"

// maxPvalue bounds a value copied from the envelope or the message into
// our Authentication-Results.
const maxPvalue = 256

// pvalue renders s as an RFC 8601 pvalue: as it is when it is a plain
// address or domain (atext, dots, one @), else as a quoted-string with
// everything but printable ASCII replaced by '?'. The result never
// contains CR, LF or a character that could end the property.
func pvalue(s string) string {
	if len(s) > maxPvalue {
		s = s[:maxPvalue]
	}
	plain := s != "" && strings.Count(s, "@") <= 1 && s[0] != '@' && s[len(s)-1] != '@'
	for i := 0; plain && i < len(s); i++ {
		plain = isAtext(s[i]) || s[i] == '.' || s[i] == '@'
	}
	if plain {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// isAtext is RFC 5322's atext without the characters that mean something
// in a header read by filters behind us: ";" and "(" are already out;
// "/" and "=" are kept out too.
func isAtext(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-?^_`{|}~", c) >= 0
}

// RemoveOwnResults returns the message with every Authentication-Results
// field that claims authservID removed (RFC 8601 §5: a field with our id
// that arrives with a message is forged, and must be gone before ours is
// added). Fields of other authserv-ids pass unchanged, and so does the
// body. The id is compared case-insensitively, after any comments and
// folding; a field longer than 64 KiB is dropped whatever it claims (no
// real one is that long, and its id must not be hidden past a limit).
func RemoveOwnResults(r io.Reader, authservID string) io.Reader {
	if authservID == "" {
		return r
	}
	return &resultsStripper{br: bufio.NewReaderSize(r, 4096), id: authservID, atLineStart: true}
}

// resultsStripper streams the message: it holds at most one line fragment
// or one Authentication-Results field (maxResultsField) at a time, so a
// huge header costs no more memory than a small one.
type resultsStripper struct {
	br   *bufio.Reader
	id   string
	out  bytes.Buffer // read by the caller next
	cur  []byte       // the Authentication-Results field being collected
	err  error        // the end of the header's input (io.EOF or worse)
	body bool         // past the header: the rest passes as it is

	collecting, tooLong, atLineStart bool
}

func (s *resultsStripper) Read(p []byte) (int, error) {
	for s.out.Len() == 0 && !s.body && s.err == nil {
		s.step()
	}
	if s.out.Len() > 0 {
		return s.out.Read(p)
	}
	if s.body {
		return s.br.Read(p)
	}
	return 0, s.err
}

// flush ends the field being collected, keeping it unless it claims our
// id or was too long to tell.
func (s *resultsStripper) flush() {
	if s.collecting && !s.tooLong && !claims(s.cur, s.id) {
		s.out.Write(s.cur)
	}
	s.cur, s.collecting, s.tooLong = s.cur[:0], false, false
}

// step reads one line fragment of the header.
func (s *resultsStripper) step() {
	frag, err := s.br.ReadSlice('\n')
	if s.atLineStart && !(len(frag) > 0 && (frag[0] == ' ' || frag[0] == '\t')) {
		s.flush()
		if len(frag) == 0 && err != nil {
			s.err = err
			return
		}
		if bytes.Equal(frag, []byte("\r\n")) || bytes.Equal(frag, []byte("\n")) {
			s.out.Write(frag) // the empty line that ends the header
			s.body = true
			return
		}
		s.collecting = isResultsField(frag)
	}
	switch {
	case !s.collecting:
		s.out.Write(frag)
	case len(s.cur)+len(frag) > maxResultsField:
		s.tooLong, s.cur = true, s.cur[:0]
	case !s.tooLong:
		s.cur = append(s.cur, frag...)
	}
	if errors.Is(err, bufio.ErrBufferFull) {
		s.atLineStart = false
		return
	}
	if err != nil { // the message ended inside its header
		s.flush()
		s.err = err
		return
	}
	s.atLineStart = true
}

const maxResultsField = 64 << 10

// isResultsField: the line starts an Authentication-Results field (blanks
// before the colon tolerated, as RFC 5322's obsolete syntax allows).
func isResultsField(line []byte) bool {
	if len(line) < len(resultsField) || !bytes.EqualFold(line[:len(resultsField)], []byte(resultsField)) {
		return false
	}
	rest := bytes.TrimLeft(line[len(resultsField):], " \t")
	return len(rest) > 0 && rest[0] == ':'
}

// claims reports whether the raw field (name, colon, value, folding)
// names id as its authserv-id.
func claims(raw []byte, id string) bool {
	_, v, _ := bytes.Cut(raw, []byte(":"))
	got, ok := authservIDOf(string(v))
	return ok && strings.EqualFold(got, id)
}

// authservIDOf reads the authserv-id at the start of an
// Authentication-Results value (RFC 8601 §2.2: [CFWS] authserv-id, a
// token or a quoted-string), skipping comments and folding.
func authservIDOf(v string) (string, bool) {
	v = skipCFWS(v)
	if v == "" {
		return "", false
	}
	if v[0] == '"' {
		var b strings.Builder
		for i := 1; i < len(v); i++ {
			switch c := v[i]; c {
			case '\\':
				if i+1 < len(v) {
					i++
					b.WriteByte(v[i])
				}
			case '"':
				return b.String(), true
			case '\r', '\n':
			default:
				b.WriteByte(c)
			}
		}
		return "", false
	}
	end := strings.IndexFunc(v, func(r rune) bool {
		return r <= ' ' || r >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?=", r)
	})
	if end == 0 {
		return "", false
	}
	if end < 0 {
		end = len(v)
	}
	return v[:end], true
}

// skipCFWS drops leading whitespace, line breaks and (nested) comments.
func skipCFWS(v string) string {
	depth := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0, c == ' ', c == '\t', c == '\r', c == '\n', c == '\v', c == '\f':
		default:
			// Whitespace RFC 5322 does not know (VT, FF, NBSP…) is skipped
			// too: a reader that trims it would see our id behind it, so
			// such a field counts as claiming it and goes.
			if r, size := utf8.DecodeRuneInString(v[i:]); r != utf8.RuneError && unicode.IsSpace(r) {
				i += size - 1
				continue
			}
			return v[i:]
		}
	}
	return ""
}
