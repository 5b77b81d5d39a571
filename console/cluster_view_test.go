package console

import (
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/cluster"
	"github.com/mxgate/mxgate/members"
	"github.com/mxgate/mxgate/msglog"
)

// The page's view of a cluster: this node as it is now, the others from
// their heartbeats, gone ones last, revisions behind marked, weight
// overrides, VIP holders (none, one, two), changes merged newest first.
func TestFromCluster(t *testing.T) {
	now := time.Date(2026, 3, 4, 10, 30, 0, 0, time.UTC)
	at := func(s int) time.Time { return now.Add(time.Duration(s) * time.Second) }
	router := func(state string, held bool) []members.Router {
		return []members.Router{{VRID: 51, VIP: "198.18.0.100/24", State: state, Priority: 100, Configured: 100, Held: held}}
	}
	cl := clusterAPI{
		Status: cluster.Status{Node: "n2", InstanceStatus: cluster.InstanceStatus{State: "master"},
			Instances: []cluster.InstanceStatus{{VRID: 51, VIP: "198.18.0.100/24", State: "master", Priority: 150, EffectivePriority: 140, VIPHeld: true,
				Recent: []cluster.Transition{{Time: at(-5), From: "backup", To: "master", Reason: "master_down"}}}}},
		Mode: "active-active", Revision: 7,
		Members: []members.Member{
			{ID: "n3", Weight: 50, Healthy: false, Down: []string{"clamd (timeout)"}, Revision: 6, Seen: at(-1), Routers: router("backup", false),
				Changes: []members.Change{{Time: at(-60), VRID: 51, From: "init", To: "backup", Reason: "startup"}}},
			// Its heartbeat is a beat old: the view uses the node's state now.
			{ID: "n2", Weight: 100, Healthy: true, Revision: 7, Seen: at(-1), Routers: router("backup", false)},
			{ID: "n4", Weight: 10, Revision: 7, Seen: at(-2)}, // an older node: no routers, draining
		},
		Gone: []members.Member{
			{ID: "n1", Weight: 100, Healthy: true, Master: true, Revision: 7, Seen: at(-9), Routers: router("master", true),
				Changes: []members.Change{{Time: at(-120), VRID: 51, From: "backup", To: "master", Reason: "preempt"}}},
			{ID: "n3", Seen: at(-300)}, // back since: not gone
		},
	}
	var d clusterData
	d.fromCluster(cl, statusAPI{SMTPConnections: 3}, map[string]int{"n3": 0}, now)

	var got []string
	for _, n := range d.Nodes {
		s := n.ID + " " + n.Role
		if n.This {
			s += " this"
		}
		if n.Behind {
			s += " behind"
		}
		if n.Override != nil {
			s += " override"
		}
		s += " " + n.Health + " " + n.Ago
		got = append(got, s)
	}
	want := []string{
		"n2 master this ok 1s ago",
		"n3 backup behind override engines down: clamd (timeout) 1s ago",
		"n4 backup draining 2s ago",
		"n1 gone no heartbeat since 9s ago 9s ago",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("nodes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := d.Nodes[0]; n.Priority != 140 || n.Configured != 150 || n.Sessions != 3 {
		t.Errorf("this node's card %+v: want advertised 140 of 150, 3 sessions", n)
	}
	if len(d.VIPs) != 1 || strings.Join(d.VIPs[0].Holders, ",") != "n2" {
		t.Errorf("VIPs %+v, want 198.18.0.100/24 held by n2 (the gone n1 holds nothing)", d.VIPs)
	}
	var ch []string
	for _, c := range d.Changes {
		ch = append(ch, c.Node+" "+c.To+" "+c.Reason)
	}
	if got, want := strings.Join(ch, ", "), "n2 master master_down, n3 backup startup, n1 master preempt"; got != want {
		t.Errorf("changes %q, want %q", got, want)
	}

	// Two holders of one VIP (a split brain) are both listed.
	cl.Members[0].Routers = router("master", true)
	d = clusterData{}
	d.fromCluster(cl, statusAPI{}, nil, now)
	if len(d.VIPs) != 1 || strings.Join(d.VIPs[0].Holders, ",") != "n2,n3" {
		t.Errorf("split brain VIPs %+v, want held by n2,n3", d.VIPs)
	}
}

// perMinute counts messages per node and minute, skipping operators'
// actions and records outside the hour, and lists nodes without messages.
func TestPerMinute(t *testing.T) {
	now := time.Date(2026, 3, 4, 10, 30, 20, 0, time.UTC)
	recs := []msglog.Record{
		{Node: "n1", Time: now, Action: "deliver"},
		{Node: "n1", Time: now.Add(-10 * time.Second), Action: "quarantine"},
		{Node: "n2", Time: now.Add(-59 * time.Minute), Action: "reject"},
		{Node: "n2", Time: now.Add(-time.Minute), Action: msglog.ActionRelease},
		{Node: "n2", Time: now.Add(-2 * time.Minute), Action: msglog.ActionDelete},
		{Node: "n1", Time: now.Add(-61 * time.Minute), Action: "deliver"},
		{Node: `<b>"x"</b>`, Time: now.Add(-3 * time.Minute), Action: "deliver"},
	}
	chart, n := perMinute(recs, []string{"n3"}, now)
	if n != 4 {
		t.Errorf("%d messages counted, want 4", n)
	}
	s := string(chart)
	for _, want := range []string{"10:30 n1: 2", "09:31 n2: 1", "&lt;b&gt;", ">n3<"} {
		if !strings.Contains(s, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	if strings.Contains(s, "<b>") {
		t.Error("a node name went into the chart unescaped")
	}
	if k := strings.Count(s, "<title>"); k != 3 {
		t.Errorf("%d bars drawn, want 3", k)
	}
}
