package journal

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/mxgate/mxgate/kv"
	"github.com/mxgate/mxgate/msglog"
)

// trimSteps are the ever tighter cuts encodeRecord applies to a record too
// large for one entry: the longest string kept, the most list items kept.
// The last one fits maxPayload whatever the record held (strings escape to
// at most 6 bytes a byte in JSON).
var trimSteps = []struct{ str, items int }{{1024, 50}, {64, 10}}

// encodeRecord is r as an entry payload. A record larger than maxPayload
// is shortened (trimmed reports it) rather than lost: its key, action and
// verdict stay whole, long strings and lists are cut with a note of what
// was left out.
func encodeRecord(r msglog.Record) (payload []byte, trimmed bool, err error) {
	if err := kv.CheckKey(r.ID, r.Time); err != nil {
		return nil, false, fmt.Errorf("%w: %w", errInvalid, err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", errInvalid, err)
	}
	for _, step := range trimSteps {
		if len(b) <= maxPayload {
			return b, trimmed, nil
		}
		b, err = json.Marshal(trimRecord(r, step.str, step.items))
		if err != nil {
			return nil, false, fmt.Errorf("%w: %w", errInvalid, err)
		}
		trimmed = true
	}
	if len(b) > maxPayload {
		return nil, false, errTooLarge
	}
	return b, trimmed, nil
}

// trimRecord copies r with every free-text field cut to maxStr bytes and
// every list to maxItems entries (the last one saying how many more there
// were). ID and Time are the store key and stay as they are.
func trimRecord(r msglog.Record, maxStr, maxItems int) msglog.Record {
	cut := func(s string) string { return cutString(s, maxStr) }
	list := func(l []string) []string {
		var out []string
		for i, s := range l {
			if i == maxItems-1 && len(l) > maxItems {
				return append(out, fmt.Sprintf("… %d more", len(l)-i))
			}
			out = append(out, cut(s))
		}
		return out
	}
	r.ClientIP, r.Helo, r.Sender = cut(r.ClientIP), cut(r.Helo), cut(r.Sender)
	r.Action, r.Verdict, r.Node = cut(r.Action), cut(r.Verdict), cut(r.Node)
	r.Reply, r.Downstream, r.QuarantineID = cut(r.Reply), cut(r.Downstream), cut(r.QuarantineID)
	r.Recipients, r.Symbols, r.Viruses = list(r.Recipients), list(r.Symbols), list(r.Viruses)
	entry := func(e *msglog.ListEntry) *msglog.ListEntry {
		if e == nil {
			return nil
		}
		return &msglog.ListEntry{Kind: cut(e.Kind), Value: cut(e.Value), Rcpt: cut(e.Rcpt), Comment: cut(e.Comment)}
	}
	r.List = entry(r.List)
	var refused []msglog.Refusal
	for i, f := range r.Refused {
		if i == maxItems-1 && len(r.Refused) > maxItems {
			refused = append(refused, msglog.Refusal{Reply: fmt.Sprintf("… %d more", len(r.Refused)-i)})
			break
		}
		refused = append(refused, msglog.Refusal{Rcpt: cut(f.Rcpt), Reply: cut(f.Reply), List: entry(f.List)})
	}
	r.Refused = refused
	return r
}

// cutString cuts s to at most n bytes on a rune boundary, marking the cut.
func cutString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// decodeRecord is the record in an entry payload, checked as Append checks
// it, since the payload came from disk.
func decodeRecord(payload []byte) (msglog.Record, error) {
	var r msglog.Record
	if err := json.Unmarshal(payload, &r); err != nil {
		return r, err
	}
	if err := kv.CheckKey(r.ID, r.Time); err != nil {
		return r, err
	}
	return r, nil
}
