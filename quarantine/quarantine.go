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

	"github.com/mxgate/mxgate/addrmatch"
	"github.com/mxgate/mxgate/kv"
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
	// ReleasedRcpts are the recipients a completed release delivered to,
	// as Recipients spells them: unlike Releases it is never cut short,
	// so a recipient released once stays released. Empty on an item
	// released before recipients were tracked: then WasReleased means
	// every recipient.
	ReleasedRcpts []string `json:"released_rcpts,omitempty"`
}

// Filter selects items for List. Empty fields do not filter. Rcpt and
// Sender are address filters in addrmatch's forms (an address, @domain or
// .domain; Rcpt matches when any of the item's recipients does); Verdict
// compares case-insensitively; Subject is a case-insensitive substring of
// the item's Subject. The time range is half-open: Since <= Time < Until.
// Before pages: only items after it in List's order (older, or as old
// with a smaller id); the zero Cursor does not filter. List refuses a
// filter addrmatch.Parse does.
type Filter struct {
	Rcpt, Sender, Verdict string
	Subject               string
	Since, Until          time.Time
	Before                Cursor
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
	// Count is how many items are held, cheaply (the size of the time
	// index): an item past its Expires counts until Expire deletes it.
	Count(ctx context.Context) (int, error)
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

// matcher is a Filter with its address filters parsed once, not per item;
// every backend filters with it, so they agree to the letter.
type matcher struct {
	f       Filter
	env     addrmatch.Envelope
	subject string // folded
	// until is the upper time bound the index walk uses: f.Until, or
	// just after f.Before's time when that is earlier; match still
	// decides on the cursor's id.
	until time.Time
}

func (f Filter) matcher() (matcher, error) {
	env, err := addrmatch.ParseEnvelope(f.Sender, f.Rcpt)
	if err != nil {
		return matcher{}, err
	}
	m := matcher{f: f, env: env, subject: fold(f.Subject), until: f.Until}
	if !f.Before.IsZero() {
		if err := kv.CheckKey(f.Before.ID, f.Before.Time); err != nil {
			return matcher{}, fmt.Errorf("cursor: %w", err)
		}
		if next := f.Before.Time.Add(time.Nanosecond); m.until.IsZero() || next.Before(m.until) {
			m.until = next
		}
	}
	return m, nil
}

// match reports whether it passes the filter (the limit aside).
func (m matcher) match(it Item) bool {
	if !m.env.Match(it.Sender, it.Recipients) {
		return false
	}
	if m.f.Verdict != "" && fold(it.Verdict) != fold(m.f.Verdict) {
		return false
	}
	if m.subject != "" && !strings.Contains(fold(it.Subject), m.subject) {
		return false
	}
	if !m.f.Before.IsZero() && !m.f.Before.after(it) {
		return false
	}
	return kv.InRange(it.Time, m.f.Since, m.f.Until)
}

// index names one of the quarantine's indexes; each backend maps it onto
// its own bucket (bolt.go) or sorted set (redis.go).
type index int

const (
	byTime    index = iota // time+id
	byExpires              // expires+id (only items that expire)
	byRcpt                 // len+rcpt+time+id (folded)
	bySender               // len+sender+time+id (folded)
	byVerdict              // len+verdict+time+id (folded)
	byDigest               // len+digest+time+id (only items with a digest)
	numIndexes
)

// indexEntry is one key of one index. Keys end in kv.TimeKey, so a walk
// back goes newest first; the by-value indexes put kv.LenPrefix of the
// value in front, which keeps one value's range contiguous whatever bytes
// it holds.
type indexEntry struct {
	idx index
	key []byte
}

// indexEntries lists every index key of it, for both backends. Put writes
// exactly these and removal deletes exactly these, so no index can keep a
// stale id.
func indexEntries(it Item) []indexEntry {
	tk := kv.TimeKey(it.Time, it.ID)
	e := []indexEntry{{byTime, tk}}
	if !it.Expires.IsZero() {
		e = append(e, indexEntry{byExpires, kv.TimeKey(it.Expires, it.ID)})
	}
	var seen []string
	for _, r := range it.Recipients {
		r = fold(r)
		if r == "" || slices.Contains(seen, r) {
			continue
		}
		seen = append(seen, r)
		e = append(e, indexEntry{byRcpt, append(kv.LenPrefix(r), tk...)})
	}
	if it.Sender != "" {
		e = append(e, indexEntry{bySender, append(kv.LenPrefix(fold(it.Sender)), tk...)})
	}
	if it.Verdict != "" {
		e = append(e, indexEntry{byVerdict, append(kv.LenPrefix(fold(it.Verdict)), tk...)})
	}
	if it.Digest != "" {
		e = append(e, indexEntry{byDigest, append(kv.LenPrefix(it.Digest), tk...)})
	}
	return e
}

// walk is the index List walks for m, the most selective one it names
// (an exact recipient, then an exact sender, then verdict, else time; a
// domain filter has no index), and the key prefix of m's value in it.
// Both backends walk it from Until down to Since and apply the whole
// filter (match) to each item they find there.
func (m matcher) walk() (index, []byte) {
	if a, ok := m.env.Rcpt.Address(); ok {
		return byRcpt, kv.LenPrefix(fold(a))
	}
	if a, ok := m.env.Sender.Address(); ok {
		return bySender, kv.LenPrefix(fold(a))
	}
	if m.f.Verdict != "" {
		return byVerdict, kv.LenPrefix(fold(m.f.Verdict))
	}
	return byTime, nil
}

// validate rejects what the indexes cannot hold: the time keys are unix
// nanoseconds, which cover 1970 to 2262.
func validate(it Item) error {
	if err := kv.CheckKey(it.ID, it.Time); err != nil {
		return err
	}
	if !it.Expires.IsZero() && !kv.Indexable(it.Expires) {
		return fmt.Errorf("expiry %v outside 1970..2262", it.Expires)
	}
	return validateDigest(it.Digest)
}

// validateDigest checks an item's digest (an index key) for every backend:
// "" or lower-case hex (as MessageDigest makes it), at most maxDigest long.
func validateDigest(d string) error {
	if len(d) > maxDigest {
		return fmt.Errorf("digest of %d bytes (at most %d)", len(d), maxDigest)
	}
	if strings.IndexFunc(d, func(r rune) bool { return (r < '0' || r > '9') && (r < 'a' || r > 'f') }) >= 0 {
		return fmt.Errorf("digest %q is not lower-case hex", d)
	}
	return nil
}
