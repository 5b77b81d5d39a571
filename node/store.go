package node

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"time"

	"github.com/mxgate/mxgate/clusterconf"
	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/store"
)

// openStore opens Redis when store.redis is set, else the embedded file.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (*store.Backend, error) {
	if cfg.Store.Redis == "" {
		return store.OpenEmbedded(cfg.Node.DataDir)
	}
	st, err := store.OpenRedis(ctx, cfg.Store.Redis)
	if errors.Is(err, store.ErrUnreachable) {
		// A node that boots while Redis is down still serves: quarantine
		// writes answer 451 until the store is back, lists and settings
		// arrive when it answers.
		log.Warn("shared store unreachable at start; running degraded until it answers", "err", err)
		return st, nil
	}
	return st, err
}

// seedConfig stores the node file's cluster-wide settings as the first
// revision when the store has none. On the embedded store, which only this
// node uses, the file stays the source: a changed file becomes a new
// revision at start. On a shared store the stored revision wins; the file
// only seeds an empty store, and changes go through `mxgate config set`.
func seedConfig(ctx context.Context, st *store.Backend, cfg config.Config, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	file := clusterconf.FromConfig(cfg)
	cur, err := st.Config.Current(ctx)
	var expect int64
	switch {
	case errors.Is(err, clusterconf.ErrNone):
	case err != nil:
		log.Warn("cluster configuration not read at start; using the node file's until the store answers", "err", err)
		return
	case st.Shared || reflect.DeepEqual(cur.Settings, file):
		return
	default:
		expect = cur.Number
	}
	rev, err := st.Config.Put(ctx, file, "node file of "+cfg.Node.ID, "from the node file at start", expect)
	switch {
	case errors.Is(err, clusterconf.ErrConflict):
		// Another node seeded the store at the same moment; its revision wins.
	case err != nil:
		log.Warn("cluster configuration not stored at start", "err", err)
	default:
		log.Info("cluster configuration stored from the node file", "revision", rev.Number)
	}
}

// expireLoop deletes expired quarantine items and message log records every
// ten minutes (on every node: an expiry is idempotent).
func expireLoop(ctx context.Context, st *store.Backend, logRetention time.Duration, log *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		now := time.Now()
		if n, err := st.Quarantine.Expire(ctx, now); err != nil {
			log.Warn("quarantine expiry failed", "err", err)
		} else if n > 0 {
			log.Info("quarantine expired", "items", n)
		}
		if n, err := st.Log.Expire(ctx, now.Add(-logRetention)); err != nil {
			log.Warn("message log expiry failed", "err", err)
		} else if n > 0 {
			log.Info("message log expired", "records", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
