package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// NonceStore remembers request nonces where every node sees them and a
// restarted node still does: the cluster's shared store.
type NonceStore interface {
	// Claim records nonce for ttl. It reports false when the nonce was
	// recorded before (by any node), and an error when the store could
	// not tell.
	Claim(ctx context.Context, nonce string, ttl time.Duration) (fresh bool, err error)
}

const (
	// sharedClaimTimeout bounds one look-up in the shared store: the
	// caller's SMTP client waits on it.
	sharedClaimTimeout = time.Second
	// sharedRetryAfter is how long the shared store is left alone after
	// it failed, so that an outage costs one slow request every few
	// seconds rather than every request.
	sharedRetryAfter = 2 * time.Second
)

// replayGuard decides whether a request's nonce is fresh. Three checks,
// each closing a way a captured request could come back:
//   - the local cache: a replay to this process;
//   - the shared store (when the cluster has one): a replay to this node
//     after a restart, and to any node that shares the store;
//   - the start floor: for its first nonceTTL, a server refuses requests
//     dated before it started, since a previous process of this node may
//     have accepted them without recording the nonce where this one can
//     see it (the shared store was unreachable then, or there is none).
//     No legitimate request is older than the process that receives it,
//     clock skew aside, which costs a retry on another member.
//
// A replay to another node is refused before its nonce is looked at: the
// target node id is signed. Without the shared store (embedded store, or
// Redis not answering) the local cache and the floor still refuse every
// replay but one that the previous process of this node accepted dated
// after this process started: that takes a caller's clock ahead of this
// node's by more than the restart took. The embedded store could keep
// nonces in a bbolt bucket instead, at one fsync'd write on every scan's
// path, to close only that gap; with NTP on the nodes the floor is the
// better trade. Requests checked without the shared store although the
// cluster has one are counted in mxgate_peer_nonce_fallback_total.
type replayGuard struct {
	local   *nonceCache
	shared  NonceStore // nil = none (embedded store)
	started time.Time  // wall and monotonic, at NewServer
	// floor is started in whole milliseconds, the unit of a date.
	floor time.Time
	log   *slog.Logger

	fallback prometheus.Counter

	mu        sync.Mutex
	downUntil time.Time // the shared store is skipped until then
	down      bool      // for logging the change only
}

// Results of replayGuard.check.
var (
	errReplayed = errors.New("replayed")
	errStale    = errors.New("stale")
	errFull     = errors.New("replay cache full")
)

func newReplayGuard(shared NonceStore, started time.Time, log *slog.Logger, fallback prometheus.Counter) *replayGuard {
	return &replayGuard{
		local: newNonceCache(nonceTTL, maxNonces), shared: shared,
		started: started, floor: started.Truncate(time.Millisecond),
		log: log, fallback: fallback,
	}
}

// check records nonce, dated date, at now. It returns errReplayed,
// errStale or errFull (as the refusal to give), or nil for a fresh
// request.
func (g *replayGuard) check(ctx context.Context, nonce [nonceLen]byte, hexNonce string, date, now time.Time) error {
	// now.Sub(started) uses the monotonic clock: a wall clock stepped back
	// after the start cannot stretch the floor beyond nonceTTL.
	if now.Sub(g.started) < nonceTTL && date.Before(g.floor) {
		return errStale
	}
	fresh, err := g.local.add(nonce, now)
	if err != nil {
		return errFull
	}
	if !fresh {
		return errReplayed
	}
	if g.shared == nil || g.skipShared(now) {
		if g.shared != nil {
			g.fallback.Inc()
		}
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, sharedClaimTimeout)
	defer cancel()
	fresh, err = g.shared.Claim(cctx, hexNonce, nonceTTL)
	if err != nil {
		if ctx.Err() != nil {
			// The caller went away; the store is not to blame. The nonce
			// stays in the local cache, so the request is not repeatable.
			return fmt.Errorf("check nonce: %w", ctx.Err())
		}
		g.sharedFailed(now, err)
		g.fallback.Inc()
		return nil
	}
	g.sharedAnswered()
	if !fresh {
		return errReplayed
	}
	return nil
}

func (g *replayGuard) skipShared(now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return now.Before(g.downUntil)
}

func (g *replayGuard) sharedFailed(now time.Time, err error) {
	g.mu.Lock()
	g.downUntil = now.Add(sharedRetryAfter)
	was := g.down
	g.down = true
	g.mu.Unlock()
	if !was {
		g.log.Warn("peer API: shared store does not answer; checking nonces in this node's memory and refusing requests dated before its start until it does", "err", err)
	}
}

func (g *replayGuard) sharedAnswered() {
	g.mu.Lock()
	was := g.down
	g.down, g.downUntil = false, time.Time{}
	g.mu.Unlock()
	if was {
		g.log.Info("peer API: shared store answers again; nonces are shared with the cluster")
	}
}
