package console

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/cluster"
	"github.com/mxgate/mxgate/members"
	"github.com/mxgate/mxgate/msglog"
)

func (c *Console) clusterRoutes() {
	c.mux.HandleFunc("GET /cluster", c.authed(c.clusterPage))
}

// clusterAPI is GET /api/v1/cluster's answer as the page reads it: the
// fields of node.ClusterView, which the console cannot import (node mounts
// the console).
type clusterAPI struct {
	cluster.Status
	Mode     string           `json:"mode"`
	Revision int64            `json:"revision"`
	Degraded bool             `json:"degraded"`
	Members  []members.Member `json:"members"`
	Gone     []members.Member `json:"gone"`
}

// statusAPI is the part of GET /api/v1/status (node.StatusView) the page
// shows of this node.
type statusAPI struct {
	Node            string `json:"node"`
	Role            string `json:"role"`
	Healthy         bool   `json:"healthy"`
	Health          string `json:"health"`
	SMTPConnections int    `json:"smtp_connections"`
	ScannerBusy     int    `json:"scanner_busy"`
	ScannerWorkers  int    `json:"scanner_workers"`
	Engines         []struct {
		Name string `json:"name"`
		Down string `json:"down"`
	} `json:"engines"`
	ConfigRevision int64 `json:"config_revision"`
	Degraded       bool  `json:"degraded"`
}

// clusterData is the page.
type clusterData struct {
	Single   bool   // clustering off: this node alone
	Mode     string // active-active|active-passive
	Degraded bool
	Newest   int64 // the newest config revision any node applied
	Nodes    []nodeCard
	VIPs     []vipRow
	Changes  []changeRow
	Problems []string // what could not be read, as the API said it

	Chart template.HTML
	// Messages counted in the chart; Capped: the log's answer was cut at
	// its limit, so there were at least that many.
	Messages int
	Capped   bool
}

// nodeCard is one node as the page shows it.
type nodeCard struct {
	ID       string
	This     bool // the node serving the page
	Role     string
	Gone     bool // its heartbeat expired
	Priority int  // advertised
	// Configured differs from Priority while tracked checks fail.
	Configured int
	Weight     int
	// Override is the cluster config's weight for the node, which wins.
	Override *int
	Healthy  bool
	Health   string // ok, draining, or the engines down
	Engines  string // this node's engines (the others' are not in their heartbeat)
	Busy     int
	Workers  int
	Sessions int
	Revision int64
	Behind   bool
	Seen     time.Time
	Ago      string
}

// vipRow is one virtual address and the nodes that hold it (one, when
// all is well; none during a failover; two is a split brain).
type vipRow struct {
	VRID    int
	VIP     string
	Holders []string
}

// changeRow is one state change of one node.
type changeRow struct {
	Time     time.Time
	Node     string
	VRID     int
	From, To string
	Reason   string
}

// maxChangeRows bounds the recent changes shown.
const maxChangeRows = 20

func (c *Console) clusterPage(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	api := c.client(r, s)
	now := c.o.Now()
	var d clusterData

	var self statusAPI
	if err := api.Status(ctx, &self); err != nil {
		d.Problems = append(d.Problems, "node status: "+apiMessage(err))
	}
	var cl clusterAPI
	err := api.ClusterStatus(ctx, &cl)
	var ae *admin.Error
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		d.Single = true
		d.Nodes = []nodeCard{singleCard(self, c.o.NodeID, now)}
		d.Newest = self.ConfigRevision
		d.Degraded = self.Degraded
	case err != nil:
		d.Problems = append(d.Problems, "cluster status: "+apiMessage(err))
	default:
		var weights map[string]int
		if rev, err := api.Config(ctx); err == nil {
			weights = rev.Settings.Weights
		} else {
			d.Problems = append(d.Problems, "cluster configuration: "+apiMessage(err))
		}
		d.fromCluster(cl, self, weights, now)
	}

	names := make([]string, 0, len(d.Nodes))
	for _, n := range d.Nodes {
		names = append(names, n.ID)
	}
	recs, err := api.Log(ctx, admin.LogQuery{Since: now.Add(-time.Hour).UTC().Format(time.RFC3339), Limit: msglog.MaxLimit})
	if err != nil {
		d.Problems = append(d.Problems, "message log: "+apiMessage(err))
	}
	d.Capped = len(recs) >= msglog.MaxLimit
	d.Chart, d.Messages = perMinute(recs, names, now)
	c.render(w, r, s, http.StatusOK, "cluster", "Cluster", d)
}

// singleCard is a node without clustering, from its own status.
func singleCard(st statusAPI, id string, now time.Time) nodeCard {
	if st.Node != "" {
		id = st.Node
	}
	n := nodeCard{
		ID: id, This: true, Role: "single", Healthy: st.Healthy, Health: "ok",
		Busy: st.ScannerBusy, Workers: st.ScannerWorkers, Sessions: st.SMTPConnections,
		Revision: st.ConfigRevision, Seen: now, Ago: "now", Engines: engineList(st),
	}
	if !st.Healthy {
		n.Health = st.Health
	}
	return n
}

// engineList names this node's engines, each marked when it does not
// answer; "" for none (the built-in checks only).
func engineList(st statusAPI) string {
	var out []string
	for _, e := range st.Engines {
		if e.Down != "" {
			out = append(out, fmt.Sprintf("%s (down: %s)", e.Name, e.Down))
		} else {
			out = append(out, e.Name)
		}
	}
	return strings.Join(out, ", ")
}

// fromCluster fills the nodes, VIPs and changes from the cluster view: the
// live members, then the gone ones; this node as it is now rather than as
// its last heartbeat said.
func (d *clusterData) fromCluster(cl clusterAPI, self statusAPI, weights map[string]int, now time.Time) {
	d.Mode, d.Degraded, d.Newest = cl.Mode, cl.Degraded, cl.Revision
	ms := slices.Clone(cl.Members)
	if !slices.ContainsFunc(ms, func(m members.Member) bool { return m.ID == cl.Node }) {
		// Not in the store's answer (the store is down, say): the node
		// knows itself.
		ms = append(ms, members.Member{ID: cl.Node, Seen: now})
	}
	for i, m := range ms {
		if m.ID != cl.Node {
			continue
		}
		// This node's VRRP state now, not up to a heartbeat ago.
		m.Routers, m.Changes = nil, nil
		for _, in := range cl.Instances {
			m.Routers = append(m.Routers, members.Router{VRID: in.VRID, VIP: in.VIP, State: in.State, Priority: in.EffectivePriority, Configured: in.Priority, Held: in.VIPHeld})
			for _, tr := range in.Recent {
				m.Changes = append(m.Changes, members.Change{Time: tr.Time, VRID: in.VRID, From: tr.From, To: tr.To, Reason: tr.Reason})
			}
		}
		m.Revision, m.Sessions = cl.Revision, self.SMTPConnections
		ms[i] = m
	}
	for _, m := range ms {
		d.Newest = max(d.Newest, m.Revision)
	}
	add := func(m members.Member, gone bool) {
		n := memberCard(m, gone, now)
		n.This = m.ID == cl.Node
		if n.This {
			n.Engines = engineList(self)
		}
		if w, ok := weights[m.ID]; ok {
			n.Override = &w
		}
		n.Behind = !gone && m.Revision < d.Newest
		d.Nodes = append(d.Nodes, n)
		for _, ch := range m.Changes {
			d.Changes = append(d.Changes, changeRow{Time: ch.Time, Node: m.ID, VRID: ch.VRID, From: ch.From, To: ch.To, Reason: ch.Reason})
		}
		if gone {
			return
		}
		for _, rt := range m.Routers {
			k := slices.IndexFunc(d.VIPs, func(v vipRow) bool { return v.VRID == rt.VRID && v.VIP == rt.VIP })
			if k < 0 {
				d.VIPs = append(d.VIPs, vipRow{VRID: rt.VRID, VIP: rt.VIP})
				k = len(d.VIPs) - 1
			}
			if rt.Held {
				d.VIPs[k].Holders = append(d.VIPs[k].Holders, m.ID)
			}
		}
	}
	slices.SortFunc(ms, func(a, b members.Member) int { return strings.Compare(a.ID, b.ID) })
	for _, m := range ms {
		add(m, false)
	}
	for _, m := range cl.Gone {
		if !slices.ContainsFunc(ms, func(l members.Member) bool { return l.ID == m.ID }) {
			add(m, true)
		}
	}
	slices.SortFunc(d.VIPs, func(a, b vipRow) int { return a.VRID - b.VRID })
	slices.SortStableFunc(d.Changes, func(a, b changeRow) int { return b.Time.Compare(a.Time) })
	d.Changes = d.Changes[:min(len(d.Changes), maxChangeRows)]
}

// memberCard is a member's heartbeat as a card.
func memberCard(m members.Member, gone bool, now time.Time) nodeCard {
	n := nodeCard{
		ID: m.ID, Role: m.Role(), Gone: gone, Weight: m.Weight, Healthy: m.Healthy, Health: "ok",
		Busy: m.Busy, Workers: m.Workers, Sessions: m.Sessions, Revision: m.Revision, Seen: m.Seen,
		Ago: ago(now, m.Seen),
	}
	if len(m.Routers) > 0 {
		n.Priority, n.Configured = m.Routers[0].Priority, m.Routers[0].Configured
	}
	switch {
	case gone:
		n.Role, n.Healthy, n.Health = "gone", false, "no heartbeat since "+n.Ago
	case !m.Healthy && len(m.Down) > 0:
		n.Health = "engines down: " + strings.Join(m.Down, ", ")
	case !m.Healthy:
		n.Health = "draining"
	}
	return n
}

// ago says how long before now t was, to the second.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t).Round(time.Second)
	if d < time.Second {
		return "now"
	}
	return d.String() + " ago"
}

// perMinute draws the messages per node and minute of the hour before now
// (60 bars, the last the minute now is in) from the message log's records;
// operators' actions are not messages. Nodes lists the nodes to show even
// without a message; the others come from the records. It returns the
// chart and the number of messages in it.
func perMinute(recs []msglog.Record, nodes []string, now time.Time) (template.HTML, int) {
	const bars = 60
	start := now.Truncate(time.Minute).Add(-(bars - 1) * time.Minute)
	labels := make([]string, bars)
	for i := range labels {
		labels[i] = start.Add(time.Duration(i) * time.Minute).UTC().Format("15:04")
	}
	byNode := map[string][]float64{}
	names := slices.Clone(nodes)
	total := 0
	for _, rec := range recs {
		if rec.Action == msglog.ActionRelease || rec.Action == msglog.ActionDelete || rec.Time.Before(start) {
			continue
		}
		i := int(rec.Time.Sub(start) / time.Minute)
		if i >= bars {
			continue // a clock ahead of ours
		}
		v := byNode[rec.Node]
		if v == nil {
			v = make([]float64, bars)
			byNode[rec.Node] = v
			if !slices.Contains(names, rec.Node) {
				names = append(names, rec.Node)
			}
		}
		v[i]++
		total++
	}
	slices.Sort(names)
	ss := make([]series, 0, len(names))
	for _, n := range names {
		name := n
		if name == "" {
			name = "(no node)"
		}
		ss = append(ss, series{Name: name, Values: byNode[n]})
	}
	return stackedBars("messages per minute and node, last hour (UTC)", labels, ss), total
}
