package node

import (
	"context"
	"errors"
	"log/slog"
	"strings"
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

// seedConfig lets the node file's cluster-wide settings become the current
// revision when the store has none, or when this node's file changed them
// since it last seeded (its SeedHash differs from the node's seed mark in
// the store). Otherwise the stored revision wins, so a change made through
// the API survives a restart, and a warning names the keys where the file
// disagrees. A node the store has no mark of takes the stored revision and
// marks its file, so that its next edit counts; unless its own file seeded
// the current revision (a store from before the marks): then that is the
// mark. The same rule holds on both backends and on SIGHUP.
func seedConfig(ctx context.Context, st *store.Backend, cfg config.Config, log *slog.Logger, when string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	file := clusterconf.FromConfig(cfg)
	hash := clusterconf.SeedHash(file)
	// Without -c the settings are the built-in defaults, and the log says
	// so rather than name a file there is none of.
	source, fileAttrs := "the built-in defaults", []any{}
	if cfg.Node.File != "" {
		source, fileAttrs = "the node file", []any{"file", cfg.Node.File}
	}
	cur, err := st.Config.Current(ctx)
	var expect int64
	switch {
	case errors.Is(err, clusterconf.ErrNone):
	case err != nil:
		log.Warn("cluster configuration not read "+when+"; using "+source+" until the store answers", append(fileAttrs, "err", err)...)
		return
	default:
		mark, err := st.Config.SeedMark(ctx, cfg.Node.ID)
		if err != nil {
			log.Warn("cluster configuration: seed mark of "+source+" not read; the stored revision stays", "err", err)
			return
		}
		stored := mark
		if mark == "" && cur.By == seedBy(cfg.Node) {
			// The current revision is this node's file as it seeded it
			// before the marks existed (or the mark was lost): that is
			// what the file last held.
			mark = clusterconf.SeedHash(cur.Settings)
		}
		diff := clusterconf.DiffKeys(cur.Settings, file)
		if mark == hash || mark == "" || len(diff) == 0 {
			switch {
			case len(diff) == 0:
			case cfg.Node.File == "":
				// Nobody wrote the defaults: that the store differs from
				// them is how it should be.
				log.Debug("cluster configuration: the stored revision differs from the built-in defaults", "revision", cur.Number, "keys", diff)
			default:
				log.Warn("cluster configuration: the stored revision wins over the node file, which differs in "+strings.Join(diff, ", ")+" (edit the file to seed it again, or use mxgate config set)",
					"revision", cur.Number, "keys", diff, "file", cfg.Node.File)
			}
			markSeed(ctx, st, cfg.Node.ID, stored, hash, log)
			return
		}
		expect = cur.Number
	}
	rev, err := st.Config.Put(ctx, file, seedBy(cfg.Node), "from "+source+" "+when, expect)
	switch {
	case errors.Is(err, clusterconf.ErrConflict):
		// Another node seeded the store at the same moment; its revision wins.
	case err != nil:
		log.Warn("cluster configuration not stored "+when, "err", err)
	default:
		log.Info("cluster configuration stored from "+source, append(fileAttrs, "revision", rev.Number)...)
		markSeed(ctx, st, cfg.Node.ID, "", hash, log)
	}
}

// seedBy is the audit entry's "by" of a revision a node file (or, without
// one, the built-in defaults) seeded.
func seedBy(n config.Node) string {
	if n.File == "" {
		return "built-in defaults of " + n.ID
	}
	return "node file of " + n.ID
}

// markSeed records hash as the node's seed mark unless it is one already.
func markSeed(ctx context.Context, st *store.Backend, node, mark, hash string, log *slog.Logger) {
	if mark == hash {
		return
	}
	if err := st.Config.SetSeedMark(ctx, node, hash); err != nil {
		// The next start then sees the file as unmarked: the store wins.
		log.Warn("cluster configuration: seed mark not stored", "err", err)
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
