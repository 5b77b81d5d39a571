package smtpfront

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-smtp"

	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/msglog"
)

// The client decides how many recipients it tries in one transaction, so
// what the message log keeps of the refused ones is bounded: the first few
// in full, then only how many more there were.
const (
	refusedKeep     = 10   // entries kept per transaction
	refusedMaxBytes = 4096 // of the kept entries together
	refusedMaxEntry = 512  // one entry: an address and a (downstream) reply text
)

// refusedList is the refused recipients of a transaction, each with its
// reply and, for a block, the list entry.
type refusedList struct {
	kept  []msglog.Refusal
	bytes int
	more  int // refused but not kept
}

func (l *refusedList) add(rcpt string, err *smtp.SMTPError, entry *msglog.ListEntry) {
	rcpt = truncateUTF8(rcpt, refusedMaxEntry/2)
	text := truncateUTF8(fmt.Sprintf("%d %d.%d.%d %s", err.Code, err.EnhancedCode[0], err.EnhancedCode[1], err.EnhancedCode[2], err.Message), refusedMaxEntry-len(rcpt))
	n := len(rcpt) + len(text)
	if entry != nil {
		n += len(entry.Value) + len(entry.Rcpt) + len(entry.Comment)
	}
	if len(l.kept) >= refusedKeep || l.bytes+n > refusedMaxBytes {
		l.more++
		return
	}
	l.kept = append(l.kept, msglog.Refusal{Rcpt: rcpt, Reply: text, List: entry})
	l.bytes += n
}

func (l *refusedList) empty() bool { return len(l.kept) == 0 && l.more == 0 }

// refusals is the list for a record: the kept ones, then a count.
func (l *refusedList) refusals() []msglog.Refusal {
	if l.empty() {
		return nil
	}
	out := append([]msglog.Refusal(nil), l.kept...)
	if l.more > 0 {
		out = append(out, msglog.Refusal{Reply: l.moreText()})
	}
	return out
}

func (l *refusedList) moreText() string { return fmt.Sprintf("… %d more", l.more) }

// lines is one "<rcpt> reply" a refusal, for the log line.
func (l *refusedList) lines() []string {
	out := make([]string, 0, len(l.kept)+1)
	for _, f := range l.kept {
		out = append(out, "<"+f.Rcpt+"> "+f.Reply)
	}
	if l.more > 0 {
		out = append(out, l.moreText())
	}
	return out
}

func (l *refusedList) String() string { return strings.Join(l.lines(), "; ") }

// listEntry is e as the message log names it; nil for no entry.
func listEntry(e lists.Entry) *msglog.ListEntry {
	if e.Kind == "" {
		return nil
	}
	return &msglog.ListEntry{Kind: string(e.Kind), Value: e.Value, Rcpt: e.Rcpt, Comment: e.Comment}
}

// blockedReply names the block entry that refused a recipient, so the
// sender's postmaster can quote it and the administrator finds the line.
// The values are the sender's own address or domain, its client address
// and the recipient it gave: nothing it did not know. The comment stays in
// the log.
func blockedReply(e lists.Entry) *smtp.SMTPError {
	who := "Sender"
	if !strings.Contains(e.Value, "@") && !strings.HasPrefix(e.Value, ".") {
		who = "Client" // an IP address or network
	}
	text := fmt.Sprintf("%s blocked by list entry %s %s", who, e.Kind, e.Value)
	if e.Rcpt != "" {
		text += " (rcpt-specific for " + e.Rcpt + ")"
	}
	// An address and a recipient at their longest would pass RFC 5321's
	// 512-octet reply line.
	return reply(errBlocked.Code, errBlocked.EnhancedCode, truncateUTF8(text, 400))
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
