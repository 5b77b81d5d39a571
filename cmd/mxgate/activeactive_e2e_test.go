package main

// Active-active end-to-end tests (issue 4): three real mxgate nodes in the
// namespace lab sharing one real redis-server, a real smtp-sink downstream,
// and a Go SMTP client in the client namespace that records the reply to
// every message, so "nothing lost" is checked message by message: every
// message that got 250 is at the sink (or, if it was spam, in the shared
// quarantine), every other one got a 4xx.
//
//	client namespace 198.18.0.250: redis-server :6379, smtp-sink :2526, the load
//	node i 198.18.0.(10+i): SMTP on the VIP and its own address :25, admin
//	       0.0.0.0:8025 (token), peer scan API :8026
//
// Root only. Loose time bounds where the VM's stalls show; exact figures
// belong to bench/cluster.sh.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mxgate/mxgate/testenv"
)

const (
	aaToken  = "lab-token"
	aaSecret = "lab-secret-lab-secret"
	aaRedis  = "198.18.0.250:6379"
	aaSink   = "198.18.0.250:2526"
	aaPeer   = 8026
	aaAdmin  = 8025
)

// ---------------------------------------------------------------- the lab

// aaLab is the namespace lab with the shared store, the downstream and the
// mxgate nodes of one test.
type aaLab struct {
	t       *testing.T
	lab     *testenv.Lab
	redis   *testenv.Redis
	sinkDir string
	run     string // unique per lab: message ids of different loads never mix
	seq     atomic.Int64
	nodes   []*aaNode // nodes[0] is n1
	confs   []aaConf  // what the nodes were started with (static peers' weights)
}

// aaConf is what varies between the nodes of a test.
type aaConf struct {
	prio    int
	weight  int
	mode    string        // cluster.mode in the node file (seeds the store)
	delay   time.Duration // scanner.simulated_delay
	workers int
	queue   int
	ttl     time.Duration // cluster.membership_ttl
	// noPreempt sets cluster.preempt false: a restarted node stays backup.
	noPreempt   bool
	virusAction string        // scanner.virus_action; default quarantine
	advert      time.Duration // cluster.advert_interval; default 200ms
	clamd       string        // scanner.clamd; default none
}

// aaNode is one `mxgate serve` in a lab node.
type aaNode struct {
	l    *aaLab
	i    int
	id   string // n<i>
	cfg  string
	proc *testenv.Process
}

// newAALab builds a lab of n nodes with redis-server and smtp-sink in the
// client namespace; the nodes are started by start.
func newAALab(t *testing.T, n int) *aaLab {
	t.Helper()
	testenv.NeedRoot(t)
	sinkBin := testenv.Need(t, "smtp-sink")[0]
	lab := testenv.NewLab(t, n)
	l := &aaLab{t: t, lab: lab, run: fmt.Sprintf("r%d", time.Now().UnixNano()%1e9)}
	l.redis = testenv.StartRedisWith(t, func(name string, args ...string) *testenv.Process {
		return lab.Start(t, lab.Client(), name, args...)
	}, aaRedis)

	dir, err := os.MkdirTemp("", "mxgate-aasink-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// smtp-sink drops root (-u) and must still write its dumps.
	os.Chmod(dir, 0o777)
	l.sinkDir = dir
	lab.Start(t, lab.Client(), sinkBin, "-u", "nobody", "-c", "-d", dir+"/msg.", aaSink, "1024")
	l.waitListen(lab.Client(), aaSink, 5*time.Second)
	return l
}

// waitListen waits until addr accepts connections from namespace ns.
func (l *aaLab) waitListen(ns, addr string, within time.Duration) {
	l.t.Helper()
	l.lab.WaitListen(l.t, ns, addr, within)
}

// writeConfig writes node i's file: SMTP on the VIP and its own address,
// the shared Redis, the peers as the static fallback.
func (l *aaLab) writeConfig(i int, c aaConf) string {
	l.t.Helper()
	if c.mode == "" {
		c.mode = "active-active"
	}
	if c.workers == 0 {
		c.workers = 8
	}
	if c.queue == 0 {
		c.queue = 256
	}
	if c.ttl == 0 {
		c.ttl = time.Second
	}
	if c.virusAction == "" {
		c.virusAction = "quarantine"
	}
	if c.advert == 0 {
		c.advert = 200 * time.Millisecond
	}
	var peers strings.Builder
	for j := 1; j <= l.lab.Nodes(); j++ {
		if j != i {
			fmt.Fprintf(&peers, "    - {id: n%d, address: \"%s:%d\", weight: %d}\n", j, l.lab.NodeAddr(j), aaPeer, l.confs[j-1].weight)
		}
	}
	dir := l.t.TempDir()
	cfg := fmt.Sprintf(`node: {id: n%[1]d, data_dir: %[2]s, log_level: info}
smtp:
  listen: ["%[3]s:25", "%[4]s:25"]
  hostname: n%[1]d.lab.test
  accept_domains: [lab.test]
  drain_timeout: 5s
  max_connections_per_ip: 1000
downstream: {address: "%[5]s", timeout: 10s}
scanner: {simulated_delay: %[6]s, workers: %[7]d, queue: %[8]d, virus_action: %[20]s, clamd: "%[23]s"}
store: {redis: "redis://%[9]s/0"}
admin: {listen: "0.0.0.0:%[10]d", token: %[11]s}
cluster:
  enabled: true
  interface: eth0
  vrid: 51
  vip: %[3]s/%[12]d
  priority: %[13]d
  advert_interval: %[22]s
  preempt: %[21]t
  secret: %[14]s
  mode: %[15]s
  weight: %[16]d
  peer_listen: "%[4]s:%[17]d"
  membership_ttl: %[18]s
  peers:
%[19]s`, i, filepath.Join(dir, "data"), testenv.LabVIP, l.lab.NodeAddr(i), aaSink,
		c.delay, c.workers, c.queue, aaRedis, aaAdmin, aaToken, testenv.LabPrefix,
		c.prio, aaSecret, c.mode, c.weight, aaPeer, c.ttl, peers.String(), c.virusAction, !c.noPreempt, c.advert, c.clamd)
	path := filepath.Join(dir, "mxgate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		l.t.Fatal(err)
	}
	return path
}

// startNodes starts node 1..len(cs) with the given configurations (node i
// gets cs[i-1]) and waits until n1 is master, the VIP answers with its
// banner and the master sees every node as a live, healthy member.
func (l *aaLab) startNodes(cs ...aaConf) {
	l.t.Helper()
	l.confs = cs
	for i, c := range cs {
		n := &aaNode{l: l, i: i + 1, id: fmt.Sprintf("n%d", i+1)}
		n.cfg = l.writeConfig(i+1, c)
		l.nodes = append(l.nodes, n)
		n.start()
	}
	l.nodes[0].waitState("master", 5*time.Second)
	waitBanner(l.t, l.lab, testenv.LabVIP+":25", "n1.lab.test", 5*time.Second)
	l.waitMembers(l.nodes[0], l.ids(), 10*time.Second)
}

func (l *aaLab) ids() []string {
	var ids []string
	for _, n := range l.nodes {
		ids = append(ids, n.id)
	}
	return ids
}

// start (re)starts the node and waits until its admin API answers.
func (n *aaNode) start() {
	t := n.l.t
	t.Helper()
	n.proc = startInLab(t, n.l.lab, n.i, n.cfg, func() error { _, err := n.statusErr(); return err })
}

func (n *aaNode) kill9() {
	n.proc.Stop(syscall.SIGKILL, 5*time.Second)
}

// aaMember and aaStatus decode `mxgate cluster status --json` on their own
// (field names from the contract), so a renamed field fails here.
type aaMember struct {
	ID       string    `json:"id"`
	PeerAddr string    `json:"peer_addr"`
	Weight   int       `json:"weight"`
	Healthy  bool      `json:"healthy"`
	Busy     int       `json:"busy"`
	Workers  int       `json:"workers"`
	Master   bool      `json:"master"`
	Revision int64     `json:"revision"`
	Seen     time.Time `json:"seen"`
	Down     []string  `json:"down"`
}

type aaStatus struct {
	Node     string     `json:"node"`
	State    string     `json:"state"`
	VIPHeld  bool       `json:"vip_held"`
	Mode     string     `json:"mode"`
	Revision int64      `json:"revision"`
	Degraded bool       `json:"degraded"`
	Members  []aaMember `json:"members"`
}

// member is the member id of the status, if listed.
func (s aaStatus) member(id string) (aaMember, bool) {
	for _, m := range s.Members {
		if m.ID == id {
			return m, true
		}
	}
	return aaMember{}, false
}

func (s aaStatus) memberIDs() []string {
	var ids []string
	for _, m := range s.Members {
		if m.Healthy {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// cli runs a management command inside namespace ns against admin (a URL).
func (l *aaLab) cli(ns, admin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	args = append(args, "--admin", admin, "--token", aaToken)
	return l.lab.Exec(ctx, ns, mxgateBin, args...)
}

// vip runs a management command from the client against the VIP's admin
// API, as an administrator would; it fails the test on an error.
func (l *aaLab) vip(args ...string) string {
	l.t.Helper()
	out, err := l.cli(l.lab.Client(), fmt.Sprintf("http://%s:%d", testenv.LabVIP, aaAdmin), args...)
	if err != nil {
		l.t.Fatalf("mxgate %s (via the VIP): %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (n *aaNode) statusErr() (aaStatus, error) {
	out, err := n.l.cli(n.l.lab.Node(n.i), fmt.Sprintf("http://127.0.0.1:%d", aaAdmin), "cluster", "status", "--json")
	var st aaStatus
	if err != nil {
		return st, fmt.Errorf("cluster status: %v: %s", err, out)
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("cluster status --json: %v: %s", err, out)
	}
	return st, nil
}

func (n *aaNode) status() aaStatus {
	n.l.t.Helper()
	st, err := n.statusErr()
	if err != nil {
		n.l.t.Fatalf("node %d: %v", n.i, err)
	}
	return st
}

// waitStatus polls the node's status until ok accepts it.
func (n *aaNode) waitStatus(what string, within time.Duration, ok func(aaStatus) bool) aaStatus {
	n.l.t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, err := n.statusErr()
		if err == nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			n.l.t.Fatalf("node %d: not %s after %s: status %+v, err %v\n%s", n.i, what, within, st, err, n.proc.Text())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *aaNode) waitState(state string, within time.Duration) aaStatus {
	n.l.t.Helper()
	return n.waitStatus("in state "+state, within, func(st aaStatus) bool { return st.State == state })
}

// waitMembers waits until node n dispatches to exactly the healthy
// members ids.
func (l *aaLab) waitMembers(n *aaNode, ids []string, within time.Duration) aaStatus {
	l.t.Helper()
	want := slices.Clone(ids)
	sort.Strings(want)
	return n.waitStatus(fmt.Sprintf("seeing members %v", want), within, func(st aaStatus) bool {
		got := st.memberIDs()
		sort.Strings(got)
		return slices.Equal(got, want)
	})
}

// metrics fetches node i's /metrics from the client namespace (open
// without the token).
func (l *aaLab) metrics(i int) string {
	l.t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return l.lab.Dial(ctx, l.lab.Client(), addr)
		},
	}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(fmt.Sprintf("http://%s:%d/metrics", l.lab.NodeAddr(i), aaAdmin))
	if err != nil {
		l.t.Fatalf("metrics of node %d: %v", i, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		l.t.Fatalf("metrics of node %d: %s %v", i, resp.Status, err)
	}
	return string(b)
}

// redisCLI runs redis-cli against the lab's Redis from the client namespace.
func (l *aaLab) redisCLI(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	host, port, _ := net.SplitHostPort(aaRedis)
	return l.lab.Exec(ctx, l.lab.Client(), "redis-cli", append([]string{"-h", host, "-p", port}, args...)...)
}

// ---------------------------------------------------------------- the sink

// aaDelivered is one message at the sink.
type aaDelivered struct {
	Load     string // X-Load-Id
	Node     string // X-Mxgate-Node
	Released bool   // X-Mxgate-Released present
	Raw      string
}

// delivered reads the sink's complete dumps (a dump ends with an empty
// line; smtp-sink opens it at MAIL FROM).
func (l *aaLab) delivered() []aaDelivered {
	l.t.Helper()
	ents, err := os.ReadDir(l.sinkDir)
	if err != nil {
		l.t.Fatal(err)
	}
	var out []aaDelivered
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(l.sinkDir, e.Name()))
		if err != nil {
			l.t.Fatal(err)
		}
		m := string(b)
		load := testenv.Header(m, "X-Load-Id")
		// A dump is opened at MAIL FROM and ends with an empty line; the
		// end mark tells a whole message from one cut off after a blank
		// line (a node killed mid-DATA).
		if !strings.HasSuffix(m, "\n\n") || !strings.Contains(m, endMark(load)) {
			continue
		}
		out = append(out, aaDelivered{
			Load:     load,
			Node:     testenv.Header(m, "X-Mxgate-Node"),
			Released: testenv.Header(m, "X-Mxgate-Released") != "",
			Raw:      m,
		})
	}
	return out
}

// waitDelivered waits until every id in want is at the sink and returns the
// sink's messages by load id.
func (l *aaLab) waitDelivered(want []string, within time.Duration) map[string][]aaDelivered {
	l.t.Helper()
	deadline := time.Now().Add(within)
	for {
		by := map[string][]aaDelivered{}
		for _, d := range l.delivered() {
			by[d.Load] = append(by[d.Load], d)
		}
		var missing []string
		for _, id := range want {
			if len(by[id]) == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			return by
		}
		if time.Now().After(deadline) {
			if len(missing) > 10 {
				missing = append(missing[:10], "...")
			}
			l.t.Fatalf("%d of %d accepted messages not at the sink after %s: %v", len(missing), len(want), within, missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nodeCounts counts the sink's messages of the given loads by X-Mxgate-Node.
func nodeCounts(by map[string][]aaDelivered, ids []string) map[string]int {
	c := map[string]int{}
	for _, id := range ids {
		for _, d := range by[id] {
			if !d.Released {
				c[d.Node]++
			}
		}
	}
	return c
}

// ---------------------------------------------------------------- the load

// aaMsg is one message of a load and what the gateway answered.
type aaMsg struct {
	N     int
	ID    string // X-Load-Id, and the local part of the Message-ID
	Spam  bool   // carries GTUBE: must be quarantined, never delivered
	Virus bool   // carries EICAR
	From  string // envelope sender; default the load's
	Code  int    // the reply that ended the transaction; 0 = none (connection failed)
	Stage string // greeting, ehlo, mail, rcpt, data, dot
	Text  string
	Err   string
	Sent  time.Time // when the transaction began
	Done  time.Time // when its last reply came
}

// aaLoad describes a load sent from the client namespace.
type aaLoad struct {
	Addr    string           // default VIP:25
	N       int              // messages
	Conc    int              // concurrent sessions
	Spam    func(n int) bool // which messages carry GTUBE
	From    string           // envelope sender; default load@sender.test
	Size    int              // body bytes (about); default 2 KB
	PerConn int              // messages per connection before QUIT; default 20
	Timeout time.Duration    // per reply; default 30 s
	Pause   time.Duration    // between messages of one session
}

// send runs a load to completion (or until ctx ends) and returns every
// message's outcome, in order. progress (optional) counts finished messages.
func (l *aaLab) send(ctx context.Context, ld aaLoad, progress *atomic.Int64) []aaMsg {
	l.t.Helper()
	if ld.Addr == "" {
		ld.Addr = testenv.LabVIP + ":25"
	}
	if ld.From == "" {
		ld.From = "load@sender.test"
	}
	if ld.Size == 0 {
		ld.Size = 2048
	}
	if ld.PerConn == 0 {
		ld.PerConn = 20
	}
	if ld.Timeout == 0 {
		ld.Timeout = 30 * time.Second
	}
	if ld.Conc == 0 {
		ld.Conc = 8
	}
	base := l.seq.Add(int64(ld.N)) - int64(ld.N)
	msgs := make([]aaMsg, ld.N)
	for k := range msgs {
		n := int(base) + k
		msgs[k] = aaMsg{N: n, ID: fmt.Sprintf("%s-%d", l.run, n), Spam: ld.Spam != nil && ld.Spam(k)}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < ld.Conc; w++ {
		wg.Go(func() {
			s := &aaSession{l: l, ld: ld}
			defer s.close()
			for ctx.Err() == nil {
				k := int(next.Add(1)) - 1
				if k >= ld.N {
					return
				}
				s.deliver(ctx, &msgs[k])
				if progress != nil {
					progress.Add(1)
				}
				if ld.Pause > 0 {
					time.Sleep(ld.Pause)
				}
			}
		})
	}
	wg.Wait()
	return msgs
}

// aaSession is one client connection, reused for PerConn messages.
type aaSession struct {
	l    *aaLab
	ld   aaLoad
	nc   net.Conn
	tp   *textproto.Conn
	sent int
}

func (s *aaSession) close() {
	if s.tp != nil {
		s.nc.SetDeadline(time.Now().Add(time.Second))
		s.tp.PrintfLine("QUIT")
		s.tp.ReadResponse(221)
		s.tp.Close()
		s.tp, s.nc = nil, nil
	}
}

func (s *aaSession) abort() {
	if s.tp != nil {
		s.tp.Close()
		s.tp, s.nc = nil, nil
	}
}

// cmd sends a command and reads its reply; err != nil = no (whole) reply.
func (s *aaSession) cmd(format string, args ...any) (int, string, error) {
	s.nc.SetDeadline(time.Now().Add(s.ld.Timeout))
	if err := s.tp.PrintfLine(format, args...); err != nil {
		return 0, "", err
	}
	code, msg, err := s.tp.ReadResponse(0)
	var perr *textproto.Error
	if errors.As(err, &perr) || (err == nil && code != 0) {
		return code, msg, nil
	}
	return code, msg, err
}

// deliver runs one transaction and records how it ended.
func (s *aaSession) deliver(ctx context.Context, m *aaMsg) {
	m.Sent = time.Now()
	defer func() { m.Done = time.Now() }()
	fail := func(stage string, code int, text string, err error) {
		m.Stage, m.Code, m.Text = stage, code, text
		if err != nil {
			m.Err = err.Error()
		}
		s.abort()
	}
	if s.tp == nil {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		nc, err := s.l.lab.Dial(dctx, s.l.lab.Client(), s.ld.Addr)
		cancel()
		if err != nil {
			fail("connect", 0, "", err)
			return
		}
		s.nc, s.tp, s.sent = nc, textproto.NewConn(nc), 0
		nc.SetDeadline(time.Now().Add(s.ld.Timeout))
		code, text, err := s.tp.ReadResponse(0)
		if err != nil || code != 220 {
			fail("greeting", code, text, err)
			return
		}
		if code, text, err := s.cmd("EHLO load.lab.test"); err != nil || code != 250 {
			fail("ehlo", code, text, err)
			return
		}
	}
	from := s.ld.From
	if m.From != "" {
		from = m.From
	}
	steps := []struct{ stage, cmd string }{
		{"mail", "MAIL FROM:<" + from + ">"},
		{"rcpt", "RCPT TO:<user" + strconv.Itoa(m.N%50) + "@lab.test>"},
	}
	for _, st := range steps {
		code, text, err := s.cmd("%s", st.cmd)
		if err != nil || code != 250 {
			fail(st.stage, code, text, err)
			return
		}
	}
	if code, text, err := s.cmd("DATA"); err != nil || code != 354 {
		fail("data", code, text, err)
		return
	}
	w := s.tp.DotWriter()
	fmt.Fprintf(w, "From: <%s>\r\nTo: <user%d@lab.test>\r\nSubject: load %s\r\nMessage-ID: <%s@load.lab.test>\r\nX-Load-Id: %s\r\n\r\n",
		from, m.N%50, m.ID, m.ID, m.ID)
	if m.Spam {
		fmt.Fprintf(w, "Buy now\r\n%s\r\n", gtube)
	}
	if m.Virus {
		fmt.Fprintf(w, "%s\r\n", eicar)
	}
	line := strings.Repeat("lorem ipsum dolor sit amet ", 2) + "\r\n"
	for written := 0; written < s.ld.Size; written += len(line) {
		fmt.Fprint(w, line)
	}
	fmt.Fprintf(w, "%s\r\n", endMark(m.ID))
	if err := w.Close(); err != nil {
		fail("dot", 0, "", err)
		return
	}
	code, text, err := s.tp.ReadResponse(0)
	var perr *textproto.Error
	if err != nil && !errors.As(err, &perr) {
		fail("dot", code, text, err)
		return
	}
	m.Stage, m.Code, m.Text = "dot", code, text
	s.sent++
	if code != 250 || s.sent >= s.ld.PerConn {
		// After a refusal start clean; after PerConn messages say goodbye.
		s.close()
	}
}

// endMark is the last body line of load message id.
func endMark(id string) string { return "End of message " + id + "." }

// aaSummary counts a load's outcomes.
type aaSummary struct {
	N, Accepted, Temp, Perm, NoReply int
	ByStage                          map[string]int
	Elapsed                          time.Duration
}

func summarize(msgs []aaMsg) aaSummary {
	s := aaSummary{N: len(msgs), ByStage: map[string]int{}}
	var first, last time.Time
	for _, m := range msgs {
		switch {
		case m.Code == 250 && m.Stage == "dot":
			s.Accepted++
		case m.Code >= 400 && m.Code < 500:
			s.Temp++
			s.ByStage[m.Stage]++
		case m.Code >= 500:
			s.Perm++
			s.ByStage[m.Stage]++
		default:
			s.NoReply++
			s.ByStage[m.Stage]++
		}
		if first.IsZero() || m.Sent.Before(first) {
			first = m.Sent
		}
		if m.Done.After(last) {
			last = m.Done
		}
	}
	s.Elapsed = last.Sub(first)
	return s
}

func (s aaSummary) String() string {
	rate := 0.0
	if s.Elapsed > 0 {
		rate = float64(s.N) / s.Elapsed.Seconds()
	}
	return fmt.Sprintf("%d messages in %s (%.0f/s): %d accepted, %d 4xx, %d 5xx, %d without reply %v",
		s.N, s.Elapsed.Round(time.Millisecond), rate, s.Accepted, s.Temp, s.Perm, s.NoReply, s.ByStage)
}

// failures lists up to 10 messages that did not get 250, for messages.
func failures(msgs []aaMsg) string {
	var b strings.Builder
	k := 0
	for _, m := range msgs {
		if m.Code == 250 && m.Stage == "dot" {
			continue
		}
		if k++; k > 10 {
			b.WriteString("  ...\n")
			break
		}
		fmt.Fprintf(&b, "  %s at %s: %d %s %s\n", m.ID, m.Stage, m.Code, m.Text, m.Err)
	}
	return b.String()
}

// quarantined lists the shared quarantine via the VIP.
func (l *aaLab) quarantined() []aaQItem {
	l.t.Helper()
	var items []aaQItem
	out := l.vip("quarantine", "list", "--json", "--limit", "10000")
	if err := json.Unmarshal([]byte(out), &items); err != nil {
		l.t.Fatalf("quarantine list --json: %v\n%s", err, out)
	}
	return items
}

type aaQItem struct {
	ID        string    `json:"id"`
	Verdict   string    `json:"verdict"`
	Node      string    `json:"node"`
	Subject   string    `json:"subject"`
	MessageID string    `json:"message_id"`
	Released  time.Time `json:"released"`
}

// loadID is the load id of a quarantined item (from its Message-ID).
func (it aaQItem) loadID() string {
	s := strings.Trim(it.MessageID, "<>")
	id, _, _ := strings.Cut(s, "@")
	return id
}

// checkNothingLost asserts the "nothing lost": every message got
// either 250 or a 4xx; every clean one with 250 is at the sink (once);
// every spam one with 250 is in the quarantine and not at the sink. It
// returns the sink's messages by load id.
func (l *aaLab) checkNothingLost(msgs []aaMsg) map[string][]aaDelivered {
	l.t.Helper()
	var clean []string
	spam := map[string]bool{}
	for _, m := range msgs {
		ok := m.Code == 250 && m.Stage == "dot"
		switch {
		case ok && m.Spam:
			spam[m.ID] = true
		case ok:
			clean = append(clean, m.ID)
		case m.Code >= 400 && m.Code < 500:
		default:
			l.t.Errorf("message %s: neither 250 nor 4xx: %d %q at %s (%s)", m.ID, m.Code, m.Text, m.Stage, m.Err)
		}
	}
	by := l.waitDelivered(clean, 20*time.Second)
	for _, id := range clean {
		if n := len(by[id]); n != 1 {
			l.t.Errorf("message %s is %d times at the sink", id, n)
		}
	}
	if len(spam) > 0 {
		inQ := map[string]bool{}
		for _, it := range l.quarantined() {
			inQ[it.loadID()] = true
		}
		for id := range spam {
			if !inQ[id] {
				l.t.Errorf("spam message %s got 250 but is not in the quarantine", id)
			}
			if len(by[id]) > 0 {
				for _, d := range by[id] {
					if !d.Released {
						l.t.Errorf("spam message %s was delivered", id)
					}
				}
			}
		}
	}
	// Nothing that was refused reached the sink (a 4xx means "not taken").
	for _, m := range msgs {
		if !(m.Code == 250 && m.Stage == "dot") && len(by[m.ID]) > 0 {
			l.t.Errorf("message %s got %d %q but is at the sink", m.ID, m.Code, m.Text)
		}
	}
	return by
}

func accepted(msgs []aaMsg) []string {
	var ids []string
	for _, m := range msgs {
		if m.Code == 250 && m.Stage == "dot" && !m.Spam {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// shareErrors returns, per node, |got/total − weight/Σweights| relative to
// the expected share, and the largest one.
func shareErrors(counts map[string]int, weights map[string]int) (map[string]float64, float64) {
	total, wsum := 0, 0
	for _, c := range counts {
		total += c
	}
	for _, w := range weights {
		wsum += w
	}
	out := map[string]float64{}
	worst := 0.0
	for id, w := range weights {
		want := float64(w) / float64(wsum)
		got := float64(counts[id]) / float64(total)
		e := math.Abs(got-want) / want
		out[id] = e
		worst = math.Max(worst, e)
	}
	return out, worst
}

// ---------------------------------------------------------------- scenarios

var aaWeights = []aaConf{
	{prio: 200, weight: 100, delay: 20 * time.Millisecond},
	{prio: 100, weight: 50, delay: 20 * time.Millisecond},
	{prio: 50, weight: 50, delay: 20 * time.Millisecond},
}

// 3000 messages to the VIP are scanned on all three nodes in proportion to
// their weights 100/50/50 (each node's share within 3 % of its expected
// share, counted by X-Mxgate-Node at the sink), every one accepted and
// delivered once; the master's status lists the three members with their
// weights, peer addresses, workers and the same config revision.
func TestActiveActiveWeights(t *testing.T) {
	l := newAALab(t, 3)
	l.startNodes(aaWeights...)
	st := l.nodes[0].status()
	if st.Mode != "active-active" || st.Degraded || st.Revision < 1 {
		t.Errorf("master status: mode %q, degraded %v, revision %d; want active-active, not degraded, revision ≥ 1", st.Mode, st.Degraded, st.Revision)
	}
	for _, m := range st.Members {
		i, _ := strconv.Atoi(strings.TrimPrefix(m.ID, "n"))
		if m.PeerAddr != fmt.Sprintf("%s:%d", l.lab.NodeAddr(i), aaPeer) || m.Weight != aaWeights[i-1].weight ||
			m.Workers != 8 || m.Master != (i == 1) || m.Revision != st.Revision || m.Seen.IsZero() {
			t.Errorf("member %+v in the master's status", m)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	msgs := l.send(ctx, aaLoad{N: 3000, Conc: 24, Size: 1024, PerConn: 100}, nil)
	sum := summarize(msgs)
	t.Logf("load: %s", sum)
	if sum.Accepted != sum.N {
		t.Errorf("%d of %d messages not accepted:\n%s", sum.N-sum.Accepted, sum.N, failures(msgs))
	}
	by := l.checkNothingLost(msgs)
	counts := nodeCounts(by, accepted(msgs))
	errs, worst := shareErrors(counts, map[string]int{"n1": 100, "n2": 50, "n3": 50})
	t.Logf("scanned by node: %v; share error vs weights: n1 %.2f%%, n2 %.2f%%, n3 %.2f%%",
		counts, 100*errs["n1"], 100*errs["n2"], 100*errs["n3"])
	if worst > 0.03 {
		t.Errorf("distribution %v is off the weights 100/50/50 by up to %.2f%% (want within 3%%)", counts, 100*worst)
	}
	if len(counts) != 3 {
		t.Errorf("messages carry X-Mxgate-Node values %v, want n1, n2, n3 only", counts)
	}
}

// A quarantined message from any node is listed and released via the VIP;
// a list entry added on the master takes effect on every node within a
// second; a config revision reaches every node within a second; after
// kill -9 of the master, the new master serves the same quarantine, lists
// and configuration (revision, settings, audit entry).
func TestActiveActiveSharedState(t *testing.T) {
	l := newAALab(t, 3)
	l.startNodes(aaWeights...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Eight spam messages one after another: smooth WRR over 100/50/50
	// gives each node at least two of them.
	msgs := l.send(ctx, aaLoad{N: 8, Conc: 1, Spam: func(int) bool { return true }}, nil)
	if s := summarize(msgs); s.Accepted != 8 {
		t.Fatalf("spam load: %s\n%s", s, failures(msgs))
	}
	items := l.quarantined()
	byNode := map[string][]aaQItem{}
	for _, it := range items {
		byNode[it.Node] = append(byNode[it.Node], it)
		if it.Verdict != "spam" {
			t.Errorf("quarantined %+v, want verdict spam", it)
		}
	}
	if len(items) != 8 || len(byNode["n1"]) == 0 || len(byNode["n2"]) == 0 || len(byNode["n3"]) == 0 {
		t.Fatalf("quarantine via the VIP has %d items by node %v, want 8 from n1, n2 and n3", len(items), aaNodesOf(byNode))
	}
	t.Logf("quarantined via the VIP, by scanning node: %v", aaNodesOf(byNode))
	if d := l.delivered(); len(d) != 0 {
		t.Fatalf("%d quarantined messages reached the sink", len(d))
	}
	// Release one scanned on each worker node (not the master) via the VIP.
	for _, node := range []string{"n2", "n3"} {
		it := byNode[node][0]
		l.vip("quarantine", "release", it.ID)
		by := l.waitDelivered([]string{it.loadID()}, 10*time.Second)
		if d := by[it.loadID()][0]; !d.Released || !strings.Contains(d.Raw, gtube) {
			t.Errorf("released message from %s is not the original with a release mark:\n%s", node, d.Raw)
		}
	}
	released := 0
	for _, it := range l.quarantined() {
		if !it.Released.IsZero() {
			released++
		}
	}
	if released != 2 {
		t.Errorf("%d items marked released, want 2", released)
	}

	// A block entry added via the VIP (the master) refuses the sender on
	// every node's own address within a second.
	const blocked = "spammer@bad.lab"
	for _, n := range l.nodes { // the control: accepted before
		if code, text, err := l.tryRcpt(l.lab.NodeAddr(n.i)+":25", blocked); err != nil || code != 250 {
			t.Fatalf("%s before the block entry: RCPT got %d %s %v, want 250", n.id, code, text, err)
		}
	}
	l.vip("lists", "add", "block", blocked, "--comment", "e2e")
	t0 := time.Now()
	for _, n := range l.nodes {
		took := l.waitRefused(l.lab.NodeAddr(n.i)+":25", blocked, 3*time.Second)
		t.Logf("block entry effective on %s after %s", n.id, took.Round(time.Millisecond))
		if d := time.Since(t0); d > time.Second+200*time.Millisecond { // the VM stalls now and then
			t.Errorf("block entry took %s to reach %s, want < 1 s", d, n.id)
		}
	}

	// A new configuration revision (stricter thresholds) set via the VIP is
	// applied by every node within a second.
	before := l.nodes[0].status().Revision
	cur := l.vip("config", "show")
	next := strings.Replace(cur, "quarantine: 6", "quarantine: 5.5", 1)
	if next == cur {
		t.Fatalf("config show has no 'quarantine: 6' threshold to change:\n%s", cur)
	}
	file := filepath.Join(t.TempDir(), "cluster.yaml")
	os.WriteFile(file, []byte(next), 0o644)
	// The file is read by the CLI in the client namespace (same mount).
	out := l.vip("config", "set", "-f", file, "--comment", "e2e threshold")
	t1 := time.Now()
	want := before + 1
	if !strings.Contains(out, fmt.Sprintf("revision %d", want)) {
		t.Errorf("config set said %q, want revision %d", out, want)
	}
	for _, n := range l.nodes {
		n.waitStatus(fmt.Sprintf("at revision %d", want), 3*time.Second, func(st aaStatus) bool { return st.Revision == want })
		if d := time.Since(t1); d > time.Second+300*time.Millisecond {
			t.Errorf("revision %d reached %s after %s, want < 1 s", want, n.id, d)
		}
	}
	t.Logf("revision %d applied on all nodes %s after config set", want, time.Since(t1).Round(time.Millisecond))
	// Every member reports it too (the master's view of the heartbeats).
	l.nodes[0].waitStatus("seeing every member at the new revision", 3*time.Second, func(st aaStatus) bool {
		for _, m := range st.Members {
			if m.Revision != want {
				return false
			}
		}
		return len(st.Members) == 3
	})

	// kill -9 of the master: n2 takes the VIP and serves the same state.
	qBefore := l.quarantined()
	l.nodes[0].kill9()
	took := waitBanner(t, l.lab, testenv.LabVIP+":25", "n2.lab.test", 10*time.Second)
	t.Logf("master killed: n2 answers on the VIP after %s", took.Round(time.Millisecond))
	l.waitListen(l.lab.Client(), fmt.Sprintf("%s:%d", testenv.LabVIP, aaAdmin), 5*time.Second)
	qAfter := l.quarantined()
	if len(qAfter) != len(qBefore) {
		t.Errorf("new master lists %d quarantined items, the old one %d", len(qAfter), len(qBefore))
	}
	ids := func(its []aaQItem) []string {
		var s []string
		for _, it := range its {
			s = append(s, it.ID)
		}
		sort.Strings(s)
		return s
	}
	if !slices.Equal(ids(qAfter), ids(qBefore)) {
		t.Errorf("quarantine ids differ after failover:\n%v\n%v", ids(qBefore), ids(qAfter))
	}
	var rev struct {
		Number   int64  `json:"revision"`
		Comment  string `json:"comment"`
		By       string `json:"by"`
		Settings struct {
			Scanner struct {
				Thresholds struct {
					Quarantine float64 `json:"quarantine"`
				} `json:"thresholds"`
			} `json:"scanner"`
		} `json:"settings"`
	}
	out = l.vip("config", "show", "--json")
	if err := json.Unmarshal([]byte(out), &rev); err != nil {
		t.Fatalf("config show --json: %v\n%s", err, out)
	}
	if rev.Number != want || rev.Comment != "e2e threshold" || rev.Settings.Scanner.Thresholds.Quarantine != 5.5 {
		t.Errorf("new master's config: %+v, want revision %d with the comment and quarantine threshold 5.5", rev, want)
	}
	hist := l.vip("config", "show", "--history")
	if !strings.Contains(hist, "e2e threshold") {
		t.Errorf("new master's config history lacks the audit entry:\n%s", hist)
	}
	if out := l.vip("lists", "show"); !strings.Contains(out, blocked) {
		t.Errorf("new master's lists lack %s:\n%s", blocked, out)
	}
	// The old master's items can be released by the new one.
	for _, it := range qAfter {
		if it.Node == "n1" && it.Released.IsZero() {
			l.vip("quarantine", "release", it.ID)
			by := l.waitDelivered([]string{it.loadID()}, 10*time.Second)
			if !by[it.loadID()][0].Released {
				t.Errorf("release of n1's item via the new master delivered it without the release mark")
			}
			break
		}
	}
	// And it still dispatches to what is alive: n2 and n3.
	l.waitMembers(l.nodes[1], []string{"n2", "n3"}, 5*time.Second)
}

func aaNodesOf(by map[string][]aaQItem) map[string]int {
	out := map[string]int{}
	for k, v := range by {
		out[k] = len(v)
	}
	return out
}

// waitRefused tries MAIL FROM:<from> + RCPT on addr from the client until
// the gateway refuses it with 5xx; it returns how long that took.
func (l *aaLab) waitRefused(addr, from string, within time.Duration) time.Duration {
	l.t.Helper()
	start := time.Now()
	for {
		code, text, err := l.tryRcpt(addr, from)
		if err == nil && code >= 500 {
			return time.Since(start)
		}
		if time.Since(start) > within {
			l.t.Fatalf("%s still accepts mail from %s after %s: %d %s %v", addr, from, within, code, text, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tryRcpt returns the first non-250 reply of EHLO/MAIL/RCPT, or RCPT's.
func (l *aaLab) tryRcpt(addr, from string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	nc, err := l.lab.Dial(ctx, l.lab.Client(), addr)
	if err != nil {
		return 0, "", err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(3 * time.Second))
	tp := textproto.NewConn(nc)
	if _, _, err := tp.ReadResponse(220); err != nil {
		return 0, "", err
	}
	for _, c := range []string{"EHLO probe.lab.test", "MAIL FROM:<" + from + ">", "RCPT TO:<bob@lab.test>"} {
		if err := tp.PrintfLine("%s", c); err != nil {
			return 0, "", err
		}
		code, text, err := tp.ReadResponse(0)
		var perr *textproto.Error
		if err != nil && !errors.As(err, &perr) {
			return code, text, err
		}
		if code != 250 || strings.HasPrefix(c, "RCPT") {
			tp.PrintfLine("QUIT")
			return code, text, nil
		}
	}
	return 0, "", nil
}

// kill -9 of a worker node (n3) in the middle of a load: every message
// still gets 250 (scans lost with n3 are retried on another member) and is
// at the sink once; n3 leaves the master's members within 2 × TTL; started
// again, it is used again.
func TestActiveActiveWorkerKilled(t *testing.T) {
	l := newAALab(t, 3)
	l.startNodes(aaWeights...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var done atomic.Int64
	var msgs []aaMsg
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		msgs = l.send(ctx, aaLoad{N: 900, Conc: 16, PerConn: 50}, &done)
	}()
	for done.Load() < 250 {
		time.Sleep(5 * time.Millisecond)
	}
	t0 := time.Now()
	l.nodes[2].kill9()
	const ttl = time.Second
	l.waitMembers(l.nodes[0], []string{"n1", "n2"}, 2*ttl+2*time.Second)
	gone := time.Since(t0)
	t.Logf("n3 killed after %d messages; out of the master's members after %s (TTL %s)", 250, gone.Round(time.Millisecond), ttl)
	if gone > 2*ttl+500*time.Millisecond {
		t.Errorf("dead n3 stayed a member for %s, want within 2 × TTL (%s)", gone, 2*ttl)
	}
	<-loaded
	sum := summarize(msgs)
	t.Logf("load: %s", sum)
	if sum.Accepted != sum.N {
		t.Errorf("%d messages not accepted while a worker died:\n%s", sum.N-sum.Accepted, failures(msgs))
	}
	by := l.checkNothingLost(msgs)
	counts := nodeCounts(by, accepted(msgs))
	t.Logf("scanned by node: %v", counts)
	if counts["n3"] == 0 {
		t.Errorf("n3 scanned nothing before it was killed: %v", counts)
	}

	// n3 comes back and gets its share again.
	l.nodes[2].start()
	l.waitMembers(l.nodes[0], []string{"n1", "n2", "n3"}, 10*time.Second)
	msgs = l.send(ctx, aaLoad{N: 100, Conc: 4}, nil)
	if s := summarize(msgs); s.Accepted != s.N {
		t.Fatalf("after n3's return: %s\n%s", s, failures(msgs))
	}
	counts = nodeCounts(l.checkNothingLost(msgs), accepted(msgs))
	t.Logf("after n3's return, scanned by node: %v", counts)
	if counts["n3"] < 15 {
		t.Errorf("returned n3 scanned %d of 100 messages, want about 25", counts["n3"])
	}
}

// Active-passive: switched in the cluster configuration without a
// restart, only the master scans (n2 and n3 idle, still live members);
// switched back, all three scan again.
func TestActivePassive(t *testing.T) {
	l := newAALab(t, 3)
	l.startNodes(aaWeights...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	setMode := func(from, to string) int64 {
		t.Helper()
		cur := l.vip("config", "show")
		next := strings.Replace(cur, "mode: "+from, "mode: "+to, 1)
		if next == cur {
			t.Fatalf("config show has no 'mode: %s':\n%s", from, cur)
		}
		file := filepath.Join(t.TempDir(), "cluster.yaml")
		os.WriteFile(file, []byte(next), 0o644)
		l.vip("config", "set", "-f", file, "--comment", "mode "+to)
		set := time.Now()
		rev := l.nodes[0].waitStatus("in mode "+to, 2*time.Second, func(st aaStatus) bool { return st.Mode == to }).Revision
		for _, n := range l.nodes[1:] {
			n.waitStatus("in mode "+to, 2*time.Second, func(st aaStatus) bool { return st.Mode == to && st.Revision == rev })
		}
		t.Logf("mode %s (revision %d) reported by every node %s after config set", to, rev, time.Since(set).Round(time.Millisecond))
		// The bound for applying a revision is 1 s; the status
		// shows it before the dispatcher follows (membership refreshes
		// every TTL/3), so the load starts when that second is over.
		time.Sleep(time.Until(set.Add(time.Second)))
		return rev
	}

	setMode("active-active", "active-passive")
	msgs := l.send(ctx, aaLoad{N: 200, Conc: 8}, nil)
	if s := summarize(msgs); s.Accepted != s.N {
		t.Fatalf("active-passive load: %s\n%s", s, failures(msgs))
	}
	counts := nodeCounts(l.checkNothingLost(msgs), accepted(msgs))
	t.Logf("active-passive: scanned by node %v", counts)
	if counts["n1"] != 200 || len(counts) != 1 {
		t.Errorf("active-passive: scanned by %v, want all 200 by the master n1", counts)
	}
	// The slaves stay live members, ready.
	if st := l.nodes[0].status(); len(st.memberIDs()) != 3 {
		t.Errorf("active-passive: master sees members %v, want all three live", st.memberIDs())
	}

	setMode("active-passive", "active-active")
	msgs = l.send(ctx, aaLoad{N: 200, Conc: 8}, nil)
	if s := summarize(msgs); s.Accepted != s.N {
		t.Fatalf("active-active load: %s\n%s", s, failures(msgs))
	}
	counts = nodeCounts(l.checkNothingLost(msgs), accepted(msgs))
	t.Logf("back to active-active: scanned by node %v", counts)
	if counts["n2"] < 30 || counts["n3"] < 30 {
		t.Errorf("back in active-active, scanned by %v, want about 100/50/50", counts)
	}
}

// Redis stopped during a load of clean and spam messages: spam cannot be
// quarantined, so it gets 451 (never 250 for a quarantine that was not
// stored); clean mail keeps flowing (the hot path does not touch Redis);
// the nodes report degraded and keep scanning on the static peers; when
// Redis returns, everything recovers by itself (spam accepted and
// quarantined again, not degraded); nothing is lost.
func TestActiveActiveRedisOutage(t *testing.T) {
	l := newAALab(t, 3)
	l.startNodes(aaWeights...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	spam := func(k int) bool { return k%5 == 0 }
	var done atomic.Int64
	var msgs []aaMsg
	loaded := make(chan struct{})
	// About 35 messages a second for ~14 s: a steady trickle across the
	// outage and the recovery.
	go func() {
		defer close(loaded)
		msgs = l.send(ctx, aaLoad{N: 480, Conc: 4, Spam: spam, Pause: 80 * time.Millisecond}, &done)
	}()
	for done.Load() < 100 {
		time.Sleep(5 * time.Millisecond)
	}
	down := time.Now()
	l.redis.Stop()
	for _, n := range l.nodes {
		n.waitStatus("degraded", 5*time.Second, func(st aaStatus) bool { return st.Degraded })
	}
	for _, n := range l.nodes {
		if m := l.metrics(n.i); !strings.Contains(m, "\nmxgate_degraded 1\n") || strings.Contains(m, "mxgate_store_degraded") {
			t.Errorf("%s's metrics during the outage lack mxgate_degraded 1 (or still have mxgate_store_degraded)", n.id)
		}
	}
	// While it is down, the master still dispatches to the static peers.
	st := l.nodes[0].status()
	t.Logf("Redis down: master degraded after %s, members %v", time.Since(down).Round(time.Millisecond), st.memberIDs())
	time.Sleep(4 * time.Second)
	up := time.Now()
	l.redis.Start()
	for _, n := range l.nodes {
		n.waitStatus("recovered", 10*time.Second, func(st aaStatus) bool { return !st.Degraded })
	}
	t.Logf("Redis back: all nodes recovered after %s", time.Since(up).Round(time.Millisecond))
	for _, n := range l.nodes {
		if m := l.metrics(n.i); !strings.Contains(m, "\nmxgate_degraded 0\n") {
			t.Errorf("%s's metrics after the outage lack mxgate_degraded 0", n.id)
		}
	}
	<-loaded
	sum := summarize(msgs)
	t.Logf("load: %s", sum)

	by := l.checkNothingLost(msgs)
	var spamDuring, spam451, cleanDuring, clean250, spamAfter, spamAfter250 int
	for _, m := range msgs {
		// Wholly inside the outage (a second after the stop, so the
		// store's connections have surely failed).
		during := m.Sent.After(down.Add(time.Second)) && m.Done.Before(up)
		after := m.Sent.After(up.Add(3 * time.Second))
		ok := m.Code == 250 && m.Stage == "dot"
		switch {
		case during && m.Spam:
			spamDuring++
			if m.Code == 451 {
				spam451++
			} else {
				t.Errorf("spam %s sent %s after Redis stopped, answered %s later (%s before Redis started again): %d %s",
					m.ID, m.Sent.Sub(down).Round(time.Millisecond), m.Done.Sub(m.Sent).Round(time.Millisecond), up.Sub(m.Done).Round(time.Millisecond), m.Code, m.Text)
			}
		case during:
			cleanDuring++
			if ok {
				clean250++
			}
		case after && m.Spam:
			spamAfter++
			if ok {
				spamAfter250++
			}
		}
	}
	texts := map[string]int{}
	for _, m := range msgs {
		if m.Code >= 400 && m.Code < 500 {
			texts[fmt.Sprintf("%d %s", m.Code, m.Text)]++
		}
	}
	t.Logf("4xx replies: %v", texts)
	t.Logf("during the outage: %d/%d spam got 451, %d/%d clean got 250; after: %d/%d spam got 250",
		spam451, spamDuring, clean250, cleanDuring, spamAfter250, spamAfter)
	if spamDuring == 0 || spam451 != spamDuring {
		t.Errorf("during the outage %d of %d spam messages got 451, want all (a quarantine cannot be stored)", spam451, spamDuring)
	}
	if cleanDuring == 0 || clean250 != cleanDuring {
		t.Errorf("during the outage %d of %d clean messages got 250, want all (no Redis on the hot path)", clean250, cleanDuring)
	}
	if spamAfter == 0 || spamAfter250 != spamAfter {
		t.Errorf("after Redis returned %d of %d spam messages got 250, want all", spamAfter250, spamAfter)
	}
	counts := nodeCounts(by, accepted(msgs))
	t.Logf("scanned by node: %v", counts)
	if len(counts) != 3 {
		t.Errorf("scanned by %v, want all three nodes (static peers during the outage)", counts)
	}
}

// ---------------------------------------------------------------- benchmark

// Every node scans with its own clamd (a unix socket: a file, reachable
// from the node's namespace). When n2's clamd dies, the messages n2 was
// about to scan go to the others, n2 reports itself unhealthy (its engine
// named in the cluster status) and gets no more scans, and no client sees
// an error: every message is accepted, and delivered or quarantined.
func TestActiveActiveEngineDown(t *testing.T) {
	l := newAALab(t, 3)
	confs := slices.Clone(aaWeights)
	var clamds []*testenv.Clamd
	for i := range confs {
		c := testenv.StartClamd(t, testenv.ClamdOptions{})
		clamds = append(clamds, c)
		confs[i].clamd, confs[i].weight, confs[i].delay = c.Unix, 1, 0
	}
	l.startNodes(confs...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	spam := func(n int) bool { return n%10 == 0 }

	msgs := l.send(ctx, aaLoad{N: 300, Conc: 8, Spam: spam}, nil)
	if s := summarize(msgs); s.Accepted != s.N {
		t.Fatalf("with every clamd up: %s\n%s", s, failures(msgs))
	}
	counts := nodeCounts(l.checkNothingLost(msgs), accepted(msgs))
	t.Logf("clamd up everywhere, scanned by node: %v", counts)
	if counts["n2"] == 0 {
		t.Fatalf("n2 scanned nothing with its clamd up: %v", counts)
	}

	clamds[1].Kill()
	var done atomic.Int64
	var during []aaMsg
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		during = l.send(ctx, aaLoad{N: 300, Conc: 8, Spam: spam}, &done)
	}()
	st := l.nodes[0].waitStatus("n2 unhealthy, naming clamd", 30*time.Second, func(s aaStatus) bool {
		m, ok := s.member("n2")
		return ok && !m.Healthy && slices.ContainsFunc(m.Down, func(d string) bool { return strings.HasPrefix(d, "clamd") })
	})
	m2, _ := st.member("n2")
	t.Logf("n2 in the master's status after its clamd died: healthy %v, down %v", m2.Healthy, m2.Down)
	<-loaded
	if s := summarize(during); s.Accepted != s.N {
		t.Errorf("while n2's clamd died: %s\n%s", s, failures(during))
	}
	l.checkNothingLost(during)

	after := l.send(ctx, aaLoad{N: 200, Conc: 8, Spam: spam}, nil)
	if s := summarize(after); s.Accepted != s.N {
		t.Errorf("with n2's clamd down: %s\n%s", s, failures(after))
	}
	counts = nodeCounts(l.checkNothingLost(after), accepted(after))
	t.Logf("n2's clamd down, scanned by node: %v", counts)
	if counts["n2"] != 0 || counts["n1"] == 0 || counts["n3"] == 0 {
		t.Errorf("scans by node %v: want none on n2, some on n1 and n3", counts)
	}

}
