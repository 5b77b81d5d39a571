package main

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/mxgate/mxgate/clusterconf"
	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/scanner"
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

func TestAdvertisedPeerAddr(t *testing.T) {
	for _, tt := range []struct{ listen, source, want string }{
		{"0.0.0.0:8026", "198.18.0.11", "198.18.0.11:8026"},
		{":8026", "198.18.0.11", "198.18.0.11:8026"},
		{"[::]:8026", "198.18.0.11", "198.18.0.11:8026"},
		{"198.18.0.12:8026", "198.18.0.11", "198.18.0.12:8026"},
		{"peer.lab.test:8026", "198.18.0.11", "peer.lab.test:8026"},
		{"0.0.0.0:8026", "", "0.0.0.0:8026"},
	} {
		if got := advertisedPeerAddr(tt.listen, tt.source); got != tt.want {
			t.Errorf("advertisedPeerAddr(%q, %q) = %q, want %q", tt.listen, tt.source, got, tt.want)
		}
	}
}

// A revision replaces every cluster-wide scanner setting and keeps the
// node-local ones (workers, queue, timeout, simulated delay) from the file.
func TestScannerOptionsUnderRevision(t *testing.T) {
	cfg := config.Default()
	cfg.Scanner.Workers, cfg.Scanner.Queue = 3, 7
	cfg.Scanner.SimulatedDelay = config.Duration{Duration: 20 * time.Millisecond}
	s := clusterconf.FromConfig(cfg)
	s.Scanner.Thresholds = scanner.Thresholds{Quarantine: 4, Reject: 9}
	s.Scanner.VirusAction = "reject"
	s.Scanner.OnLimit = "tempfail"
	s.Scanner.Rules = []string{"LOTTERY header Subject =~ /lottery/i 4"}
	s.Scanner.Attachments = scanner.Attachments{BlockedExtensions: []string{"iso"}, BlockedTypes: []string{"application/x-iso9660-image"}, DoubleExtensions: false, ScanArchives: false}
	s.Scanner.MaxMIMEDepth, s.Scanner.MaxMIMEParts = 5, 50

	o := scannerOptions(cfg, s.Scanner)
	if o.Thresholds.Quarantine != 4 || o.Thresholds.Reject != 9 || o.VirusAction != scanner.ActionReject || o.OnLimit != scanner.ActionTempfail ||
		!slices.Equal(o.Rules, s.Scanner.Rules) || !slices.Equal(o.Attachments.BlockedExtensions, []string{"iso"}) ||
		!slices.Equal(o.Attachments.BlockedTypes, []string{"application/x-iso9660-image"}) || o.Attachments.DoubleExtensions || o.Attachments.ScanArchives ||
		o.MaxMIMEDepth != 5 || o.MaxMIMEParts != 50 {
		t.Errorf("cluster-wide settings not applied: %+v", o)
	}
	if o.Workers != 3 || o.Queue != 7 || o.SimulatedDelay.Duration != 20*time.Millisecond || o.NodeID != cfg.Node.ID {
		t.Errorf("node-local settings lost: %+v", o)
	}
	if _, err := scanner.NewPool(o); err != nil {
		t.Errorf("the applied options do not make a pool: %v", err)
	}
}
