package node

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/store"
	"github.com/mxgate/mxgate/testenv"
)

// The node file seeds the cluster-wide settings: on the embedded store it
// stays their source (a changed file is a new revision, an unchanged one
// none); on a shared store the first node's seed wins and later files are
// ignored.
func TestSeedConfig(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	redis := testenv.StartRedis(t)
	for _, tt := range []struct {
		name string
		open func(t *testing.T) *store.Backend
		// revision and quarantine threshold after the three starts
		want    []int64
		wantThr []float64
	}{
		{"embedded", func(t *testing.T) *store.Backend {
			st, err := store.OpenEmbedded(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return st
		}, []int64{1, 1, 2}, []float64{6, 6, 5}},
		{"shared", func(t *testing.T) *store.Backend {
			st, err := store.OpenRedis(ctx, redis.URL)
			if err != nil {
				t.Fatal(err)
			}
			return st
		}, []int64{1, 1, 1}, []float64{6, 6, 6}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.open(t)
			defer st.Close()
			cfg := config.Default()
			edited := cfg
			edited.Scanner.Thresholds.Quarantine = 5
			for i, c := range []config.Config{cfg, cfg, edited} {
				seedConfig(ctx, st, c, log)
				rev, err := st.Config.Current(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if rev.Number != tt.want[i] || rev.Settings.Scanner.Thresholds.Quarantine != tt.wantThr[i] {
					t.Errorf("start %d: revision %d with quarantine threshold %g, want %d and %g",
						i+1, rev.Number, rev.Settings.Scanner.Thresholds.Quarantine, tt.want[i], tt.wantThr[i])
				}
			}
		})
	}
}
