package scanner

import (
	"context"
	"errors"
	"fmt"
)

// engine is the compiled configuration: options with defaults filled in,
// rules compiled, the walk's limits and the check pipeline derived from
// them. It is immutable and shared by all workers of a pool.
type engine struct {
	opts   Options
	lim    walkLimits
	checks []check
}

func newEngine(opts Options) (*engine, error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, fmt.Errorf("scanner options: %w", err)
	}
	rules, errs := o.Policy.compile()
	if len(errs) > 0 {
		// normalize validated the policy: unreachable unless the two disagree.
		return nil, fmt.Errorf("scanner options: %w", errors.Join(errs...))
	}
	e := &engine{opts: o, lim: o.walkLimits(rules)}
	e.checks = []check{
		gtubeCheck{},
		eicarCheck{},
		attachmentCheck{policy: newAttachPolicy(o.Attachments)},
		archiveCheck{o: &e.opts},
		mimeCheck{o: &e.opts},
		ruleCheck{rules: rules},
		sizeCheck{limit: o.MaxMessageBytes},
		allowCheck{},
		frontCheck{},
	}
	return e, nil
}

// walkLimits are what the walk of one message needs of normalised options
// and the rules compiled from them.
func (o Options) walkLimits(rules []Rule) walkLimits {
	lim := walkLimits{
		maxDepth:        o.MaxMIMEDepth,
		maxParts:        o.MaxMIMEParts,
		maxEntries:      o.MaxArchiveEntries,
		maxArchiveBytes: o.MaxArchiveBytes,
		scanArchives:    o.Attachments.ScanArchives,
	}
	for _, r := range rules {
		lim.wantText = lim.wantText || r.kind == kindBody
		lim.wantRaw = lim.wantRaw || r.kind == kindRawbody
	}
	return lim
}

// scan asks the outside engines about the message and meanwhile parses it
// once and runs every check over the result; the verdict waits for the
// slowest engine. h records which engines answer.
func (e *engine) scan(ctx context.Context, m *Message, sc *scratch, h *engineHealth) (Verdict, error) {
	if m == nil || m.Body == nil {
		return Verdict{}, errors.New("scan: message without body")
	}
	defer sc.release()
	ctx, cancel := context.WithCancel(ctx)
	wait := askEngines(ctx, e.opts.Engines, e.opts.Policy.Engines, m, h)
	// On every way out (an error, a panic) the engines' calls end first.
	defer func() { cancel(); wait() }()
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
	calls := wait()
	if err := ctx.Err(); err != nil {
		// scanner.timeout (or the caller) ended the scan while an engine
		// was still asked: no verdict, as when the walk is cut short.
		return Verdict{}, fmt.Errorf("scan %s: waiting for the engines: %w", m.ID, err)
	}
	return merge(&e.opts, results, calls), nil
}
