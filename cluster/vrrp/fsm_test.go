package vrrp

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	t0      = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	primary = netip.MustParseAddr("198.18.0.11")
	lower   = netip.MustParseAddr("198.18.0.10") // smaller address than primary
	higher  = netip.MustParseAddr("198.18.0.12") // larger address than primary
	vip     = netip.MustParseAddr("198.18.0.100")
)

func baseConfig() Config {
	return Config{VRID: 51, Priority: 200, Interval: time.Second, Preempt: true, Primary: primary, VIPs: []netip.Addr{vip}}
}

func adv(prio uint8, interval time.Duration) Advert {
	return Advert{VRID: 51, Priority: prio, Interval: interval, Addrs: []netip.Addr{vip}}
}

func ms(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

func TestTimes(t *testing.T) {
	// RFC 5798 §6.1: Skew_Time = ((256 − Priority) × Master_Adver_Interval) / 256,
	// Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time; exact in ns.
	for _, tc := range []struct {
		prio     uint8
		interval time.Duration
		skew     time.Duration
		down     time.Duration
	}{
		{200, time.Second, ms(218.75), ms(3218.75)},
		{100, time.Second, ms(609.375), ms(3609.375)},
		{50, time.Second, ms(804.6875), ms(3804.6875)},
		{200, 100 * time.Millisecond, ms(21.875), ms(321.875)},
		{100, 100 * time.Millisecond, ms(60.9375), ms(360.9375)},
		{50, 100 * time.Millisecond, ms(80.46875), ms(380.46875)},
		// Sub-millisecond skews survive: integer-ms arithmetic would make them 0.
		{254, 10 * time.Millisecond, 78125 * time.Nanosecond, 30078125 * time.Nanosecond},
		{255, 10 * time.Millisecond, 39062 * time.Nanosecond, 30039062 * time.Nanosecond}, // 39062.5 truncated
		{1, 40950 * time.Millisecond, ms(40790.0390625), ms(163640.0390625)},
	} {
		c := baseConfig()
		c.Priority, c.Interval = tc.prio, tc.interval
		m, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.SkewTime(); got != tc.skew {
			t.Errorf("prio %d at %v: skew %v, want %v", tc.prio, tc.interval, got, tc.skew)
		}
		if got := m.MasterDownInterval(); got != tc.down {
			t.Errorf("prio %d at %v: master down %v, want %v", tc.prio, tc.interval, got, tc.down)
		}
	}
}

// step is one input to the machine at t0+at and the actions it must produce.
type step struct {
	at   time.Duration
	ev   string // start, tick, recv, shutdown, fault, recover, prio (priority in a.Priority)
	src  netip.Addr
	a    Advert
	want []Action
}

func start(at time.Duration, want ...Action) step { return step{at: at, ev: "start", want: want} }
func tick(at time.Duration, want ...Action) step  { return step{at: at, ev: "tick", want: want} }
func shutdown(at time.Duration, want ...Action) step {
	return step{at: at, ev: "shutdown", want: want}
}
func recv(at time.Duration, src netip.Addr, a Advert, want ...Action) step {
	return step{at: at, ev: "recv", src: src, a: a, want: want}
}

func tr(from, to State, reason string) Action {
	return Action{Kind: Transition, From: from, To: to, Reason: reason}
}
func send(p uint8) Action { return Action{Kind: SendAdvert, Priority: p} }

var (
	addVIP   = Action{Kind: AddVIP}
	delVIP   = Action{Kind: DelVIP}
	announce = Action{Kind: Announce}
)

func toMaster(from State, reason string, prio uint8) []Action {
	return []Action{tr(from, Master, reason), addVIP, send(prio), announce}
}

const (
	down200 = 3218750 * time.Microsecond // Master_Down_Interval, prio 200 at 1s
	skew200 = 218750 * time.Microsecond
	none    = time.Duration(-1) // no deadline
)

// rule is one row of a rules table: the config, the inputs with the actions each
// must produce, and the state and the deadline after them.
type rule struct {
	name     string
	cfg      func(*Config)
	steps    []step
	state    State
	deadline time.Duration // offset from t0, or none
	check    func(t *testing.T, m *Machine)
}

func TestRules(t *testing.T) {
	// becomeMaster at t0+down200 via the Master_Down_Timer: the common start of the
	// Master-state rows.
	asMaster := []step{start(0, tr(Initialize, Backup, "startup")), tick(down200, toMaster(Backup, "master_down", 200)...)}
	then := func(pre []step, s ...step) []step { return append(append([]step{}, pre...), s...) }

	rules := []rule{
		// §6.4.1 Initialize
		{
			name:  "(105)-(145) owner priority 255 becomes Master at once, Adver_Timer armed",
			cfg:   func(c *Config) { c.Priority = 255 },
			steps: []step{start(0, toMaster(Initialize, "owner", 255)...)},
			state: Master, deadline: time.Second,
			check: func(t *testing.T, m *Machine) {
				if m.MasterAddr() != primary || m.MasterPriority() != 255 || m.Since() != t0 {
					t.Errorf("master %v/%d since %v", m.MasterAddr(), m.MasterPriority(), m.Since())
				}
			},
		},
		{
			name:  "(150)-(165) non-owner starts Backup, Master_Down_Timer = Master_Down_Interval",
			steps: []step{start(0, tr(Initialize, Backup, "startup"))},
			state: Backup, deadline: down200,
			check: func(t *testing.T, m *Machine) {
				if m.MasterInterval() != time.Second || m.MasterAddr().IsValid() || m.MasterPriority() != 0 {
					t.Errorf("learned %v %v %d before any advert", m.MasterInterval(), m.MasterAddr(), m.MasterPriority())
				}
			},
		},
		{
			name:  "Start twice does not restart",
			steps: []step{start(0, tr(Initialize, Backup, "startup")), start(time.Second)},
			state: Backup, deadline: down200,
		},

		// §6.4.2 Backup
		{
			name:  "(345)-(355) Backup Shutdown cancels Master_Down_Timer",
			steps: []step{start(0, tr(Initialize, Backup, "startup")), shutdown(time.Second, tr(Backup, Initialize, "shutdown")), tick(time.Hour)},
			state: Initialize, deadline: none,
		},
		{
			name:  "(365)-(410) Master_Down_Timer fires: Master, advert, GARP, Adver_Timer",
			steps: []step{start(0, tr(Initialize, Backup, "startup")), tick(down200 - 1), tick(down200, toMaster(Backup, "master_down", 200)...)},
			state: Master, deadline: down200 + time.Second,
		},
		{
			name: "(425)-(430) priority 0 advert: Master_Down_Timer = Skew_Time",
			steps: []step{
				start(0, tr(Initialize, Backup, "startup")),
				recv(time.Second, higher, adv(250, time.Second)),
				recv(2*time.Second, higher, adv(0, time.Second)),
			},
			state: Backup, deadline: 2*time.Second + skew200,
			check: func(t *testing.T, m *Machine) {
				if got := m.Tick(t0.Add(2*time.Second + skew200)); !reflect.DeepEqual(got, toMaster(Backup, "priority_zero", 200)) {
					t.Errorf("skew expiry: %v", got)
				}
			},
		},
		{
			name:  "(445)-(460) higher priority advert: adopt its interval, recompute, reset timer",
			steps: []step{start(0, tr(Initialize, Backup, "startup")), recv(time.Second, higher, adv(250, 2*time.Second))},
			// 3×2s + (56×2s)/256 = 6.4375s after the advert.
			state: Backup, deadline: time.Second + 6437500*time.Microsecond,
			check: func(t *testing.T, m *Machine) {
				if m.MasterInterval() != 2*time.Second || m.SkewTime() != ms(437.5) || m.MasterAddr() != higher || m.MasterPriority() != 250 {
					t.Errorf("learned %v skew %v master %v/%d", m.MasterInterval(), m.SkewTime(), m.MasterAddr(), m.MasterPriority())
				}
			},
		},
		{
			name:  "(445) equal priority advert is followed even with Preempt (Backups never compare addresses)",
			steps: []step{start(0, tr(Initialize, Backup, "startup")), recv(time.Second, lower, adv(200, time.Second))},
			state: Backup, deadline: time.Second + down200,
		},
		{
			name:  "(445) Preempt_Mode False: lower priority advert is followed",
			cfg:   func(c *Config) { c.Preempt = false },
			steps: []step{start(0, tr(Initialize, Backup, "startup")), recv(time.Second, higher, adv(100, 100*time.Millisecond))},
			// 300ms + (56×100ms)/256 = 321.875ms
			state: Backup, deadline: time.Second + ms(321.875),
			check: func(t *testing.T, m *Machine) {
				if m.MasterAddr() != higher || m.MasterPriority() != 100 {
					t.Errorf("master %v/%d", m.MasterAddr(), m.MasterPriority())
				}
			},
		},
		{
			name:  "(465)-(470) contract: Preempt on, lower priority advert, no delay: Master at once",
			steps: []step{start(0, tr(Initialize, Backup, "startup")), recv(time.Second, higher, adv(100, time.Second), toMaster(Backup, "preempt", 200)...)},
			state: Master, deadline: 2 * time.Second,
		},
		{
			name: "(465)-(470) contract: PreemptDelay holds the takeover until Start+delay",
			cfg:  func(c *Config) { c.PreemptDelay = 5 * time.Second },
			steps: []step{
				start(0, tr(Initialize, Backup, "startup")),
				recv(time.Second, higher, adv(100, time.Second)),
				recv(2*time.Second, higher, adv(100, time.Second)),
				recv(3*time.Second, higher, adv(100, time.Second)),
				recv(4*time.Second, higher, adv(100, time.Second)),
				tick(5*time.Second - 1),
				tick(5*time.Second, toMaster(Backup, "preempt", 200)...),
			},
			state: Master, deadline: 6 * time.Second,
		},
		{
			name: "(465)-(470) contract: lower advert after PreemptDelay passed: Master at once",
			cfg:  func(c *Config) { c.PreemptDelay = 5 * time.Second },
			steps: []step{
				start(0, tr(Initialize, Backup, "startup")),
				recv(3*time.Second, higher, adv(250, time.Second)),
				recv(6*time.Second, higher, adv(100, time.Second), toMaster(Backup, "preempt", 200)...),
			},
			state: Master, deadline: 7 * time.Second,
		},
		{
			name: "(465)-(470) contract: preempt timer does not steal from a higher master that appeared",
			cfg:  func(c *Config) { c.PreemptDelay = 5 * time.Second },
			steps: []step{
				start(0, tr(Initialize, Backup, "startup")),
				recv(time.Second, lower, adv(100, time.Second)),
				recv(2*time.Second, higher, adv(250, time.Second)),
				recv(4*time.Second, higher, adv(250, time.Second)),
				tick(5 * time.Second),
			},
			state: Backup, deadline: 4*time.Second + down200,
		},

		// §6.4.3 Master
		{
			name:  "(655)-(670) Master Shutdown: priority 0 advert, VIP released, Init",
			steps: then(asMaster, shutdown(4*time.Second, send(0), delVIP, tr(Master, Initialize, "shutdown")), tick(time.Hour)),
			state: Initialize, deadline: none,
			check: func(t *testing.T, m *Machine) {
				if m.MasterAddr().IsValid() || m.Since() != t0.Add(4*time.Second) {
					t.Errorf("after shutdown: master %v since %v", m.MasterAddr(), m.Since())
				}
			},
		},
		{
			name:  "(675)-(690) Adver_Timer fires: advert, reset",
			steps: then(asMaster, tick(down200+time.Second, send(200)), tick(down200+2*time.Second-1)),
			state: Master, deadline: down200 + 2*time.Second,
		},
		{
			name:  "(675)-(690) late Tick sends one advert, not the missed ones",
			steps: then(asMaster, tick(down200+5500*time.Millisecond, send(200))),
			state: Master, deadline: down200 + 6500*time.Millisecond,
		},
		{
			name:  "(700)-(715) priority 0 advert: send advert at once, reset Adver_Timer",
			steps: then(asMaster, recv(down200+500*time.Millisecond, higher, adv(0, time.Second), send(200))),
			state: Master, deadline: down200 + 1500*time.Millisecond,
		},
		{
			name:  "(720)-(765) higher priority: Backup, VIP released, learned interval, Master_Down_Timer",
			steps: then(asMaster, recv(down200+500*time.Millisecond, lower, adv(201, 500*time.Millisecond), tr(Master, Backup, "higher_priority"), delVIP)),
			// 3×500ms + (56×500ms)/256 = 1.609375s
			state: Backup, deadline: down200 + 500*time.Millisecond + ms(1609.375),
			check: func(t *testing.T, m *Machine) {
				if m.MasterAddr() != lower || m.MasterPriority() != 201 || m.MasterInterval() != 500*time.Millisecond {
					t.Errorf("master %v/%d/%v", m.MasterAddr(), m.MasterPriority(), m.MasterInterval())
				}
			},
		},
		{
			name:  "(735) equal priority, sender's address greater: Backup",
			steps: then(asMaster, recv(down200+500*time.Millisecond, higher, adv(200, time.Second), tr(Master, Backup, "higher_priority"), delVIP)),
			state: Backup, deadline: down200 + 500*time.Millisecond + down200,
		},
		{
			name:  "(770)-(775) + RFC 9568: equal priority, sender's address smaller: stay, advert at once, re-GARP",
			steps: then(asMaster, recv(down200+500*time.Millisecond, lower, adv(200, time.Second), send(200), announce)),
			state: Master, deadline: down200 + 1500*time.Millisecond,
		},
		{
			name:  "(770)-(775) + RFC 9568: lower priority: stay, advert at once, re-GARP",
			steps: then(asMaster, recv(down200+500*time.Millisecond, higher, adv(199, time.Second), send(200), announce)),
			state: Master, deadline: down200 + 1500*time.Millisecond,
		},
		{
			name: "IPv4 tie-break compares unsigned bytes, not signed or textual",
			cfg: func(c *Config) {
				c.Primary = netip.MustParseAddr("9.0.0.1")
				c.VIPs = []netip.Addr{netip.MustParseAddr("9.0.0.100")}
			},
			steps: then(asMaster, recv(down200+time.Second/2, netip.MustParseAddr("200.0.0.1"), adv(200, time.Second), tr(Master, Backup, "higher_priority"), delVIP)),
			state: Backup, deadline: down200 + time.Second/2 + down200,
		},

		// Timers across state changes.
		{
			name:  "stale Adver_Timer does not fire after Master → Backup",
			steps: then(asMaster, recv(down200+500*time.Millisecond, higher, adv(250, time.Second), tr(Master, Backup, "higher_priority"), delVIP), tick(down200+time.Second)),
			state: Backup, deadline: down200 + 500*time.Millisecond + down200,
		},
		{
			name: "stale Master_Down_Timer does not fire after preempting",
			steps: []step{
				start(0, tr(Initialize, Backup, "startup")),
				recv(time.Second, higher, adv(100, time.Second), toMaster(Backup, "preempt", 200)...),
				tick(down200, send(200)), // the startup Master_Down_Timer would have been due: only the Adver_Timer fires
			},
			state: Master, deadline: down200 + time.Second,
		},
		{
			name: "stale preempt timer does not fire after Master_Down_Timer won",
			cfg:  func(c *Config) { c.PreemptDelay = 10 * time.Second },
			steps: []step{
				start(0, tr(Initialize, Backup, "startup")),
				recv(time.Second, higher, adv(100, time.Second)),
				tick(time.Second+down200, toMaster(Backup, "master_down", 200)...),
				tick(10*time.Second, send(200)), // only the Adver_Timer, no second transition
			},
			state: Master, deadline: 11 * time.Second,
		},
		{
			name: "Backup → Master → Backup → Master by timer again",
			steps: then(asMaster,
				recv(down200+time.Second/2, higher, adv(250, time.Second), tr(Master, Backup, "higher_priority"), delVIP),
				tick(down200+time.Second/2+down200, toMaster(Backup, "master_down", 200)...)),
			state: Master, deadline: down200 + time.Second/2 + down200 + time.Second,
		},

		// Inputs the machine ignores.
		{
			name:  "advert before Start is ignored",
			steps: []step{recv(0, higher, adv(250, time.Second)), tick(time.Hour)},
			state: Initialize, deadline: none,
		},
		{
			name:  "our own looped-back advert is ignored even as Master",
			steps: then(asMaster, recv(down200+time.Second/2, primary, adv(200, time.Second))),
			state: Master, deadline: down200 + time.Second,
		},
		{
			name:  "advert for another VRID is ignored",
			steps: []step{start(0, tr(Initialize, Backup, "startup")), recv(time.Second, higher, Advert{VRID: 52, Priority: 250, Interval: time.Second})},
			state: Backup, deadline: down200,
		},
		{
			name:  "Shutdown before Start does nothing",
			steps: []step{shutdown(0)},
			state: Initialize, deadline: none,
		},
	}

	runRules(t, append(rules, trackRules()...))
}

func runRules(t *testing.T, rules []rule) {
	t.Helper()
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			c := baseConfig()
			if r.cfg != nil {
				r.cfg(&c)
			}
			m, err := New(c)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range r.steps {
				if got := s.apply(m); (len(got) != 0 || len(s.want) != 0) && !reflect.DeepEqual(got, s.want) {
					t.Fatalf("step %d (%s at +%v): actions\n got %v\nwant %v", i, s.ev, s.at, got, s.want)
				}
			}
			if m.State() != r.state {
				t.Errorf("state %v, want %v", m.State(), r.state)
			}
			want := time.Time{}
			if r.deadline != none {
				want = t0.Add(r.deadline)
			}
			if got := m.Deadline(); !got.Equal(want) {
				t.Errorf("deadline %v, want %v", offset(got), offset(want))
			}
			if r.check != nil {
				r.check(t, m)
			}
		})
	}
}

// apply feeds the step to m at its time and returns the actions.
func (s step) apply(m *Machine) []Action {
	now := t0.Add(s.at)
	switch s.ev {
	case "start":
		return m.Start(now)
	case "tick":
		return m.Tick(now)
	case "recv":
		return m.Receive(now, s.src, s.a)
	case "shutdown":
		return m.Shutdown(now)
	case "fault", "recover":
		return m.SetFault(now, s.ev == "fault")
	case "prio":
		return m.SetPriority(now, s.a.Priority)
	}
	panic("unknown step " + s.ev)
}

func offset(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return "+" + t.Sub(t0).String()
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"vrid 0", func(c *Config) { c.VRID = 0 }, "vrid"},
		{"priority 0", func(c *Config) { c.Priority = 0 }, "priority"},
		{"interval 0", func(c *Config) { c.Interval = 0 }, "outside"},
		{"interval 41s", func(c *Config) { c.Interval = 41 * time.Second }, "outside"},
		{"interval 15ms", func(c *Config) { c.Interval = 15 * time.Millisecond }, "multiple"},
		{"negative preempt delay", func(c *Config) { c.PreemptDelay = -time.Second }, "negative"},
		{"no primary", func(c *Config) { c.Primary = netip.Addr{} }, "primary"},
		{"no vips", func(c *Config) { c.VIPs = nil }, "0 virtual"},
		{"vip family", func(c *Config) { c.VIPs = []netip.Addr{v6Src} }, "family"},
		{"zero vip", func(c *Config) { c.VIPs = []netip.Addr{{}} }, "invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := baseConfig()
			tc.mod(&c)
			_, err := New(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	// Every problem is reported at once, so a config needs one round of fixes.
	_, err := New(Config{})
	for _, w := range []string{"vrid", "priority", "outside", "primary", "virtual"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("New(Config{}) = %v, missing %q", err, w)
		}
	}

	// New keeps its own copy: the caller editing its slice must not move our VIPs.
	c := baseConfig()
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	c.VIPs[0] = netip.MustParseAddr("198.18.0.99")
	if m.cfg.VIPs[0] != vip {
		t.Fatal("Machine shares the caller's VIP slice")
	}
}

func TestStrings(t *testing.T) {
	for s, want := range map[State]string{Initialize: "init", Backup: "backup", Master: "master", Fault: "fault", State(9): "state(9)"} {
		if s.String() != want {
			t.Errorf("%d: %q, want %q", int(s), s.String(), want)
		}
	}
	if SendAdvert.String() != "SendAdvert" || Transition.String() != "Transition" || ActionKind(9).String() != "ActionKind(9)" {
		t.Error("ActionKind names")
	}
}

// TestPriorityZeroTakeoverOrder plays the graceful failover of the lab (200/100/50)
// through three machines: only the best Backup wins, after its own Skew_Time.
func TestPriorityZeroTakeoverOrder(t *testing.T) {
	addrs := []netip.Addr{netip.MustParseAddr("198.18.0.11"), netip.MustParseAddr("198.18.0.12"), netip.MustParseAddr("198.18.0.13")}
	var nodes []*Machine
	for i, p := range []uint8{200, 100, 50} {
		c := baseConfig()
		c.Priority, c.Primary = p, addrs[i]
		m, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, m)
	}
	n1 := nodes[0]
	n1.Start(t0)
	for _, m := range nodes[1:] {
		m.Start(t0)
		m.Receive(t0.Add(time.Second/2), addrs[0], adv(200, time.Second))
	}
	n1.Tick(t0.Add(down200))
	if n1.State() != Master {
		t.Fatal("n1 did not become master")
	}
	for _, m := range nodes[1:] {
		m.Receive(t0.Add(4*time.Second), addrs[0], adv(200, time.Second))
	}
	n1.Shutdown(t0.Add(5 * time.Second))
	for _, m := range nodes[1:] {
		m.Receive(t0.Add(5*time.Second), addrs[0], adv(0, time.Second))
	}
	if d := nodes[1].Deadline().Sub(t0.Add(5 * time.Second)); d != ms(609.375) {
		t.Errorf("n2 waits %v, want Skew_Time 609.375ms", d)
	}
	got := nodes[1].Tick(nodes[1].Deadline())
	if !reflect.DeepEqual(got, toMaster(Backup, "priority_zero", 100)) {
		t.Fatalf("n2: %v", got)
	}
	// n2's first advert reaches n3 before n3's longer skew ran out.
	if got := nodes[2].Receive(nodes[1].Since(), addrs[1], adv(100, time.Second)); got != nil {
		t.Fatalf("n3 reacted: %v", got)
	}
	if nodes[2].State() != Backup || nodes[2].MasterAddr() != addrs[1] {
		t.Fatalf("n3 %v following %v", nodes[2].State(), nodes[2].MasterAddr())
	}
}
