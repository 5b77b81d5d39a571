package node

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/mxgate/mxgate/clusterconf"
	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/store"
	"github.com/mxgate/mxgate/testenv"
)

// The node file seeds the cluster-wide settings only when the store has
// none or when the file itself changed since it last seeded: a change made
// through the API survives a restart with the same file (a warning names
// the key where the file disagrees), an edited file is applied, and a
// second node with its own file does not override the store. The same on
// both backends.
func TestSeedConfig(t *testing.T) {
	ctx := context.Background()
	redis := testenv.StartRedis(t)
	for _, tt := range []struct {
		name string
		open func(t *testing.T) *store.Backend
	}{
		{"embedded", func(t *testing.T) *store.Backend {
			st, err := store.OpenEmbedded(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return st
		}},
		{"shared", func(t *testing.T) *store.Backend {
			st, err := store.OpenRedis(ctx, redis.URL)
			if err != nil {
				t.Fatal(err)
			}
			return st
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.open(t)
			defer st.Close()
			cfg := config.Default()
			cfg.Node.ID, cfg.Node.File = "n1", "/etc/mxgate/mxgate.yaml"
			edited := cfg
			edited.Scanner.Thresholds.Quarantine = 5
			other := cfg
			other.Node.ID = "n2"
			other.Scanner.Thresholds.Quarantine = 7
			change := func() { apiChange(t, st) }
			for i, step := range []struct {
				what    string
				before  func()
				file    config.Config
				wantRev int64
				wantThr float64
				wantLog string // in the log of this start; "" = no warning
			}{
				{"first start seeds the empty store", nil, cfg, 1, 6, ""},
				{"restart, same file", nil, cfg, 1, 6, ""},
				{"restart after an API change keeps it", change, cfg, 2, 8, "differs in scanner.thresholds.quarantine"},
				{"again", nil, cfg, 2, 8, "differs in scanner.thresholds.quarantine"},
				{"restart with the file edited applies it", nil, edited, 3, 5, ""},
				{"restart with the same edited file", nil, edited, 3, 5, ""},
				{"another node with its own file takes the store's", nil, other, 3, 5, "differs in scanner.thresholds.quarantine"},
				{"the first node again", nil, edited, 3, 5, ""},
			} {
				if step.before != nil {
					step.before()
				}
				var buf bytes.Buffer
				seedConfig(ctx, st, step.file, slog.New(slog.NewTextHandler(&buf, nil)), "at start")
				rev, err := st.Config.Current(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if rev.Number != step.wantRev || rev.Settings.Scanner.Thresholds.Quarantine != step.wantThr {
					t.Errorf("start %d (%s): revision %d with quarantine threshold %g, want %d and %g",
						i+1, step.what, rev.Number, rev.Settings.Scanner.Thresholds.Quarantine, step.wantRev, step.wantThr)
				}
				warned := strings.Contains(buf.String(), "level=WARN")
				if step.wantLog == "" && warned || step.wantLog != "" && !strings.Contains(buf.String(), step.wantLog) {
					t.Errorf("start %d (%s): log %q, want %q", i+1, step.what, buf.String(), step.wantLog)
				}
			}
		})
	}
}

// A store seeded by this node's file before the seed marks existed (an
// upgrade) has no mark: the current revision, written by this node's file,
// is what the file last held, so an edited file is applied and an unchanged
// one changes nothing; a revision by anyone else wins.
func TestSeedConfigWithoutMark(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := config.Default()
	cfg.Node.ID, cfg.Node.File = "n1", "/etc/mxgate/mxgate.yaml"
	edited := cfg
	edited.Scanner.Thresholds.Quarantine = 5
	for _, tt := range []struct {
		name    string
		by      string
		file    config.Config
		wantRev int64
		wantThr float64
	}{
		{"own seed, file unchanged", "node file of n1", cfg, 1, 6},
		{"own seed, file edited", "node file of n1", edited, 2, 5},
		{"someone else's revision, file edited", "admin@test", edited, 1, 6},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, err := store.OpenEmbedded(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := st.Config.Put(ctx, clusterconf.FromConfig(cfg), tt.by, "before the marks", 0); err != nil {
				t.Fatal(err)
			}
			seedConfig(ctx, st, tt.file, log, "at start")
			rev, err := st.Config.Current(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rev.Number != tt.wantRev || rev.Settings.Scanner.Thresholds.Quarantine != tt.wantThr {
				t.Errorf("revision %d with quarantine threshold %g, want %d and %g", rev.Number, rev.Settings.Scanner.Thresholds.Quarantine, tt.wantRev, tt.wantThr)
			}
			if mark, err := st.Config.SeedMark(ctx, "n1"); err != nil || mark != clusterconf.SeedHash(clusterconf.FromConfig(tt.file)) {
				t.Errorf("seed mark %q (%v), want the file's", mark, err)
			}
		})
	}
}

// A node started without a node file (serve without -c) seeds the built-in
// defaults and says so: no line speaks of a node file there is none of,
// and a stored revision that differs from the defaults is no warning.
func TestSeedConfigWithoutNodeFile(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := config.Default()
	cfg.Node.ID = "n1"
	for i, step := range []struct {
		what, wantLog string
		change        bool // an API change before this start
	}{
		{"first start", `msg="cluster configuration stored from the built-in defaults" revision=1`, false},
		{"restart after an API change", "", true},
	} {
		if step.change {
			apiChange(t, st)
		}
		var buf bytes.Buffer
		seedConfig(ctx, st, cfg, slog.New(slog.NewTextHandler(&buf, nil)), "at start")
		got := buf.String()
		if strings.Contains(got, "node file") || strings.Contains(got, "level=WARN") || !strings.Contains(got, step.wantLog) || step.wantLog == "" && got != "" {
			t.Errorf("start %d (%s): log %q, want %q and no node file", i+1, step.what, got, step.wantLog)
		}
	}
	h, err := st.Config.History(ctx, 10)
	if err != nil || len(h) != 2 || h[len(h)-1].Comment != "from the built-in defaults at start" {
		t.Errorf("history %+v, %v; want the first revision from the built-in defaults", h, err)
	}
}

// apiChange sets the quarantine threshold to 8 in a new revision, as an
// administrator would through the admin API.
func apiChange(t *testing.T, st *store.Backend) {
	t.Helper()
	ctx := context.Background()
	cur, err := st.Config.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := cur.Settings
	s.Scanner.Thresholds.Quarantine = 8
	if _, err := st.Config.Put(ctx, s, "admin@test", "through the API", cur.Number); err != nil {
		t.Fatal(err)
	}
}
