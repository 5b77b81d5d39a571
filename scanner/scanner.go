// Package scanner decides what happens to one message: a pipeline of
// built-in checks (GTUBE, EICAR, attachment policy, malformed MIME, regex
// rules, size, allowlist) adds scores and symbols rspamd-style, and the
// thresholds turn the sum into an action. A Pool runs scans with bounded
// concurrency and a bounded queue; a Dispatcher spreads scans over several
// workers by weight.
package scanner

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/mxgate/mxgate/spool"
)

// Envelope is the SMTP envelope of a message.
type Envelope struct {
	ClientIP   netip.Addr
	Helo       string
	Sender     string
	Recipients []string
}

// Message is one message to scan.
type Message struct {
	ID          string // gateway queue id
	Env         Envelope
	Body        *spool.Buffer // raw RFC 5322 message as received (CRLF line ends)
	Allowlisted bool          // lists said "allow" for this envelope (set by smtpfront)
	AllowedBy   string        // the allow entry that said so, for the symbol's detail
	// SkipAttachments: the allow entry also waives the attachment policy
	// (skip_attachments). Without it an allowlisted message still has its
	// banned attachments quarantined; viruses and content past a scan
	// limit are never waived. Meaningless without Allowlisted.
	SkipAttachments bool
	// Symbols are findings of the SMTP front end before DATA (DNSBL
	// listings with their scores), merged into the verdict like a check's.
	Symbols []Symbol
}

// Symbol is one named finding and its score.
type Symbol struct {
	Name   string
	Score  float64
	Detail string // for logs and the quarantine; may quote (sanitised) message content
}

// Action is what the gateway does with a message.
type Action string

const (
	ActionDeliver    Action = "deliver"
	ActionQuarantine Action = "quarantine"
	ActionReject     Action = "reject"
	ActionTempfail   Action = "tempfail"
)

// Verdict is the outcome of a scan.
type Verdict struct {
	Action  Action
	Class   string // "clean" | "spam" | "virus" | "banned" | "unscannable" | "engine_failed" | "policy"
	Score   float64
	Symbols []Symbol
	Viruses []string // e.g. "Eicar-Test-Signature"
	Reason  string   // one short line safe to show the client (for reject)
	Node    string   // node id that scanned
	// ExtraHeaders are header lines ("Name: value") added on delivery
	// after the X-Mxgate ones: the engines' (Rspamd's milter.add_headers),
	// X-Mxgate-Subject-Rewrite, X-Mxgate-Engine-Failed. Headers cleans
	// them again, for they may come from a peer.
	ExtraHeaders []string
}

// Classes of a verdict, as the quarantine and the message log name them.
const (
	classClean  = "clean"
	classSpam   = "spam"
	classVirus  = "virus"
	classBanned = "banned"
	// Content past a scan limit: not looked at, so not clean (OnLimit).
	classUnscannable = "unscannable"
	// A sender's published policy decided (DMARC p=reject): an engine's
	// EngineResult.Class.
	classPolicy = "policy"
)

// Classes are the classes this scanner's verdicts have, a fixed set for
// metric labels; a verdict from an engine or a peer may name another.
func Classes() []string {
	return []string{classClean, classSpam, classVirus, classBanned, classUnscannable, classEngineFailed, classPolicy}
}

// Worker scans messages. *Pool and *Dispatcher implement it.
type Worker interface {
	Scan(ctx context.Context, m *Message) (Verdict, error)
}

// ErrOverloaded means no worker slot and no queue place was free; the SMTP
// front end answers 451 4.3.2 so the sender retries later.
var ErrOverloaded = errors.New("scanner overloaded")

// maxHeaderLine is where X-Mxgate-Symbols is folded (RFC 5322 §2.1.1
// recommends 78 characters).
const maxHeaderLine = 78

// Headers returns the header lines to prepend on delivery, each "Name: value"
// without a trailing CRLF:
//
//	X-Mxgate-Verdict: deliver (clean)
//	X-Mxgate-Score: 1.50
//	X-Mxgate-Symbols: MIME_MALFORMED(1.00), RULE_X(0.50)
//	X-Mxgate-Node: n1
//
// Symbols are sorted by name; the line is omitted when there are none. A long
// symbol list is folded with CRLF + TAB (RFC 5322 §2.2.3): that is the only
// CR or LF a line can contain, so nothing from the message (or from a peer's
// verdict) can start a header of its own.
func (v Verdict) Headers() []string {
	out := make([]string, 0, 4)
	out = append(out, "X-Mxgate-Verdict: "+cleanValue(string(v.Action))+" ("+cleanValue(v.Class)+")")
	out = append(out, "X-Mxgate-Score: "+strconv.FormatFloat(v.Score, 'f', 2, 64))
	// Always present, empty when nothing matched, so filters downstream can
	// rely on the field being there.
	if len(v.Symbols) == 0 {
		out = append(out, "X-Mxgate-Symbols:")
	} else {
		syms := slices.Clone(v.Symbols)
		sortSymbols(syms)
		var b strings.Builder
		b.WriteString("X-Mxgate-Symbols: ")
		lineLen := b.Len()
		var item []byte
		for i, s := range syms {
			item = item[:0]
			item = appendSymbolName(item, s.Name)
			item = append(item, '(')
			item = strconv.AppendFloat(item, s.Score, 'f', 2, 64)
			item = append(item, ')')
			if i > 0 {
				if lineLen+2+len(item) > maxHeaderLine {
					b.WriteString(",\r\n\t")
					lineLen = 1
				} else {
					b.WriteString(", ")
					lineLen += 2
				}
			}
			b.Write(item)
			lineLen += len(item)
		}
		out = append(out, b.String())
	}
	out = append(out, "X-Mxgate-Node: "+cleanValue(v.Node))
	for i, h := range v.ExtraHeaders {
		if i == maxExtraHeaders {
			break
		}
		if name, _, ok := strings.Cut(h, ":"); ok && name != "" && isFieldName(name) {
			out = append(out, cleanHeaderLine(h))
		}
	}
	return out
}

// sortSymbols gives every verdict one deterministic order.
func sortSymbols(s []Symbol) {
	slices.SortStableFunc(s, func(a, b Symbol) int { return strings.Compare(a.Name, b.Name) })
}

// appendSymbolName keeps symbol names to [A-Za-z0-9_.-]: verdicts can come
// from peers, and a name is written into a header unquoted.
func appendSymbolName(b []byte, name string) []byte {
	if name == "" {
		return append(b, '_')
	}
	for i := 0; i < len(name) && i < 64; i++ {
		c := name[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' {
			b = append(b, c)
		} else {
			b = append(b, '_')
		}
	}
	return b
}

// cleanValue makes s safe as (part of) an unstructured header value:
// printable ASCII only, bounded length.
func cleanValue(s string) string {
	const maxLen = 64
	ok := len(s) <= maxLen
	for i := 0; ok && i < len(s); i++ {
		ok = s[i] >= 0x20 && s[i] < 0x7f
	}
	if ok {
		return s
	}
	b := make([]byte, 0, min(len(s), maxLen))
	for i := 0; i < len(s) && len(b) < maxLen; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b = append(b, c)
		} else {
			b = append(b, '?')
		}
	}
	return string(b)
}

// cleanDetail makes text taken from a message (file names, parser errors)
// safe for logs and the quarantine: valid UTF-8, no control characters,
// bounded length.
func cleanDetail(s string) string {
	const maxLen = 200
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= maxLen {
			b.WriteString("…")
			break
		}
		switch {
		case r == '\uFFFD', r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0,
			r >= 0x200b && r <= 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			// Controls and bidi overrides ("exe.pdf" shown for "fdp.exe") are
			// replaced so a log line shows what the file really is called.
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
