package scanner

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// engine is the compiled configuration: options with defaults filled in,
// rules compiled, the check pipeline built. It is immutable and shared by
// all workers of a pool.
type engine struct {
	opts   Options
	lim    walkLimits
	checks []check
}

func newEngine(opts Options) (*engine, error) {
	o, err := opts.normalize()
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	rules := make([]Rule, 0, len(o.Rules))
	seen := map[string]int{}
	var wantText, wantRaw bool
	for i, s := range o.Rules {
		r, err := ParseRule(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %d: %w", i+1, err))
			continue
		}
		if slices.Contains(builtinSymbols, r.Name) {
			errs = append(errs, fmt.Errorf("rule %d: name %s is a built-in symbol", i+1, r.Name))
			continue
		}
		if j, dup := seen[r.Name]; dup {
			errs = append(errs, fmt.Errorf("rule %d: name %s is already used by rule %d", i+1, r.Name, j))
			continue
		}
		seen[r.Name] = i + 1
		wantText = wantText || r.kind == kindBody
		wantRaw = wantRaw || r.kind == kindRawbody
		rules = append(rules, r)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("scanner options: %w", errors.Join(errs...))
	}
	e := &engine{
		opts: o,
		lim: walkLimits{
			maxDepth:        o.MaxMIMEDepth,
			maxParts:        o.MaxMIMEParts,
			maxEntries:      o.MaxArchiveEntries,
			maxArchiveBytes: o.MaxArchiveBytes,
			scanArchives:    o.ScanArchives,
			wantText:        wantText,
			wantRaw:         wantRaw,
		},
	}
	e.checks = []check{
		gtubeCheck{},
		eicarCheck{},
		attachmentCheck{policy: newAttachPolicy(o)},
		archiveCheck{o: &e.opts},
		mimeCheck{o: &e.opts},
		ruleCheck{rules: rules},
		sizeCheck{limit: o.MaxMessageBytes},
		allowCheck{},
	}
	return e, nil
}

// scan parses the message once and runs every check over the result.
func (e *engine) scan(ctx context.Context, m *Message, sc *scratch) (Verdict, error) {
	if m == nil || m.Body == nil {
		return Verdict{}, errors.New("scan: message without body")
	}
	defer sc.release()
	p := &parsed{msg: m}
	if err := walk(ctx, m.Body.Reader(), e.lim, sc, p); err != nil {
		return Verdict{}, fmt.Errorf("scan %s: %w", m.ID, err)
	}
	results := make([]result, 0, len(e.checks))
	for _, c := range e.checks {
		if err := ctx.Err(); err != nil {
			return Verdict{}, fmt.Errorf("scan %s: %w", m.ID, err)
		}
		r, err := c.Check(ctx, p)
		if err != nil {
			return Verdict{}, fmt.Errorf("scan %s: check %s: %w", m.ID, c.Name(), err)
		}
		results = append(results, r)
	}
	return merge(&e.opts, results), nil
}
