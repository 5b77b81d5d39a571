package vrrp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// State is a VRRP router state (RFC 5798 §6.4).
type State int

const (
	Initialize State = iota
	Backup
	Master
	// Fault: something the node serves is broken (a tracked check, the
	// interface's link). It holds no VIP, sends no adverts, ignores those it
	// hears and never becomes Master; on recovery it enters Backup. Not in
	// RFC 5798: keepalived's FAULT state, which its users rely on.
	Fault
)

// String returns the names used in logs, metrics labels, notify arguments and the status
// API, so they are part of the interface and must not change.
func (s State) String() string {
	switch s {
	case Initialize:
		return "init"
	case Backup:
		return "backup"
	case Master:
		return "master"
	case Fault:
		return "fault"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// Config is the configuration of one virtual router.
type Config struct {
	VRID uint8
	// Priority is 1..255 (255 = owner). SetPriority changes it while the
	// machine runs (tracked checks lower it); the machine then uses the new
	// value everywhere, including the owner test of Start.
	Priority     uint8
	Interval     time.Duration // our Advertisement_Interval
	Preempt      bool          // see Machine.Receive
	PreemptDelay time.Duration // 0 = none
	Primary      netip.Addr    // our primary address (tie-break, advert source)
	VIPs         []netip.Addr

	// StartMaster is the seed's "start as master" (keepalived's "state MASTER"):
	// Start goes to Master at once instead of waiting in Backup (see Start).
	// It needs Preempt and no PreemptDelay: both only make sense for a node
	// that waits (keepalived clears nopreempt and preempt_delay with state MASTER).
	StartMaster bool
}

// ActionKind is what the runtime has to do for one Action.
type ActionKind int

const (
	SendAdvert ActionKind = iota // send one advert with Action.Priority (0 on shutdown)
	AddVIP                       // take the VIPs (netlink) -- always followed by Announce
	Announce                     // gratuitous ARP for every VIP (runtime does burst + refresh)
	DelVIP                       // release the VIPs
	Transition                   // state changed: From, To, Reason
)

// String makes action lists readable in test failures and debug logs.
func (k ActionKind) String() string {
	switch k {
	case SendAdvert:
		return "SendAdvert"
	case AddVIP:
		return "AddVIP"
	case Announce:
		return "Announce"
	case DelVIP:
		return "DelVIP"
	case Transition:
		return "Transition"
	}
	return fmt.Sprintf("ActionKind(%d)", int(k))
}

// Action is one side effect the machine asks of the runtime, in order.
type Action struct {
	Kind     ActionKind
	Priority uint8  // SendAdvert
	From, To State  // Transition
	Reason   string // Transition: "startup", "owner", "master_down", "priority_zero", "preempt", "higher_priority", "shutdown", "fault", "recovered"
}

// Transition reasons. They end up in logs and notify hooks, so they are stable.
const (
	reasonStartup        = "startup"
	reasonOwner          = "owner"
	reasonMasterDown     = "master_down"
	reasonPriorityZero   = "priority_zero"
	reasonPreempt        = "preempt"
	reasonHigherPriority = "higher_priority"
	reasonShutdown       = "shutdown"
	reasonFault          = "fault"
	reasonRecovered      = "recovered"
)

// Machine is the VRRPv3 state machine of one virtual router (RFC 5798 §6.4 with the
// RFC 9568 changes). It is driven entirely by its callers: every input carries the
// current time, and the caller re-arms one timer to Deadline() after each call. This
// keeps the protocol logic deterministic and testable without sleeping.
//
// A Machine is not safe for concurrent use; the runtime owns it from one goroutine.
type Machine struct {
	cfg   Config
	state State
	since time.Time // last transition
	start time.Time // last Start, for PreemptDelay

	// What we know about the current master while in Backup.
	masterAddr     netip.Addr
	masterPrio     uint8
	masterInterval time.Duration // Master_Adver_Interval
	lastHeard      time.Time

	// Deadlines; zero = not armed. Every transition clears all three, which is what
	// keeps a timer armed in one state from firing in the next.
	downAt    time.Time // Master_Down_Timer (Backup)
	adverAt   time.Time // Adver_Timer (Master)
	preemptAt time.Time // end of PreemptDelay (Backup)

	// fault is what SetFault last said; it outlives Initialize so that a node
	// started while broken enters Fault rather than Backup.
	fault bool

	// downReason tells a takeover after a priority-0 advert (Skew_Time) apart from one
	// after silence; operators read it to know whether the old master left gracefully.
	downReason string
}

// New validates c and returns a machine in the Initialize state.
func New(c Config) (*Machine, error) {
	var errs []error
	if c.VRID == 0 {
		errs = append(errs, errors.New("vrid must be 1..255"))
	}
	if c.Priority == 0 {
		// 0 on the wire means "master is resigning"; a router configured with it
		// would make every advert look like a shutdown.
		errs = append(errs, errors.New("priority must be 1..255"))
	}
	if _, err := intervalCS(c.Interval); err != nil {
		errs = append(errs, err)
	}
	if c.PreemptDelay < 0 {
		errs = append(errs, fmt.Errorf("preempt delay %v is negative", c.PreemptDelay))
	}
	if c.StartMaster && !c.Preempt {
		errs = append(errs, errors.New("start as master without preempt: a node that takes the VIP at start cannot promise never to take it from a live master"))
	}
	if c.StartMaster && c.PreemptDelay > 0 {
		errs = append(errs, errors.New("start as master with a preempt delay: the delay holds back a node that starts as backup, one that starts as master takes over at once"))
	}
	c.Primary = c.Primary.Unmap()
	if !c.Primary.IsValid() {
		errs = append(errs, errors.New("primary address is required"))
	}
	if len(c.VIPs) == 0 || len(c.VIPs) > 255 {
		errs = append(errs, fmt.Errorf("%d virtual addresses, want 1..255", len(c.VIPs)))
	}
	vips := make([]netip.Addr, len(c.VIPs))
	for i, v := range c.VIPs {
		v = v.Unmap()
		// One advert carries one family and is sent from the primary (RFC 5798 §5.2.9).
		if !v.IsValid() || (c.Primary.IsValid() && v.Is4() != c.Primary.Is4()) {
			errs = append(errs, fmt.Errorf("virtual address %v is invalid or not of the primary address's family", c.VIPs[i]))
		}
		vips[i] = v
	}
	c.VIPs = vips
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("vrrp config: %w", err)
	}
	return &Machine{cfg: c, state: Initialize, masterInterval: c.Interval}, nil
}

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Since returns the time of the last transition (zero before Start).
func (m *Machine) Since() time.Time { return m.since }

// MasterAddr is Primary while Master, the source of the last accepted advert while
// Backup (zero if none), and zero in Initialize.
func (m *Machine) MasterAddr() netip.Addr {
	switch m.state {
	case Master:
		return m.cfg.Primary
	case Backup:
		return m.masterAddr
	}
	return netip.Addr{}
}

// MasterPriority is the priority of whoever MasterAddr names (0 if unknown, or if the
// master's last advert was a resignation).
func (m *Machine) MasterPriority() uint8 {
	switch m.state {
	case Master:
		return m.cfg.Priority
	case Backup:
		return m.masterPrio
	}
	return 0
}

// MasterInterval is the learned Master_Adver_Interval (our own interval while Master
// or before anything was learned).
func (m *Machine) MasterInterval() time.Duration { return m.masterInterval }

// SkewTime is ((256 − Priority) × Master_Adver_Interval) / 256 (RFC 5798 §6.1), in
// nanoseconds, multiplying first: centisecond or millisecond arithmetic truncates it
// (to 0 for priority 254 at 10ms), which would let equal-interval backups tie.
func (m *Machine) SkewTime() time.Duration {
	return (256 - time.Duration(m.cfg.Priority)) * m.masterInterval / 256
}

// MasterDownInterval is 3 × Master_Adver_Interval + Skew_Time (RFC 5798 §6.1).
func (m *Machine) MasterDownInterval() time.Duration {
	return 3*m.masterInterval + m.SkewTime()
}

// Deadline returns the earliest armed timer, zero if none.
func (m *Machine) Deadline() time.Time {
	var d time.Time
	for _, t := range [...]time.Time{m.downAt, m.adverAt, m.preemptAt} {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

func (m *Machine) clearTimers() {
	m.downAt, m.adverAt, m.preemptAt = time.Time{}, time.Time{}, time.Time{}
}

func (m *Machine) transition(now time.Time, to State, reason string) Action {
	a := Action{Kind: Transition, From: m.state, To: to, Reason: reason}
	m.state, m.since = to, now
	return a
}

// becomeMaster is RFC 5798 §6.4.1 (110)-(145) and §6.4.2 (370)-(410); the order of the
// actions puts the VIP on the interface before the advert and the GARP, so that
// traffic drawn by either finds the address already there.
func (m *Machine) becomeMaster(now time.Time, reason string) []Action {
	m.clearTimers()
	m.masterInterval = m.cfg.Interval
	m.masterAddr, m.masterPrio, m.lastHeard = netip.Addr{}, 0, time.Time{}
	m.adverAt = now.Add(m.cfg.Interval) // (140) / (405)
	return []Action{
		m.transition(now, Master, reason),
		{Kind: AddVIP},
		{Kind: SendAdvert, Priority: m.cfg.Priority},
		{Kind: Announce},
	}
}

// heard records an advert a Backup accepts as coming from the current master:
// RFC 5798 §6.4.2 (450) adopt its interval, (455) recompute, (460) reset the timer.
func (m *Machine) heard(now time.Time, src netip.Addr, a Advert) {
	m.masterInterval = a.Interval
	m.masterAddr, m.masterPrio, m.lastHeard = src, a.Priority, now
	m.downAt = now.Add(m.MasterDownInterval())
	m.downReason = reasonMasterDown
}

// Start is the Startup event (RFC 5798 §6.4.1). It does nothing unless the machine is in
// Initialize, so a repeated call cannot reset a running router.
//
// StartMaster is the seed's "start as master": the node "forces an election at once by
// advertising as master when it starts", so it goes through (110)-(145) like the owner
// does. The election is then RFC 5798 §6.4.3's: a lower master steps down on our
// first advert (730)-(765), a higher one answers at once (775, RFC 9568) and we step
// down on its advert. Without StartMaster, (150)-(165): Backup, which is also the
// seed's "start as backup" (Receive does the rest).
func (m *Machine) Start(now time.Time) []Action {
	if m.state != Initialize {
		return nil
	}
	m.start = now
	m.clearTimers()
	if m.fault {
		return []Action{m.transition(now, Fault, reasonFault)}
	}
	// (105) The address owner does not wait for anyone, whatever its start state.
	if m.cfg.Priority == 255 {
		return m.becomeMaster(now, reasonOwner)
	}
	if m.cfg.StartMaster {
		return m.becomeMaster(now, reasonStartup)
	}
	m.masterAddr, m.masterPrio, m.lastHeard = netip.Addr{}, 0, time.Time{}
	m.masterInterval = m.cfg.Interval          // (155)
	m.downAt = now.Add(m.MasterDownInterval()) // (160)
	m.downReason = reasonMasterDown
	return []Action{m.transition(now, Backup, reasonStartup)} // (165)
}

// Shutdown is the Shutdown event. A Master resigns with a priority-0 advert first so
// that the best Backup takes over after Skew_Time instead of Master_Down_Interval.
func (m *Machine) Shutdown(now time.Time) []Action {
	var out []Action
	switch m.state {
	case Master:
		m.clearTimers() // (660)
		out = []Action{
			{Kind: SendAdvert, Priority: 0}, // (665)
			{Kind: DelVIP},
			m.transition(now, Initialize, reasonShutdown), // (670)
		}
	case Backup, Fault:
		m.clearTimers()                                               // (350)
		out = []Action{m.transition(now, Initialize, reasonShutdown)} // (355)
	default:
		return nil
	}
	m.masterAddr, m.masterPrio, m.lastHeard = netip.Addr{}, 0, time.Time{}
	m.masterInterval = m.cfg.Interval
	return out
}

// Receive handles an advert that Filter already accepted.
//
// Preempt follows the seed's "start as backup" rather than RFC 5798 (470): a node that
// "comes up as backup, hears the lower-priority slave's advertisement, then starts the
// election and takes over" — a Backup that hears a lower, non-zero priority takes over
// at once instead of discarding the advert and waiting out Master_Down_Interval as
// keepalived does. It never steals from a higher priority. PreemptDelay holds that back
// after Start: until it has passed, the lower master is followed like any other, and a
// timer re-checks at Start+PreemptDelay. Preempt false is keepalived's nopreempt.
func (m *Machine) Receive(now time.Time, src netip.Addr, a Advert) []Action {
	src = src.Unmap()
	// Filter guarantees these; checking again keeps a runtime bug (our own looped-back
	// advert, an unvalidated interval) from turning into an advert storm or a zero timer.
	if a.VRID != m.cfg.VRID || a.Interval <= 0 || src == m.cfg.Primary {
		return nil
	}
	switch m.state {
	case Backup:
		return m.receiveBackup(now, src, a)
	case Master:
		return m.receiveMaster(now, src, a)
	}
	return nil
}

// receiveBackup is RFC 5798 §6.4.2 (420)-(485).
func (m *Machine) receiveBackup(now time.Time, src netip.Addr, a Advert) []Action {
	// (425)-(430) The master resigned: the best Backup has the smallest skew.
	if a.Priority == 0 {
		m.masterAddr, m.masterPrio, m.lastHeard = src, 0, now
		m.downAt = now.Add(m.SkewTime())
		m.downReason = reasonPriorityZero
		return nil
	}
	// (445)-(460)
	if !m.cfg.Preempt || a.Priority >= m.cfg.Priority {
		m.heard(now, src, a)
		return nil
	}
	// (465)-(470), the seed's variant: see Receive.
	if m.cfg.PreemptDelay == 0 || now.Sub(m.start) >= m.cfg.PreemptDelay {
		return m.becomeMaster(now, reasonPreempt)
	}
	m.heard(now, src, a)
	if m.preemptAt.IsZero() {
		m.preemptAt = m.start.Add(m.cfg.PreemptDelay)
	}
	return nil
}

// receiveMaster is RFC 5798 §6.4.3 (695)-(785) with the RFC 9568 change to (775).
func (m *Machine) receiveMaster(now time.Time, src netip.Addr, a Advert) []Action {
	// (705)-(715) A second master we did not know of is resigning; asserting at once
	// keeps the Backups that heard it from taking over after Skew_Time.
	if a.Priority == 0 {
		m.adverAt = now.Add(m.cfg.Interval)
		return []Action{{Kind: SendAdvert, Priority: m.cfg.Priority}}
	}
	// (725)-(735) Higher priority, or equal with the larger primary address compared as
	// unsigned network-order bytes (netip.Addr.Compare does that within one family).
	if a.Priority > m.cfg.Priority || (a.Priority == m.cfg.Priority && src.Compare(m.cfg.Primary) > 0) {
		m.clearTimers()      // (740)
		m.heard(now, src, a) // (745)-(760)
		return []Action{
			m.transition(now, Backup, reasonHigherPriority), // (765)
			{Kind: DelVIP},
		}
	}
	// (770)-(775) RFC 5798 discards; RFC 9568 also sends an advert at once. We add a
	// re-GARP: a lower master exists only after a split brain (partition healed, or a
	// node that missed our adverts), and the hosts and switches that followed its GARPs
	// would otherwise keep sending to it until their caches expire — hours on some gear.
	m.adverAt = now.Add(m.cfg.Interval)
	return []Action{{Kind: SendAdvert, Priority: m.cfg.Priority}, {Kind: Announce}}
}

// Tick fires every timer due at or before now, earliest first. A late Tick fires each
// timer once and re-arms it from now: a stalled process should send one advert, not a
// burst of the ones it missed.
func (m *Machine) Tick(now time.Time) []Action {
	var out []Action
	// Terminates: every firing either clears its timer or re-arms it after now.
	for {
		d := m.Deadline()
		if d.IsZero() || d.After(now) {
			return out
		}
		switch {
		case d.Equal(m.downAt):
			// (365)-(410)
			out = append(out, m.becomeMaster(now, m.downReason)...)
		case d.Equal(m.preemptAt):
			m.preemptAt = time.Time{}
			// Only a lower master that is still alive is preempted; if it went silent
			// the Master_Down_Timer is the one that decides.
			if m.masterAddr.IsValid() && m.masterPrio < m.cfg.Priority &&
				now.Sub(m.lastHeard) <= m.MasterDownInterval() {
				out = append(out, m.becomeMaster(now, reasonPreempt)...)
			}
		default: // m.adverAt
			// (675)-(690)
			m.adverAt = now.Add(m.cfg.Interval)
			out = append(out, Action{Kind: SendAdvert, Priority: m.cfg.Priority})
		}
	}
}

// Priority is the priority in use now: the configured one, or what
// SetPriority set.
func (m *Machine) Priority() uint8 { return m.cfg.Priority }

// SetPriority changes our priority while running (keepalived's track
// weights). A Master advertises the new value at once and restarts its
// Adver_Timer, so that a Backup with preemption and a priority now higher
// takes over within one packet instead of at the next advert; a Backup uses
// it from the next advert it hears (its Skew_Time and whether it preempts).
// p = 0 is refused: on the wire it means "resigning".
func (m *Machine) SetPriority(now time.Time, p uint8) []Action {
	if p == 0 || p == m.cfg.Priority {
		return nil
	}
	m.cfg.Priority = p
	if m.state != Master {
		return nil
	}
	m.adverAt = now.Add(m.cfg.Interval)
	return []Action{{Kind: SendAdvert, Priority: p}}
}

// SetFault enters (fault) or leaves (!fault) the Fault state. A Master
// resigns as on Shutdown — a priority-0 advert first, so the best Backup
// takes over after Skew_Time rather than Master_Down_Interval (keepalived
// does the same on FAULT), then the VIP goes. Recovery enters Backup and
// waits Master_Down_Interval like a start: a master that exists meanwhile
// announces itself, and preemption then applies as usual. Before Start it
// only records the fault, so that Start enters Fault.
func (m *Machine) SetFault(now time.Time, fault bool) []Action {
	if fault == m.fault {
		return nil
	}
	m.fault = fault
	var out []Action
	switch {
	case fault && m.state == Master:
		out = []Action{{Kind: SendAdvert, Priority: 0}, {Kind: DelVIP}}
	case fault && m.state == Backup:
	case !fault && m.state == Fault:
		m.clearTimers()
		m.masterInterval = m.cfg.Interval
		m.downAt = now.Add(m.MasterDownInterval())
		m.downReason = reasonMasterDown
		return []Action{m.transition(now, Backup, reasonRecovered)}
	default: // Initialize: Start reads m.fault
		return nil
	}
	m.clearTimers()
	m.masterAddr, m.masterPrio, m.lastHeard = netip.Addr{}, 0, time.Time{}
	m.masterInterval = m.cfg.Interval
	return append(out, m.transition(now, Fault, reasonFault))
}
