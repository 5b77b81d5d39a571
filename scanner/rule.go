package scanner

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Rule is one compiled regex rule of the rule language (SpamAssassin-like,
// one rule per line):
//
//	NAME header Field-Name =~ /regex/flags SCORE
//	NAME header Field-Name !~ /regex/flags SCORE
//	NAME body /regex/flags SCORE      decoded text/plain and text/html parts
//	NAME rawbody /regex/flags SCORE   raw message bytes (a bounded prefix)
//
// NAME is 1 to 64 of A-Z, 0-9 and _; flags are i (case-insensitive),
// s (. matches newline) and m (^ and $ match at line ends); a / inside the
// regex is written \/. SCORE is a finite float and may be negative. The
// field name ALL matches the whole header block. Regexes are Go RE2: matching
// is linear in the input, there is no catastrophic backtracking.
type Rule struct {
	Name  string
	Score float64

	kind    string // "header", "body" or "rawbody"
	field   string // header field as written
	negate  bool   // !~
	pattern string // regex source between the slashes, as written
	flags   string // subset of "ims" in that order
	re      *regexp.Regexp
	pre     []string // see prefilterFor
}

const (
	kindHeader  = "header"
	kindBody    = "body"
	kindRawbody = "rawbody"

	maxRuleLen     = 4096
	maxRuleNameLen = 64
	maxFieldLen    = 128
)

// ParseRule parses and compiles one rule. Errors name the problem and the
// column (1-based, in characters) where it is.
func ParseRule(s string) (Rule, error) {
	p := ruleParser{s: s}
	r, err := p.parse()
	if err != nil {
		return Rule{}, err
	}
	return r, nil
}

type ruleParser struct {
	s   string
	pos int
}

func (p *ruleParser) errorf(pos int, format string, a ...any) error {
	col := utf8.RuneCountInString(p.s[:pos]) + 1
	return fmt.Errorf("column %d: %s", col, fmt.Sprintf(format, a...))
}

func (p *ruleParser) skipSpace() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

// token returns the next run of non-blank characters and where it starts.
func (p *ruleParser) token() (string, int) {
	p.skipSpace()
	start := p.pos
	for p.pos < len(p.s) && p.s[p.pos] != ' ' && p.s[p.pos] != '\t' {
		p.pos++
	}
	return p.s[start:p.pos], start
}

func (p *ruleParser) parse() (Rule, error) {
	var r Rule
	if len(p.s) > maxRuleLen {
		return r, p.errorf(0, "rule is longer than %d bytes", maxRuleLen)
	}
	for i := 0; i < len(p.s); i++ {
		if c := p.s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return r, p.errorf(i, "control character %q (a rule is one line)", c)
		}
	}
	if !utf8.ValidString(p.s) {
		return r, p.errorf(0, "rule is not valid UTF-8")
	}

	name, at := p.token()
	if name == "" {
		return r, p.errorf(at, "empty rule")
	}
	if !validRuleName(name) {
		return r, p.errorf(at, "name %q must be 1 to %d of A-Z, 0-9 and _", name, maxRuleNameLen)
	}
	r.Name = name

	kind, at := p.token()
	switch kind {
	case kindHeader, kindBody, kindRawbody:
		r.kind = kind
	case "":
		return r, p.errorf(at, "missing kind (want header, body or rawbody)")
	default:
		return r, p.errorf(at, "unknown kind %q (want header, body or rawbody)", kind)
	}

	if kind == kindHeader {
		field, at := p.token()
		if field == "" {
			return r, p.errorf(at, "missing header field name")
		}
		if len(field) > maxFieldLen {
			return r, p.errorf(at, "header field name is longer than %d characters", maxFieldLen)
		}
		for i := 0; i < len(field); i++ {
			if c := field[i]; c < 33 || c > 126 || c == ':' {
				return r, p.errorf(at+i, "header field name %q: invalid character %q", field, c)
			}
		}
		r.field = field
		op, at := p.token()
		switch op {
		case "=~":
		case "!~":
			r.negate = true
		case "":
			return r, p.errorf(at, "missing operator (want =~ or !~)")
		default:
			return r, p.errorf(at, "unknown operator %q (want =~ or !~)", op)
		}
	}

	p.skipSpace()
	if p.pos >= len(p.s) {
		return r, p.errorf(p.pos, "missing regex (want /regex/flags)")
	}
	if p.s[p.pos] != '/' {
		return r, p.errorf(p.pos, "regex must start with / (want /regex/flags)")
	}
	reStart := p.pos + 1
	end := -1
	for i := reStart; i < len(p.s); i++ {
		if p.s[i] == '\\' {
			i++
			continue
		}
		if p.s[i] == '/' {
			end = i
			break
		}
	}
	if end < 0 {
		return r, p.errorf(p.pos, "unterminated regex (missing closing /)")
	}
	r.pattern = p.s[reStart:end]
	p.pos = end + 1

	var seen [3]bool
	for ; p.pos < len(p.s) && p.s[p.pos] != ' ' && p.s[p.pos] != '\t'; p.pos++ {
		i := strings.IndexByte("ims", p.s[p.pos])
		if i < 0 {
			c, _ := utf8.DecodeRuneInString(p.s[p.pos:])
			return r, p.errorf(p.pos, "unknown regex flag %q (want i, s or m)", c)
		}
		if seen[i] {
			return r, p.errorf(p.pos, "duplicate regex flag %q", p.s[p.pos])
		}
		seen[i] = true
	}
	for i, f := range "ims" {
		if seen[i] {
			r.flags += string(f)
		}
	}

	src := r.pattern
	if r.flags != "" {
		src = "(?" + r.flags + ")" + src
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return r, p.errorf(reStart, "regex: %v", err)
	}
	r.re = re
	if r.kind != kindHeader {
		r.pre = prefilterFor(src)
	}

	score, at := p.token()
	if score == "" {
		return r, p.errorf(at, "missing score")
	}
	f, err := strconv.ParseFloat(score, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return r, p.errorf(at, "score %q is not a finite number", score)
	}
	r.Score = f

	if rest, at := p.token(); rest != "" {
		return r, p.errorf(at, "unexpected %q after the score", rest)
	}
	return r, nil
}

func validRuleName(s string) bool {
	if len(s) == 0 || len(s) > maxRuleNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// String returns the rule in the rule language; ParseRule reads it back to
// the same rule.
func (r Rule) String() string {
	var b strings.Builder
	b.WriteString(r.Name)
	b.WriteByte(' ')
	b.WriteString(r.kind)
	if r.kind == kindHeader {
		b.WriteByte(' ')
		b.WriteString(r.field)
		if r.negate {
			b.WriteString(" !~ ")
		} else {
			b.WriteString(" =~ ")
		}
	} else {
		b.WriteByte(' ')
	}
	b.WriteByte('/')
	b.WriteString(r.pattern)
	b.WriteByte('/')
	b.WriteString(r.flags)
	b.WriteByte(' ')
	b.WriteString(strconv.FormatFloat(r.Score, 'g', -1, 64))
	return b.String()
}
