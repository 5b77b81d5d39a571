package config

import (
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/scanner"
)

// clustered is Default with a valid cluster, so the cluster keys are
// checked.
func clustered() Config {
	c := Default()
	c.Cluster.Enabled = true
	c.Cluster.VIP = "198.18.0.100/24"
	c.Cluster.Secret = "0123456789abcdef"
	c.Cluster.Peers = []Peer{{ID: "n2", Address: "198.18.0.12:8026", Weight: 50}}
	c.Node.ID = "n1"
	return c
}

// Every numeric key passes at its bound and fails one step past it, with
// an error that names the key and the bound.
func TestBounds(t *testing.T) {
	step := func(past bool) int64 {
		if past {
			return 1
		}
		return 0
	}
	dstep := func(past bool) time.Duration { return time.Duration(step(past)) }
	tests := []struct {
		key   string
		bound string // how the error states the bound
		set   func(c *Config, past bool)
	}{
		{"smtp.max_message_bytes", "1073741824 (1 GiB)", func(c *Config, past bool) { c.SMTP.MaxMessageBytes = MaxMessageBytes + step(past) }},
		{"smtp.max_recipients", "10000", func(c *Config, past bool) { c.SMTP.MaxRecipients = MaxRecipients + int(step(past)) }},
		{"smtp.max_connections", "100000", func(c *Config, past bool) {
			c.SMTP.MaxConnections = MaxConnections + int(step(past))
			c.SMTP.MaxConnectionsPerIP = 1
		}},
		{"smtp.max_connections_per_ip", "smtp.max_connections (1000)", func(c *Config, past bool) {
			c.SMTP.MaxConnections = 1000
			c.SMTP.MaxConnectionsPerIP = 1000 + int(step(past))
		}},
		{"smtp.max_line_length", "1048576 (1 MiB)", func(c *Config, past bool) { c.SMTP.MaxLineLength = MaxLineLength + int(step(past)) }},
		{"smtp.read_timeout", "1h0m0s", func(c *Config, past bool) { c.SMTP.ReadTimeout.Duration = MaxTimeout + dstep(past) }},
		{"smtp.write_timeout", "1h0m0s", func(c *Config, past bool) { c.SMTP.WriteTimeout.Duration = MaxTimeout + dstep(past) }},
		{"smtp.data_timeout", "1h0m0s", func(c *Config, past bool) { c.SMTP.DataTimeout.Duration = MaxTimeout + dstep(past) }},
		{"smtp.drain_timeout", "1h0m0s", func(c *Config, past bool) { c.SMTP.DrainTimeout.Duration = MaxTimeout + dstep(past) }},
		{"downstream.timeout", "1h0m0s", func(c *Config, past bool) { c.Downstream.Timeout.Duration = MaxTimeout + dstep(past) }},
		{"scanner.timeout", "1h0m0s", func(c *Config, past bool) { c.Scanner.Timeout.Duration = scanner.MaxTimeout + dstep(past) }},
		{"scanner.workers", "1024", func(c *Config, past bool) { c.Scanner.Workers = scanner.MaxWorkers + int(step(past)) }},
		{"scanner.queue", "100000", func(c *Config, past bool) { c.Scanner.Queue = scanner.MaxQueue + int(step(past)) }},
		{"scanner.thresholds.reject", "-1000 to 1000", func(c *Config, past bool) { c.Scanner.Thresholds.Reject = scanner.MaxThreshold + float64(step(past))/8 }},
		{"scanner.thresholds.quarantine", "-1000 to 1000", func(c *Config, past bool) {
			c.Scanner.Thresholds.Quarantine = -scanner.MaxThreshold - float64(step(past))/8
		}},
		{"scanner.max_mime_depth", "100", func(c *Config, past bool) { c.Scanner.MaxMIMEDepth = scanner.MaxMIMEDepth + int(step(past)) }},
		{"scanner.max_mime_parts", "10000", func(c *Config, past bool) { c.Scanner.MaxMIMEParts = scanner.MaxMIMEParts + int(step(past)) }},
		{"store.quarantine_retention", "87600h0m0s", func(c *Config, past bool) {
			c.Store.QuarantineRetention.Duration = MaxRetention + dstep(past)
		}},
		{"store.log_retention", "87600h0m0s", func(c *Config, past bool) { c.Store.LogRetention.Duration = MaxRetention + dstep(past) }},
		{"store.log_journal_max", "17179869184 (16 GiB)", func(c *Config, past bool) { c.Store.LogJournalMax = 16<<30 + step(past) }},
		{"store.log_journal_sync", "10s", func(c *Config, past bool) { c.Store.LogJournalSync.Duration = 10*time.Second + dstep(past) }},
		{"smtp.hard_error_limit", "1000", func(c *Config, past bool) { c.SMTP.HardErrorLimit = 1000 + int(step(past)) }},
		{"cluster.peer_max_connections", "65536", func(c *Config, past bool) { c.Cluster.PeerMaxConnections = 65536 + int(step(past)) }},
		{"cluster.weight", "10000", func(c *Config, past bool) { c.Cluster.Weight = MaxWeight + int(step(past)) }},
		{"cluster.peers[0].weight", "10000", func(c *Config, past bool) { c.Cluster.Peers[0].Weight = MaxWeight + int(step(past)) }},
		{"cluster.garp_refresh", "1h0m0s", func(c *Config, past bool) { c.Cluster.GARPRefresh.Duration = MaxGARPRefresh + dstep(past) }},
		{"cluster.garp_master_refresh", "1h0m0s", func(c *Config, past bool) {
			c.Cluster.GARPMasterRefresh.Duration = MaxGARPRefresh + dstep(past)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			c := clustered()
			tt.set(&c, false)
			if err := c.Validate(); err != nil {
				t.Errorf("at the bound: %v", err)
			}
			c = clustered()
			tt.set(&c, true)
			err := c.Validate()
			if err == nil {
				t.Fatal("one past the bound passes")
			}
			if msg := err.Error(); !strings.HasPrefix(msg, tt.key+": ") || !strings.Contains(msg, tt.bound) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming %s and the bound %s", msg, tt.key, tt.bound)
			}
		})
	}
}

// The case, as a node file: refused with the key, the bound and the
// key's line in the file, the message that serve prints.
func TestAbsurdWorkersRefused(t *testing.T) {
	_, err := Parse([]byte("scanner:\n  workers: 100000000\n"))
	if err == nil || err.Error() != "scanner.workers: must be at most 1024, got 100000000 (line 2)" {
		t.Fatalf("Parse = %v", err)
	}
}
