package clusterconf

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/mxgate/mxgate/kv"
)

// PollInterval is how often a Follower reloads Current besides reacting to
// announcements: announcements are lost while the store is unreachable
// (pub/sub keeps nothing), polling bounds how late a node can be.
const PollInterval = 500 * time.Millisecond

// Follower applies new revisions: on start it loads Current (a node that
// was down catches up), then on every Changes signal and every poll loads
// Current again; when its Number is above the applied one it calls apply.
// It never applies an older revision, and on a store error or a failed
// apply it keeps the last good settings.
type Follower struct {
	s     Store
	apply func(Revision) error
	log   *slog.Logger
	poll  time.Duration

	mu       sync.Mutex
	cur      Revision
	ok       bool  // cur holds an applied revision
	degraded bool  // the last store read failed
	failed   int64 // a revision whose apply failed: polls do not retry it
	applyErr error
}

// NewFollower returns a Follower of s that calls apply for each new
// revision (one at a time, from Run's goroutine). A nil log discards.
func NewFollower(s Store, apply func(Revision) error, log *slog.Logger) *Follower {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Follower{s: s, apply: apply, log: log, poll: PollInterval}
}

// Run follows the store until ctx ends.
func (f *Follower) Run(ctx context.Context) {
	// Subscribed before the first load, so an announcement made in
	// between is not missed. A signal (a config push, or the store's
	// resubscription after an outage) retries a revision whose apply
	// failed: the admin may have fixed what it depended on.
	kv.Follow(ctx, f.s.Changes(ctx), f.poll, func(signalled bool) { f.sync(ctx, signalled) })
}

// sync loads Current and applies it when it is newer than the applied one.
func (f *Follower) sync(ctx context.Context, retry bool) {
	rev, err := f.s.Current(ctx)
	if ctx.Err() != nil {
		return
	}
	f.mu.Lock()
	applied, wasDegraded, failed := f.cur.Number, f.degraded, f.failed
	f.degraded = err != nil && !errors.Is(err, ErrNone)
	f.mu.Unlock()
	switch {
	case errors.Is(err, ErrNone):
		if wasDegraded {
			f.log.Info("cluster config store reachable again", "applied", applied)
		}
		return
	case err != nil:
		if !wasDegraded {
			f.log.Warn("cluster config store unreachable; keeping the last good settings", "applied", applied, "err", err)
		}
		return
	}
	if wasDegraded {
		f.log.Info("cluster config store reachable again", "applied", applied, "current", rev.Number)
	}
	if rev.Number <= applied || (rev.Number == failed && !retry) {
		return
	}
	if err := f.apply(rev); err != nil {
		f.mu.Lock()
		f.failed, f.applyErr = rev.Number, err
		f.mu.Unlock()
		if rev.Number != failed || retry {
			f.log.Error("cluster config revision not applied; keeping the last good settings",
				"revision", rev.Number, "applied", applied, "by", rev.By, "err", err)
		}
		return
	}
	f.mu.Lock()
	f.cur, f.ok, f.failed, f.applyErr = rev, true, 0, nil
	f.mu.Unlock()
	f.log.Info("cluster config revision applied", "revision", rev.Number, "previous", applied,
		"by", rev.By, "written", rev.Time, "comment", rev.Comment)
}

// Applied is the number of the last applied revision (0 = none yet).
func (f *Follower) Applied() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur.Number
}

// Current is the last applied revision; false when none was applied yet.
func (f *Follower) Current() (Revision, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur, f.ok
}

// Degraded reports whether the last store read failed.
func (f *Follower) Degraded() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.degraded
}

// ApplyError is why the newest stored revision could not be applied (nil
// when it was): the node runs on Applied meanwhile.
func (f *Follower) ApplyError() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applyErr
}
