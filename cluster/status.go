package cluster

import (
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/mxgate/mxgate/cluster/vrrp"
)

// Status is a point-in-time view of a Node for the admin API and
// `mxgate cluster status`. The JSON names are part of the admin API. The
// fields of one virtual router are the first one's (the node's only one
// unless cluster.instances lists several); Instances has every one, the
// first included.
type Status struct {
	Node string `json:"node"`
	// InstanceStatus is the first virtual router's, its fields at the top
	// level of the JSON.
	InstanceStatus
	// Track is the node's: every virtual router follows it.
	Track     []TrackStatus     `json:"track"`
	Interface string            `json:"interface"`
	Source    string            `json:"source"`
	Mode      string            `json:"transport"` // multicast|unicast
	Dropped   map[string]uint64 `json:"dropped"`   // by vrrp.DropReason, for the whole node
	Instances []InstanceStatus  `json:"instances"`
}

// InstanceStatus is one virtual router's view.
type InstanceStatus struct {
	State    string    `json:"state"` // init|backup|master|fault
	Since    time.Time `json:"since"`
	Priority int       `json:"priority"`
	// EffectivePriority is the one advertised: Priority lowered by the
	// weights of the failing tracked items.
	EffectivePriority int    `json:"effective_priority"`
	VRID              int    `json:"vrid"`
	VIP               string `json:"vip"`
	VIPHeld           bool   `json:"vip_held"`
	Preempt           bool   `json:"preempt"`
	StartState        string `json:"start_state"`     // master|backup (what Start does; the owner starts master anyway)
	AdvertInterval    string `json:"advert_interval"` // ours
	MasterAddr        string `json:"master"`
	MasterPriority    int    `json:"master_priority"`
	MasterInterval    string `json:"master_interval"` // learned
	MasterDown        string `json:"master_down_interval"`
	AdvertsSent       uint64 `json:"adverts_sent"`
	AdvertsRecv       uint64 `json:"adverts_received"`
	Transitions       uint64 `json:"transitions"`
	// Recent are the last transitions (at most RecentTransitions), newest
	// first: what a console shows as the recent state changes.
	Recent []Transition `json:"recent_transitions,omitempty"`
}

// RecentTransitions is how many transitions each virtual router keeps for
// Status.
const RecentTransitions = 8

// Transition is one change of a virtual router's state.
type Transition struct {
	Time   time.Time `json:"time"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"` // as vrrp.Action.Reason: startup, master_down, preempt, ...
}

// transitionRing keeps the last RecentTransitions transitions.
type transitionRing struct {
	buf  [RecentTransitions]Transition
	next int // where the next one goes
	n    int
}

func (r *transitionRing) add(t Transition) {
	r.buf[r.next] = t
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
}

// newestFirst copies the ring out, newest first; nil when empty.
func (r *transitionRing) newestFirst() []Transition {
	if r.n == 0 {
		return nil
	}
	out := make([]Transition, 0, r.n)
	for i := 1; i <= r.n; i++ {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out
}

// nodeShared is what the receive path and the tracker publish for the
// whole node.
type nodeShared struct {
	mu      sync.Mutex
	dropped map[string]uint64
	track   []TrackStatus
	verdict verdict // what every instance's loop applies on its tracked signal
}

func (s *nodeShared) add(f func(*nodeShared)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// shared is what one instance's machine, receive and GARP paths publish for
// Status and IsMaster. The machine itself is owned by one goroutine and never read from
// here; this is a copy taken after every input it handled.
type shared struct {
	mu             sync.Mutex
	state          vrrp.State
	since          time.Time
	vipHeld        bool
	masterAddr     netip.Addr
	masterPriority uint8
	masterInterval time.Duration
	masterDown     time.Duration
	sent           uint64
	recv           uint64
	transitions    uint64
	recent         transitionRing
	priority       uint8 // effective
}

// snapshot copies the machine's observable state. Called by the machine
// goroutine only.
func (s *shared) snapshot(m *vrrp.Machine) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state = m.State()
	s.since = m.Since()
	s.masterAddr = m.MasterAddr()
	s.masterPriority = m.MasterPriority()
	s.masterInterval = m.MasterInterval()
	s.masterDown = m.MasterDownInterval()
}

func (s *shared) add(f func(*shared)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// Status returns the node's current state and counters. Safe for concurrent use.
func (n *Node) Status() Status {
	st := Status{
		Node:      n.opt.NodeID,
		Interface: n.opt.Interface,
		Source:    n.src.String(),
		Mode:      "multicast",
	}
	if len(n.opt.UnicastPeers) > 0 {
		st.Mode = "unicast"
	}
	for _, in := range n.insts {
		st.Instances = append(st.Instances, in.status())
	}
	st.InstanceStatus = st.Instances[0]
	n.shared.mu.Lock()
	st.Dropped = maps.Clone(n.shared.dropped)
	st.Track = slices.Clone(n.shared.track)
	n.shared.mu.Unlock()
	if st.Dropped == nil {
		st.Dropped = map[string]uint64{}
	}
	return st
}

func (in *instance) status() InstanceStatus {
	in.shared.mu.Lock()
	defer in.shared.mu.Unlock()
	s := &in.shared
	st := InstanceStatus{
		State:             s.state.String(),
		Since:             s.since,
		Priority:          int(in.cfg.Priority),
		EffectivePriority: int(s.priority),
		VRID:              int(in.cfg.VRID),
		VIP:               in.cfg.VIP.String(),
		VIPHeld:           s.vipHeld,
		Preempt:           in.cfg.Preempt,
		StartState:        startState(in.cfg.StartMaster),
		AdvertInterval:    in.cfg.Interval.String(),
		MasterPriority:    int(s.masterPriority),
		MasterInterval:    s.masterInterval.String(),
		MasterDown:        s.masterDown.String(),
		AdvertsSent:       s.sent,
		AdvertsRecv:       s.recv,
		Transitions:       s.transitions,
		Recent:            s.recent.newestFirst(),
	}
	if s.masterAddr.IsValid() {
		st.MasterAddr = s.masterAddr.String()
	}
	return st
}

// IsMaster reports whether the node is VRRP master of its first virtual
// router now: the node's answer wherever one node of the cluster must act
// for all (the daily reports, active-passive scanning), since exactly one
// node is master of any one VRID. It says nothing about the VIP (see
// Status().VIPHeld): the address is added right after the transition and
// may fail to be added.
func (n *Node) IsMaster() bool {
	in := n.insts[0]
	in.shared.mu.Lock()
	defer in.shared.mu.Unlock()
	return in.shared.state == vrrp.Master
}

// VIPs are the node's virtual addresses, the first virtual router's first.
func (n *Node) VIPs() []netip.Addr {
	out := make([]netip.Addr, 0, len(n.insts))
	for _, in := range n.insts {
		out = append(out, in.cfg.VIP.Addr())
	}
	return out
}

func startState(master bool) string {
	if master {
		return "master"
	}
	return "backup"
}
