package spamd

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgate/mxgate/engines"
	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/spool"
	"github.com/mxgate/mxgate/testenv"
)

// gtube is SpamAssassin's test pattern, put together here so that this
// file itself does not match it.
var gtube = "XJS*C4JDBQADN1.NSBN3*2IDNEN*" + "GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

func message(subject, body string) []byte {
	return []byte("From: Alice Example <alice@example.com>\r\n" +
		"To: Bob Example <bob@example.org>\r\n" +
		"Subject: " + subject + "\r\n" +
		"Message-ID: <" + strings.ReplaceAll(strings.ToLower(subject), " ", "-") + "-1@example.com>\r\n" +
		"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + body)
}

// cleanMessage is a plain business mail of at least size bytes.
func cleanMessage(size int) []byte {
	paras := []string{
		"Hi Bob, here are the notes from our meeting on Tuesday. We agreed to move the release to next week and to review the open tickets on Friday morning.",
		"The build server was upgraded last night and all pipelines are green again. Please rebase your branches before opening new merge requests.",
		"Facilities asked us to book the large meeting room for the quarterly review at least two weeks in advance, so I reserved it for the twelfth.",
		"Thanks for the detailed write-up of the storage migration. I left a few comments about the rollback plan and the expected maintenance window.",
	}
	var b strings.Builder
	for i := 0; b.Len() < size; i++ {
		b.WriteString(paras[i%len(paras)] + "\r\n\r\n")
	}
	b.WriteString("Regards,\r\nAlice\r\n")
	return message("Meeting notes", b.String())
}

func newClient(t *testing.T, addr string, o Options) *Client {
	t.Helper()
	c, err := New(addr, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func scan(t *testing.T, c *Client, msg []byte) (scanner.EngineResult, error) {
	t.Helper()
	return c.Scan(testenv.Context(t, time.Minute), &scanner.Message{ID: "T1", Body: spool.FromBytes(msg)})
}

func symbol(res scanner.EngineResult, name string) (scanner.Symbol, bool) {
	i := slices.IndexFunc(res.Symbols, func(s scanner.Symbol) bool { return s.Name == name })
	if i < 0 {
		return scanner.Symbol{}, false
	}
	return res.Symbols[i], true
}

// checkSum: the symbols carry spamd's score itemised, to the table's
// rounding.
func checkSum(t *testing.T, res scanner.EngineResult) {
	t.Helper()
	var sum, slack float64
	for _, s := range res.Symbols {
		sum += s.Score
		slack += tableRounding(s.Score)
	}
	if math.Abs(sum-res.Score) > slack+1e-6 {
		t.Errorf("symbols add up to %.2f, spamd's score is %.2f: %+v", sum, res.Score, res.Symbols)
	}
}

// TestRealSpamd runs Debian's spamd offline and scans through it.
func TestRealSpamd(t *testing.T) {
	sd := testenv.StartSpamd(t)
	t.Logf("spamd answered PING %s after start", sd.Started.Round(time.Millisecond))
	reg := prometheus.NewRegistry()
	metrics, err := engines.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	tcp := "tcp://" + sd.Addr

	tests := []struct {
		name string
		addr string
		opt  Options
		msg  []byte
		want func(t *testing.T, res scanner.EngineResult)
	}{
		{"GTUBE is spam", tcp, Options{}, message("GTUBE test", "This is the GTUBE.\r\n\r\n"+gtube+"\r\n"),
			func(t *testing.T, res scanner.EngineResult) {
				if res.Score < 1000 {
					t.Errorf("score %.1f, want ≥ 1000", res.Score)
				}
				if s, ok := symbol(res, "SPAMD_GTUBE"); !ok || s.Score != 1000 || !strings.Contains(s.Detail, "Generic Test for Unsolicited Bulk Email") {
					t.Errorf("SPAMD_GTUBE: %+v (found %v), want 1000 points and its description", s, ok)
				}
				if s, ok := symbol(res, SymbolSpam); !ok || s.Score != 0 || !strings.Contains(s.Detail, "/ 5.0") {
					t.Errorf("%s: %+v (found %v), want 0 points with score / threshold", SymbolSpam, s, ok)
				}
			}},
		{"clean 10 KB message is ham", tcp, Options{}, cleanMessage(10 << 10),
			func(t *testing.T, res scanner.EngineResult) {
				if res.Score >= 5 {
					t.Errorf("score %.1f, want < 5", res.Score)
				}
				if _, ok := symbol(res, SymbolSpam); ok {
					t.Errorf("%s on a clean message: %+v", SymbolSpam, res.Symbols)
				}
				if _, ok := symbol(res, "SPAMD_GTUBE"); ok {
					t.Errorf("SPAMD_GTUBE on a clean message: %+v", res.Symbols)
				}
			}},
		{"GTUBE through the unix socket with a User", "unix://" + sd.Socket, Options{User: "alice"},
			message("GTUBE test", gtube+"\r\n"),
			func(t *testing.T, res scanner.EngineResult) {
				if _, ok := symbol(res, "SPAMD_GTUBE"); !ok || res.Score < 1000 {
					t.Errorf("score %.1f, symbols %+v: want GTUBE", res.Score, res.Symbols)
				}
			}},
		// spamd reads the body by lines: without the end of our side it
		// waits for the last line's end until its own timeout.
		{"message without a final line break", tcp, Options{Timeout: 20 * time.Second},
			[]byte("Subject: no final line break\r\n\r\n" + gtube),
			func(t *testing.T, res scanner.EngineResult) {
				if _, ok := symbol(res, "SPAMD_GTUBE"); !ok {
					t.Errorf("symbols %+v: want GTUBE", res.Symbols)
				}
			}},
		{"over max_size is skipped and marked", tcp, Options{MaxSize: 4 << 10}, cleanMessage(10 << 10),
			func(t *testing.T, res scanner.EngineResult) {
				s, ok := symbol(res, SymbolSkippedSize)
				if !ok || len(res.Symbols) != 1 || s.Score != 0 || !strings.Contains(s.Detail, "over max_size 4096") {
					t.Errorf("symbols %+v: want only %s with the size and limit", res.Symbols, SymbolSkippedSize)
				}
			}},
	}
	var sent, skipped float64 // calls observed by the metrics
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.HasPrefix(tt.addr, "unix://") && sd.Socket == "" {
				t.Skip("the temporary directory's path is too long for a unix socket")
			}
			tt.opt.Metrics = metrics
			res, err := scan(t, newClient(t, tt.addr, tt.opt), tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := symbol(res, SymbolSkippedSize); ok {
				skipped++
			} else {
				sent++
			}
			t.Logf("score %.1f, symbols %+v", res.Score, res.Symbols)
			if res.Action != "" {
				t.Errorf("action %q, want none: spamd's verdict counts through its score", res.Action)
			}
			checkSum(t, res)
			tt.want(t, res)
		})
	}
	if skipped > 0 {
		if n := testenv.MetricValue(t, reg, "mxgate_engine_errors_total", "kind", engines.KindTooLarge); n != skipped {
			t.Errorf("too_large errors counted: %v, want %v", n, skipped)
		}
	}
	if sent > 0 {
		if n := testenv.MetricValue(t, reg, "mxgate_engine_calls_total", "outcome", "ok"); n != sent {
			t.Errorf("ok calls counted: %v, want %v", n, sent)
		}
	}

	c := newClient(t, tcp, Options{})
	t.Run("ping", func(t *testing.T) {
		if err := c.Ping(testenv.Context(t, 30*time.Second)); err != nil {
			t.Fatal(err)
		}
	})

	// How long one 10 KB message takes (spamd's CPU dominates).
	msg := cleanMessage(10 << 10)
	var took []time.Duration
	for range 5 {
		began := time.Now()
		if _, err := scan(t, c, msg); err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(began))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("10 KB message (%d bytes): median %s, fastest %s of %d scans",
		len(msg), took[len(took)/2].Round(time.Millisecond), took[0].Round(time.Millisecond), len(took))

	sd.Kill()
	t.Run("spamd killed", func(t *testing.T) {
		for what, call := range map[string]func(context.Context) error{
			"check": func(ctx context.Context) error {
				_, err := c.Scan(ctx, &scanner.Message{Body: spool.FromBytes(msg)})
				return err
			},
			"ping": c.Ping,
		} {
			err := call(testenv.Context(t, 30*time.Second))
			if kind := engines.Kind(err); kind != engines.KindConnect {
				t.Errorf("%s after spamd was killed: %v (kind %s), want kind %s", what, err, kind, engines.KindConnect)
			}
		}
	})
}

func TestNew(t *testing.T) {
	tests := []struct {
		addr string
		opt  Options
		want string // in the error; "" = accepted
	}{
		{"tcp://127.0.0.1:783", Options{}, ""},
		{"unix:///run/spamd.sock", Options{MaxConnections: 1, MaxSize: 1 << 20, Timeout: time.Second}, ""},
		{"http://127.0.0.1:783", Options{}, `scheme "http" not accepted`},
		{"127.0.0.1:783", Options{}, "want tcp://host:port"},
		{"tcp://127.0.0.1:783", Options{Timeout: -1}, "negative timeout"},
		{"tcp://127.0.0.1:783", Options{MaxConnections: -1}, "negative max connections"},
		{"tcp://127.0.0.1:783", Options{MaxSize: -1}, "negative max size"},
		{"tcp://127.0.0.1:783", Options{User: "a\r\nX-Evil: 1"}, "no line breaks"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %+v", tt.addr, tt.opt), func(t *testing.T) {
			c, err := New(tt.addr, tt.opt)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one with %q", err, tt.want)
			case tt.want == "" && c.Name() != "spamd":
				t.Errorf("name %q", c.Name())
			}
		})
	}
	c := newClient(t, "tcp://127.0.0.1:783", Options{})
	if c.timeout != DefaultTimeout || c.maxSize != DefaultMaxSize {
		t.Errorf("defaults: timeout %s, max size %d", c.timeout, c.maxSize)
	}
	var _ scanner.Engine = c
}
