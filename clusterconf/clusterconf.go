// Package clusterconf holds the cluster-wide settings (scanner policy, mode,
// weight overrides) as numbered revisions in the shared store, each with an
// audit entry, and applies new revisions on every node (Follower).
// Node-local settings (addresses, secrets, data dir) stay in each node's
// file.
package clusterconf

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/scanner"
)

// Settings are the cluster-wide settings (node-local ones stay in each
// node's file).
type Settings struct {
	Scanner ScannerSettings `yaml:"scanner" json:"scanner"`
	// Mode is config.ModeActiveActive (every live member scans by weight)
	// or config.ModeActivePassive (the master scans alone).
	Mode string `yaml:"mode" json:"mode"`
	// Weights override members' own weights: node id → weight (0 = drain).
	Weights map[string]int `yaml:"weights,omitempty" json:"weights,omitempty"`
}

// ScannerSettings are the scanner policy keys of config.Scanner that must be
// the same on every node; workers, queue and engine addresses stay local.
type ScannerSettings struct {
	Thresholds   config.Thresholds  `yaml:"thresholds" json:"thresholds"`
	VirusAction  string             `yaml:"virus_action" json:"virus_action"`
	OnLimit      string             `yaml:"on_limit" json:"on_limit"`
	Rules        []string           `yaml:"rules" json:"rules"`
	Attachments  config.Attachments `yaml:"attachments" json:"attachments"`
	MaxMIMEDepth int                `yaml:"max_mime_depth" json:"max_mime_depth"`
	MaxMIMEParts int                `yaml:"max_mime_parts" json:"max_mime_parts"`
}

// FromConfig takes the cluster-wide settings from a node's file: what the
// first revision of a new cluster is seeded with.
func FromConfig(c config.Config) Settings {
	sc := c.Scanner
	s := Settings{
		Scanner: ScannerSettings{
			Thresholds:   sc.Thresholds,
			VirusAction:  sc.VirusAction,
			OnLimit:      sc.OnLimit,
			Rules:        cloneStrings(sc.Rules),
			Attachments:  sc.Attachments,
			MaxMIMEDepth: sc.MaxMIMEDepth,
			MaxMIMEParts: sc.MaxMIMEParts,
		},
		Mode: c.Cluster.Mode,
	}
	s.Scanner.Attachments.BlockedExtensions = cloneStrings(sc.Attachments.BlockedExtensions)
	s.Scanner.Attachments.BlockedTypes = cloneStrings(sc.Attachments.BlockedTypes)
	if s.Mode == "" {
		s.Mode = config.ModeActiveActive
	}
	return s
}

// Apply returns c with the cluster-wide settings of s in place of the
// file's: the inverse of FromConfig, for building the scanner options of a
// node from a revision. Weights have no place in config.Config and are left
// to the membership.
func (s Settings) Apply(c config.Config) config.Config {
	c.Scanner.Thresholds = s.Scanner.Thresholds
	c.Scanner.VirusAction = s.Scanner.VirusAction
	c.Scanner.OnLimit = s.Scanner.OnLimit
	c.Scanner.Rules = cloneStrings(s.Scanner.Rules)
	c.Scanner.Attachments = s.Scanner.Attachments
	c.Scanner.Attachments.BlockedExtensions = cloneStrings(s.Scanner.Attachments.BlockedExtensions)
	c.Scanner.Attachments.BlockedTypes = cloneStrings(s.Scanner.Attachments.BlockedTypes)
	c.Scanner.MaxMIMEDepth = s.Scanner.MaxMIMEDepth
	c.Scanner.MaxMIMEParts = s.Scanner.MaxMIMEParts
	c.Cluster.Mode = s.Mode
	return c
}

func cloneStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return append([]string{}, s...)
}

// normalize puts values in the form the rest of the program compares
// against, as config.Parse does for the same keys.
func (s *Settings) normalize() {
	a := &s.Scanner.Attachments
	for i, e := range a.BlockedExtensions {
		a.BlockedExtensions[i] = strings.TrimLeft(strings.ToLower(strings.TrimSpace(e)), ".")
	}
	for i, t := range a.BlockedTypes {
		a.BlockedTypes[i] = strings.ToLower(strings.TrimSpace(t))
	}
	s.Mode = strings.TrimSpace(s.Mode)
	if s.Scanner.OnLimit == "" {
		// Revisions stored before the key existed.
		s.Scanner.OnLimit = "quarantine"
	}
	if s.Scanner.Rules == nil {
		s.Scanner.Rules = []string{}
	}
	if a.BlockedExtensions == nil {
		a.BlockedExtensions = []string{}
	}
	if a.BlockedTypes == nil {
		a.BlockedTypes = []string{}
	}
	if len(s.Weights) == 0 {
		s.Weights = nil
	}
}

// Validate reports every problem of s at once (errors.Join), each naming its
// key, with the same rules as the node file's scanner keys; rules are
// compiled by the scanner's parser.
func (s Settings) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	th := s.Scanner.Thresholds
	qOK, rOK := finite(th.Quarantine), finite(th.Reject)
	if !qOK {
		add("scanner.thresholds.quarantine", "must be a finite number")
	}
	if !rOK {
		add("scanner.thresholds.reject", "must be a finite number")
	}
	if qOK && rOK && th.Quarantine >= th.Reject {
		add("scanner.thresholds", "quarantine (%g) must be below reject (%g)", th.Quarantine, th.Reject)
	}
	switch s.Scanner.VirusAction {
	case "quarantine", "reject":
	default:
		add("scanner.virus_action", "%q is not one of quarantine, reject", s.Scanner.VirusAction)
	}
	switch s.Scanner.OnLimit {
	case "quarantine", "tempfail", "reject":
	default:
		add("scanner.on_limit", "%q is not one of quarantine, tempfail, reject", s.Scanner.OnLimit)
	}
	for i, r := range s.Scanner.Rules {
		if _, err := scanner.ParseRule(r); err != nil {
			add(fmt.Sprintf("scanner.rules[%d]", i), "%v", err)
		}
	}
	for i, e := range s.Scanner.Attachments.BlockedExtensions {
		if e == "" || strings.ContainsAny(e, "/\\ \t\r\n") {
			add(fmt.Sprintf("scanner.attachments.blocked_extensions[%d]", i), "%q is not a file name extension", e)
		}
	}
	for i, t := range s.Scanner.Attachments.BlockedTypes {
		if !config.ValidMIMEType(t) {
			add(fmt.Sprintf("scanner.attachments.blocked_types[%d]", i), "%q is not a MIME type (type/subtype or type/*)", t)
		}
	}
	if s.Scanner.MaxMIMEDepth <= 0 {
		add("scanner.max_mime_depth", "must be positive, got %d", s.Scanner.MaxMIMEDepth)
	}
	if s.Scanner.MaxMIMEParts <= 0 {
		add("scanner.max_mime_parts", "must be positive, got %d", s.Scanner.MaxMIMEParts)
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
	return errors.Join(errs...)
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Revision is one stored version of the settings with its audit entry.
type Revision struct {
	Number   int64     `json:"revision"`
	Settings Settings  `json:"settings"`
	Time     time.Time `json:"time"`
	By       string    `json:"by"` // who: "admin@127.0.0.1 via n1" etc.
	Comment  string    `json:"comment"`
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
