package smtpfront

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// The client decides how many recipients it tries in one transaction, so
// what the message log keeps of the refused ones is bounded: the first few
// in full, then only how many more there were.
const (
	refusedKeep     = 10   // entries kept per transaction
	refusedMaxBytes = 4096 // of the kept entries together
	refusedMaxEntry = 512  // one entry: an address and a (downstream) reply text
)

// refusedList is "rcpt: reply" of the refused recipients of a transaction.
type refusedList struct {
	kept  []string
	bytes int
	more  int // refused but not kept
}

func (l *refusedList) add(entry string) {
	entry = truncateUTF8(entry, refusedMaxEntry)
	if len(l.kept) >= refusedKeep || l.bytes+len(entry) > refusedMaxBytes {
		l.more++
		return
	}
	l.kept = append(l.kept, entry)
	l.bytes += len(entry)
}

func (l *refusedList) empty() bool { return len(l.kept) == 0 && l.more == 0 }

func (l *refusedList) String() string {
	s := strings.Join(l.kept, "; ")
	if l.more > 0 {
		s += fmt.Sprintf("; … %d more", l.more)
	}
	return s
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
