package node

import (
	"context"
	"net"
	"strings"
	"time"

	"github.com/mxgate/mxgate/quarantine"
	"github.com/mxgate/mxgate/scanner"
)

// StatusView is what GET /api/v1/status answers and `mxgate status` shows:
// one node at a glance, single or clustered. The checks of the store and
// the downstream server are made for the request, as /healthz makes them.
type StatusView struct {
	Node string `json:"node"`
	// Version, Commit and GoVersion name the binary (as mxgate_build_info).
	Version   string    `json:"version"`
	Commit    string    `json:"commit"`
	GoVersion string    `json:"go_version"`
	Role      string    `json:"role"` // single, master, backup, init
	Started   time.Time `json:"started"`
	// Uptime is rounded to the second, as "1h2m3s".
	Uptime string `json:"uptime"`
	// Healthy and Health are /healthz's verdict.
	Healthy bool   `json:"healthy"`
	Health  string `json:"health,omitempty"`

	SMTPConnections int `json:"smtp_connections"`
	ScannerBusy     int `json:"scanner_busy"`
	ScannerQueued   int `json:"scanner_queued"`
	ScannerWorkers  int `json:"scanner_workers"`
	ScannerQueue    int `json:"scanner_queue"`

	Store      StoreState            `json:"store"`
	Downstream DownstreamState       `json:"downstream"`
	Engines    []scanner.EngineState `json:"engines"`
	// Learning: the spam engine learns from quarantined messages here
	// (learn spam, release as ham).
	Learning bool `json:"learning"`

	Lists          int   `json:"lists"`
	ConfigRevision int64 `json:"config_revision"`
	// Degraded: the shared store does not answer; the node runs on its
	// last good lists and settings.
	Degraded bool `json:"degraded"`
	// Cluster is nil on a single node.
	Cluster *ClusterSummary `json:"cluster,omitempty"`
}

// StoreState is the store behind the node and whether it answers.
type StoreState struct {
	Kind  string `json:"kind"` // embedded or redis
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// DownstreamState is the organisation's mail server and whether it takes
// connections.
type DownstreamState struct {
	Address string `json:"address"`
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
}

// ClusterSummary is the cluster in one line; `mxgate cluster status` has
// the rest.
type ClusterSummary struct {
	Mode           string `json:"mode"`
	VIP            string `json:"vip"`
	VIPHeld        bool   `json:"vip_held"`
	Master         string `json:"master,omitempty"` // the master heard
	Members        int    `json:"members"`
	MembersHealthy int    `json:"members_healthy"`
	// Instances has every virtual router (the fields above are the
	// first one's) when there are several; none with one.
	Instances []InstanceSummary `json:"instances,omitempty"`
}

// InstanceSummary is one virtual router in one line.
type InstanceSummary struct {
	VRID    int    `json:"vrid"`
	VIP     string `json:"vip"`
	State   string `json:"state"`
	VIPHeld bool   `json:"vip_held"`
	Master  string `json:"master,omitempty"`
}

// statusChecks bounds the store and downstream checks of one status.
const statusChecks = 2 * time.Second

// Status reports the node now; ctx bounds its checks.
func (n *Node) Status(ctx context.Context) StatusView {
	busy, queued := n.pool.Stats()
	workers, queue := n.pool.Size()
	bin := n.binary()
	v := StatusView{
		Node: n.cfg.Node.ID, Version: bin.Version, Commit: bin.Commit, GoVersion: bin.GoVersion,
		Role: n.cluster.role(), Started: n.started.UTC(),
		Uptime:      time.Since(n.started).Round(time.Second).String(),
		Healthy:     true,
		ScannerBusy: busy, ScannerQueued: queued, ScannerWorkers: workers, ScannerQueue: queue,
		Engines:        n.pool.Engines(),
		Learning:       learns(n.cfg.Scanner.Local),
		Lists:          n.lists.Set().Len(),
		ConfigRevision: n.follower.Applied(),
		Degraded:       n.cluster.degraded(),
	}
	v.SMTPConnections = n.sessions()
	ctx, cancel := context.WithTimeout(ctx, statusChecks)
	defer cancel()
	v.Store = StoreState{Kind: "embedded", Name: n.store.Name, OK: true}
	if n.store.Shared {
		v.Store.Kind = "redis"
	}
	if _, err := n.store.Quarantine.List(ctx, quarantine.Filter{Limit: 1}); err != nil {
		v.Store.OK, v.Store.Error = false, err.Error()
	}
	down := downstream(n.cfg)
	v.Downstream = DownstreamState{Address: down.Addr, OK: true}
	var d net.Dialer
	if c, err := d.DialContext(ctx, "tcp", down.Addr); err != nil {
		v.Downstream.OK, v.Downstream.Error = false, err.Error()
	} else {
		c.Close()
	}
	// The verdict of /healthz (enginesHealth, healthCheck), from the
	// checks above rather than a second round of them.
	switch engs := n.pool.EnginesDown(); {
	case len(engs) > 0:
		v.Healthy, v.Health = false, "engine down: "+strings.Join(engs, ", ")
	case !v.Store.OK:
		v.Healthy, v.Health = false, "store: "+v.Store.Error
	case !v.Downstream.OK:
		v.Healthy, v.Health = false, "downstream "+down.Addr+": "+v.Downstream.Error
	}
	if cp := n.cluster; cp.node != nil {
		st := cp.node.Status()
		s := &ClusterSummary{Mode: cp.shared.mode(), VIP: st.VIP, VIPHeld: st.VIPHeld, Master: st.MasterAddr}
		if len(st.Instances) > 1 {
			for _, in := range st.Instances {
				s.Instances = append(s.Instances, InstanceSummary{VRID: in.VRID, VIP: in.VIP, State: in.State, VIPHeld: in.VIPHeld, Master: in.MasterAddr})
			}
		}
		for _, m := range cp.members.Members() {
			s.Members++
			if m.Healthy {
				s.MembersHealthy++
			}
		}
		v.Cluster = s
	}
	return v
}

// sessions is the number of SMTP connections open now.
func (n *Node) sessions() int {
	if n.front == nil {
		return 0
	}
	return n.front.OpenConnections()
}
