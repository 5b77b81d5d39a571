package quarantine

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrReleaseConflict is returned (wrapped) by ClaimRelease when the item is
// being released, or one of the recipients the claim names was released
// to before, and the claim is not forced; also, forced or not, when the
// open claim delivers to a recipient the new one does not (overriding it
// would lose that recipient's unfinished release).
var ErrReleaseConflict = errors.New("quarantine item is being released or was released already")

// ErrNotRecipient is returned (wrapped) by ClaimRelease and CheckRcpts
// when a release names an address that is not one of the item's
// recipients.
var ErrNotRecipient = errors.New("not a recipient of the quarantined message")

// ErrDuplicate is what a *DuplicateError is (errors.Is).
var ErrDuplicate = errors.New("the same message is quarantined already")

// DuplicateError is returned (wrapped) by Put when another item holds the
// same message for the same envelope (the same Digest).
type DuplicateError struct {
	// ID is the item that holds the message.
	ID string
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("the same message for the same envelope is quarantined already as %q", e.ID)
}

func (e *DuplicateError) Is(target error) bool { return target == ErrDuplicate }

// MaxReleaseHistory bounds Item.Releases: every forced release adds one,
// and what grows with an operator's requests must stay bounded.
const MaxReleaseHistory = 20

// Release is one release of an item: a claim taken before the delivery
// and, once the downstream accepted the message, a completed release.
type Release struct {
	// Token tells this claim from any other (a forced one replacing it).
	Token string `json:"token"`
	// By is who asked, as the admin API names the actor.
	By string `json:"by"`
	// Node is the node that delivers.
	Node string `json:"node,omitempty"`
	// At is when the claim was taken.
	At time.Time `json:"at"`
	// Forced is set when this release overrode an earlier claim or release.
	Forced bool `json:"forced,omitempty"`
	// Done is when the downstream accepted the message; zero while the
	// claim is open.
	Done time.Time `json:"done,omitzero"`
	// Rcpts are the recipients this release delivers to, as the item
	// spells them (see CheckRcpts); empty = all of the item's recipients.
	Rcpts []string `json:"rcpts,omitempty"`
}

const (
	maxToken = 64
	maxBy    = 1024
)

func (r Release) validate(finishing bool) error {
	switch {
	case r.Token == "" || len(r.Token) > maxToken:
		return fmt.Errorf("release token of %d bytes (want 1 to %d)", len(r.Token), maxToken)
	case len(r.By) > maxBy || len(r.Node) > maxBy:
		return fmt.Errorf("release actor longer than %d bytes", maxBy)
	case r.At.IsZero():
		return errors.New("release without a claim time")
	case finishing && r.Done.IsZero():
		return errors.New("release without a completion time")
	}
	return nil
}

// WasReleased reports whether the item was delivered by a release before
// (items stored before the release history existed have only Released).
func (it Item) WasReleased() bool { return !it.Released.IsZero() || len(it.Releases) > 0 }

// LastRelease is the latest completed release, if the item has a record
// of it.
func (it Item) LastRelease() (Release, bool) {
	if len(it.Releases) == 0 {
		return Release{}, false
	}
	return it.Releases[len(it.Releases)-1], true
}

// CheckRcpts turns the recipients a release asks for into the item's own
// spelling (compared case-insensitively), without repeats. Asking for
// every recipient, or for none, is a release to all: nil. An address that
// is not a recipient is ErrNotRecipient.
func (it Item) CheckRcpts(rcpts []string) ([]string, error) {
	var out []string
	for _, want := range rcpts {
		i := slices.IndexFunc(it.Recipients, func(r string) bool { return fold(r) == fold(want) })
		if i < 0 {
			return nil, fmt.Errorf("%q: %w (recipients: %s)", want, ErrNotRecipient, strings.Join(it.Recipients, ", "))
		}
		if !slices.ContainsFunc(out, func(r string) bool { return fold(r) == fold(want) }) {
			out = append(out, it.Recipients[i])
		}
	}
	if len(out) == len(foldSet(it.Recipients)) {
		return nil, nil
	}
	return out, nil
}

// foldSet is rs folded, without repeats.
func foldSet(rs []string) []string {
	var out []string
	for _, r := range rs {
		if r = fold(r); !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// Targets are the recipients r delivers to: its Rcpts, or all.
func (it Item) Targets(r Release) []string {
	if len(r.Rcpts) > 0 {
		return r.Rcpts
	}
	return it.Recipients
}

// IsReleasedTo reports whether a completed release delivered the item to
// rcpt.
func (it Item) IsReleasedTo(rcpt string) bool {
	if len(it.ReleasedRcpts) == 0 {
		return it.WasReleased()
	}
	return slices.ContainsFunc(it.ReleasedRcpts, func(r string) bool { return fold(r) == fold(rcpt) })
}

// Unreleased are the recipients no completed release delivered to yet.
func (it Item) Unreleased() []string {
	var out []string
	for _, r := range it.Recipients {
		if !it.IsReleasedTo(r) {
			out = append(out, r)
		}
	}
	return out
}

// LastReleaseTo is the latest completed release in the history that
// delivered to any of rcpts.
func (it Item) LastReleaseTo(rcpts []string) (Release, bool) {
	for i := len(it.Releases) - 1; i >= 0; i-- {
		r := it.Releases[i]
		for _, t := range it.Targets(r) {
			if slices.ContainsFunc(rcpts, func(x string) bool { return fold(x) == fold(t) }) {
				return r, true
			}
		}
	}
	return Release{}, false
}

// ApplyClaim is ClaimRelease's decision, the one every backend makes, on
// the item as stored.
func ApplyClaim(it *Item, r Release) error {
	if err := r.validate(false); err != nil {
		return err
	}
	rcpts, err := it.CheckRcpts(r.Rcpts)
	if err != nil {
		return err
	}
	r.Rcpts = rcpts
	targets := it.Targets(r)
	busy := it.Claim != nil || slices.ContainsFunc(targets, it.IsReleasedTo)
	if busy && !r.Forced {
		return ErrReleaseConflict
	}
	if it.Claim != nil && !covers(targets, it.Targets(*it.Claim)) {
		return ErrReleaseConflict
	}
	r.Forced = busy
	r.Done = time.Time{}
	it.Claim = &r
	return nil
}

// covers reports whether every address of sub is in set (folded).
func covers(set, sub []string) bool {
	have := foldSet(set)
	for _, s := range sub {
		if !slices.Contains(have, fold(s)) {
			return false
		}
	}
	return true
}

// ApplyFinish is FinishRelease's change to the item as stored; it reports
// whether there was anything to change.
func ApplyFinish(it *Item, r Release, delivered bool) (bool, error) {
	if err := r.validate(delivered); err != nil {
		return false, err
	}
	own := it.Claim != nil && it.Claim.Token == r.Token
	if !delivered {
		if own {
			it.Claim = nil
		}
		return own, nil
	}
	if it.WasReleased() && len(it.ReleasedRcpts) == 0 {
		// Released to all before recipients were tracked.
		it.ReleasedRcpts = slices.Clone(it.Recipients)
	}
	if own {
		done := r.Done
		r = *it.Claim // as stored: its Forced says what it overrode
		r.Done = done
		it.Claim = nil
	}
	it.Releases = append(it.Releases, r)
	if n := len(it.Releases); n > MaxReleaseHistory {
		it.Releases = slices.Clone(it.Releases[n-MaxReleaseHistory:])
	}
	it.Released = r.Done
	for _, t := range it.Targets(r) {
		if !slices.ContainsFunc(it.ReleasedRcpts, func(x string) bool { return fold(x) == fold(t) }) {
			it.ReleasedRcpts = append(it.ReleasedRcpts, t)
		}
	}
	return true, nil
}

// MessageDigest identifies a message for one envelope: the sender, the
// recipients (in any order) and the message exactly as received. A client
// that sends the same message again (its retry after a lost reply) gives
// the same digest.
func MessageDigest(sender string, rcpts []string, raw []byte) string {
	h := sha256.New()
	field := func(s []byte) {
		h.Write(binary.AppendUvarint(nil, uint64(len(s))))
		h.Write(s)
	}
	field([]byte("mxgate quarantine digest v1"))
	field([]byte(sender))
	sorted := slices.Clone(rcpts)
	slices.Sort(sorted)
	h.Write(binary.AppendUvarint(nil, uint64(len(sorted))))
	for _, r := range sorted {
		field([]byte(r))
	}
	field(raw)
	return hex.EncodeToString(h.Sum(nil))
}

// maxDigest bounds Item.Digest, an index key.
const maxDigest = 128
