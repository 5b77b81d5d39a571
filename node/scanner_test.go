package node

import (
	"slices"
	"testing"
	"time"

	"github.com/mxgate/mxgate/clusterconf"
	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/scanner"
)

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

// What the node file allows at its bounds, the scanner takes, directly and
// as a revision: no value passes one check only to fail the other at
// start or at the next revision.
func TestConfigBoundsFitTheScanner(t *testing.T) {
	cfg := config.Default()
	cfg.Scanner.Workers = scanner.MaxWorkers
	cfg.Scanner.Queue = scanner.MaxQueue
	cfg.Scanner.Timeout.Duration = scanner.MaxTimeout
	cfg.Scanner.Thresholds = scanner.Thresholds{Quarantine: -scanner.MaxThreshold, Reject: scanner.MaxThreshold}
	cfg.Scanner.MaxMIMEDepth = scanner.MaxMIMEDepth
	cfg.Scanner.MaxMIMEParts = scanner.MaxMIMEParts
	cfg.Scanner.SimulatedDelay.Duration = time.Minute
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config at its bounds: %v", err)
	}
	pool, err := scanner.NewPool(scannerOptions(cfg, cfg.Scanner.Policy))
	if err != nil {
		t.Fatalf("scanner refuses the config's bounds: %v", err)
	}
	defer pool.Close()
	s := clusterconf.FromConfig(cfg)
	if err := s.Validate(); err != nil {
		t.Fatalf("a revision at the bounds: %v", err)
	}
	if err := pool.Reconfigure(scannerOptions(cfg, s.Scanner)); err != nil {
		t.Errorf("a revision at the bounds is not applied: %v", err)
	}
}
