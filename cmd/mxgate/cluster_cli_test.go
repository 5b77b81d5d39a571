package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/cluster"
	"github.com/mxgate/mxgate/store"
)

// clusterAdmin serves an admin API whose node reports st (nil = a single
// node without clustering).
func clusterAdmin(t *testing.T, st *cluster.Status) string {
	t.Helper()
	be, err := store.OpenEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	o := admin.Options{Token: cliToken, Quarantine: be.Quarantine, Lists: be.Lists, Log: be.Log, NodeID: "n1"}
	if st != nil {
		o.Cluster = func() any { return *st }
	}
	return serveAdmin(t, o)
}

func TestClusterStatusCommand(t *testing.T) {
	st := cluster.Status{
		Node: "n2", State: "backup", Since: time.Now().Add(-90 * time.Second).UTC().Truncate(time.Second),
		Priority: 100, VRID: 51, VIP: "198.18.0.100/24", Interface: "eth0", Source: "198.18.0.12",
		Mode: "multicast", Preempt: true, AdvertInterval: "1s", MasterAddr: "198.18.0.11", MasterPriority: 200,
		MasterInterval: "1s", MasterDown: "3.609375s", AdvertsSent: 0, AdvertsRecv: 42,
		Dropped: map[string]uint64{"ttl": 2, "checksum": 1, "vrid": 0}, Transitions: 1,
	}
	url := clusterAdmin(t, &st)

	out := mustRun(t, url, "cluster", "status")
	for _, want := range []string{
		"NODE             n2",
		"STATE            backup for 1m30",
		"PRIORITY         100 (preempt on)",
		"VIP              198.18.0.100/24 on eth0, not held",
		"MASTER           198.18.0.11 priority 200",
		"master down after 3.609375s",
		"ADVERTS          sent 0, received 42, dropped 3 (checksum=1 ttl=2)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	var got cluster.Status
	if err := json.Unmarshal([]byte(mustRun(t, url, "cluster", "status", "--json")), &got); err != nil {
		t.Fatal(err)
	}
	if !got.Since.Equal(st.Since) {
		t.Errorf("since = %v, want %v", got.Since, st.Since)
	}
	got.Since = st.Since
	if !reflect.DeepEqual(got, st) {
		t.Errorf("--json = %+v\nwant %+v", got, st)
	}

	single := clusterAdmin(t, nil)
	_, _, err := run(t, "cluster", "status", "--admin", single, "--token", cliToken)
	if err == nil || !strings.Contains(err.Error(), "clustering is not enabled on this node") {
		t.Errorf("single node: %v", err)
	}
	if _, _, err := run(t, "cluster", "status", "extra"); err == nil || !strings.Contains(err.Error(), "takes no arguments") {
		t.Errorf("extra argument: %v", err)
	}
}
