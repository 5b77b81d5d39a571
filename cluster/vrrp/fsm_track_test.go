package vrrp

import (
	"reflect"
	"testing"
	"time"
)

func faultOn(at time.Duration, want ...Action) step { return step{at: at, ev: "fault", want: want} }
func faultOff(at time.Duration, want ...Action) step {
	return step{at: at, ev: "recover", want: want}
}
func setPrio(at time.Duration, p uint8, want ...Action) step {
	return step{at: at, ev: "prio", a: Advert{Priority: p}, want: want}
}

// trackRules are the rows of TestRules for tracking: the Fault state
// (keepalived's FAULT, not in RFC 5798) and the priority lowered by
// failing tracked checks (keepalived's track weights).
func trackRules() []rule {
	backup := start(0, tr(Initialize, Backup, "startup"))
	asMaster := []step{backup, tick(down200, toMaster(Backup, "master_down", 200)...)}
	then := func(pre []step, s ...step) []step { return append(append([]step{}, pre...), s...) }
	at := down200 + 100*time.Millisecond // some time into mastership
	return []rule{
		{
			name:  "fault: a Master resigns with priority 0 and releases the VIP, no timers",
			steps: then(asMaster, faultOn(at, send(0), delVIP, tr(Master, Fault, "fault"))),
			state: Fault, deadline: none,
			check: func(t *testing.T, m *Machine) {
				if m.MasterAddr().IsValid() || m.MasterPriority() != 0 {
					t.Errorf("master %v/%d in Fault", m.MasterAddr(), m.MasterPriority())
				}
			},
		},
		{
			name:  "fault: a Backup stops its Master_Down_Timer",
			steps: []step{backup, recv(time.Second, higher, adv(250, time.Second)), faultOn(2*time.Second, tr(Backup, Fault, "fault")), tick(time.Hour)},
			state: Fault, deadline: none,
		},
		{
			name: "fault: adverts are ignored, even a lower one with Preempt, and nothing is sent",
			steps: then(asMaster, faultOn(at, send(0), delVIP, tr(Master, Fault, "fault")),
				recv(at+time.Second, higher, adv(100, time.Second)),
				recv(at+2*time.Second, higher, adv(0, time.Second)),
				tick(at+time.Hour)),
			state: Fault, deadline: none,
		},
		{
			name:  "fault: repeated reports change nothing",
			steps: then(asMaster, faultOn(at, send(0), delVIP, tr(Master, Fault, "fault")), faultOn(at+time.Second), faultOff(at+2*time.Second, tr(Fault, Backup, "recovered")), faultOff(at+3*time.Second)),
			state: Backup, deadline: at + 2*time.Second + down200,
		},
		{
			name: "recovery: Backup waits Master_Down_Interval like a start, then takes over when nobody speaks",
			steps: then(asMaster, faultOn(at, send(0), delVIP, tr(Master, Fault, "fault")),
				faultOff(at+5*time.Second, tr(Fault, Backup, "recovered")),
				tick(at+5*time.Second+down200, toMaster(Backup, "master_down", 200)...)),
			state: Master, deadline: at + 5*time.Second + down200 + time.Second,
		},
		{
			name: "recovery: a lower master heard with Preempt is taken over at once",
			steps: then(asMaster, faultOn(at, send(0), delVIP, tr(Master, Fault, "fault")),
				faultOff(at+5*time.Second, tr(Fault, Backup, "recovered")),
				recv(at+5500*time.Millisecond, higher, adv(100, time.Second), toMaster(Backup, "preempt", 200)...)),
			state: Master, deadline: at + 6500*time.Millisecond,
		},
		{
			name: "recovery without Preempt: a lower master keeps the VIP",
			cfg:  func(c *Config) { c.Preempt = false },
			steps: then(asMaster, faultOn(at, send(0), delVIP, tr(Master, Fault, "fault")),
				faultOff(at+5*time.Second, tr(Fault, Backup, "recovered")),
				recv(at+5500*time.Millisecond, higher, adv(100, time.Second))),
			state: Backup, deadline: at + 5500*time.Millisecond + down200,
		},
		{
			name:  "fault before Start: Start enters Fault, even for the owner",
			cfg:   func(c *Config) { c.Priority = 255 },
			steps: []step{faultOn(0), start(time.Second, tr(Initialize, Fault, "fault")), tick(time.Hour)},
			state: Fault, deadline: none,
		},
		{
			name:  "fault: Shutdown leaves it without an advert (nothing is held)",
			steps: []step{backup, faultOn(time.Second, tr(Backup, Fault, "fault")), shutdown(2*time.Second, tr(Fault, Initialize, "shutdown"))},
			state: Initialize, deadline: none,
		},
		{
			name: "priority lowered as Master: advertised at once, Adver_Timer restarted; a higher advert then wins",
			steps: then(asMaster,
				setPrio(at, 50, send(50)),
				tick(at+time.Second, send(50)),
				recv(at+1500*time.Millisecond, higher, adv(100, time.Second), tr(Master, Backup, "higher_priority"), delVIP)),
			state: Backup, deadline: at + 1500*time.Millisecond + 3*time.Second + 206*time.Second/256,
			check: func(t *testing.T, m *Machine) {
				if m.Priority() != 50 || m.SkewTime() != 206*time.Second/256 {
					t.Errorf("priority %d skew %v, want 50 and its skew", m.Priority(), m.SkewTime())
				}
			},
		},
		{
			name: "priority lowered as Backup: a master now higher is followed; restored: preempted at its next advert",
			steps: []step{backup,
				setPrio(100*time.Millisecond, 50),
				recv(time.Second, higher, adv(100, time.Second)),
				setPrio(1500*time.Millisecond, 200),
				recv(2*time.Second, higher, adv(100, time.Second), toMaster(Backup, "preempt", 200)...)},
			state: Master, deadline: 3 * time.Second,
		},
		{
			name:  "priority: 0 and the current value are no-ops",
			steps: then(asMaster, setPrio(at, 0), setPrio(at, 200)),
			state: Master, deadline: down200 + time.Second,
		},
	}
}

// TestTrackedFailover plays issue 12's case through two machines: the
// master's downstream fails, its weight lowers it below the backup, which
// preempts at the master's next (immediate) advert; the check recovers and
// the first node preempts back.
func TestTrackedFailover(t *testing.T) {
	a, b := baseConfig(), baseConfig()
	b.Priority, b.Primary = 100, higher
	ma, _ := New(a)
	mb, _ := New(b)
	ma.Start(t0)
	mb.Start(t0)
	now := t0.Add(down200)
	ma.Tick(now)
	mb.Receive(now, primary, adv(200, time.Second))
	if ma.State() != Master || mb.State() != Backup {
		t.Fatalf("states %v %v", ma.State(), mb.State())
	}
	// Downstream fails: weight -150.
	now = now.Add(300 * time.Millisecond)
	acts := ma.SetPriority(now, 50)
	if !reflect.DeepEqual(acts, []Action{send(50)}) {
		t.Fatalf("lowered master: %v", acts)
	}
	acts = mb.Receive(now, primary, adv(50, time.Second))
	if !reflect.DeepEqual(acts, toMaster(Backup, "preempt", 100)) {
		t.Fatalf("backup hearing 50: %v", acts)
	}
	acts = ma.Receive(now, higher, adv(100, time.Second))
	if !reflect.DeepEqual(acts, []Action{tr(Master, Backup, "higher_priority"), delVIP}) {
		t.Fatalf("old master hearing 100: %v", acts)
	}
	// Recovered: 200 again; it preempts at the next advert of the 100.
	now = now.Add(2 * time.Second)
	ma.SetPriority(now, 200)
	acts = ma.Receive(now.Add(time.Second), higher, adv(100, time.Second))
	if !reflect.DeepEqual(acts, toMaster(Backup, "preempt", 200)) {
		t.Fatalf("recovered node hearing 100: %v", acts)
	}
}
