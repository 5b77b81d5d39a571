package scanner

import (
	"mime"
	"slices"
	"sort"
	"strconv"
	"strings"

	message "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// attachmentNames collects every file name a part claims, in every field
// and every form a client may take: go-message decodes RFC 2231 and RFC
// 2047, but the standard library drops RFC 2231 values in charsets other
// than UTF-8 and ASCII, gives up on a repeated or broken parameter, and
// prefers filename* to filename; clients differ on all of these, so each
// occurrence of name and filename, in each Content-Type and
// Content-Disposition field, is a name the policy sees.
func (w *walker) attachmentNames(h textproto.Header, part int) []string {
	var names []string
	add := func(n string) {
		n = strings.TrimSpace(n)
		if n == "" {
			return
		}
		if len(n) > maxNameLen {
			n = n[len(n)-maxNameLen:]
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	cds := h.Values("Content-Disposition")
	for _, cd := range cds {
		if _, params, err := mime.ParseMediaType(cd); err == nil {
			add(decodeWords(&mime.WordDecoder{}, params["filename"]))
			add(decodeWords(&mime.WordDecoder{}, params["name"]))
		}
		if containsFold(cd, "name") {
			for _, n := range paramValues(cd, "filename") {
				add(n)
			}
			for _, n := range paramValues(cd, "name") {
				add(n)
			}
		}
	}
	// go-message's own reading of the first fields.
	mh := message.Header{Header: h}
	if _, params, err := mh.ContentDisposition(); err == nil {
		add(params["filename"])
		add(params["name"])
	}
	cts := h.Values("Content-Type")
	for _, ct := range cts {
		if !containsFold(ct, "name") {
			continue
		}
		if _, params, err := mime.ParseMediaType(ct); err == nil {
			add(decodeWords(&mime.WordDecoder{}, params["name"]))
		}
		for _, n := range paramValues(ct, "name") {
			add(n)
		}
	}
	if len(cts) > 0 && containsFold(cts[0], "name") {
		if _, params, err := mh.ContentType(); err == nil {
			add(params["name"])
		}
	}
	if len(cds) > 1 && !slices.Equal(cds[1:], cds[:len(cds)-1]) {
		w.ambiguous(0, "part %d: %d different Content-Disposition fields", part, len(cds))
	}
	return names
}

func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// param is one "; key=value" parameter as lenientParams reads it.
type param struct {
	base     string // key without the RFC 2231 suffixes, lower case
	n        int    // continuation index, 0 without one
	indexed  bool   // key*N or key*N*
	extended bool   // key* or key*N*: charset'lang'percent-encoded
	val      string // unquoted, percent-decoded when extended
}

// parseParams reads the parameters of a header value as forgivingly as
// mail clients do: quotes honoured, RFC 2231 charsets and percent-encoding
// undone byte for byte (Latin-1 widened to UTF-8).
func parseParams(v string) []param {
	var out []param
	latin := map[string]bool{}
	_, rest, _ := strings.Cut(v, ";")
	for rest != "" {
		var item string
		item, rest = cutParam(rest)
		key, val, ok := strings.Cut(item, "=")
		if !ok {
			continue
		}
		key = strings.ToLower(strings.TrimSpace(key))
		val = strings.TrimSpace(val)
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = strings.ReplaceAll(val[1:len(val)-1], `\"`, `"`)
		}
		p := param{extended: strings.HasSuffix(key, "*")}
		key = strings.TrimSuffix(key, "*")
		base, idx, hasIdx := strings.Cut(key, "*")
		p.base, p.indexed = base, hasIdx
		if hasIdx {
			var err error
			if p.n, err = strconv.Atoi(idx); err != nil || p.n < 0 || p.n > 1000 {
				continue
			}
		}
		if p.extended {
			if p.n == 0 {
				if cs, rest, ok := strings.Cut(val, "'"); ok {
					if _, rest, ok = strings.Cut(rest, "'"); ok {
						val = rest
						latin1, _ := charsetKind(cs)
						latin[base] = latin1
					}
				}
			}
			val = percentDecode(val)
			if latin[base] {
				val = string(appendText(nil, []byte(val), true, len(val)))
			}
		}
		p.val = val
		out = append(out, p)
	}
	return out
}

// lenientParams is parseParams as a map: RFC 2231 continuations joined in
// order, RFC 2047 words decoded, and of a parameter given twice the first.
func lenientParams(v string) map[string]string {
	segs := map[string][]param{}
	for _, p := range parseParams(v) {
		if slices.ContainsFunc(segs[p.base], func(q param) bool { return q.n == p.n }) {
			continue
		}
		segs[p.base] = append(segs[p.base], p)
	}
	out := make(map[string]string, len(segs))
	for k, ss := range segs {
		out[k] = joinSegments(ss)
	}
	return out
}

func joinSegments(ss []param) string {
	sort.SliceStable(ss, func(i, j int) bool { return ss[i].n < ss[j].n })
	var b strings.Builder
	for _, s := range ss {
		b.WriteString(s.val)
	}
	return decodeWords(&mime.WordDecoder{}, b.String())
}

// paramValues is every value a client may take for parameter key, in
// order: each plain and each RFC 2231 occurrence on its own, then the
// RFC 2231 continuations joined.
func paramValues(v, key string) []string {
	var out, seen []string
	var cont []param
	add := func(s string) {
		if s != "" && !slices.Contains(seen, s) {
			seen = append(seen, s)
			out = append(out, s)
		}
	}
	for _, p := range parseParams(v) {
		if p.base != key {
			continue
		}
		if p.indexed {
			if !slices.ContainsFunc(cont, func(q param) bool { return q.n == p.n }) {
				cont = append(cont, p)
			}
			continue
		}
		add(decodeWords(&mime.WordDecoder{}, p.val))
	}
	if len(cont) > 0 {
		add(joinSegments(cont))
	}
	return out
}

// cutParam splits off the first parameter, honouring quotes.
func cutParam(s string) (item, rest string) {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if inQuote {
				i++
			}
		case '"':
			inQuote = !inQuote
		case ';':
			if !inQuote {
				return s[:i], s[i+1:]
			}
		}
	}
	return s, ""
}

func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && unhex(s[i+1]) < 16 && unhex(s[i+2]) < 16 {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}
