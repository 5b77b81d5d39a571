package rspamd

import (
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/engines"
	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/spool"
	"github.com/mxgate/mxgate/testenv"
	"github.com/prometheus/client_golang/prometheus"
)

// testPattern is rspamd's GTUBE with its first letter chosen: X is the
// GTUBE (reject); with enable_test_patterns, Y adds a header, Z rewrites
// the subject and A is no action (rspamd 3.4, src/libmime/message.c).
func testPattern(first string) string {
	return first + "JS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
}

// message is a plain text message with CRLF line ends.
func message(id, subject, body string) []byte {
	return []byte(strings.ReplaceAll(fmt.Sprintf(`From: Alice Example <alice@example.com>
To: Bob Example <bob@example.org>
Subject: %s
Message-ID: <%s@example.com>
Date: Tue, 01 Dec 2026 10:00:00 +0000
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit

%s
Regards,
Alice
`, subject, id, body), "\n", "\r\n"))
}

// cleanMessage is a harmless business message of at least size bytes.
func cleanMessage(id string, size int) []byte {
	para := []string{
		"Hi Bob, here are the notes from our meeting on Tuesday. We agreed to move the release to next week and to review the open tickets on Friday morning.",
		"The build server was upgraded last night and all pipelines are green again. Please rebase your branches before opening new merge requests.",
		"Facilities asked us to book the large meeting room for the quarterly review at least two weeks in advance, so I reserved it for the twelfth.",
		"Thanks for the detailed write-up of the storage migration. I left a few comments about the rollback plan and the expected maintenance window.",
	}
	var b strings.Builder
	for i := 0; b.Len()+330 < size; i++ {
		b.WriteString(para[i%len(para)] + "\n\n")
	}
	return message(id, "Meeting notes and schedule", b.String())
}

func scanMessage(id string, body []byte) *scanner.Message {
	return &scanner.Message{
		ID: id,
		Env: scanner.Envelope{
			ClientIP:   netip.MustParseAddr("192.0.2.10"),
			Helo:       "mail.example.com",
			Sender:     "alice@example.com",
			Recipients: []string{"bob@example.org", "carol@example.org"},
		},
		Body: spool.FromBytes(body),
	}
}

// TestRspamd runs the client against a real rspamd (offline, with Redis
// for Bayes): every action it can be driven to, learning, ping, and
// rspamd gone.
func TestRspamd(t *testing.T) {
	redis := testenv.StartRedis(t)
	rs := testenv.StartRspamd(t, testenv.RspamdOptions{Redis: redis.Addr})
	t.Logf("rspamd ready in %s", rs.Start.Round(time.Millisecond))
	reg := prometheus.NewRegistry()
	metrics, err := engines.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(rs.URL, Options{Controller: rs.ControllerURL, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	var _ scanner.Engine = c
	ctx := testenv.Context(t, 2*time.Minute)

	t.Run("ping", func(t *testing.T) {
		if err := c.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("scan", func(t *testing.T) {
		for _, tc := range []struct {
			name        string
			msg         []byte
			action      string // rspamd's
			mapped      scanner.Action
			symbols     []string // among the result's
			headers     []string // prefixes among the result's headers
			subject     string
			skipped     bool
			minScore    float64
			maxScore    float64
			wantMessage string
		}{
			{name: "gtube", msg: message("gtube", "test", "hello "+testPattern("X")),
				action: "reject", mapped: scanner.ActionReject, symbols: []string{"RSPAMD_GTUBE", SymbolUnlisted},
				skipped: true, minScore: 15, maxScore: 15, wantMessage: "Gtube pattern"},
			{name: "add header", msg: message("yjs", "test", "hello "+testPattern("Y")),
				action: "add header", mapped: scanner.ActionDeliver, symbols: []string{"RSPAMD_GTUBE"},
				headers: []string{"X-Spam: Yes"}, skipped: true, minScore: 0, maxScore: 15, wantMessage: "Gtube pattern"},
			{name: "rewrite subject", msg: message("zjs", "quarterly report", "hello "+testPattern("Z")),
				action: "rewrite subject", mapped: scanner.ActionDeliver, symbols: []string{"RSPAMD_GTUBE"},
				subject: "*** SPAM *** quarterly report", skipped: true, minScore: 0, maxScore: 15, wantMessage: "Gtube pattern"},
			{name: "no action pattern", msg: message("ajs", "test", "hello "+testPattern("A")),
				action: "no action", mapped: scanner.ActionDeliver, skipped: true, minScore: 0, maxScore: 0},
			{name: "clean", msg: cleanMessage("clean", 10<<10),
				action: "no action", mapped: scanner.ActionDeliver, symbols: []string{"RSPAMD_MIME_GOOD"},
				// rspamd's milter_headers (configured by the harness):
				// the queue id shows that Queue-Id was sent.
				headers:  []string{"X-Rspamd-Queue-Id: clean-q", "X-Spam-Status: No, score=", "X-Rspamd-Action: no action", "X-Spamd-Result: default: False"},
				minScore: -5, maxScore: 5},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m := scanMessage(tc.name+"-q", tc.msg)
				if tc.name == "clean" {
					m.ID = "clean-q"
				}
				res, err := c.Scan(ctx, m)
				if err != nil {
					t.Fatal(err)
				}
				reply, err := c.Check(ctx, Request{IP: m.Env.ClientIP, Hostname: "mail.example.com", From: m.Env.Sender,
					Rcpts: m.Env.Recipients, QueueID: m.ID}, m.Body.Reader(), m.Body.Size())
				if err != nil {
					t.Fatal(err)
				}
				if reply.Action != tc.action || res.Action != tc.mapped {
					t.Errorf("action %q mapped to %q, want %q mapped to %q", reply.Action, res.Action, tc.action, tc.mapped)
				}
				if reply.Skipped != tc.skipped {
					t.Errorf("is_skipped %v, want %v", reply.Skipped, tc.skipped)
				}
				if res.Score != reply.Score || res.Score < tc.minScore || res.Score > tc.maxScore {
					t.Errorf("score %v (reply %v), want within [%v, %v]", res.Score, reply.Score, tc.minScore, tc.maxScore)
				}
				if reply.Message != tc.wantMessage {
					t.Errorf("smtp message %q, want %q", reply.Message, tc.wantMessage)
				}
				names := map[string]bool{}
				sum := 0.0
				for _, s := range res.Symbols {
					sum += s.Score
					names[s.Name] = true
					if !strings.HasPrefix(s.Name, "RSPAMD_") {
						t.Errorf("symbol %q without the RSPAMD_ prefix", s.Name)
					}
				}
				// mxgate adds the symbols, so they must make Rspamd's score.
				if math.Abs(sum-reply.Score) > 0.01 {
					t.Errorf("symbols add up to %.2f, Rspamd's score is %.2f: %v", sum, reply.Score, res.Symbols)
				}
				for _, s := range tc.symbols {
					if !names[s] {
						t.Errorf("symbol %s missing in %v", s, res.Symbols)
					}
				}
				for _, want := range tc.headers {
					if !slices.ContainsFunc(res.Headers, func(h string) bool { return strings.HasPrefix(h, want) }) {
						t.Errorf("no header %q… in %q", want, res.Headers)
					}
				}
				for _, h := range res.Headers {
					if strings.ContainsAny(h, "\r\n\x00") || len(h) > maxHeaderLine {
						t.Errorf("header not sanitised: %q", h)
					}
				}
				if res.Subject != tc.subject {
					t.Errorf("subject %q, want %q", res.Subject, tc.subject)
				}
			})
		}
	})

	t.Run("envelope", func(t *testing.T) {
		// What rspamd logs of the task shows what it was told; "dns req:
		// 0": with Hostname it does no reverse lookup of the client.
		m := scanMessage("envelope-q", cleanMessage("envelope", 2000))
		if _, err := c.Scan(ctx, m); err != nil {
			t.Fatal(err)
		}
		line := regexp.MustCompile(`rspamd_task_write_log: .*qid: <envelope-q>.*`)
		var got string
		for deadline := time.Now().Add(10 * time.Second); got == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			got = line.FindString(rs.Log())
		}
		for _, want := range []string{"ip: 192.0.2.10,", "from: <alice@example.com>", "rcpts: <bob@example.org,carol@example.org>", "dns req: 0,"} {
			if !strings.Contains(got, want) {
				t.Errorf("rspamd's log of the task lacks %q: %q", want, got)
			}
		}
	})

	t.Run("learn", func(t *testing.T) {
		spam := message("learn-spam", "cheap watches", strings.Repeat("Buy cheap replica watches now, limited offer, click here. ", 20))
		ham := cleanMessage("learn-ham", 3000)
		for _, step := range []struct {
			name string
			spam bool
			msg  []byte
		}{
			{"spam", true, spam},
			{"spam again (208)", true, spam},
			{"ham", false, ham},
		} {
			r := spool.FromBytes(step.msg)
			if err := c.Learn(ctx, step.spam, r.Reader(), r.Size()); err != nil {
				t.Errorf("%s: %v", step.name, err)
			}
		}
		// rspamd's log shows what Redis holds now: the spam learned, the
		// repeat refused as known (208), the ham learned.
		log := rs.Log()
		for _, want := range []string{
			"learned message as spam: learn-spam@example.com",
			"<learn-spam@example.com> has been already learned as spam",
			"learned message as ham: learn-ham@example.com",
		} {
			if !strings.Contains(log, want) {
				t.Errorf("rspamd's log lacks %q", want)
			}
		}
		noController, err := New(rs.URL, Options{})
		if err != nil {
			t.Fatal(err)
		}
		r := spool.FromBytes(spam)
		if err := noController.Learn(ctx, true, r.Reader(), r.Size()); err == nil {
			t.Error("learning without a controller succeeded")
		}
	})

	t.Run("stopped", func(t *testing.T) {
		rs.Stop()
		res, err := c.Scan(ctx, scanMessage("stopped-q", cleanMessage("stopped", 2000)))
		if err == nil || engines.Kind(err) != engines.KindConnect {
			t.Fatalf("scan with rspamd stopped: %+v, %v (kind %s), want an error of kind connect", res, err, engines.Kind(err))
		}
		if err := c.Ping(ctx); err == nil {
			t.Error("ping with rspamd stopped succeeded")
		}
		if n := testenv.MetricValue(t, reg, "mxgate_engine_errors_total", "kind", engines.KindConnect); n < 2 {
			t.Errorf("connect errors counted: %v, want ≥ 2", n)
		}
	})
	if n := testenv.MetricValue(t, reg, "mxgate_engine_calls_total", "outcome", "ok"); n < 10 {
		t.Errorf("successful calls counted: %v, want ≥ 10", n)
	}
}

// BenchmarkScan10K: one 10 KB clean message at a time through the client
// to a real rspamd (one normal worker); reports p50 and p99 latency.
func BenchmarkScan10K(b *testing.B) {
	rs := testenv.StartRspamd(b, testenv.RspamdOptions{})
	b.Logf("rspamd ready in %s", rs.Start.Round(time.Millisecond))
	c, err := New(rs.URL, Options{})
	if err != nil {
		b.Fatal(err)
	}
	m := scanMessage("bench", cleanMessage("bench", 10<<10))
	ctx := testenv.Context(b, 10*time.Minute)
	var lat []time.Duration
	b.SetBytes(m.Body.Size())
	for b.Loop() {
		start := time.Now()
		if _, err := c.Scan(ctx, m); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
