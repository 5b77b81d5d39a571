package node

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

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
			cfg.Node.ID = "n1"
			edited := cfg
			edited.Scanner.Thresholds.Quarantine = 5
			other := cfg
			other.Node.ID = "n2"
			other.Scanner.Thresholds.Quarantine = 7
			apiChange := func() {
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
				{"restart after an API change keeps it", apiChange, cfg, 2, 8, "differs in scanner.thresholds.quarantine"},
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
