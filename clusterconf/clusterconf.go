// Package clusterconf holds the cluster-wide settings (scanner policy, mode,
// weight overrides) as numbered revisions in the shared store, each with an
// audit entry, and applies new revisions on every node (Follower).
// Node-local settings (addresses, secrets, data dir) stay in each node's
// file.
package clusterconf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/scanner"
)

// Settings are the cluster-wide settings (node-local ones stay in each
// node's file).
type Settings struct {
	// Scanner is the scanner's policy, as the node file's scanner keys
	// hold it (config.Scanner embeds the same type): a new policy setting
	// is cluster-wide without a change here.
	Scanner scanner.Policy `yaml:"scanner" json:"scanner"`
	// Mode is config.ModeActiveActive (every live member scans by weight)
	// or config.ModeActivePassive (the master scans alone).
	Mode string `yaml:"mode" json:"mode"`
	// Weights override members' own weights: node id → weight (0 = drain).
	Weights map[string]int `yaml:"weights,omitempty" json:"weights,omitempty"`
	// Reports is who gets the daily report by mail. Left out of the JSON
	// when unset, so that SeedHash of a node file without it is the hash
	// it had before the key existed (no new revision at the upgrade).
	Reports config.Reports `yaml:"reports" json:"reports,omitzero"`
	// Digest is the recipients' quarantine digest; left out of the JSON
	// when unset, as Reports.
	Digest config.Digest `yaml:"digest" json:"digest,omitzero"`
}

// Defaults are the cluster-wide settings of a node file with no scanner or
// cluster keys: what Parse starts from, and what a stored revision lacking
// a key (written before the key existed) reads for it.
func Defaults() Settings {
	return Settings{Scanner: scanner.DefaultPolicy(), Mode: config.ModeActiveActive}
}

// FromConfig takes the cluster-wide settings from a node's file: what the
// first revision of a new cluster is seeded with.
func FromConfig(c config.Config) Settings {
	s := Settings{Scanner: c.Scanner.Policy.Clone(), Mode: c.Cluster.Mode, Reports: c.Reports.Normalize(), Digest: c.Digest.Normalize()}
	if s.Mode == "" {
		s.Mode = config.ModeActiveActive
	}
	return s
}

// Apply returns c with the cluster-wide settings of s in place of the
// file's: the inverse of FromConfig. Weights have no place in
// config.Config and are left to the membership.
func (s Settings) Apply(c config.Config) config.Config {
	c.Scanner.Policy = s.Scanner.Clone()
	c.Cluster.Mode = s.Mode
	c.Reports = s.Reports.Normalize()
	c.Digest = s.Digest.Normalize()
	return c
}

// normalize puts values in the form the rest of the program compares
// against, as config.Parse does for the same keys.
func (s *Settings) normalize() {
	s.Scanner = s.Scanner.Normalize()
	s.Mode = strings.TrimSpace(s.Mode)
	if s.Scanner.OnLimit == "" {
		// Empty as in the revisions stored before the key existed.
		s.Scanner.OnLimit = scanner.ActionQuarantine
	}
	if len(s.Weights) == 0 {
		s.Weights = nil
	}
	s.Reports = s.Reports.Normalize()
	s.Digest = s.Digest.Normalize()
}

// Validate reports every problem of s at once (errors.Join), each naming its
// key, with the same rules as the node file's scanner keys: the scanner's
// Policy checks itself, rules compiled.
func (s Settings) Validate() error {
	errs := scanner.Under("scanner", s.Scanner.Validate())
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	switch s.Mode {
	case config.ModeActiveActive, config.ModeActivePassive:
	default:
		add("mode", "%q is not one of %s, %s", s.Mode, config.ModeActiveActive, config.ModeActivePassive)
	}
	for id, w := range s.Weights {
		if !config.ValidNodeID(id) {
			add("weights", "%q is not a node id: 1-64 letters, digits, '.', '_' or '-'", id)
		}
		if w < 0 {
			add("weights."+id, "must be 0 (drain) or more, got %d", w)
		}
	}
	s.checkBounds(add)
	if err := s.Reports.Validate(); err != nil {
		errs = append(errs, err) // its keys are already reports.*
	}
	if err := s.Digest.Validate(); err != nil {
		errs = append(errs, err) // digest.*
	}
	return errors.Join(errs...)
}

// Revision is one stored version of the settings with its audit entry.
type Revision struct {
	Number   int64     `json:"revision"`
	Settings Settings  `json:"settings"`
	Time     time.Time `json:"time"`
	By       string    `json:"by"` // who: "admin@127.0.0.1 via n1" etc.
	Comment  string    `json:"comment"`
}

// UnmarshalJSON reads a revision over Defaults, so that a key added after
// the revision was stored reads as its default, not as a zero value (an
// on_limit of "", a threshold of 0): adding a setting needs no code for
// the revisions already in the store.
func (r *Revision) UnmarshalJSON(data []byte) error {
	type plain Revision // without this method
	p := plain{Settings: Defaults()}
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	*r = Revision(p)
	return nil
}

var (
	// ErrConflict is Put's answer when the current revision is not the
	// expected one: someone else changed the settings in between.
	ErrConflict = errors.New("cluster config changed concurrently (revision mismatch)")
	// ErrNone is Current's answer when no revision is stored yet.
	ErrNone = errors.New("no cluster config revision stored yet")
)

// Store keeps the revisions as every backend implements it.
type Store interface {
	// Current returns the newest revision, ErrNone when there is none.
	Current(ctx context.Context) (Revision, error)
	// Put stores s as revision expect+1 if the current is expect (0 = none
	// yet), with its audit entry, atomically; otherwise ErrConflict. It
	// refuses settings that do not Validate, and announces the new revision.
	Put(ctx context.Context, s Settings, by, comment string, expect int64) (Revision, error)
	// History returns up to limit revisions, newest first (limit <= 0: all).
	History(ctx context.Context, limit int) ([]Revision, error)
	// Announce tells every node that revision number is current (config
	// push: nodes reload and apply whatever is newer than theirs).
	Announce(ctx context.Context, number int64) error
	// Changes signals, coalesced, every Put and Announce (on a shared
	// store: by any node) until ctx ends, then is closed. A signal carries
	// nothing: reload Current. Signals can be lost while a shared store is
	// unreachable; Follower also polls.
	Changes(ctx context.Context) <-chan struct{}
	// SeedMark returns the SeedHash of node's file as that node last read
	// it at start ("" when it never did): a file differing from it was
	// edited since and seeds a new revision (see node's seedConfig).
	SeedMark(ctx context.Context, node string) (string, error)
	// SetSeedMark records hash as node's seed mark.
	SetSeedMark(ctx context.Context, node, hash string) error
}

// newRevision checks a Put's arguments and builds the revision it stores.
func newRevision(s Settings, by, comment string, expect int64) (Revision, error) {
	if expect < 0 {
		return Revision{}, fmt.Errorf("expected revision %d is negative", expect)
	}
	if strings.TrimSpace(by) == "" {
		return Revision{}, errors.New("the audit entry needs who made the change (by)")
	}
	s.normalize()
	if err := s.Validate(); err != nil {
		return Revision{}, fmt.Errorf("invalid settings: %w", err)
	}
	return Revision{
		Number:   expect + 1,
		Settings: s,
		Time:     time.Now().UTC().Truncate(time.Millisecond),
		By:       by,
		Comment:  comment,
	}, nil
}

// conflict is ErrConflict with the numbers, for the admin who has to redo
// the edit.
func conflict(current, expect int64) error {
	return fmt.Errorf("%w: current is %d, expected %d", ErrConflict, current, expect)
}
