// Package digest is the recipients' quarantine digest: once a day each
// recipient with newly quarantined mail gets one message listing it, with
// signed links to release or delete each item, to see their whole
// quarantine and to opt out; the links are the only authority of the
// recipients' pages (/my/). The store decides who sends, so a digest goes
// out once per recipient and day across the cluster and its failovers.
package digest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Key is one signing key of the keyring.
type Key struct {
	// ID names the key in the links it signs: 8 lower-case hex digits.
	ID      string    `json:"id"`
	Secret  []byte    `json:"secret"` // 32 random bytes
	Created time.Time `json:"created"`
}

// Sending is the record of one recipient's digest of one day: claimed by
// Node before the send, and Sent once the downstream took it. A claim
// without Sent that stays is a send whose outcome is unknown: it is not
// sent again (as report.Mailing).
type Sending struct {
	Token   string    `json:"token"` // tells one claim from another
	Node    string    `json:"node"`
	Claimed time.Time `json:"claimed"`
	Items   int       `json:"items"`
	Sent    time.Time `json:"sent,omitzero"`
}

// Store is the digest's shared state as every backend implements it.
// Recipients are passed lower-cased (Fold); days are YYYY-MM-DD.
type Store interface {
	// Keys returns the signing keys (any order).
	Keys(ctx context.Context) ([]Key, error)
	// InitKey stores k unless a key exists, atomically (of two nodes
	// starting together one key wins), and returns the keys then.
	InitKey(ctx context.Context, k Key) ([]Key, error)
	// AddKey stores k and removes the keys named in drop.
	AddKey(ctx context.Context, k Key, drop []string) error

	// Claim records s as the sending of rcpt's digest of day unless one
	// is recorded; claimed tells which, and cur is the one recorded then
	// (s when claimed). Atomic: of concurrent claims one wins. Claims of
	// days long past are forgotten (ClaimDays).
	Claim(ctx context.Context, rcpt, day string, s Sending) (cur Sending, claimed bool, err error)
	// Finish ends the claim s: with sent, s (its Sent set) is recorded
	// for good; without, the claim is removed so that a later run sends.
	// A claim no longer s (another's) is left alone.
	Finish(ctx context.Context, rcpt, day string, s Sending, sent bool) error

	// SetOptOut records whether rcpt wants no digest.
	SetOptOut(ctx context.Context, rcpt string, out bool) error
	OptedOut(ctx context.Context, rcpt string) (bool, error)
	// OptOuts lists the recipients who opted out, sorted.
	OptOuts(ctx context.Context) ([]string, error)

	// Covered is the time up to which rcpt's items were in a digest
	// (zero: never); SetCovered moves it (never back).
	Covered(ctx context.Context, rcpt string) (time.Time, error)
	SetCovered(ctx context.Context, rcpt string, t time.Time) error

	// Dismiss hides item id from rcpt until until (the item's expiry):
	// deleted for them, kept for its other recipients.
	Dismiss(ctx context.Context, rcpt, id string, until time.Time) error
	// Dismissed are the ids rcpt dismissed that are not past until at now.
	Dismissed(ctx context.Context, rcpt string, now time.Time) (map[string]bool, error)
}

// ErrOff is what Send returns (wrapped) when digests are not enabled.
var ErrOff = errors.New("the quarantine digest is off (digest.enabled)")

// Outcomes of one recipient's digest.
const (
	Sent        = "sent"
	AlreadySent = "already sent today"
	OptedOut    = "opted out"
	NothingNew  = "nothing new"
	Failed      = "failed"
)

// Outcome is what a send did for one recipient.
type Outcome struct {
	Rcpt   string `json:"rcpt"`
	Result string `json:"result"` // Sent, AlreadySent, OptedOut, NothingNew or Failed
	Items  int    `json:"items,omitempty"`
	Reason string `json:"reason,omitempty"` // why it failed
}

// ClaimDays is how long a day's claims are kept: long enough that no
// node still works on that day.
const ClaimDays = 3

// DayFormat is how days are written.
const DayFormat = time.DateOnly

// maxRcpt bounds a recipient address (RFC 5321's path limit).
const maxRcpt = 256

// maxItemID bounds an item id (kv.CheckKey's limit).
const maxItemID = 255

// Fold is the one spelling of a recipient for keys, tokens and compares.
func Fold(rcpt string) string { return strings.ToLower(strings.TrimSpace(rcpt)) }

// checkRcpt validates a recipient before it becomes a key.
func checkRcpt(rcpt string) error {
	if rcpt == "" || len(rcpt) > maxRcpt || !strings.Contains(rcpt, "@") {
		return fmt.Errorf("recipient %q: want local@domain, at most %d bytes", rcpt, maxRcpt)
	}
	if rcpt != Fold(rcpt) {
		return fmt.Errorf("recipient %q is not lower-cased", rcpt)
	}
	for _, r := range rcpt {
		if r < 0x21 || r == 0x7f {
			return fmt.Errorf("recipient %q has a control character or space", rcpt)
		}
	}
	return nil
}

func checkDay(day string) error {
	if _, err := time.Parse(DayFormat, day); err != nil {
		return fmt.Errorf("day %q is not YYYY-MM-DD", day)
	}
	return nil
}

func checkID(id string) error {
	if id == "" || len(id) > maxItemID {
		return errors.New("item id of 0 or more than 255 bytes")
	}
	return nil
}

// oldestDay is the first day whose claims are kept when day is claimed.
func oldestDay(day string) string {
	d, _ := time.Parse(DayFormat, day)
	return d.AddDate(0, 0, -ClaimDays).Format(DayFormat)
}
