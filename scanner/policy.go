package scanner

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Policy is how a message is judged: the thresholds that turn its score
// into an action, what a virus or content past a limit gets, the rules, the
// attachment policy and the MIME limits. It is the same on every node of a
// cluster, and this is its only shape: the node file embeds it under
// scanner: (config.Scanner), the cluster configuration carries it as is
// (clusterconf.Settings.Scanner: the revisions in the store, the admin
// API's /api/v1/config, `mxgate config show` and `set`), and a Pool
// compiles it (Options). A new policy setting is one field here, its
// default in DefaultPolicy and its check in Validate; what each node sets
// for itself (engine addresses, workers) belongs in Local.
//
// The YAML and JSON keys are those of the files and of the revisions
// already stored: renaming one makes old revisions lose the setting.
type Policy struct {
	// Thresholds turn the score into an action.
	Thresholds Thresholds `yaml:"thresholds" json:"thresholds"`
	// VirusAction is what a virus finding does, whatever the score:
	// quarantine or reject.
	VirusAction Action `yaml:"virus_action" json:"virus_action"`
	// OnLimit is what a message gets when part of it lies past a scan
	// limit (MIME parts or depth, archive bytes, entries or nesting, an
	// unsupported compression method) and so was never looked at:
	// quarantine, tempfail or reject; never delivery. A virus found before
	// the limit still gets VirusAction.
	OnLimit Action `yaml:"on_limit" json:"on_limit"`
	// Rules are header/body regex rules in the rule language, one per
	// string; see ParseRule.
	Rules []string `yaml:"rules" json:"rules"`
	// Attachments is the attachment policy.
	Attachments Attachments `yaml:"attachments" json:"attachments"`
	// MaxMIMEDepth is the deepest MIME nesting (multiparts and
	// message/rfc822) walked; deeper is not scanned, and the message gets
	// OnLimit.
	MaxMIMEDepth int `yaml:"max_mime_depth" json:"max_mime_depth"`
	// MaxMIMEParts is the most MIME parts walked; more are not scanned,
	// and the message gets OnLimit.
	MaxMIMEParts int `yaml:"max_mime_parts" json:"max_mime_parts"`
	// Engines are the outside engines' settings (policy_engines.go).
	Engines Engines `yaml:"engines" json:"engines"`
	// Auth is sender authentication and DNSBL is the DNS blocklists
	// (policy_auth.go); their zero values are the defaults.
	Auth  AuthPolicy  `yaml:"auth,omitempty" json:"auth,omitzero"`
	DNSBL DNSBLPolicy `yaml:"dnsbl,omitempty" json:"dnsbl,omitzero"`
}

// Thresholds turn the score into an action.
type Thresholds struct {
	// Quarantine is the score from which a message is quarantined.
	Quarantine float64 `yaml:"quarantine" json:"quarantine"`
	// Reject is the score from which a message is rejected; above
	// Quarantine.
	Reject float64 `yaml:"reject" json:"reject"`
}

// Attachments is the attachment policy. Empty lists mean the built-in
// lists, not "nothing blocked".
type Attachments struct {
	// BlockedExtensions are file name extensions refused (e.g. exe),
	// matched case-insensitively; Normalize lower-cases them and drops a
	// leading dot.
	BlockedExtensions []string `yaml:"blocked_extensions" json:"blocked_extensions"`
	// BlockedTypes are MIME types refused (type/subtype or type/*);
	// Normalize lower-cases them.
	BlockedTypes []string `yaml:"blocked_types" json:"blocked_types"`
	// DoubleExtensions flags names like invoice.pdf.exe.
	DoubleExtensions bool `yaml:"double_extensions" json:"double_extensions"`
	// ScanArchives opens zip, gzip and tar attachments (nested too) and
	// checks every file in them like an attachment.
	ScanArchives bool `yaml:"scan_archives" json:"scan_archives"`
}

// DefaultPolicy is the policy of a node file without scanner keys, and of
// a new cluster's first revision.
func DefaultPolicy() Policy {
	return Policy{
		Thresholds:  Thresholds{Quarantine: 6, Reject: 15},
		VirusAction: ActionQuarantine,
		OnLimit:     ActionQuarantine,
		Rules:       []string{},
		Attachments: Attachments{
			BlockedExtensions: []string{},
			BlockedTypes:      []string{},
			DoubleExtensions:  true,
			ScanArchives:      true,
		},
		MaxMIMEDepth: 10,
		MaxMIMEParts: 500,
		Engines:      defaultEngines(),
	}
}

// Normalize puts the values in the one form the rest of the program
// compares against (extensions without a leading dot and types in lower
// case, lists never nil), in new slices: p's are left as they are.
func (p Policy) Normalize() Policy {
	a := &p.Attachments
	a.BlockedExtensions = mapStrings(a.BlockedExtensions, func(e string) string {
		return strings.TrimLeft(strings.ToLower(strings.TrimSpace(e)), ".")
	})
	a.BlockedTypes = mapStrings(a.BlockedTypes, func(t string) string { return strings.ToLower(strings.TrimSpace(t)) })
	p.Rules = mapStrings(p.Rules, func(r string) string { return r })
	return p
}

// Clone is a copy of p that shares no slice with it.
func (p Policy) Clone() Policy {
	p.Rules = slices.Clone(p.Rules)
	p.Attachments.BlockedExtensions = slices.Clone(p.Attachments.BlockedExtensions)
	p.Attachments.BlockedTypes = slices.Clone(p.Attachments.BlockedTypes)
	p.Auth, p.DNSBL = p.Auth.clone(), p.DNSBL.clone()
	return p
}

func mapStrings(in []string, f func(string) string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = f(s)
	}
	return out
}

// Validate reports every problem of p at once: errors.Join of
// *SettingError, each keyed relative to the policy (max_mime_parts,
// thresholds.reject, rules[2]); the node file and the cluster configuration
// name them under scanner. (see Under). The rules are compiled, so a policy
// that passes makes a Pool.
func (p Policy) Validate() error {
	_, errs := p.compile()
	return errors.Join(errs...)
}

// compile checks p and compiles its rules; the rules are usable only when
// there are no errors.
func (p Policy) compile() ([]Rule, []error) {
	var errs []error
	bad := func(key, format string, args ...any) { errs = append(errs, settingError(key, format, args...)) }

	th := p.Thresholds
	for _, t := range []struct {
		key string
		v   float64
	}{{"thresholds.quarantine", th.Quarantine}, {"thresholds.reject", th.Reject}} {
		switch {
		case math.IsNaN(t.v) || math.IsInf(t.v, 0):
			bad(t.key, "must be a finite number")
		case t.v > MaxThreshold || t.v < -MaxThreshold:
			bad(t.key, "must be -%d to %d, got %g", MaxThreshold, MaxThreshold, t.v)
		}
	}
	if finite(th.Quarantine) && finite(th.Reject) && th.Quarantine >= th.Reject {
		bad("thresholds", "quarantine (%g) must be below reject (%g)", th.Quarantine, th.Reject)
	}
	oneOf(bad, "virus_action", p.VirusAction, ActionQuarantine, ActionReject)
	oneOf(bad, "on_limit", p.OnLimit, ActionQuarantine, ActionTempfail, ActionReject)

	rules := make([]Rule, 0, len(p.Rules))
	seen := map[string]int{}
	for i, s := range p.Rules {
		key := fmt.Sprintf("rules[%d]", i)
		r, err := ParseRule(s)
		switch {
		case err != nil:
			bad(key, "%v", err)
			continue
		case slices.Contains(builtinSymbols, r.Name):
			bad(key, "name %s is a built-in symbol", r.Name)
			continue
		}
		if j, dup := seen[r.Name]; dup {
			bad(key, "name %s is already used by rules[%d]", r.Name, j)
			continue
		}
		seen[r.Name] = i
		rules = append(rules, r)
	}

	for i, e := range p.Attachments.BlockedExtensions {
		// The name's last extension is what is matched: "tar.gz" never
		// would be, and a list that seems to block it must not pass.
		if e = strings.TrimLeft(strings.TrimSpace(e), "."); e == "" || strings.ContainsAny(e, "./\\ \t\r\n") {
			bad(fmt.Sprintf("attachments.blocked_extensions[%d]", i), "%q is not an extension (what follows the last dot of a file name, e.g. exe)", p.Attachments.BlockedExtensions[i])
		}
	}
	for i, t := range p.Attachments.BlockedTypes {
		if !validMIMEType(strings.TrimSpace(t)) {
			bad(fmt.Sprintf("attachments.blocked_types[%d]", i), "%q is not a MIME type (type/subtype or type/*)", t)
		}
	}
	for _, l := range []struct {
		key    string
		v, max int
	}{{"max_mime_depth", p.MaxMIMEDepth, MaxMIMEDepth}, {"max_mime_parts", p.MaxMIMEParts, MaxMIMEParts}} {
		switch {
		case l.v <= 0:
			bad(l.key, "must be positive, got %d", l.v)
		case l.v > l.max:
			bad(l.key, "must be at most %d, got %d", l.max, l.v)
		}
	}
	p.Engines.check(bad)
	errs = append(append(errs, p.Auth.problems()...), p.DNSBL.problems()...)
	return rules, errs
}

func oneOf(bad func(key, format string, args ...any), key string, v Action, allowed ...Action) {
	if slices.Contains(allowed, v) {
		return
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	bad(key, "%q is not one of %s", v, strings.Join(names, ", "))
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// validMIMEType is type/subtype or type/* as the attachment policy takes it.
func validMIMEType(s string) bool {
	typ, sub, ok := strings.Cut(s, "/")
	if !ok || typ == "" || sub == "" || typ == "*" {
		return false
	}
	for _, part := range []string{typ, sub} {
		for _, r := range part {
			if r <= ' ' || r >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?=", r) {
				return false
			}
		}
	}
	return true
}
