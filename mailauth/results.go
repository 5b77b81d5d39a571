package mailauth

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
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
	br := bufio.NewReaderSize(r, 4096)
	var kept bytes.Buffer
	var cur []byte // the Authentication-Results field being collected
	collecting, tooLong := false, false
	flush := func() {
		if collecting && !tooLong && !claims(cur, authservID) {
			kept.Write(cur)
		}
		cur, collecting, tooLong = cur[:0], false, false
	}
	atLineStart := true
	for {
		frag, err := br.ReadSlice('\n')
		if atLineStart && !(len(frag) > 0 && (frag[0] == ' ' || frag[0] == '\t')) {
			flush()
			if len(frag) == 0 || bytes.Equal(frag, []byte("\r\n")) || bytes.Equal(frag, []byte("\n")) {
				kept.Write(frag) // the empty line that ends the header
				return io.MultiReader(&kept, br)
			}
			collecting = isResultsField(frag)
		}
		switch {
		case !collecting:
			kept.Write(frag)
		case len(cur)+len(frag) > maxResultsField:
			tooLong, cur = true, cur[:0]
		case !tooLong:
			cur = append(cur, frag...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			atLineStart = false
			continue
		}
		if err != nil { // the message ended inside its header
			flush()
			return &kept
		}
		atLineStart = true
	}
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
		case depth > 0, c == ' ', c == '\t', c == '\r', c == '\n':
		default:
			return v[i:]
		}
	}
	return ""
}
