// Package quarantine keeps messages the scanner held back, with the metadata
// needed to find them again (by time, recipient, sender and verdict), until
// an operator releases or deletes them or their retention runs out.
package quarantine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mxgate/mxgate/boltkv"
)

// ErrNotFound is returned (wrapped) when an item does not exist.
var ErrNotFound = errors.New("quarantine item not found")

// ErrExists is returned (wrapped) by Put when the id is already used: ids are
// queue ids given by the front end, so a second Put is a caller bug and must
// not silently replace a held message.
var ErrExists = errors.New("quarantine item already exists")

// Item is the metadata of one quarantined message.
type Item struct {
	ID         string    `json:"id"`
	Time       time.Time `json:"time"`
	ClientIP   string    `json:"client_ip"`
	Helo       string    `json:"helo"`
	Sender     string    `json:"sender"`
	Recipients []string  `json:"recipients"`
	Verdict    string    `json:"verdict"` // class: spam|virus|banned|unscannable|policy
	Score      float64   `json:"score"`
	Symbols    []string  `json:"symbols"` // "NAME(score)"
	Viruses    []string  `json:"viruses,omitempty"`
	Node       string    `json:"node"`
	Size       int64     `json:"size"`
	Subject    string    `json:"subject"`
	MessageID  string    `json:"message_id"`
	// omitzero, not omitempty: encoding/json never treats a struct as empty.
	Released time.Time `json:"released,omitzero"` // the latest completed release; zero = none
	Expires  time.Time `json:"expires"`           // zero = kept until deleted
	// Digest identifies the message for its envelope (MessageDigest); an
	// item with one is the only one holding that message: a Put of the
	// same message under another id is answered with the first id
	// (DuplicateError), so a client's retransmission makes no second copy.
	// "" = no such check.
	Digest string `json:"digest,omitempty"`
	// Claim is the release under way (see Store.ClaimRelease); nil = none.
	Claim *Release `json:"release_claim,omitempty"`
	// Releases are the completed releases, oldest first, at most
	// MaxReleaseHistory (the latest ones).
	Releases []Release `json:"releases,omitempty"`
}

// Filter selects items for List. Empty fields do not filter. Rcpt, Sender
// and Verdict compare case-insensitively and exactly (Rcpt matches any of
// the item's recipients). The time range is half-open: Since <= Time < Until.
type Filter struct {
	Rcpt, Sender, Verdict string
	Since, Until          time.Time
	Limit                 int // 0 = DefaultLimit; capped at MaxLimit
}

const (
	DefaultLimit = 1000
	// MaxLimit bounds one answer so a careless query cannot make the
	// gateway allocate without bound.
	MaxLimit = 10000
)

// Store is the quarantine as every backend implements it.
type Store interface {
	// Put stores a new item and its raw message; when it returns nil the
	// write is durable (the SMTP 250 depends on it). Put is idempotent: the
	// same item and message again under the same id return nil. An id in
	// use for another item is ErrExists; an item whose Digest another live
	// item has is a *DuplicateError naming that item, and nothing is
	// stored.
	Put(ctx context.Context, it Item, raw []byte) error
	Get(ctx context.Context, id string) (Item, error)
	Raw(ctx context.Context, id string) ([]byte, error)
	// List returns matching items, newest first.
	List(ctx context.Context, f Filter) ([]Item, error)
	Delete(ctx context.Context, id string) error
	// ClaimRelease records r as the item's release claim, atomically, and
	// returns the item as it was before. An item being released (a claim
	// is set) or released before is not claimed again unless r.Forced:
	// then the error wraps ErrReleaseConflict and the item returned is
	// the current one, whose Claim or last Release names the first. The
	// stored claim has Forced only when it did override one of those.
	ClaimRelease(ctx context.Context, id string, r Release) (Item, error)
	// FinishRelease ends the claim r (matched by r.Token): delivered
	// records r as a completed release at r.Done; otherwise the claim is
	// given back so that a release can be tried again. A claim replaced
	// meanwhile by a forced one is left alone (the delivery is recorded
	// all the same).
	FinishRelease(ctx context.Context, id string, r Release, delivered bool) error
	// Expire deletes every item with a non-zero Expires <= now and returns
	// how many it deleted.
	Expire(ctx context.Context, now time.Time) (int, error)
}

// EffectiveLimit is Limit with its default and cap applied.
func (f Filter) EffectiveLimit() int {
	switch {
	case f.Limit <= 0:
		return DefaultLimit
	case f.Limit > MaxLimit:
		return MaxLimit
	}
	return f.Limit
}

// fold is the one case folding used for index keys and for filtering, so
// that an index lookup and a scan always agree.
func fold(s string) string { return strings.ToLower(s) }

// Match reports whether it passes the filter (the limit aside): every
// backend filters with this, so they agree to the letter.
func (f Filter) Match(it Item) bool {
	if f.Rcpt != "" && !slices.ContainsFunc(it.Recipients, func(r string) bool { return fold(r) == fold(f.Rcpt) }) {
		return false
	}
	if f.Sender != "" && fold(it.Sender) != fold(f.Sender) {
		return false
	}
	if f.Verdict != "" && fold(it.Verdict) != fold(f.Verdict) {
		return false
	}
	return boltkv.InRange(it.Time, f.Since, f.Until)
}

// validate rejects what the indexes cannot hold: the time keys are unix
// nanoseconds, which cover 1970 to 2262.
func validate(it Item) error {
	if err := boltkv.CheckKey(it.ID, it.Time); err != nil {
		return err
	}
	if !it.Expires.IsZero() && !boltkv.Indexable(it.Expires) {
		return fmt.Errorf("expiry %v outside 1970..2262", it.Expires)
	}
	return ValidateDigest(it.Digest)
}

// ValidateDigest checks an item's digest (an index key) for every backend:
// "" or lower-case hex (as MessageDigest makes it), at most maxDigest long.
func ValidateDigest(d string) error {
	if len(d) > maxDigest {
		return fmt.Errorf("digest of %d bytes (at most %d)", len(d), maxDigest)
	}
	if strings.IndexFunc(d, func(r rune) bool { return (r < '0' || r > '9') && (r < 'a' || r > 'f') }) >= 0 {
		return fmt.Errorf("digest %q is not lower-case hex", d)
	}
	return nil
}
