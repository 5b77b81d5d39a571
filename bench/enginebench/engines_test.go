package enginebench

// TestEngineBench measures clamd, Rspamd and spamd (each alone and all
// three at once) three ways on the same 10 KB messages, side by side in
// one run:
//
//   - cli: the engine's own client, one process per message, as an
//     administrator runs it (clamdscan --stream, rspamc, spamc -R);
//   - client: mxgate's own client of the engine, in this process (the raw
//     engine plus one connection: what mxgate cannot do better than);
//   - mxgate: the mxgate binary with only that engine (or all three),
//     messages sent over SMTP and relayed to smtp-sink; latency from the
//     end of DATA to the reply.
//
// and writes bench/results/engines.md with the targets checked.
// It is a benchmark: without MXGATE_BENCH_ENGINES_OUT it skips, so make
// test never runs it (make bench does).

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mxgate/mxgate/engines/clamd"
	"github.com/mxgate/mxgate/engines/rspamd"
	"github.com/mxgate/mxgate/engines/spamd"
	"github.com/mxgate/mxgate/testenv"
)

// benchKnobs are the sizes of the run (environment, see bench/README.md).
type benchKnobs struct {
	out      string
	fastMsgs int   // per measured run of clamd and rspamd
	slowMsgs int   // per measured run of spamd and of all three
	cliMsgs  int   // per cli run of clamd and rspamd (a process each)
	rounds   int   // the client and mxgate runs alternate this often
	conc     []int // concurrencies of the client and mxgate runs
	profile  time.Duration
}

func knobsFromEnv(t *testing.T) benchKnobs {
	t.Helper()
	k := benchKnobs{
		out:      os.Getenv("MXGATE_BENCH_ENGINES_OUT"),
		fastMsgs: envInt(t, "BENCH_FAST_MSGS", 1000),
		slowMsgs: envInt(t, "BENCH_SLOW_MSGS", 80),
		cliMsgs:  envInt(t, "BENCH_CLI_MSGS", 200),
		rounds:   envInt(t, "BENCH_ROUNDS", 4),
		conc:     []int{1, 4},
		profile:  time.Duration(envInt(t, "BENCH_PROFILE_SECONDS", 8)) * time.Second,
	}
	if v := os.Getenv("BENCH_CONC"); v != "" {
		k.conc = nil
		for _, f := range strings.Fields(strings.ReplaceAll(v, ",", " ")) {
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 || n > 64 {
				t.Fatalf("BENCH_CONC=%q: want numbers from 1 to 64", v)
			}
			k.conc = append(k.conc, n)
		}
	}
	return k
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 100000 {
		t.Fatalf("%s=%q: want a number from 1 to 100000", name, v)
	}
	return n
}

// engineSet is one engine, or all three, the way each path calls it.
type engineSet struct {
	name    string
	msgs    int
	cliMsgs int
	// daemons are the PIDs whose process trees are the engine's CPU.
	daemons []int
	// cli runs the engine's own client on msg and returns the CPU the
	// client process(es) used.
	cli func(ctx context.Context, msg []byte) (time.Duration, error)
	// client calls the engine with mxgate's client, in this process.
	client func(ctx context.Context, msg []byte) error
	// scanner is the YAML under the node's scanner: naming the engine.
	scanner string
}

// row is one measured run.
type row struct {
	set, path string
	conc      int
	n, errs   int
	firstErr  error
	elapsed   time.Duration
	lat       []time.Duration // sorted
	engineCPU time.Duration   // the daemons', whole run
	mxgateCPU time.Duration   // the mxgate process's, whole run
	cliCPU    time.Duration   // the cli processes', or this process's on the client path
	// hist are the node's histogram sums and counts over the run, by
	// series (mxgate_scan_duration_seconds, mxgate_engine_duration_seconds).
	hist map[string]float64
}

func (r *row) rate() float64 { return float64(r.n) / r.elapsed.Seconds() }

func (r *row) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(r.lat)))) - 1
	return r.lat[max(i, 0)]
}

func (r *row) perMsg(d time.Duration) time.Duration {
	if r.n == 0 {
		return 0
	}
	return d / time.Duration(r.n)
}

func TestEngineBench(t *testing.T) {
	k := knobsFromEnv(t)
	if k.out == "" {
		t.Skip("a benchmark, not a test: set MXGATE_BENCH_ENGINES_OUT=FILE to run it (make bench)")
	}
	if !filepath.IsAbs(k.out) {
		t.Fatalf("MXGATE_BENCH_ENGINES_OUT=%q: want an absolute path (go test runs in the package directory)", k.out)
	}
	testenv.Need(t, "clamdscan", "rspamc", "spamc")
	began := time.Now()
	load0 := loadavg()
	ctx := testenv.Context(t, 40*time.Minute)
	bin := mxgateBinary(t)

	clam := testenv.StartClamd(t, testenv.ClamdOptions{MaxThreads: 4})
	rsp := testenv.StartRspamd(t, testenv.RspamdOptions{})
	spd := testenv.StartSpamd(t)
	sink := testenv.StartSink(t)
	t.Logf("clamd up in %s, rspamd in %s, spamd in %s", clam.StartTime, rsp.Start, spd.Started)

	sets := engineSets(t, k, clam, rsp, spd)
	msgs := &messages{}
	var rows []*row
	profiles := map[string]string{}
	idle := map[string]time.Duration{}
	for _, s := range sets[:3] {
		idle[s.name] = idleCPU(s.daemons, 3*time.Second)
	}

	// One node per set, and one without engines for what mxgate costs by
	// itself (the built-in checks, relay, message log), all up at once.
	// Every run is cut into rounds, and the rounds of every set and path
	// alternate, so that a change in what else the machine does falls on
	// all of them alike.
	all := append([]engineSet{{name: "none", msgs: sets[0].msgs}}, sets...)
	type setRuns struct {
		gw          *gateway
		cli         *row
		client, mx  []*row
		send, cliFn sendFunc
	}
	runs := make([]setRuns, len(all))
	for i, s := range all {
		sr := &runs[i]
		sr.gw = startGateway(t, bin, sink.Addr, s.scanner)
		if s.cli != nil {
			sr.cli = &row{set: s.name, path: "cli", conc: 1}
			sr.cliFn = func(ctx context.Context, msg []byte) (time.Duration, time.Duration, error) {
				start := time.Now()
				cpu, err := s.cli(ctx, msg)
				return time.Since(start), cpu, err
			}
		}
		if s.client != nil {
			sr.send = func(ctx context.Context, msg []byte) (time.Duration, time.Duration, error) {
				start := time.Now()
				err := s.client(ctx, msg)
				return time.Since(start), 0, err
			}
		}
		for _, c := range k.conc {
			if s.client != nil {
				sr.client = append(sr.client, &row{set: s.name, path: "client", conc: c})
			}
			sr.mx = append(sr.mx, &row{set: s.name, path: "mxgate", conc: c})
		}
	}
	share := func(total, round int) int {
		n := total / k.rounds
		if round < total%k.rounds {
			n++
		}
		return n
	}
	for round := range k.rounds {
		t.Logf("round %d of %d", round+1, k.rounds)
		for i, s := range all {
			sr := runs[i]
			if sr.cli != nil {
				measure(ctx, sr.cli, s, share(s.cliMsgs, round), msgs, sr.cliFn, nil, round == 0)
			}
			for j := range k.conc {
				if sr.send != nil {
					measure(ctx, sr.client[j], s, share(s.msgs, round), msgs, sr.send, nil, round == 0)
				}
				measure(ctx, sr.mx[j], s, share(s.msgs, round), msgs, nil, sr.gw, round == 0)
			}
		}
	}
	for i, s := range all {
		sr := runs[i]
		if sr.cli != nil {
			rows = append(rows, sr.cli)
		}
		rows = append(append(rows, sr.client...), sr.mx...)
		if s.name == "none" || s.name == "clamd" || s.name == "rspamd" {
			profiles[s.name] = sr.gw.profile(ctx, t, bin, k.profile, msgs)
		}
		sr.gw.stop()
	}

	for _, r := range rows {
		if r.errs > 0 {
			t.Errorf("%s %s c=%d: %d of %d failed, first: %v", r.set, r.path, r.conc, r.errs, r.n+r.errs, r.firstErr)
		}
	}
	report := engineReport(k, sets, rows, profiles, idle, msgs, reportEnv{
		began: began, took: time.Since(began), load0: load0, load1: loadavg(),
		clamd: clam.StartTime, rspamd: rsp.Start, spamd: spd.Started,
	})
	if err := os.WriteFile(k.out, []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("results written to %s\n%s", k.out, report)
}

// engineSets are clamd, rspamd, spamd and all three, each with its cli,
// its in-process client and the node's configuration.
func engineSets(t *testing.T, k benchKnobs, clam *testenv.Clamd, rsp *testenv.Rspamd, spd *testenv.Spamd) []engineSet {
	t.Helper()
	clamConf := filepath.Join(t.TempDir(), "clamd.conf")
	_, clamPort, _ := net.SplitHostPort(strings.TrimPrefix(clam.TCP, "tcp://"))
	// clamdscan reads clamd.conf for where clamd listens: a private one
	// naming the test's clamd, not /etc/clamav's.
	if err := os.WriteFile(clamConf, []byte("TCPSocket "+clamPort+"\nTCPAddr 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, spamdPort, _ := net.SplitHostPort(spd.Addr)
	cc, err := clamd.New(clam.TCP, clamd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rspamd.New(rsp.URL, rspamd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := spamd.New("tcp://"+spd.Addr, spamd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The envelope mxgate would pass on, so that rspamd does the same work.
	envelope := rspamd.Request{IP: netip.MustParseAddr("127.0.0.1"), Helo: "client.test", Hostname: "client.test",
		From: "a@sender.test", Rcpts: []string{"b@example.org"}}

	clamSet := engineSet{
		name: "clamd", msgs: k.fastMsgs, cliMsgs: k.cliMsgs, daemons: []int{clam.PID()},
		cli: func(ctx context.Context, msg []byte) (time.Duration, error) {
			out, cpu, err := runCLI(ctx, msg, "clamdscan", "--stream", "--no-summary", "--config-file="+clamConf, "-")
			if err == nil && !strings.HasSuffix(strings.TrimSpace(out), ": OK") {
				err = fmt.Errorf("clamdscan: %q, want OK", out)
			}
			return cpu, err
		},
		client: func(ctx context.Context, msg []byte) error {
			res, err := cc.ScanStream(ctx, bytes.NewReader(msg), int64(len(msg)))
			if err == nil && res.Virus != "" {
				err = fmt.Errorf("clamd found %s in a clean message", res.Virus)
			}
			return err
		},
		scanner: "  clamd: " + clam.TCP + "\n",
	}
	rspSet := engineSet{
		name: "rspamd", msgs: k.fastMsgs, cliMsgs: k.cliMsgs, daemons: []int{rsp.Process().Cmd.Process.Pid},
		cli: func(ctx context.Context, msg []byte) (time.Duration, error) {
			out, cpu, err := runCLI(ctx, msg, "rspamc", "-h", strings.TrimPrefix(rsp.URL, "http://"),
				"-i", "127.0.0.1", "--helo", "client.test", "--hostname", "client.test",
				"-F", "a@sender.test", "-r", "b@example.org")
			if err == nil && !strings.Contains(out, "Action: no action") {
				err = fmt.Errorf("rspamc: no \"Action: no action\" in %q", out)
			}
			return cpu, err
		},
		client: func(ctx context.Context, msg []byte) error {
			rep, err := rc.Check(ctx, envelope, bytes.NewReader(msg), int64(len(msg)))
			if err == nil && rep.Action != "no action" {
				err = fmt.Errorf("rspamd: action %q (score %.2f) for a clean message", rep.Action, rep.Score)
			}
			return err
		},
		scanner: "  rspamd: " + rsp.URL + "\n",
	}
	spdSet := engineSet{
		name: "spamd", msgs: k.slowMsgs, cliMsgs: k.slowMsgs, daemons: []int{spd.Process().Cmd.Process.Pid},
		cli: func(ctx context.Context, msg []byte) (time.Duration, error) {
			// -x: an error is an exit status, not the message passed back
			// unscanned; -R: the report, as mxgate asks for.
			out, cpu, err := runCLI(ctx, msg, "spamc", "-d", "127.0.0.1", "-p", spamdPort, "-x", "-R")
			if err == nil && !strings.Contains(out, "/5.0") {
				err = fmt.Errorf("spamc: no score in %q", out)
			}
			return cpu, err
		},
		client: func(ctx context.Context, msg []byte) error {
			rep, err := sc.Check(ctx, bytes.NewReader(msg), int64(len(msg)))
			if err == nil && rep.Spam {
				err = fmt.Errorf("spamd: spam (%.1f) for a clean message", rep.Score)
			}
			return err
		},
		scanner: "  spamd: tcp://" + spd.Addr + "\n",
	}
	singles := []engineSet{clamSet, rspSet, spdSet}
	all := engineSet{name: "all three", msgs: k.slowMsgs, cliMsgs: k.slowMsgs}
	for _, s := range singles {
		all.daemons = append(all.daemons, s.daemons...)
		all.scanner += s.scanner
	}
	// All three at once per message, as mxgate asks them: the message
	// takes as long as the slowest.
	all.cli = func(ctx context.Context, msg []byte) (time.Duration, error) {
		var mu sync.Mutex
		var cpu time.Duration
		err := parallel(singles, func(s engineSet) error {
			c, err := s.cli(ctx, msg)
			mu.Lock()
			cpu += c
			mu.Unlock()
			return err
		})
		return cpu, err
	}
	all.client = func(ctx context.Context, msg []byte) error {
		return parallel(singles, func(s engineSet) error { return s.client(ctx, msg) })
	}
	return append(singles, all)
}

func parallel(sets []engineSet, f func(engineSet) error) error {
	errs := make([]error, len(sets))
	var wg sync.WaitGroup
	for i, s := range sets {
		wg.Go(func() { errs[i] = f(s) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// runCLI runs a client program with msg on its stdin and returns its
// output and the CPU it used.
func runCLI(ctx context.Context, msg []byte, name string, args ...string) (string, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = bytes.NewReader(msg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var cpu time.Duration
	if cmd.ProcessState != nil {
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return out.String(), cpu, fmt.Errorf("%s: %w: %s", name, err, bytes.TrimSpace(out.Bytes()))
	}
	return out.String(), cpu, nil
}

// sendFunc sends one message and returns its latency and any client CPU.
type sendFunc func(ctx context.Context, msg []byte) (lat, cpu time.Duration, err error)

// warmup is how many messages each run sends before it measures: the
// first connections, a spamd child's first message, the node's first scan.
const warmup = 4

// measure runs n more messages of r at r.conc through send, or over SMTP
// through gw when gw is not nil, and adds the CPU of the set's daemons
// and of mxgate around it; warm sends warm-up messages first.
func measure(ctx context.Context, r *row, s engineSet, n int, msgs *messages, send sendFunc, gw *gateway, warm bool) {
	var senders []sendFunc
	for range r.conc {
		if gw == nil {
			senders = append(senders, send)
			continue
		}
		c := &smtpSender{addr: gw.smtp}
		defer c.close()
		senders = append(senders, c.send)
	}
	if warm {
		for range warmup {
			senders[0](ctx, msgs.next())
		}
	}
	var metrics0 map[string]float64
	var mx0 time.Duration
	if gw != nil {
		metrics0 = gw.metrics()
		mx0 = treeCPU(gw.pid())
	}
	eng0 := treeCPU(s.daemons...)
	// The client path runs in this process, which does nothing else
	// meanwhile: its CPU is the client's.
	self0 := selfCPU()
	var (
		next    atomic.Int64
		mu      sync.Mutex
		wg      sync.WaitGroup
		started = time.Now()
	)
	for _, send := range senders {
		wg.Go(func() {
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				lat, cpu, err := send(ctx, msgs.next())
				mu.Lock()
				if err != nil {
					r.errs++
					if r.firstErr == nil {
						r.firstErr = err
					}
				} else {
					r.lat = append(r.lat, lat)
					r.cliCPU += cpu
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r.elapsed += time.Since(started)
	r.engineCPU += treeCPU(s.daemons...) - eng0
	if r.path == "client" {
		r.cliCPU += selfCPU() - self0
	}
	if gw != nil {
		r.mxgateCPU += treeCPU(gw.pid()) - mx0
		if r.hist == nil {
			r.hist = map[string]float64{}
		}
		for k, v := range gw.metrics() {
			r.hist[k] += v - metrics0[k]
		}
	}
	slices.Sort(r.lat)
	r.n = len(r.lat)
}

// messages makes the benchmark's messages: one text of 10 KB, each with a
// serial number of fixed width of its own, so that every message has the
// same size and content but no engine can answer a repeat from a cache
// (clamd caches the hashes of clean files).
type messages struct{ serial atomic.Int64 }

// messageSize is the size of every message, in bytes.
const messageSize = 10 * 1024

func (m *messages) next() []byte { return benchMessage(m.serial.Add(1)) }

func (m *messages) count() int64 { return m.serial.Load() }

// benchParagraphs are ordinary business prose: what most mail is.
var benchParagraphs = []string{
	"Thank you for the notes from Tuesday's planning meeting. I went through them with the team this morning and we agree with most of the proposed schedule for the second quarter.",
	"The main open question is the migration of the billing database. Our current estimate is three weeks of work, including the tests with the accounting department and a dry run over a weekend.",
	"Could you check with Maria whether the new servers can be delivered before the end of the month? If they arrive later, we would move the migration to the first week of the following month.",
	"Attached below is the summary of the costs we discussed. The figures for travel are still preliminary, because the venue for the training in Lyon has not confirmed its prices yet.",
	"Regarding the support contract, the supplier has offered to extend the current terms for another year without changes. I think we should accept, since the alternatives we looked at were not cheaper.",
	"Please also remember that the office will be closed on Friday afternoon for the fire drill and the maintenance of the air conditioning. Anyone who needs to work on site should let facilities know by Wednesday.",
	"For the customer survey, we received 412 answers so far, which is more than last year. The first results show that most customers are satisfied with the response times of the help desk.",
	"I will prepare a short presentation of these points for the management meeting next Monday. If you have comments or corrections, please send them to me before Thursday evening.",
}

// benchMessage is message serial: headers From, To, Subject, Date,
// Message-ID, then paragraphs of text up to exactly messageSize bytes.
func benchMessage(serial int64) []byte {
	var b bytes.Buffer
	id := fmt.Sprintf("%012d", serial)
	fmt.Fprintf(&b, "From: Anna Weber <a@sender.test>\r\nTo: Bruno Keller <b@example.org>\r\n"+
		"Subject: Notes from the planning meeting, reference %s\r\nDate: Tue, 02 Dec 2025 09:14:%02d +0100\r\n"+
		"Message-ID: <%s.planning@sender.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n"+
		"Content-Transfer-Encoding: 7bit\r\n\r\nHello Bruno,\r\n\r\n", id, serial%60, id)
	closing := "Best regards,\r\nAnna\r\n\r\n-- \r\nAnna Weber, Operations, Sender Test Ltd.\r\n"
	var para bytes.Buffer
	for i := 0; ; i++ {
		para.Reset()
		writeWrapped(&para, benchParagraphs[i%len(benchParagraphs)])
		// Room left for the closing and a reference line of 20 bytes.
		if b.Len()+para.Len()+len(closing)+40 > messageSize {
			break
		}
		b.Write(para.Bytes())
	}
	// Fill to the exact size with a last line of the reference number.
	fill := messageSize - b.Len() - len(closing) - len("Ref. \r\n\r\n")
	line := "Ref. " + strings.Repeat(id+" ", fill/13+1)[:fill] + "\r\n\r\n"
	b.WriteString(line + closing)
	return b.Bytes()
}

// writeWrapped writes a paragraph as lines of at most 72 characters.
func writeWrapped(b *bytes.Buffer, p string) {
	n := 0
	for i, w := range strings.Fields(p) {
		if i > 0 && n+1+len(w) > 72 {
			b.WriteString("\r\n")
			n = 0
		} else if i > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	b.WriteString("\r\n\r\n")
}

// smtpSender sends messages over one SMTP session to mxgate, as an MTA
// with a cached connection does, and times the end of DATA to the reply.
type smtpSender struct {
	addr string
	nc   net.Conn
	c    *textproto.Conn
}

func (s *smtpSender) close() {
	if s.c != nil {
		s.c.Cmd("QUIT")
		s.c.Close()
		s.c = nil
	}
}

func (s *smtpSender) dial() error {
	nc, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		return err
	}
	s.nc, s.c = nc, textproto.NewConn(nc)
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, _, err := s.c.ReadResponse(220); err != nil {
		s.close()
		return fmt.Errorf("greeting: %w", err)
	}
	if err := s.step("EHLO client.test", 250); err != nil {
		s.close()
		return err
	}
	return nil
}

func (s *smtpSender) step(cmd string, want int) error {
	if err := s.c.PrintfLine("%s", cmd); err != nil {
		return err
	}
	if _, msg, err := s.c.ReadResponse(want); err != nil {
		return fmt.Errorf("%s: %s: %w", cmd, msg, err)
	}
	return nil
}

func (s *smtpSender) send(ctx context.Context, msg []byte) (time.Duration, time.Duration, error) {
	if s.c == nil {
		if err := s.dial(); err != nil {
			return 0, 0, err
		}
	}
	lat, err := s.transaction(msg)
	if err != nil {
		// A session that went wrong is not reused.
		s.close()
	}
	return lat, 0, err
}

func (s *smtpSender) transaction(msg []byte) (time.Duration, error) {
	s.nc.SetDeadline(time.Now().Add(60 * time.Second))
	for _, st := range []struct {
		cmd  string
		want int
	}{{"MAIL FROM:<a@sender.test>", 250}, {"RCPT TO:<b@example.org>", 250}, {"DATA", 354}} {
		if err := s.step(st.cmd, st.want); err != nil {
			return 0, err
		}
	}
	// The messages have no line starting with a dot: no stuffing needed.
	if _, err := s.c.W.Write(msg); err != nil {
		return 0, err
	}
	if err := s.c.W.Flush(); err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := s.c.W.WriteString(".\r\n"); err != nil {
		return 0, err
	}
	if err := s.c.W.Flush(); err != nil {
		return 0, err
	}
	_, text, err := s.c.ReadResponse(250)
	lat := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("end of data: %s: %w", text, err)
	}
	return lat, nil
}

// gateway is the mxgate binary serving one configuration.
type gateway struct {
	smtp, admin string
	proc        *testenv.Process
}

func startGateway(t *testing.T, bin, downstream, scannerYAML string) *gateway {
	t.Helper()
	g := &gateway{smtp: testenv.FreeAddr(t), admin: testenv.FreeAddr(t)}
	// workers: the scanner's default is one per CPU (2 here), which would
	// queue 4 concurrent messages that only wait on an engine.
	cfg := fmt.Sprintf(`node:
  id: bench
  data_dir: %s
  log_level: info
smtp:
  listen: ["%s"]
  hostname: mx.test
  accept_domains: [example.org]
downstream:
  address: "%s"
scanner:
  workers: 8
%sadmin:
  listen: "%s"
`, t.TempDir(), g.smtp, downstream, scannerYAML, g.admin)
	path := filepath.Join(t.TempDir(), "mxgate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g.proc = testenv.Start(t, bin, "serve", "-c", path)
	testenv.WaitPort(t, g.smtp, 30*time.Second)
	testenv.WaitPort(t, g.admin, 30*time.Second)
	return g
}

func (g *gateway) pid() int { return g.proc.Cmd.Process.Pid }

func (g *gateway) stop() { g.proc.Stop(syscall.SIGTERM, 20*time.Second) }

// metrics are the node's sums and counts of histograms, by series.
func (g *gateway) metrics() map[string]float64 {
	out := map[string]float64{}
	resp, err := http.Get("http://" + g.admin + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "mxgate_scan_duration_seconds_") && !strings.HasPrefix(line, "mxgate_engine_duration_seconds_") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if f, err := strconv.ParseFloat(val, 64); ok && err == nil {
			out[name] = f
		}
	}
	return out
}

// mean is the mean of a node's histogram over the run.
func (r *row) mean(name, labels string) time.Duration {
	key := func(suffix string) string {
		if labels == "" {
			return name + suffix
		}
		return name + suffix + "{" + labels + "}"
	}
	n := r.hist[key("_count")]
	if n <= 0 {
		return 0
	}
	return time.Duration(r.hist[key("_sum")] / n * float64(time.Second))
}

// profile takes a CPU profile of the node under a load of 4 sessions and
// returns go tool pprof's top functions.
func (g *gateway) profile(ctx context.Context, t *testing.T, bin string, d time.Duration, msgs *messages) string {
	t.Helper()
	loadCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			s := &smtpSender{addr: g.smtp}
			defer s.close()
			for loadCtx.Err() == nil {
				s.send(loadCtx, msgs.next())
			}
		})
	}
	file := filepath.Join(t.TempDir(), "cpu.pprof")
	err := fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", g.admin, int(d.Seconds())), file)
	stop()
	wg.Wait()
	if err != nil {
		return "profile: " + err.Error()
	}
	var b strings.Builder
	for _, args := range [][]string{{"-top", "-nodecount=15"}, {"-top", "-cum", "-nodecount=40"}} {
		out, err := exec.CommandContext(ctx, goTool(), append(append([]string{"tool", "pprof"}, args...), bin, file)...).CombinedOutput()
		if err != nil {
			return fmt.Sprintf("go tool pprof: %v\n%s", err, out)
		}
		fmt.Fprintf(&b, "$ go tool pprof %s\n%s\n", strings.Join(args, " "), out)
	}
	return b.String()
}

func fetch(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}

func goTool() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// mxgateBinary is MXGATE_BIN, or the binary built from this checkout.
func mxgateBinary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("MXGATE_BIN"); b != "" {
		abs, err := filepath.Abs(b)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	bin := filepath.Join(t.TempDir(), "mxgate")
	if out, err := exec.Command(goTool(), "build", "-o", bin, "github.com/mxgate/mxgate/cmd/mxgate").CombinedOutput(); err != nil {
		t.Fatalf("build mxgate: %v\n%s", err, out)
	}
	return bin
}
