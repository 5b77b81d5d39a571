package vrrp

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// The seed's two start modes (both end with the higher priority master again), keepalived's
// settings, and RFC 5798 §6.4. Each row quotes the rule it checks.
//
//	seed: "start as master" forces an election at once by advertising as master when it
//	      starts; "start as backup" comes up as backup, hears the lower-priority slave's
//	      advertisement, then starts the election and takes over.
func TestStartState(t *testing.T) {
	startMaster := func(c *Config) { c.StartMaster = true }
	rules := []rule{
		{
			name:  `seed "start as master forces an election at once by advertising as master": Start → Master, VIP, advert, GARP; Adver_Timer armed (RFC 5798 (110)-(145))`,
			cfg:   startMaster,
			steps: []step{start(0, toMaster(Initialize, "startup", 200)...)},
			state: Master, deadline: time.Second,
		},
		{
			name:  `RFC 5798 (105) "If the Priority = 255" the owner starts Master whatever the start state (start as backup)`,
			cfg:   func(c *Config) { c.Priority = 255 },
			steps: []step{start(0, toMaster(Initialize, "owner", 255)...)},
			state: Master, deadline: time.Second,
		},
		{
			name:  `RFC 5798 (105) the owner with start as master: reason stays "owner"`,
			cfg:   func(c *Config) { c.Priority = 255; c.StartMaster = true },
			steps: []step{start(0, toMaster(Initialize, "owner", 255)...)},
			state: Master, deadline: time.Second,
		},
		{
			name: `seed "the lower-priority slave hears it and goes back to backup": start as master, the slave's next advert (lower) is answered at once and re-GARPed (RFC 5798 (770)-(775), RFC 9568)`,
			cfg:  startMaster,
			steps: []step{
				start(0, toMaster(Initialize, "startup", 200)...),
				recv(300*time.Millisecond, higher, adv(100, time.Second), send(200), announce),
			},
			state: Master, deadline: 1300 * time.Millisecond,
		},
		{
			name: `start as master "yields at once" to a higher priority: RFC 5798 (725)-(765) "If the Priority in the ADVERTISEMENT is greater than the local Priority" → Backup, VIP released, Master_Down_Timer from its advert`,
			cfg:  startMaster,
			steps: []step{
				start(0, toMaster(Initialize, "startup", 200)...),
				recv(time.Millisecond, higher, adv(250, time.Second), tr(Master, Backup, "higher_priority"), delVIP),
			},
			state: Backup, deadline: time.Millisecond + down200,
		},
		{
			name: `start as master against an equal priority with the greater primary address: RFC 5798 (730)-(735) → Backup`,
			cfg:  startMaster,
			steps: []step{
				start(0, toMaster(Initialize, "startup", 200)...),
				recv(time.Millisecond, higher, adv(200, time.Second), tr(Master, Backup, "higher_priority"), delVIP),
			},
			state: Backup, deadline: time.Millisecond + down200,
		},
		{
			name: `start as master against an equal priority with a smaller primary address: it stays Master and asserts (RFC 5798 (770)-(775), RFC 9568)`,
			cfg:  startMaster,
			steps: []step{
				start(0, toMaster(Initialize, "startup", 200)...),
				recv(time.Millisecond, lower, adv(200, time.Second), send(200), announce),
			},
			state: Master, deadline: time.Millisecond + time.Second,
		},
		{
			name: `start as master, yielded, higher master dies: Master_Down_Timer makes it Master again (RFC 5798 (365)-(410))`,
			cfg:  startMaster,
			steps: []step{
				start(0, toMaster(Initialize, "startup", 200)...),
				recv(time.Millisecond, higher, adv(250, time.Second), tr(Master, Backup, "higher_priority"), delVIP),
				tick(time.Millisecond+down200, toMaster(Backup, "master_down", 200)...),
			},
			state: Master, deadline: time.Millisecond + down200 + time.Second,
		},
		{
			name: `start as master, yielded to a higher master that then hands over to a lower one: preempt as a Backup (the seed's "start as backup" rule applies once in Backup)`,
			cfg:  startMaster,
			steps: []step{
				start(0, toMaster(Initialize, "startup", 200)...),
				recv(time.Millisecond, higher, adv(250, time.Second), tr(Master, Backup, "higher_priority"), delVIP),
				recv(2*time.Second, lower, adv(100, time.Second), toMaster(Backup, "preempt", 200)...),
			},
			state: Master, deadline: 3 * time.Second,
		},
		{
			name: `start as master again after Shutdown: (655)-(670) then (110)-(145) once more`,
			cfg:  startMaster,
			steps: []step{
				start(0, toMaster(Initialize, "startup", 200)...),
				shutdown(time.Second, send(0), delVIP, tr(Master, Initialize, "shutdown")),
				start(2*time.Second, toMaster(Initialize, "startup", 200)...),
			},
			state: Master, deadline: 3 * time.Second,
		},
		{
			name: `seed "start as backup comes up as backup, hears the lower-priority slave's advertisement, then starts the election": nothing happens before the advert, Master at once on it`,
			steps: []step{
				start(0, tr(Initialize, Backup, "startup")),
				tick(400 * time.Millisecond),
				recv(700*time.Millisecond, higher, adv(100, time.Second), toMaster(Backup, "preempt", 200)...),
			},
			state: Master, deadline: 1700 * time.Millisecond,
		},
		{
			name: `start as backup with preempt_delay: the slave's advert within the delay is followed, the takeover comes at Start+delay (keepalived preempt_delay)`,
			cfg:  func(c *Config) { c.PreemptDelay = 1500 * time.Millisecond },
			steps: []step{
				start(0, tr(Initialize, Backup, "startup")),
				recv(700*time.Millisecond, higher, adv(100, time.Second)),
				tick(1500*time.Millisecond, toMaster(Backup, "preempt", 200)...),
			},
			state: Master, deadline: 2500 * time.Millisecond,
		},
		{
			name: `start as backup with preempt false (keepalived nopreempt, not in the seed): the lower master is followed, never preempted`,
			cfg:  func(c *Config) { c.Preempt = false },
			steps: []step{
				start(0, tr(Initialize, Backup, "startup")),
				recv(700*time.Millisecond, higher, adv(100, time.Second)),
				recv(1700*time.Millisecond, higher, adv(100, time.Second)),
			},
			state: Backup, deadline: 1700*time.Millisecond + down200,
		},
		{
			name:  `start as backup alone on the link: RFC 5798 (365)-(410) Master after Master_Down_Interval`,
			steps: []step{start(0, tr(Initialize, Backup, "startup")), tick(down200, toMaster(Backup, "master_down", 200)...)},
			state: Master, deadline: down200 + time.Second,
		},
	}
	runRules(t, rules)
}

// keepalived refuses nopreempt and preempt_delay with "state MASTER" (it clears them
// with a warning); a machine refuses them outright, so the contradiction is seen.
func TestStartMasterNeedsPreempt(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"start as master, no preempt", func(c *Config) { c.StartMaster, c.Preempt = true, false }, "without preempt"},
		{"start as master, preempt delay", func(c *Config) { c.StartMaster, c.PreemptDelay = true, time.Second }, "preempt delay"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := baseConfig()
			tc.mod(&c)
			if _, err := New(c); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// wire plays several machines on one link: every advert reaches the others after
// latency, and the VIP's holders are recorded over time. The machines see only their
// inputs, each with its time, so the run is exact and does not sleep.
type wire struct {
	t       *testing.T
	latency time.Duration
	ms      []*Machine
	addrs   []netip.Addr
	now     time.Time
	queue   []delivery
	held    []time.Time // when machine i took the VIP; zero = not held
	overlap time.Duration
	both    time.Time // since when two or more held it; zero = not
	firstAt []time.Time
}

type delivery struct {
	at  time.Time
	to  int
	src netip.Addr
	a   Advert
}

func newWire(t *testing.T, latency time.Duration, cfgs ...Config) *wire {
	w := &wire{t: t, latency: latency, now: t0, held: make([]time.Time, len(cfgs)), firstAt: make([]time.Time, len(cfgs))}
	for _, c := range cfgs {
		m, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		w.ms = append(w.ms, m)
		w.addrs = append(w.addrs, c.Primary)
	}
	return w
}

func (w *wire) holders() int {
	n := 0
	for _, h := range w.held {
		if !h.IsZero() {
			n++
		}
	}
	return n
}

// exec applies machine i's actions: adverts go on the wire, VIP changes are recorded.
func (w *wire) exec(i int, acts []Action) {
	for _, a := range acts {
		switch a.Kind {
		case SendAdvert:
			for j := range w.ms {
				if j != i {
					w.queue = append(w.queue, delivery{at: w.now.Add(w.latency), to: j, src: w.addrs[i],
						a: Advert{VRID: 51, Priority: a.Priority, Interval: w.ms[i].cfg.Interval, Addrs: w.ms[i].cfg.VIPs}})
				}
			}
		case AddVIP:
			w.held[i] = w.now
			if w.firstAt[i].IsZero() {
				w.firstAt[i] = w.now
			}
		case DelVIP:
			w.held[i] = time.Time{}
		}
	}
	switch n := w.holders(); {
	case n >= 2 && w.both.IsZero():
		w.both = w.now
	case n < 2 && !w.both.IsZero():
		w.overlap = max(w.overlap, w.now.Sub(w.both))
		w.both = time.Time{}
	}
}

func (w *wire) start(i int, at time.Duration) {
	w.run(at)
	w.exec(i, w.ms[i].Start(w.now))
}

func (w *wire) shutdown(i int, at time.Duration) {
	w.run(at)
	w.exec(i, w.ms[i].Shutdown(w.now))
}

// run delivers adverts and fires timers in time order up to t0+until.
func (w *wire) run(until time.Duration) {
	end := t0.Add(until)
	for {
		next, who, isRecv := end, -1, false
		for i, m := range w.ms {
			if d := m.Deadline(); !d.IsZero() && d.Before(next) {
				next, who, isRecv = d, i, false
			}
		}
		qi := -1
		for k, d := range w.queue {
			if !d.at.After(next) && (qi < 0 || d.at.Before(w.queue[qi].at)) {
				next, who, isRecv, qi = d.at, d.to, true, k
			}
		}
		if who < 0 {
			w.now = end
			return
		}
		w.now = next
		if isRecv {
			d := w.queue[qi]
			w.queue = append(w.queue[:qi], w.queue[qi+1:]...)
			w.exec(who, w.ms[who].Receive(w.now, d.src, d.a))
		} else {
			w.exec(who, w.ms[who].Tick(w.now))
		}
	}
}

// TestStartModesOnTheWire plays the seed's two modes and the yield of a start-as-master
// node between real machines: who ends master, when the returning node holds the VIP,
// and for how long two nodes held it at once. The bound is one advert interval;
// with nothing but the link's latency between them, it must be a latency or two.
func TestStartModesOnTheWire(t *testing.T) {
	const lat = time.Millisecond
	a1 := netip.MustParseAddr("198.18.0.11")
	a2 := netip.MustParseAddr("198.18.0.12")
	node := func(prio uint8, addr netip.Addr, interval time.Duration, startMaster bool) Config {
		return Config{VRID: 51, Priority: prio, Interval: interval, Preempt: true, StartMaster: startMaster, Primary: addr, VIPs: []netip.Addr{vip}}
	}
	for _, iv := range []time.Duration{time.Second, 100 * time.Millisecond} {
		for _, tc := range []struct {
			name string
			// n1 returns at 20 intervals, n2 has been master (or, for yield, n1 has).
			n1, n2     Config
			winner     int
			n1VIPAt    time.Duration // latest VIP after n1's start; 0 = at its start
			maxTwoHeld time.Duration
			n2First    bool // n2 started first and is master before n1 returns
		}{
			{
				name: "start as master: the returning 200 holds the VIP at its start, the 100 steps down on its first advert",
				n1:   node(200, a1, iv, true), n2: node(100, a2, iv, false),
				winner: 0, n1VIPAt: 0, maxTwoHeld: lat, n2First: true,
			},
			{
				name: "start as backup: the returning 200 takes over on the 100's next advert",
				n1:   node(200, a1, iv, false), n2: node(100, a2, iv, false),
				winner: 0, n1VIPAt: iv + lat, maxTwoHeld: lat, n2First: true,
			},
			{
				name: "start as master meeting a higher priority: the 100 yields on the 200's immediate answer",
				n1:   node(100, a1, iv, true), n2: node(200, a2, iv, false),
				winner: 1, n1VIPAt: 0, maxTwoHeld: 2 * lat, n2First: true,
			},
			{
				name: "both start as master at once: the lower yields on the first advert it hears",
				n1:   node(200, a1, iv, true), n2: node(100, a2, iv, true),
				winner: 0, n1VIPAt: 0, maxTwoHeld: lat,
			},
			{
				name: "both start as master at once with equal priority: the greater primary address wins (RFC 5798 (735))",
				n1:   node(150, a1, iv, true), n2: node(150, a2, iv, true),
				winner: 1, n1VIPAt: 0, maxTwoHeld: lat,
			},
		} {
			t.Run(iv.String()+"/"+tc.name, func(t *testing.T) {
				w := newWire(t, lat, tc.n1, tc.n2)
				back := 20 * iv
				if tc.n2First {
					w.start(1, 0)
					w.run(back - iv/2)
					if w.ms[1].State() != Master {
						t.Fatalf("n2 alone is %v", w.ms[1].State())
					}
					// Only the return is measured: n2 alone held the VIP until now.
					w.start(0, back)
				} else {
					w.start(0, back)
					w.start(1, back)
				}
				w.run(back + 10*iv)
				loser := 1 - tc.winner
				if w.ms[tc.winner].State() != Master || w.ms[loser].State() != Backup {
					t.Fatalf("n%d %v, n%d %v", tc.winner+1, w.ms[tc.winner].State(), loser+1, w.ms[loser].State())
				}
				if w.held[tc.winner].IsZero() || !w.held[loser].IsZero() {
					t.Fatalf("VIP held: n1 %v, n2 %v", !w.held[0].IsZero(), !w.held[1].IsZero())
				}
				// The start-as-backup row: n2's next advert after n1's start comes at most
				// one interval later (n2's adverts are on a grid offset from back).
				got := w.firstAt[0].Sub(t0.Add(back))
				if tc.n1VIPAt == 0 && got != 0 {
					t.Errorf("n1 took the VIP %v after its start, want at its start", got)
				}
				if tc.n1VIPAt > 0 && (w.firstAt[0].IsZero() || got > tc.n1VIPAt) {
					t.Errorf("n1 took the VIP %v after its start, want within %v", got, tc.n1VIPAt)
				}
				if w.overlap > tc.maxTwoHeld || w.overlap > iv {
					t.Errorf("two nodes held the VIP for %v, want at most %v", w.overlap, tc.maxTwoHeld)
				}
			})
		}
	}
}
