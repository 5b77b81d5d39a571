package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/cluster"
	"github.com/mxgate/mxgate/members"
	"github.com/mxgate/mxgate/node"
	"github.com/mxgate/mxgate/store"
)

// clusterAdmin serves an admin API whose node reports st (nil = a single
// node without clustering).
func clusterAdmin(t *testing.T, st *node.ClusterView) string {
	t.Helper()
	return serveAdmin(t, clusterOptions(t, st))
}

// clusterOptions are the admin options of clusterAdmin's node.
func clusterOptions(t *testing.T, st *node.ClusterView) admin.Options {
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
	return o
}

func TestClusterStatusCommand(t *testing.T) {
	st := node.ClusterView{Status: cluster.Status{
		Node: "n2", InstanceStatus: cluster.InstanceStatus{
			State: "backup", Since: time.Now().Add(-90 * time.Second).UTC().Truncate(time.Second),
			Priority: 100, VRID: 51, VIP: "198.18.0.100/24",
			Preempt: true, StartState: "backup", AdvertInterval: "1s", MasterAddr: "198.18.0.11", MasterPriority: 200,
			MasterInterval: "1s", MasterDown: "3.609375s", AdvertsSent: 0, AdvertsRecv: 42, Transitions: 1,
			EffectivePriority: 50,
		},
		Interface: "eth0", Source: "198.18.0.12", Mode: "multicast",
		Dropped: map[string]uint64{"ttl": 2, "checksum": 1, "vrid": 0},
		Track: []cluster.TrackStatus{
			{Check: "downstream", Weight: -150, Failing: true, Error: "downstream 198.18.0.250:25: connection refused"},
			{Check: "interface", Fault: true},
		},
	}, Mode: "active-active", Revision: 7, Members: []members.Member{
		{ID: "n1", PeerAddr: "198.18.0.11:8026", Weight: 100, Healthy: true, Busy: 3, Workers: 8, Master: true, Revision: 7, Seen: time.Now().Add(-time.Second).UTC().Truncate(time.Millisecond)},
		{ID: "n2", PeerAddr: "198.18.0.12:8026", Weight: 50, Healthy: false, Revision: 6, Seen: time.Now().UTC().Truncate(time.Millisecond)},
	}, Gone: []members.Member{
		{ID: "n3", PeerAddr: "198.18.0.13:8026", Weight: 100, Healthy: true, Workers: 8, Revision: 7, Seen: time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond),
			Routers: []members.Router{{State: "fault"}}},
	}}
	url := clusterAdmin(t, &st)

	out := mustRun(t, url, "cluster", "status")
	for _, want := range []string{
		"NODE             n2",
		"STATE            backup for 1m3", // 1m30s and some
		"PRIORITY         100, advertising 50 while tracked checks fail (start as backup, preempt on)",
		"TRACK            downstream FAILING (weight -150): downstream 198.18.0.250:25: connection refused; interface ok (fault)",
		"VIP              198.18.0.100/24 on eth0, not held",
		"MASTER           198.18.0.11 priority 200",
		"master down after 3.609375s",
		"ADVERTS          sent 0, received 42, dropped 3 (checksum=1 ttl=2)",
		"STORE            ok",
		"CONFIG           revision 7 applied, mode active-active",
		"n1      198.18.0.11:8026  100     ok                   3/8   master  7",
		"n2      198.18.0.12:8026  50      draining             0/0   backup  6",
		"n3      198.18.0.13:8026  100     gone (no heartbeat)  0/8   fault   7         1m0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	var got node.ClusterView
	if err := json.Unmarshal([]byte(mustRun(t, url, "cluster", "status", "--json")), &got); err != nil {
		t.Fatal(err)
	}
	if !got.Since.Equal(st.Since) {
		t.Errorf("since = %v, want %v", got.Since, st.Since)
	}
	got.Since = st.Since
	for i := range got.Members {
		if !got.Members[i].Seen.Equal(st.Members[i].Seen) {
			t.Errorf("member %d seen = %v, want %v", i, got.Members[i].Seen, st.Members[i].Seen)
		}
		got.Members[i].Seen = st.Members[i].Seen
	}
	if !reflect.DeepEqual(got, st) {
		t.Errorf("--json = %+v\nwant %+v", got, st)
	}

	single := clusterAdmin(t, nil)
	_, _, err := run(t, "cluster", "status", "--admin", single, "--token", cliToken)
	if err == nil || err.Error() != "not a cluster node (cluster.enabled: false): use mxgate status (HTTP 404)" {
		t.Errorf("single node: %v", err)
	}
	if _, _, err := run(t, "cluster", "status", "extra"); err == nil || !strings.Contains(err.Error(), "takes no arguments") {
		t.Errorf("extra argument: %v", err)
	}
}
