package rspamd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/mxgate/mxgate/engines"
	"github.com/mxgate/mxgate/scanner"
)

// Reply is Rspamd's verdict on one message, validated and sanitised: the
// action is one Rspamd defines, header names are field names, and no text
// carries a line break or another control character.
type Reply struct {
	Action     string  // "reject", "soft reject", "rewrite subject", "add header", "greylist", "no action" (also "quarantine", "discard")
	Score      float64 // the message's total
	Required   float64 // the reject threshold
	Symbols    []Symbol
	AddHeaders []Header // milter.add_headers, in Rspamd's order
	Subject    string   // the rewritten subject (action "rewrite subject")
	Skipped    bool     // Rspamd decided without running its rules (test patterns, settings)
	Message    string   // messages.smtp_message: the reason Rspamd gives the client
}

// Symbol is one of Rspamd's findings.
type Symbol struct {
	Name    string
	Score   float64
	Options []string
}

// Header is a header field Rspamd asks to add.
type Header struct{ Name, Value string }

// Bounds on what one reply may put into a verdict and the delivered
// message; a reply is at most maxReply bytes in any case.
const (
	maxSymbols     = 256
	maxSymbolName  = 64
	maxOptions     = 16
	maxOption      = 128
	maxDetail      = 256
	maxHeaders     = 32
	maxHeaderName  = 76
	maxHeaderLine  = 998 // RFC 5322's line limit: the field is written unfolded
	maxMessageText = 256
)

// actions maps Rspamd's actions to mxgate's. Rspamd's "soft reject" and
// "greylist" both ask the client to come back later; its "add header",
// "rewrite subject" and "no action" deliver (with the header or subject).
// "quarantine" and "discard" (force_actions) keep the message out of the
// mailbox: mxgate never drops mail silently, so both quarantine it.
var actions = map[string]scanner.Action{
	"reject":          scanner.ActionReject,
	"soft reject":     scanner.ActionTempfail,
	"greylist":        scanner.ActionTempfail,
	"add header":      scanner.ActionDeliver,
	"rewrite subject": scanner.ActionDeliver,
	"no action":       scanner.ActionDeliver,
	"quarantine":      scanner.ActionQuarantine,
	"discard":         scanner.ActionQuarantine,
}

// spamHeader is what Rspamd's own milter (rspamd_proxy's spam_header)
// adds for "add header" when the reply names no header of that name.
const spamHeader = "X-Spam"

type wireReply struct {
	Action   *string                    `json:"action"`
	Score    *float64                   `json:"score"`
	Required float64                    `json:"required_score"`
	Skipped  bool                       `json:"is_skipped"`
	Subject  string                     `json:"subject"`
	Symbols  map[string]wireSymbol      `json:"symbols"`
	Messages map[string]json.RawMessage `json:"messages"`
	Milter   struct {
		AddHeaders map[string]json.RawMessage `json:"add_headers"`
	} `json:"milter"`
}

type wireSymbol struct {
	Score   float64  `json:"score"`
	Options []string `json:"options"`
}

// parseReply reads a /checkv2 reply. Anything short of a JSON object with
// a known action and a score is an error: "no action" is never assumed.
func parseReply(b []byte) (Reply, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return Reply{}, fmt.Errorf("%w: empty reply", engines.ErrProtocol)
	}
	var w wireReply
	if err := json.Unmarshal(b, &w); err != nil {
		return Reply{}, fmt.Errorf("%w: reply is not the JSON expected: %v; reply %s", engines.ErrProtocol, err, quote(b))
	}
	if w.Action == nil {
		return Reply{}, fmt.Errorf("%w: reply without an action: %s", engines.ErrProtocol, quote(b))
	}
	if _, ok := actions[*w.Action]; !ok {
		return Reply{}, fmt.Errorf("%w: unknown action %s", engines.ErrProtocol, quote([]byte(*w.Action)))
	}
	if w.Score == nil {
		return Reply{}, fmt.Errorf("%w: reply without a score: %s", engines.ErrProtocol, quote(b))
	}
	r := Reply{Action: *w.Action, Score: *w.Score, Required: w.Required, Skipped: w.Skipped}
	if r.Action == "rewrite subject" {
		r.Subject = headerValue(w.Subject, maxHeaderLine-len("Subject: "))
		if r.Subject == "" {
			return Reply{}, fmt.Errorf("%w: action %q without a subject", engines.ErrProtocol, r.Action)
		}
	}
	if raw, ok := w.Messages["smtp_message"]; ok {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Reply{}, fmt.Errorf("%w: messages.smtp_message is not a string: %s", engines.ErrProtocol, quote(raw))
		}
		r.Message = truncate(clean(s), maxMessageText)
	}
	r.Symbols = symbols(w.Symbols)
	h, err := addHeaders(w.Milter.AddHeaders)
	if err != nil {
		return Reply{}, err
	}
	r.AddHeaders = h
	return r, nil
}

// symbols are the reply's symbols by name, the maxSymbols weightiest if
// there are more.
func symbols(m map[string]wireSymbol) []Symbol {
	out := make([]Symbol, 0, len(m))
	for n, s := range m {
		n = symbolName(n)
		if n == "" {
			continue
		}
		sym := Symbol{Name: n, Score: s.Score}
		for _, o := range s.Options {
			if len(sym.Options) == maxOptions {
				break
			}
			sym.Options = append(sym.Options, truncate(clean(o), maxOption))
		}
		out = append(out, sym)
	}
	if len(out) > maxSymbols {
		sort.Slice(out, func(i, j int) bool {
			a, b := math.Abs(out[i].Score), math.Abs(out[j].Score)
			return a > b || a == b && out[i].Name < out[j].Name
		})
		out = out[:maxSymbols]
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// symbolName keeps a symbol name to the letters, digits and underscores
// Rspamd's own names use, so that RSPAMD_<name> is one token in headers
// and logs.
func symbolName(n string) string {
	n = strings.Map(func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			return r
		}
		return '_'
	}, n)
	return truncate(n, maxSymbolName)
}

// addHeaders reads milter.add_headers: name → a value, {value, order}, or
// a list of those (one field each). A malformed entry is an error; a
// field that cannot be written safely is left out.
func addHeaders(m map[string]json.RawMessage) ([]Header, error) {
	type field struct {
		Header
		order int64
	}
	var fields []field
	for n, raw := range m {
		vals, err := headerValues(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: milter.add_headers[%s]: %v", engines.ErrProtocol, quote([]byte(n)), err)
		}
		if !fieldName(n) {
			continue
		}
		for _, v := range vals {
			s := headerValue(v.Value, maxHeaderLine-len(n)-len(": "))
			if s == "" {
				continue
			}
			order := int64(0)
			if v.Order != nil && *v.Order >= math.MinInt32 && *v.Order <= math.MaxInt32 {
				order = int64(*v.Order)
			}
			fields = append(fields, field{Header{n, s}, order})
		}
	}
	sort.SliceStable(fields, func(i, j int) bool {
		a, b := fields[i], fields[j]
		if a.order != b.order {
			return a.order < b.order
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Value < b.Value
	})
	out := make([]Header, 0, min(len(fields), maxHeaders))
	for _, f := range fields {
		if len(out) == maxHeaders {
			break
		}
		out = append(out, f.Header)
	}
	return out, nil
}

type headerEntry struct {
	Value string   `json:"value"`
	Order *float64 `json:"order"`
}

// headerValues reads one add_headers entry in any of its shapes.
func headerValues(raw json.RawMessage) ([]headerEntry, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, fmt.Errorf("empty")
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []headerEntry{{Value: s}}, nil
	case '{':
		var e struct {
			Value *string  `json:"value"`
			Order *float64 `json:"order"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, err
		}
		if e.Value == nil {
			return nil, fmt.Errorf("object without a value")
		}
		return []headerEntry{{Value: *e.Value, Order: e.Order}}, nil
	case '[':
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, err
		}
		var out []headerEntry
		for _, item := range list {
			if t := bytes.TrimSpace(item); len(t) > 0 && t[0] == '[' {
				return nil, fmt.Errorf("nested list")
			}
			vs, err := headerValues(item)
			if err != nil {
				return nil, err
			}
			out = append(out, vs...)
		}
		return out, nil
	}
	return nil, fmt.Errorf("neither a string, an object nor a list: %s", quote(raw))
}

// fieldName: a header field name (RFC 5322: printable ASCII but ':'),
// bounded, and not one of mxgate's own X-Mxgate-* fields, which only
// mxgate writes.
func fieldName(n string) bool {
	if n == "" || len(n) > maxHeaderName || strings.HasPrefix(strings.ToLower(n), "x-mxgate-") {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] < 33 || n[i] > 126 || n[i] == ':' {
			return false
		}
	}
	return true
}

// headerValue makes s a header field body of at most limit bytes: folded
// lines joined, any other line break or control character a space (so
// that nothing can start a header of its own), and encoded words (RFC
// 2047) where it is not ASCII.
func headerValue(s string, limit int) string {
	s = clean(s)
	if isASCII(s) {
		return truncate(s, limit)
	}
	for raw := truncate(s, limit); raw != ""; raw = truncate(raw, len(raw)*3/4) {
		if enc := mime.QEncoding.Encode("utf-8", raw); len(enc) <= limit {
			return enc
		}
	}
	return ""
}

// clean unfolds s and replaces every other control character by a space;
// invalid UTF-8 becomes '?'.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "?")
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		if r == '\r' || r == '\n' {
			// A line break followed by white space is folding: the break
			// goes and the white space stays. Any other is a space.
			j := i
			for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
				j++
			}
			i = j
			if j < len(s) && (s[j] == ' ' || s[j] == '\t') {
				continue
			}
			b.WriteByte(' ')
			continue
		}
		if r == '\t' || r >= 0x20 && r != 0x7f && (r < 0x80 || r > 0x9f) {
			b.WriteRune(r)
			continue
		}
		b.WriteByte(' ')
	}
	return strings.TrimSpace(b.String())
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// truncate cuts s to at most n bytes on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.TrimSpace(s[:n])
}

// SymbolUnlisted holds the part of Rspamd's score its symbols do not add
// up to, so that they always do.
const SymbolUnlisted = "RSPAMD_UNLISTED"

// result maps the reply into mxgate's terms: symbols prefixed RSPAMD_
// with their scores, the action mapped (the scanner's merge keeps the
// stricter of it and mxgate's own), headers as "Name: value".
func (r Reply) result() scanner.EngineResult {
	res := scanner.EngineResult{Action: actions[r.Action], Score: r.Score}
	listed := 0.0
	for _, s := range r.Symbols {
		res.Symbols = append(res.Symbols, scanner.Symbol{
			Name:   "RSPAMD_" + s.Name,
			Score:  s.Score,
			Detail: truncate(strings.Join(s.Options, ", "), maxDetail),
		})
		listed += s.Score
	}
	// The scanner adds the symbols' scores, not the total: Rspamd's total
	// can differ from their sum (group limits; a skipped message such as
	// GTUBE scores 15 with a symbol of 0), and its score must count whole.
	if d := r.Score - listed; math.Abs(d) >= 0.005 {
		res.Symbols = append(res.Symbols, scanner.Symbol{
			Name:   SymbolUnlisted,
			Score:  d,
			Detail: fmt.Sprintf("rspamd's score %.2f, its symbols %.2f", r.Score, listed),
		})
	}
	spam := false
	for _, h := range r.AddHeaders {
		res.Headers = append(res.Headers, h.Name+": "+h.Value)
		spam = spam || strings.EqualFold(h.Name, spamHeader)
	}
	if r.Action == "add header" && !spam {
		res.Headers = append(res.Headers, spamHeader+": Yes")
	}
	if r.Action == "rewrite subject" {
		res.Subject = r.Subject
	}
	return res
}
