package node

import (
	"runtime"
	"testing"

	"github.com/mxgate/mxgate/config"
)

func TestPeerConnectionLimits(t *testing.T) {
	tests := []struct {
		name                    string
		workers, queue          int
		maxConns, maxConnsPerIP int
		total, perIP            int
	}{
		{"derived from workers and queue", 4, 64, 0, 0, 544, 136},
		{"workers 0 = CPUs", 0, 64, 0, 0, 4 * 2 * (runtime.NumCPU() + 64), 2 * (runtime.NumCPU() + 64)},
		{"small pool: the floors", 1, 0, 0, 0, 64, 16},
		{"huge queue: the bound", 4, 100000, 0, 0, 65536, 65536},
		{"per IP set", 4, 64, 0, 50, 200, 50},
		{"total set: per IP within it", 4, 64, 100, 0, 100, 100},
		{"both set", 4, 64, 300, 20, 300, 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Scanner.Workers, cfg.Scanner.Queue = tc.workers, tc.queue
			cfg.Cluster.PeerMaxConnections, cfg.Cluster.PeerMaxConnectionsPerIP = tc.maxConns, tc.maxConnsPerIP
			total, perIP := peerConnectionLimits(cfg)
			if total != tc.total || perIP != tc.perIP {
				t.Errorf("limits %d total, %d per IP; want %d, %d", total, perIP, tc.total, tc.perIP)
			}
			if perIP > total {
				t.Errorf("per IP %d above total %d", perIP, total)
			}
		})
	}
}
