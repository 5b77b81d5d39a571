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
// `mxgate cluster status`. The JSON names are part of the admin API.
type Status struct {
	Node     string    `json:"node"`
	State    string    `json:"state"` // init|backup|master|fault
	Since    time.Time `json:"since"`
	Priority int       `json:"priority"`
	// EffectivePriority is the one advertised: Priority lowered by the
	// weights of the failing tracked items.
	EffectivePriority int               `json:"effective_priority"`
	Track             []TrackStatus     `json:"track"`
	VRID              int               `json:"vrid"`
	VIP               string            `json:"vip"`
	VIPHeld           bool              `json:"vip_held"`
	Interface         string            `json:"interface"`
	Source            string            `json:"source"`
	Mode              string            `json:"transport"` // multicast|unicast
	Preempt           bool              `json:"preempt"`
	AdvertInterval    string            `json:"advert_interval"` // ours
	MasterAddr        string            `json:"master"`
	MasterPriority    int               `json:"master_priority"`
	MasterInterval    string            `json:"master_interval"` // learned
	MasterDown        string            `json:"master_down_interval"`
	AdvertsSent       uint64            `json:"adverts_sent"`
	AdvertsRecv       uint64            `json:"adverts_received"`
	Dropped           map[string]uint64 `json:"dropped"` // by vrrp.DropReason
	Transitions       uint64            `json:"transitions"`
}

// shared is what the machine, receive and GARP paths publish for Status and
// IsMaster. The machine itself is owned by one goroutine and never read from
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
	dropped        map[string]uint64
	transitions    uint64
	priority       uint8 // effective
	track          []TrackStatus
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
	n.shared.mu.Lock()
	defer n.shared.mu.Unlock()
	s := &n.shared
	st := Status{
		Node:              n.opt.NodeID,
		State:             s.state.String(),
		Since:             s.since,
		Priority:          int(n.opt.Priority),
		EffectivePriority: int(s.priority),
		Track:             slices.Clone(s.track),
		VRID:              int(n.opt.VRID),
		VIP:               n.opt.VIP.String(),
		VIPHeld:           s.vipHeld,
		Interface:         n.opt.Interface,
		Source:            n.src.String(),
		Mode:              "multicast",
		Preempt:           n.opt.Preempt,
		AdvertInterval:    n.opt.Interval.String(),
		MasterPriority:    int(s.masterPriority),
		MasterInterval:    s.masterInterval.String(),
		MasterDown:        s.masterDown.String(),
		AdvertsSent:       s.sent,
		AdvertsRecv:       s.recv,
		Dropped:           maps.Clone(s.dropped),
		Transitions:       s.transitions,
	}
	if len(n.opt.UnicastPeers) > 0 {
		st.Mode = "unicast"
	}
	if s.masterAddr.IsValid() {
		st.MasterAddr = s.masterAddr.String()
	}
	if st.Dropped == nil {
		st.Dropped = map[string]uint64{}
	}
	return st
}

// IsMaster reports whether the node is VRRP master now. It says nothing about
// the VIP (see Status().VIPHeld): the address is added right after the
// transition and may fail to be added.
func (n *Node) IsMaster() bool {
	n.shared.mu.Lock()
	defer n.shared.mu.Unlock()
	return n.shared.state == vrrp.Master
}
