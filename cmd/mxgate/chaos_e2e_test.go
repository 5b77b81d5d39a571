package main

// The chaos test (issue 8): the product's guarantees under failure, black
// box. Three real mxgate nodes in active-active mode on one real
// redis-server, a real smtp-sink downstream, and a client in the client
// namespace that sends a steady stream of numbered messages to the VIP and
// behaves as an MTA: it records every reply, retries 4xx and dropped
// connections with backoff on a new connection, a bounded number of times.
// Meanwhile the master is killed (-9), a worker is killed mid-scan, the new
// master is stopped (SIGTERM), Redis is stopped for a few seconds and the
// master's link is cut and restored; killed nodes are started again.
//
// What must hold at the end:
//   - lost = 0: every message that got 250 to DATA is at the sink or in
//     the quarantine;
//   - every message was accepted or refused with a reason (5xx with text)
//     by the end of its retries;
//   - duplicates (a number twice at the sink or in the quarantine) are no
//     more than the messages in flight at the events.
//
// MXGATE_CHAOS=long (make chaos) repeats every event and writes the table
// to MXGATE_CHAOS_OUT; without it the short form runs in make test.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mxgate/mxgate/testenv"
)

// chaosForm is what differs between the short and the long run.
type chaosForm struct {
	name   string
	cycles int           // rounds of every event
	every  time.Duration // a new message this often
	conc   int           // connections open at most
	settle time.Duration // steady stream before each event
	outage time.Duration // Redis stopped, link cut
	out    string        // results file; "" = none
}

func chaosFormFromEnv(t *testing.T) chaosForm {
	switch v := os.Getenv("MXGATE_CHAOS"); v {
	case "", "short":
		return chaosForm{name: "short", cycles: 1, every: 70 * time.Millisecond, conc: 32, settle: 4 * time.Second, outage: 3 * time.Second}
	case "long":
		return chaosForm{name: "long", cycles: 4, every: 50 * time.Millisecond, conc: 32, settle: 8 * time.Second, outage: 5 * time.Second,
			out: os.Getenv("MXGATE_CHAOS_OUT")}
	default:
		t.Fatalf("MXGATE_CHAOS=%q: want short or long", v)
		return chaosForm{}
	}
}

// The client's retry policy, as an MTA's (Postfix defers and retries much
// later; here the whole run is minutes, so the scale is seconds).
const (
	chaosAttempts   = 12
	chaosBackoff    = 250 * time.Millisecond // doubled after each failure...
	chaosBackoffMax = 4 * time.Second        // ...up to this
	chaosReplyWait  = 15 * time.Second       // for each reply
	chaosScan       = 300 * time.Millisecond // scanner.simulated_delay: kills land mid-scan
	chaosDrain      = 5 * time.Second        // smtp.drain_timeout in aaLab's files
)

// Message kinds: what the gateway must do with each.
const (
	kindClean = "clean" // delivered
	kindSpam  = "spam"  // GTUBE: quarantined
	kindVirus = "virus" // EICAR with virus_action reject: 550, a definitive refusal
)

func chaosKind(n int) string {
	switch {
	case n%50 == 7:
		return kindVirus
	case n%10 == 3:
		return kindSpam
	}
	return kindClean
}

// chaosMsg is one numbered message and every attempt to send it.
type chaosMsg struct {
	N        int
	ID       string // X-Load-Id, Message-ID's local part, and in the envelope sender
	Kind     string
	Attempts []aaMsg
}

// last is the attempt that ended the message; a message the run ended
// before its first attempt counts as unresolved.
func (m *chaosMsg) last() aaMsg {
	if len(m.Attempts) == 0 {
		return aaMsg{Stage: "never sent"}
	}
	return m.Attempts[len(m.Attempts)-1]
}

func attemptOK(a aaMsg) bool { return a.Code == 250 && a.Stage == "dot" }

// refusal is a definitive answer: 5xx with a reason.
func refusal(a aaMsg) bool { return a.Code >= 500 && a.Code < 600 && strings.TrimSpace(a.Text) != "" }

func (m *chaosMsg) accepted() bool { return attemptOK(m.last()) }
func (m *chaosMsg) refused() bool  { return refusal(m.last()) }

// phase is the index of the event a message is counted under (0: before
// any event): the first event that struck while its first failed attempt
// was open, or else the last event before that attempt began (a refused
// connection after a kill); for a message that never failed, the last
// event before it was first sent.
func (m *chaosMsg) phase(events []*chaosEvent) int {
	for _, a := range m.Attempts {
		if attemptOK(a) || refusal(a) {
			continue
		}
		for i, ev := range events {
			if !ev.At.Before(a.Sent) && ev.At.Before(a.Done) {
				return i + 1
			}
		}
		return phaseAt(events, a.Sent)
	}
	if len(m.Attempts) == 0 {
		return 0
	}
	return phaseAt(events, m.Attempts[0].Sent)
}

func phaseAt(events []*chaosEvent, t time.Time) int {
	k := 0
	for i, ev := range events {
		if !t.Before(ev.At) {
			k = i + 1
		}
	}
	return k
}

func (m *chaosMsg) tempfailed() bool {
	for _, a := range m.Attempts {
		if !attemptOK(a) && !refusal(a) {
			return true
		}
	}
	return false
}

// chaosClient sends the stream as an MTA's queue would: a new message
// every interval whatever happens to the earlier ones, each retried on its
// own schedule, over at most conc connections at a time, reusing an idle
// connection for up to PerConn messages (Postfix's connection cache).
type chaosClient struct {
	l     *aaLab
	ld    aaLoad
	slots chan struct{}   // one per open attempt: the destination concurrency limit
	idle  chan *aaSession // connections between two messages
	stop  chan struct{}   // closed: no new messages
	wg    sync.WaitGroup  // the feeder and every message
	done  atomic.Int64    // messages resolved or out of attempts

	mu   sync.Mutex
	msgs []*chaosMsg
}

func startChaosClient(ctx context.Context, l *aaLab, conc int, every time.Duration) *chaosClient {
	c := &chaosClient{
		l:     l,
		ld:    aaLoad{Addr: testenv.LabVIP + ":25", Size: 2048, PerConn: 10, Timeout: chaosReplyWait},
		slots: make(chan struct{}, conc),
		idle:  make(chan *aaSession, conc),
		stop:  make(chan struct{}),
	}
	c.wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			n := int(c.l.seq.Add(1)) - 1
			id := fmt.Sprintf("%s-%d", c.l.run, n)
			m := &chaosMsg{N: n, ID: id, Kind: chaosKind(n)}
			c.mu.Lock()
			c.msgs = append(c.msgs, m)
			c.mu.Unlock()
			c.wg.Go(func() { c.send(ctx, m) })
		}
	})
	return c
}

// finish stops new messages and waits until every started one is resolved
// or has used its attempts; it then closes the cached connections.
func (c *chaosClient) finish() []*chaosMsg {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	c.wg.Wait()
	for len(c.idle) > 0 { // nobody else uses it any more
		(<-c.idle).close()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	sort.Slice(c.msgs, func(i, j int) bool { return c.msgs[i].N < c.msgs[j].N })
	return c.msgs
}

// send tries m until it is accepted, refused or out of attempts.
func (c *chaosClient) send(ctx context.Context, m *chaosMsg) {
	defer c.done.Add(1)
	wait := chaosBackoff
	for k := 0; k < chaosAttempts; k++ {
		if k > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return
			}
			wait = min(2*wait, chaosBackoffMax)
		}
		select {
		case c.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		var s *aaSession
		select {
		case s = <-c.idle:
		default:
			s = &aaSession{l: c.l, ld: c.ld}
		}
		a := aaMsg{N: m.N, ID: m.ID, Spam: m.Kind == kindSpam, Virus: m.Kind == kindVirus, From: chaosSender(m.ID)}
		s.deliver(ctx, &a)
		if s.tp != nil { // still open: after a failure deliver has closed it
			select {
			case c.idle <- s:
			default:
				s.close()
			}
		}
		<-c.slots
		c.mu.Lock()
		m.Attempts = append(m.Attempts, a)
		c.mu.Unlock()
		if attemptOK(a) || refusal(a) {
			return
		}
	}
}

// chaosSender puts the message's number in the envelope, so the message
// log (which has no Message-ID) can be matched too.
func chaosSender(id string) string { return "m-" + id + "@sender.test" }

// chaosEvent is one disruption and how long the VIP took to answer SMTP
// again from the node that took it over.
type chaosEvent struct {
	Name string
	Node string
	At   time.Time
	Gap  time.Duration
	Note string

	unplanned bool // found in the logs afterwards: no gap measured
	inFlight  int  // attempts open during [At, At+Gap] that reached a server
}

// chaosRun drives the events on the lab.
type chaosRun struct {
	t      *testing.T
	l      *aaLab
	form   chaosForm
	master int    // index into l.nodes of the node holding the VIP
	up     []bool // running and linked
	events []*chaosEvent
	procs  []chaosProc // every node process started, in order
}

type chaosProc struct {
	node int
	proc *testenv.Process
}

// chaosAdvert is the VRRP advert interval: the product's default. Shorter
// ones make a loaded CI machine's stalls look like failures (a backup that
// misses three adverts takes over); such takeovers are counted as events
// of their own anyway (see unplanned).
const chaosAdvert = time.Second

func (r *chaosRun) name(i int) string { return r.l.nodes[i].id + ".lab.test" }

// elected is the node that wins an election among the nodes that are up.
func (r *chaosRun) elected() int {
	b := -1
	for i := range r.l.nodes {
		if r.up[i] && (b < 0 || r.l.confs[i].prio > r.l.confs[b].prio) {
			b = i
		}
	}
	if b < 0 {
		r.t.Fatal("chaos: no node is up")
	}
	return b
}

// answered waits until the VIP's banner names node want and returns the
// time since at. A banner from another node that is up is taken too (a
// stall can elect another master than the priorities say; converged
// checks the cluster before the next event), after a grace of three
// adverts for the expected one.
func (r *chaosRun) answered(want int, at time.Time) (int, time.Duration) {
	r.t.Helper()
	deadline := at.Add(30 * time.Second)
	for {
		got := banner(r.l.lab, testenv.LabVIP+":25")
		for i := range r.l.nodes {
			if got == r.name(i) && (i == want || r.up[i] && time.Since(at) > 3*chaosAdvert) {
				return i, time.Since(at)
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("chaos: the VIP did not answer SMTP from %s within %s (last banner %q)", r.name(want), deadline.Sub(at), got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *chaosRun) record(ev *chaosEvent) {
	r.events = append(r.events, ev)
	r.t.Logf("chaos: %s %s (%s): VIP answered after %s; %s", ev.At.UTC().Format("15:04:05.000"), ev.Name, ev.Node, ev.Gap.Round(time.Millisecond), ev.Note)
}

// converged waits before an event until exactly one node holds the VIP,
// says it is master and every other node is a backup, and makes that node
// the master the event acts on. A cluster that does not settle within 20
// s (a lasting split brain) is a failure of its own.
func (r *chaosRun) converged() {
	r.t.Helper()
	start := time.Now()
	for {
		held := heldBy(r.t, r.l.lab)
		masters, backups := 0, 0
		var states []string
		for _, n := range r.l.nodes {
			st, err := n.statusErr()
			switch {
			case err != nil:
			case st.State == "master":
				masters++
			case st.State == "backup":
				backups++
			}
			states = append(states, fmt.Sprintf("%s %q (vip_held %v, err %v)", n.id, st.State, st.VIPHeld, err))
		}
		if len(held) == 1 && masters == 1 && backups == len(r.l.nodes)-1 {
			if m := held[0] - 1; m != r.master {
				r.t.Logf("chaos: %s holds the VIP, not %s (elected on its own, see the unplanned events)", r.l.nodes[m].id, r.l.nodes[r.master].id)
				r.master = m
			}
			return
		}
		if time.Since(start) > 20*time.Second {
			r.t.Fatalf("chaos: the cluster did not settle within 20s: VIP on nodes %v; %s", held, strings.Join(states, "; "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// unplanned returns the VRRP transitions into or out of master in the
// nodes' logs that none of the events explains (an event explains those
// until its failover gap plus two adverts are over): a node elected on its
// own because a stall of the machine kept the master's adverts from it.
// Each moves the VIP like a failover, so it is an event too.
func (r *chaosRun) unplanned(since time.Time) []*chaosEvent {
	var out []*chaosEvent
	for _, p := range r.procs {
		for _, tr := range parseTransitions(p.proc.Text()) {
			if tr.to != "master" && tr.from != "master" || tr.at.Before(since) {
				continue
			}
			explained := false
			for _, ev := range r.events {
				// Log times are cut to the millisecond.
				if !tr.at.Before(ev.At.Add(-time.Millisecond)) && tr.at.Before(ev.At.Add(ev.Gap+2*chaosAdvert)) {
					explained = true
				}
			}
			if !explained {
				out = append(out, &chaosEvent{Name: "unplanned VIP move", Node: r.l.nodes[p.node].id, At: tr.at, unplanned: true,
					Note: fmt.Sprintf("%s to %s (%s)", tr.from, tr.to, tr.reason)})
			}
		}
	}
	return out
}

// saveLogs writes the output of every node process the run started into
// dir, for reading a run after the fact.
func (r *chaosRun) saveLogs(dir string) {
	for k, p := range r.procs {
		name := fmt.Sprintf("%s/%s-%d.log", dir, r.l.nodes[p.node].id, k)
		if err := os.WriteFile(name, []byte(p.proc.Text()), 0o644); err != nil {
			r.t.Errorf("save node log: %v", err)
		}
	}
}

// restart starts node i again and waits until the master dispatches to all
// three, so the cluster keeps three members.
func (r *chaosRun) restart(i int) {
	r.t.Helper()
	r.l.nodes[i].start()
	r.procs = append(r.procs, chaosProc{i, r.l.nodes[i].proc})
	r.up[i] = true
	r.l.waitMembers(r.l.nodes[r.master], r.l.ids(), 20*time.Second)
}

func (r *chaosRun) killMaster() {
	m := r.master
	at := time.Now()
	r.l.nodes[m].kill9()
	r.up[m] = false
	var gap time.Duration
	r.master, gap = r.answered(r.elected(), at)
	r.record(&chaosEvent{Name: "kill -9 master", Node: r.l.nodes[m].id, At: at, Gap: gap,
		Note: r.l.nodes[r.master].id + " took over"})
	time.Sleep(time.Second)
	r.restart(m)
}

// killWorker kills a node that is not the master while it scans: the
// master's status shows it busy, and afterwards the master's log shows
// scans of it retried on another member. A kill that found no scan is
// repeated (at most three times).
func (r *chaosRun) killWorker() {
	master := r.l.nodes[r.master]
	for try := 1; try <= 3; try++ {
		w := r.busyWorker()
		before := len(master.proc.Text())
		at := time.Now()
		r.l.nodes[w].kill9()
		r.up[w] = false
		_, gap := r.answered(r.master, at)
		time.Sleep(time.Second) // the lost scans fail at once (connection reset); let the retries log
		retried := 0
		for _, line := range strings.Split(master.proc.Text()[before:], "\n") {
			if strings.Contains(line, "scan member failed") && strings.Contains(line, "member="+r.l.nodes[w].id+" ") {
				retried++
			}
		}
		r.record(&chaosEvent{Name: "kill -9 worker mid-scan", Node: r.l.nodes[w].id, At: at, Gap: gap,
			Note: fmt.Sprintf("%d scans retried on another member", retried)})
		r.restart(w)
		if retried > 0 {
			return
		}
	}
	r.t.Errorf("chaos: three worker kills, none landed mid-scan (no scan retried in the master's log)")
}

// busyWorker picks the non-master node with the most scans running, as
// the master's membership view shows (refreshed every TTL/3), waiting a
// few seconds for one with any.
func (r *chaosRun) busyWorker() int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := r.l.nodes[r.master].statusErr()
		best, busy := -1, 0
		if err == nil {
			for _, mem := range st.Members {
				for i, n := range r.l.nodes {
					if n.id == mem.ID && i != r.master && r.up[i] && mem.Busy > busy {
						best, busy = i, mem.Busy
					}
				}
			}
		}
		if best >= 0 {
			return best
		}
		if time.Now().After(deadline) {
			// Kill one anyway; killWorker's log check tells.
			for i := range r.l.nodes {
				if i != r.master && r.up[i] {
					return i
				}
			}
			r.t.Fatal("chaos: no worker is up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopMaster sends SIGTERM to the master: it must hand the VIP over and
// exit within the drain timeout (plus the orphaned sessions' grace).
func (r *chaosRun) stopMaster() {
	m := r.master
	n := r.l.nodes[m]
	at := time.Now()
	n.proc.Cmd.Process.Signal(syscall.SIGTERM)
	r.up[m] = false
	var gap time.Duration
	r.master, gap = r.answered(r.elected(), at)
	bound := chaosDrain + orphanGrace + 10*time.Second // slack for a loaded machine
	note := r.l.nodes[r.master].id + " took over; "
	if n.proc.Wait(bound - time.Since(at)) {
		note += fmt.Sprintf("%s exited %s after SIGTERM (code %d)", n.id, time.Since(at).Round(100*time.Millisecond), n.proc.Cmd.ProcessState.ExitCode())
	} else {
		note += fmt.Sprintf("%s HUNG: still running %s after SIGTERM, killed", n.id, bound)
		r.t.Errorf("chaos: %s did not exit within %s of SIGTERM (drain_timeout %s):\n%s", n.id, bound, chaosDrain, tail(n.proc.Text(), 40))
		n.kill9()
	}
	r.record(&chaosEvent{Name: "SIGTERM master", Node: n.id, At: at, Gap: gap, Note: note})
	r.restart(m)
}

// redisOutage stops redis-server for form.outage, starts it again and
// waits until every node says it is no longer degraded.
func (r *chaosRun) redisOutage() {
	at := time.Now()
	r.l.redis.Stop()
	_, gap := r.answered(r.master, at)
	time.Sleep(time.Until(at.Add(r.form.outage)))
	r.l.redis.Start()
	back := time.Now()
	for _, n := range r.l.nodes {
		n.waitStatus("recovered from the Redis outage", 20*time.Second, func(st aaStatus) bool { return !st.Degraded })
	}
	r.record(&chaosEvent{Name: "Redis stopped", Node: "redis", At: at, Gap: gap,
		Note: fmt.Sprintf("down %s; every node recovered %s after the start", back.Sub(at).Round(100*time.Millisecond), time.Since(back).Round(100*time.Millisecond))})
}

// cutLink takes the master's switch port down for form.outage: a backup
// takes over while the cut-off node is in fault (its link is tracked by
// default) and holds no VIP; when the
// link returns, the higher priority of the two keeps the VIP.
func (r *chaosRun) cutLink() {
	m := r.master
	at := time.Now()
	if err := r.l.lab.LinkDown(m + 1); err != nil {
		r.t.Fatal(err)
	}
	r.up[m] = false
	other, gap := r.answered(r.elected(), at)
	r.record(&chaosEvent{Name: "link of master cut", Node: r.l.nodes[m].id, At: at, Gap: gap,
		Note: r.l.nodes[other].id + " took over"})
	time.Sleep(time.Until(at.Add(r.form.outage)))
	at = time.Now()
	if err := r.l.lab.LinkUp(m + 1); err != nil {
		r.t.Fatal(err)
	}
	r.up[m] = true
	want := other
	if r.l.confs[m].prio > r.l.confs[other].prio {
		want = m
	}
	r.master, gap = r.answered(want, at)
	r.record(&chaosEvent{Name: "link restored", Node: r.l.nodes[m].id, At: at, Gap: gap,
		Note: r.l.nodes[r.master].id + " holds the VIP"})
	r.l.waitMembers(r.l.nodes[r.master], r.l.ids(), 20*time.Second)
}

func tail(s string, lines int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// chaosFound is where the messages ended up, by message id.
type chaosFound struct {
	sink     map[string]int  // complete dumps, not releases
	released map[string]int  // releases from the quarantine (none expected)
	quar     map[string]int  // quarantine items
	logged   map[string]bool // a deliver or quarantine record in the message log
}

func (f chaosFound) copies(id string) int { return f.sink[id] + f.quar[id] }

// collect reads the sink (waiting a while for accepted messages still
// being written), the quarantine and the message log.
func (l *aaLab) collectChaos(msgs []*chaosMsg) chaosFound {
	l.t.Helper()
	f := chaosFound{sink: map[string]int{}, released: map[string]int{}, quar: map[string]int{}, logged: map[string]bool{}}
	for _, it := range l.quarantined() {
		f.quar[it.loadID()]++
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		clear(f.sink)
		clear(f.released)
		for _, d := range l.delivered() {
			if d.Released {
				f.released[d.Load]++
			} else {
				f.sink[d.Load]++
			}
		}
		missing := 0
		for _, m := range msgs {
			if m.accepted() && f.copies(m.ID) == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The message log, newest first, a page at a time.
	until := ""
	for {
		args := []string{"log", "--sender", "@sender.test", "--limit", "10000", "--json"}
		if until != "" {
			args = append(args, "--until", until)
		}
		var recs []struct {
			Time   time.Time `json:"time"`
			Sender string    `json:"sender"`
			Action string    `json:"action"`
		}
		out := l.vip(args...)
		if err := json.Unmarshal([]byte(out), &recs); err != nil {
			l.t.Fatalf("log --json: %v\n%s", err, out)
		}
		for _, r := range recs {
			if (r.Action == "deliver" || r.Action == "quarantine") && strings.HasPrefix(r.Sender, "m-"+l.run+"-") {
				id := strings.TrimSuffix(strings.TrimPrefix(r.Sender, "m-"), "@sender.test")
				f.logged[id] = true
			}
		}
		if len(recs) < 10000 {
			break
		}
		// Half-open: records at exactly this nanosecond are read again.
		until = recs[len(recs)-1].Time.Add(time.Nanosecond).Format(time.RFC3339Nano)
	}
	return f
}

// chaosRow is one line of the table.
type chaosRow struct {
	event *chaosEvent // nil: before the first event, or the total
	label string

	msgs, accepted, refused, temp, lost, dup, unlogged int
	unresolved                                         int // neither accepted nor refused after every attempt
}

func (row *chaosRow) add(m *chaosMsg, f chaosFound) {
	row.msgs++
	c := f.copies(m.ID)
	switch {
	case m.accepted():
		row.accepted++
		if c == 0 {
			row.lost++
		} else {
			row.dup += c - 1
		}
		if !f.logged[m.ID] {
			row.unlogged++
		}
	case m.refused():
		row.refused++
		row.dup += c // a copy of a refused message is a copy too many
	default:
		row.unresolved++
		row.dup += c
	}
	if m.tempfailed() {
		row.temp++
	}
}

// TestChaos: see the top of this file. Root only; bounded to a few
// minutes in its short form.
func TestChaos(t *testing.T) {
	form := chaosFormFromEnv(t)
	l := newAALab(t, 3)
	conf := func(prio int) aaConf {
		return aaConf{prio: prio, weight: 100, delay: chaosScan, noPreempt: true, virusAction: "reject", advert: chaosAdvert}
	}
	l.startNodes(conf(200), conf(100), conf(50))
	began := time.Now()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	client := startChaosClient(ctx, l, form.conc, form.every)
	// Before the lab's cleanup (LIFO): no session outlives the namespaces.
	t.Cleanup(func() { cancel(); client.finish() })

	r := &chaosRun{t: t, l: l, form: form, up: []bool{true, true, true}}
	for i, n := range l.nodes {
		r.procs = append(r.procs, chaosProc{i, n.proc})
	}
	for client.done.Load() < 20 {
		time.Sleep(50 * time.Millisecond)
	}
	for range form.cycles {
		for _, ev := range []func(){r.killMaster, r.killWorker, r.stopMaster, r.redisOutage, r.cutLink} {
			time.Sleep(form.settle)
			r.converged()
			ev()
		}
	}
	time.Sleep(form.settle)
	streamEnd := time.Now()
	msgs := client.finish()
	if extra := r.unplanned(began); len(extra) > 0 {
		for _, ev := range extra {
			t.Logf("chaos: %s unplanned VIP move on %s: %s", ev.At.UTC().Format("15:04:05.000"), ev.Node, ev.Note)
		}
		r.events = append(r.events, extra...)
		sort.SliceStable(r.events, func(i, j int) bool { return r.events[i].At.Before(r.events[j].At) })
	}
	t.Logf("chaos: stream of %d messages over %s; all resolved %s later", len(msgs), streamEnd.Sub(began).Round(time.Second), time.Since(streamEnd).Round(time.Second))

	f := l.collectChaos(msgs)
	rows := chaosTable(r.events, msgs, f)
	table := chaosMarkdown(rows)
	t.Logf("chaos (%s form):\n%s", form.name, table)

	// The attempts open when each event struck (or until the VIP answered
	// again) are what may arrive twice: their replies can be lost.
	total := rows[len(rows)-1]
	bound := 0
	for _, ev := range r.events {
		bound += ev.inFlight
	}
	if total.lost != 0 {
		t.Errorf("LOST: %d messages got 250 to DATA but are neither at the sink nor in the quarantine:\n%s", total.lost, chaosList(msgs, func(m *chaosMsg) bool { return m.accepted() && f.copies(m.ID) == 0 }))
	}
	if total.unresolved != 0 {
		t.Errorf("%d messages neither accepted nor refused with a reason after %d attempts:\n%s", total.unresolved, chaosAttempts, chaosList(msgs, func(m *chaosMsg) bool { return !m.accepted() && !m.refused() }))
	}
	if total.dup > bound {
		t.Errorf("%d duplicates, more than the %d attempts in flight at the events:\n%s", total.dup, bound, chaosList(msgs, func(m *chaosMsg) bool { return f.copies(m.ID) > 1 }))
	}
	// What each kind must get: a wrong answer is a failure of its own,
	// whether fail-open (spam delivered, a virus anywhere) or a refusal
	// the sender would bounce.
	wrong := func(m *chaosMsg) string {
		switch {
		case m.Kind == kindVirus && m.accepted():
			return "virus accepted"
		case m.Kind == kindVirus && f.copies(m.ID) > 0:
			return "virus at the sink or in the quarantine"
		case m.Kind == kindSpam && f.sink[m.ID] > 0:
			return "spam delivered"
		case m.Kind != kindVirus && m.refused():
			return "refused"
		case m.Kind == kindClean && f.quar[m.ID] > 0:
			return "clean message quarantined"
		case f.released[m.ID] > 0:
			return "released (nobody released anything)"
		}
		return ""
	}
	if list := chaosList(msgs, func(m *chaosMsg) bool { return wrong(m) != "" }); list != "" {
		t.Errorf("messages handled against their kind:\n%s", list)
		for _, m := range msgs {
			if w := wrong(m); w != "" {
				t.Logf("  %s (%s): %s", m.ID, m.Kind, w)
			}
		}
	}
	kinds := map[string]int{}
	for _, m := range msgs {
		kinds[m.Kind]++
	}
	if kinds[kindSpam] == 0 || kinds[kindVirus] == 0 || total.accepted == 0 {
		t.Errorf("the stream lacks a kind: %v, %d accepted", kinds, total.accepted)
	}
	t.Logf("chaos: kinds %v; duplicates %d ≤ in flight %d; failed attempts by reply: %s", kinds, total.dup, bound, chaosFailures(msgs))
	t.Logf("chaos: messages that were retried:\n%s", chaosList(msgs, (*chaosMsg).tempfailed))
	if total.unlogged > 0 { // issue 8, defect 6: reported, not asserted here
		t.Logf("chaos: accepted without a deliver or quarantine record in the message log:\n%s",
			chaosList(msgs, func(m *chaosMsg) bool { return m.accepted() && !f.logged[m.ID] }))
	}
	if dir := os.Getenv("MXGATE_CHAOS_LOGS"); dir != "" {
		r.saveLogs(dir)
	}

	if form.out != "" {
		if err := os.WriteFile(form.out, []byte(chaosReport(form, r.events, rows, msgs, bound, time.Since(began))), 0o644); err != nil {
			t.Errorf("write %s: %v", form.out, err)
		} else {
			t.Logf("chaos: table written to %s", form.out)
		}
	}
}

// chaosTable attributes every message to the event whose phase (from the
// event to the next one) holds its first failed attempt, or its first
// attempt when none failed, and counts the in-flight attempts of each
// event. The first row is the stream before any event, the last the total.
func chaosTable(events []*chaosEvent, msgs []*chaosMsg, f chaosFound) []*chaosRow {
	rows := []*chaosRow{{label: "steady stream, before any event"}}
	for _, ev := range events {
		rows = append(rows, &chaosRow{event: ev, label: ev.Name + " (" + ev.Node + ")"})
		end := ev.At.Add(ev.Gap)
		for _, m := range msgs {
			for _, a := range m.Attempts {
				// A refused connection reached no server: it leaves no copy.
				if a.Sent.Before(end) && a.Done.After(ev.At) && a.Stage != "connect" {
					ev.inFlight++
				}
			}
		}
	}
	total := &chaosRow{label: "**total**"}
	for _, m := range msgs {
		rows[m.phase(events)].add(m, f)
		total.add(m, f)
	}
	return append(rows, total)
}

func chaosMarkdown(rows []*chaosRow) string {
	var b strings.Builder
	b.WriteString("| event | messages | accepted | refused (5xx) | tempfailed | lost | duplicated | in flight | failover gap | accepted without log record |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, row := range rows {
		inFlight, gap := "", ""
		if ev := row.event; ev != nil {
			inFlight = fmt.Sprint(ev.inFlight)
			gap = fmt.Sprintf("%.2f s", ev.Gap.Seconds())
			if ev.unplanned {
				gap = "—"
			}
		}
		unresolved := ""
		if row.unresolved > 0 {
			unresolved = fmt.Sprintf(" (+%d UNRESOLVED)", row.unresolved)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d%s | %d | %d | %d | %s | %s | %d |\n",
			row.label, row.msgs, row.accepted, row.refused, unresolved, row.temp, row.lost, row.dup, inFlight, gap, row.unlogged)
	}
	return b.String()
}

// chaosList names up to 20 messages with their attempts.
func chaosList(msgs []*chaosMsg, pick func(*chaosMsg) bool) string {
	var b strings.Builder
	k := 0
	for _, m := range msgs {
		if !pick(m) {
			continue
		}
		if k++; k > 20 {
			b.WriteString("  ...\n")
			break
		}
		fmt.Fprintf(&b, "  %s (%s):", m.ID, m.Kind)
		for _, a := range m.Attempts {
			fmt.Fprintf(&b, " [%s %s %d %q %s]", a.Sent.Format("15:04:05.000"), a.Stage, a.Code, a.Text, a.Err)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// chaosFailures counts the failed attempts by stage and reply.
func chaosFailures(msgs []*chaosMsg) string {
	c := map[string]int{}
	for _, m := range msgs {
		for _, a := range m.Attempts {
			if attemptOK(a) {
				continue
			}
			key := fmt.Sprintf("%s %d", a.Stage, a.Code)
			if a.Code == 0 {
				key = a.Stage + " no reply"
			} else if a.Text != "" {
				key += " " + a.Text
			}
			c[key]++
		}
	}
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return c[keys[i]] > c[keys[j]] })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d× %s", c[k], k))
	}
	return strings.Join(parts, "; ")
}

func chaosReport(form chaosForm, events []*chaosEvent, rows []*chaosRow, msgs []*chaosMsg, bound int, took time.Duration) string {
	total := rows[len(rows)-1]
	var b strings.Builder
	b.WriteString("# Chaos test (issue 8)\n\n")
	fmt.Fprintf(&b, "Generated by `make chaos` (TestChaos in cmd/mxgate/chaos_e2e_test.go, `MXGATE_CHAOS=%s`) on %s; took %s on %d CPUs.\n\n",
		form.name, time.Now().UTC().Format(time.RFC3339), took.Round(time.Second), runtime.NumCPU())
	fmt.Fprintf(&b, "Lab: three `mxgate` nodes in network namespaces, VRRP priorities 200/100/50 with %s adverts and "+
		"preempt off, active-active with equal weights, every scan held %s (`scanner.simulated_delay`) so kills land mid-scan, "+
		"`virus_action: reject`; one redis-server and smtp-sink (the downstream) in the client namespace. "+
		"A client sends a numbered message to the VIP every %s, over at most %d connections (10 messages a connection), "+
		"and acts as an MTA's queue: every reply is recorded; 4xx and dropped connections are retried on a new connection after %s, doubling up to %s, "+
		"at most %d attempts; %s for each reply. One message in ten carries GTUBE (must be quarantined), one in fifty EICAR "+
		"(must be refused). Events, %d round(s) of each, %s of steady stream before each: kill -9 of the master, kill -9 of a "+
		"worker while it scans, SIGTERM of the (new) master, Redis stopped for %s, the master's link cut for %s; killed and "+
		"stopped nodes are started again, and the next event waits until the master sees all three members and exactly one node "+
		"holds the VIP. A VIP move no event caused (a backup elected on its own because a stall of the machine held back the "+
		"master's adverts, from the nodes' `vrrp transition` log lines) is listed as an *unplanned VIP move*, an event too.\n\n",
		chaosAdvert, chaosScan, form.every, form.conc, chaosBackoff, chaosBackoffMax, chaosAttempts, chaosReplyWait, form.cycles, form.settle, form.outage, form.outage)
	b.WriteString("A message is counted under the first event that struck while its first failed attempt was open (or the last one before it; " +
		"a message that never failed: the last event before it was sent). " +
		"*tempfailed*: messages that got a 4xx or lost their connection at least once; *lost*: got 250 to DATA, yet neither at the " +
		"sink nor in the quarantine; *duplicated*: copies beyond the one accepted; *in flight*: attempts that reached a server, open between the event and " +
		"the moment the VIP answered SMTP again from the node that took over (*failover gap*); *accepted without log record*: " +
		"no deliver or quarantine record in the message log at the end (issue 8, defect 6; not an assertion; a record is " +
		"written to the node's journal before the reply and reaches the store from there).\n\n")
	b.WriteString(chaosMarkdown(rows))
	fmt.Fprintf(&b, "\nAssertions: lost %d (must be 0); unresolved %d (must be 0); duplicates %d ≤ attempts in flight at the events %d.\n\n",
		total.lost, total.unresolved, total.dup, bound)
	b.WriteString("## Events\n\n")
	for _, ev := range events {
		fmt.Fprintf(&b, "- %s, %s (%s): VIP answered again after %.2f s, %d attempts in flight; %s\n",
			ev.At.UTC().Format("15:04:05.000"), ev.Name, ev.Node, ev.Gap.Seconds(), ev.inFlight, ev.Note)
	}
	fmt.Fprintf(&b, "\nFailed attempts by reply: %s\n", chaosFailures(msgs))
	return b.String()
}
