package clamd

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgate/mxgate/engines"
	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/spool"
	"github.com/mxgate/mxgate/testenv"
)

// textMessage is a plain message with body as its text.
func textMessage(body string) []byte {
	return []byte("From: Alice <alice@example.com>\r\nTo: Bob <bob@example.org>\r\n" +
		"Subject: notes\r\nMessage-ID: <t1@example.com>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + body + "\r\n")
}

// attachmentMessage carries file as a base64 attachment named name.
func attachmentMessage(name string, file []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(file)
	var b64 strings.Builder
	for len(enc) > 76 {
		b64.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b64.WriteString(enc + "\r\n")
	return []byte("From: Alice <alice@example.com>\r\nTo: Bob <bob@example.org>\r\n" +
		"Subject: the file\r\nMessage-ID: <t2@example.com>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nSee the attachment.\r\n" +
		"--b1\r\nContent-Type: application/octet-stream; name=\"" + name + "\"\r\n" +
		"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"" + name + "\"\r\n\r\n" +
		b64.String() + "--b1--\r\n")
}

// zipOf is a zip archive holding file as name.
func zipOf(t testing.TB, name string, file []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	f, err := w.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(file); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// cleanMessage is a harmless text message of about size bytes.
func cleanMessage(size int) []byte {
	para := "Hi Bob, here are the notes from our meeting on Tuesday. We agreed to move " +
		"the release to next week and to review the open tickets on Friday morning.\r\n\r\n"
	return textMessage(strings.Repeat(para, max(size/len(para), 1)))
}

func newClient(t testing.TB, addr string, o Options) *Client {
	t.Helper()
	c, err := New(addr, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func scan(ctx context.Context, c *Client, msg []byte) (scanner.EngineResult, error) {
	return c.Scan(ctx, &scanner.Message{ID: "T1", Body: spool.FromBytes(msg)})
}

// What the real clamd finds, over TCP and over its unix socket: the test
// database's signatures in the body, in a base64 attachment, in a zip and
// in a zip in a zip; a clean message passes.
func TestDaemon(t *testing.T) {
	d := testenv.StartClamd(t, testenv.ClamdOptions{})
	clean10k := cleanMessage(10 << 10)
	cases := []struct {
		name string
		msg  []byte
		want string // virus name, "" = clean
	}{
		{"clean", clean10k, ""},
		{"clean attachment", attachmentMessage("notes.txt", clean10k), ""},
		{"EICAR in the body", textMessage("before\r\n" + string(d.EICAR.Sample) + "\r\nafter"), d.EICAR.Name},
		{"EICAR attached", attachmentMessage("eicar.com", d.EICAR.Sample), d.EICAR.Name},
		{"EICAR in a zip", attachmentMessage("e.zip", zipOf(t, "eicar.com", d.EICAR.Sample)), d.EICAR.Name},
		{"EICAR in a zip in a zip", attachmentMessage("ee.zip",
			zipOf(t, "inner.zip", zipOf(t, "eicar.com", d.EICAR.Sample))), d.EICAR.Name},
		{"custom in the body", textMessage("see: " + string(d.Custom.Sample) + " end"), d.Custom.Name},
		{"custom attached", attachmentMessage("c.bin", append([]byte("xx"), d.Custom.Sample...)), d.Custom.Name},
		{"custom in a zip in a zip", attachmentMessage("cc.zip",
			zipOf(t, "inner.zip", zipOf(t, "c.txt", d.Custom.Sample))), d.Custom.Name},
		{"hash attached", attachmentMessage("h.dat", d.Hash.Sample), d.Hash.Name},
		{"hash in a zip", attachmentMessage("h.zip", zipOf(t, "h.dat", d.Hash.Sample)), d.Hash.Name},
		// One byte more is another file: the .hdb signature is the whole file.
		{"hash file changed", attachmentMessage("h.dat", append(d.Hash.Sample, '.')), ""},
	}
	for _, addr := range []string{d.TCP, d.Unix} {
		reg := prometheus.NewRegistry()
		m, err := engines.NewMetrics(reg)
		if err != nil {
			t.Fatal(err)
		}
		c := newClient(t, addr, Options{Metrics: m})
		ctx := testenv.Context(t, time.Minute)
		if err := c.Ping(ctx); err != nil {
			t.Fatalf("%s: ping: %v", addr, err)
		}
		for _, tt := range cases {
			t.Run(addr[:strings.Index(addr, ":")]+"/"+tt.name, func(t *testing.T) {
				res, err := scan(ctx, c, tt.msg)
				if err != nil {
					t.Fatalf("Scan: %v", err)
				}
				if tt.want == "" {
					if len(res.Viruses) != 0 || len(res.Symbols) != 0 {
						t.Fatalf("clean message: %+v", res)
					}
					return
				}
				want := scanner.EngineResult{
					Viruses: []string{tt.want},
					Symbols: []scanner.Symbol{{Name: "CLAMD_VIRUS", Score: 10, Detail: tt.want}},
				}
				if fmt.Sprint(res) != fmt.Sprint(want) {
					t.Fatalf("Scan = %+v, want %+v", res, want)
				}
			})
		}
		if got, want := testenv.MetricValue(t, reg, "mxgate_engine_calls_total", "outcome", "ok"), float64(len(cases)+1); got != want {
			t.Errorf("%s: calls{outcome=ok} = %v, want %v (scans and the ping)", addr, got, want)
		}
		if got := testenv.MetricValue(t, reg, "mxgate_engine_duration_seconds", "engine", "clamd"); got != float64(len(cases)+1) {
			t.Errorf("%s: %v durations observed, want %d", addr, got, len(cases)+1)
		}
	}
}

// Scans at once, more than the client's connections: each gets its own
// connection and its own verdict.
func TestDaemonConcurrent(t *testing.T) {
	d := testenv.StartClamd(t, testenv.ClamdOptions{})
	reg := prometheus.NewRegistry()
	m, err := engines.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, d.TCP, Options{MaxConnections: 4, Metrics: m})
	ctx := testenv.Context(t, 2*time.Minute)
	infected := attachmentMessage("e.zip", zipOf(t, "eicar.com", d.EICAR.Sample))
	clean := cleanMessage(300 << 10) // over one chunk
	const n = 16
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		peak     int
		failures []string
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg, want := clean, ""
			if i%2 == 0 {
				msg, want = infected, d.EICAR.Name
			}
			for range 4 {
				res, err := scan(ctx, c, msg)
				mu.Lock()
				peak = max(peak, c.limiter.InFlight())
				if got := strings.Join(res.Viruses, ","); err != nil || got != want {
					failures = append(failures, fmt.Sprintf("scan %d: %q, %v; want %q", i, got, err, want))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Strings(failures)
	for _, f := range failures {
		t.Error(f)
	}
	if peak > 4 {
		t.Errorf("%d calls in flight, over MaxConnections 4", peak)
	}
	if got := testenv.MetricValue(t, reg, "mxgate_engine_calls_total", "outcome", "ok"); got != 4*n {
		t.Errorf("calls{outcome=ok} = %v, want %d", got, 4*n)
	}
}

// A message over clamd's StreamMaxLength is ErrTooLarge, never clean:
// refused by the client when over its own StreamMax, without a
// connection, and by clamd (which cuts the stream) when the client's is
// larger.
func TestDaemonTooLarge(t *testing.T) {
	const limit = 1 << 20
	d := testenv.StartClamd(t, testenv.ClamdOptions{StreamMaxLength: limit})
	ctx := testenv.Context(t, time.Minute)
	for _, tt := range []struct {
		name      string
		streamMax int64
		size      int
		wantErr   error // nil: clean
	}{
		{"under both limits", 8 << 20, limit - 64<<10, nil},
		{"just over clamd's", 8 << 20, limit + 1000, engines.ErrTooLarge},
		// Past what the sockets buffer: clamd closes while the client
		// writes, and the reply is read after the failed write.
		{"well over clamd's", 8 << 20, 6 << 20, engines.ErrTooLarge},
		{"over the client's", limit, limit + 1000, engines.ErrTooLarge},
	} {
		for _, addr := range []string{d.TCP, d.Unix} {
			t.Run(addr[:strings.Index(addr, ":")]+"/"+tt.name, func(t *testing.T) {
				reg := prometheus.NewRegistry()
				m, err := engines.NewMetrics(reg)
				if err != nil {
					t.Fatal(err)
				}
				c := newClient(t, addr, Options{StreamMax: tt.streamMax, Metrics: m})
				msg := cleanMessage(tt.size)
				res, err := scan(ctx, c, msg)
				if tt.wantErr == nil {
					if err != nil || len(res.Viruses) != 0 {
						t.Fatalf("%d bytes: %+v, %v; want clean", len(msg), res, err)
					}
					return
				}
				if !errors.Is(err, tt.wantErr) || len(res.Viruses) != 0 {
					t.Fatalf("%d bytes: %+v, %v; want %v", len(msg), res, err, tt.wantErr)
				}
				if got := testenv.MetricValue(t, reg, "mxgate_engine_errors_total", "kind", engines.KindTooLarge); got != 1 {
					t.Errorf("errors{kind=too_large} = %v, want 1", got)
				}
			})
		}
	}
}

// clamd down: every scan and ping is an error of kind connect, over TCP
// and over the unix socket it left behind; never clean.
func TestDaemonDown(t *testing.T) {
	d := testenv.StartClamd(t, testenv.ClamdOptions{})
	ctx := testenv.Context(t, time.Minute)
	tcp := newClient(t, d.TCP, Options{Timeout: 5 * time.Second})
	unix := newClient(t, d.Unix, Options{Timeout: 5 * time.Second})
	for _, c := range []*Client{tcp, unix} {
		if _, err := scan(ctx, c, cleanMessage(1000)); err != nil {
			t.Fatalf("%s before the kill: %v", c.addr, err)
		}
	}
	d.Kill()
	for _, c := range []*Client{tcp, unix} {
		res, err := scan(ctx, c, cleanMessage(1000))
		if err == nil || engines.Kind(err) != engines.KindConnect || len(res.Viruses)+len(res.Symbols) != 0 {
			t.Errorf("%s scan with clamd killed = %+v, %v; want an error of kind connect", c.addr, res, err)
		}
		if err := c.Ping(ctx); engines.Kind(err) != engines.KindConnect {
			t.Errorf("%s ping with clamd killed = %v; want an error of kind connect", c.addr, err)
		}
	}
}

// BenchmarkScan10KB: one clean 10 KB message at a time against the real
// clamd, over TCP and the unix socket.
func BenchmarkScan10KB(b *testing.B) {
	d := testenv.StartClamd(b, testenv.ClamdOptions{})
	msg := cleanMessage(10 << 10)
	for _, addr := range []string{d.TCP, d.Unix} {
		b.Run(addr[:strings.Index(addr, ":")], func(b *testing.B) {
			c := newClient(b, addr, Options{})
			ctx := context.Background()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if res, err := scan(ctx, c, msg); err != nil || len(res.Viruses) != 0 {
					b.Fatalf("%+v, %v", res, err)
				}
			}
		})
	}
}
