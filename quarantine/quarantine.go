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
	Released time.Time `json:"released,omitzero"` // zero = not released
	Expires  time.Time `json:"expires"`           // zero = kept until deleted
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
	// write is durable (the SMTP 250 depends on it).
	Put(ctx context.Context, it Item, raw []byte) error
	Get(ctx context.Context, id string) (Item, error)
	Raw(ctx context.Context, id string) ([]byte, error)
	// List returns matching items, newest first.
	List(ctx context.Context, f Filter) ([]Item, error)
	Delete(ctx context.Context, id string) error
	MarkReleased(ctx context.Context, id string, at time.Time) error
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
	return nil
}
