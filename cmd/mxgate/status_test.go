package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/node"
	"github.com/mxgate/mxgate/scanner"
)

// The status table of a cluster node in trouble: each part says what is
// wrong, and the cluster gets its line. (TestCLIWithNodeFile runs a real
// single node; TestClusterFailoverAndPreempt real cluster nodes.)
func TestStatusTable(t *testing.T) {
	st := node.StatusView{
		Node: "n2", Version: "1.4.0", Commit: "abc", GoVersion: "go1.26.0", Role: "backup", Started: time.Now().Add(-time.Hour), Uptime: "1h0m0s",
		Health: "engine down: clamd (timeout)", SMTPConnections: 7, ScannerBusy: 3, ScannerQueued: 1, ScannerWorkers: 8, ScannerQueue: 64,
		Store:      node.StoreState{Kind: "redis", Name: "redis://198.18.0.250:6379/0", Error: "dial tcp 198.18.0.250:6379: connect: connection refused"},
		Downstream: node.DownstreamState{Address: "198.18.0.250:2526", OK: true},
		Engines:    []scanner.EngineState{{Name: "clamd", Down: "timeout", OnError: "tempfail"}, {Name: "rspamd", OnError: "accept"}},
		Lists:      12, ConfigRevision: 9, Degraded: true,
		Cluster: &node.ClusterSummary{Mode: "active-active", VIP: "198.18.0.100/24", Master: "198.18.0.11", Members: 3, MembersHealthy: 2},
	}
	url, _ := adminServerWith(t, func(o *admin.Options) { o.Status = func(context.Context) any { return st } })
	out := mustRun(t, url, "status")
	for _, want := range []string{
		"NODE        n2\n", "VERSION     1.4.0, commit abc, go1.26.0\n", "ROLE        backup\n", "UPTIME      1h0m0s (since ",
		"HEALTH      UNHEALTHY: engine down: clamd (timeout)\n", "SMTP        7 connection(s) open\n",
		"SCANNER     3 of 8 scanning, 1 of 64 waiting\n",
		"STORE       redis redis://198.18.0.250:6379/0: DOWN: dial tcp 198.18.0.250:6379: connect: connection refused; DEGRADED: running on the last good lists and settings\n",
		"DOWNSTREAM  198.18.0.250:2526: ok\n", "ENGINES     clamd DOWN (timeout; on_error tempfail), rspamd ok\n",
		"LISTS       12 entries\n", "CONFIG      revision 9 applied\n",
		"CLUSTER     active-active, VIP 198.18.0.100/24 not held, master 198.18.0.11, 3 member(s), 2 healthy\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}
