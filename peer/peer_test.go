package peer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/spool"
	"github.com/mxgate/mxgate/testenv"
)

const (
	secret    = "lab-secret"
	gtubeText = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
	eicarText = `X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`
	// childAddrEnv makes the test binary a peer server child (see
	// TestMain) that a test kills with SIGKILL mid-scan.
	childAddrEnv = "MXGATE_PEER_TEST_CHILD_ADDR"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(childAddrEnv); addr != "" {
		os.Exit(runChild(addr))
	}
	os.Exit(m.Run())
}

// runChild serves the peer API on addr with a worker that announces each
// scan on stdout and then holds it until the caller goes away.
func runChild(addr string) int {
	w := &blockingWorker{started: make(chan struct{}, 16)}
	go func() {
		for range w.started {
			fmt.Println("scanning")
		}
	}()
	srv, err := NewServer(ServerOptions{NodeID: "child", Secret: secret, Worker: w})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := srv.Run(context.Background(), addr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

func textMsg(body string) string {
	return crlf("From: Alice <alice@example.com>\nTo: bob@example.org\nSubject: Quarterly report\n" +
		"Date: Mon, 2 Jun 2025 10:00:00 +0000\nMessage-ID: <1@example.com>\nMIME-Version: 1.0\n" +
		"Content-Type: text/plain; charset=utf-8\n\n" + body + "\n")
}

func newMessage(id, raw string) *scanner.Message {
	return &scanner.Message{
		ID: id,
		Env: scanner.Envelope{
			ClientIP: netip.MustParseAddr("192.0.2.7"), Helo: "mail.example.com",
			Sender: "alice@example.com", Recipients: []string{"bob@example.org", "carol@example.org"},
		},
		Body: spool.FromBytes([]byte(raw)),
	}
}

func newPool(t *testing.T, node string) *scanner.Pool {
	t.Helper()
	o := scanner.DefaultOptions()
	o.NodeID = node
	o.Logger = slog.New(slog.DiscardHandler)
	p, err := scanner.NewPool(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// countingWorker counts the scans that reach the scanner.
type countingWorker struct {
	next  scanner.Worker
	calls atomic.Int64
}

func (w *countingWorker) Scan(ctx context.Context, m *scanner.Message) (scanner.Verdict, error) {
	w.calls.Add(1)
	return w.next.Scan(ctx, m)
}

// blockingWorker holds every scan until release is closed (then scans on
// next) or the scan's context ends, and tells started when a scan begins.
type blockingWorker struct {
	next    scanner.Worker
	started chan struct{}
	release chan struct{}
}

func (w *blockingWorker) Scan(ctx context.Context, m *scanner.Message) (scanner.Verdict, error) {
	w.started <- struct{}{}
	select {
	case <-w.release:
		return w.next.Scan(ctx, m)
	case <-ctx.Done():
		return scanner.Verdict{}, ctx.Err()
	}
}

type peerServer struct {
	srv  *Server
	addr string
	reg  *prometheus.Registry
}

// startServer serves o on a loopback port until the test ends.
func startServer(t *testing.T, o ServerOptions) *peerServer {
	t.Helper()
	reg := prometheus.NewRegistry()
	if o.Secret == "" {
		o.Secret = secret
	}
	if o.NodeID == "" {
		o.NodeID = "n2"
	}
	o.Registerer = reg
	srv, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	return &peerServer{srv: srv, addr: testenv.Serve(t, srv.Serve), reg: reg}
}

// count is mxgate_peer_requests_total{result}.
func (p *peerServer) count(t *testing.T, result string) float64 {
	t.Helper()
	return testenv.MetricValue(t, p.reg, "mxgate_peer_requests_total", "result", result)
}

func (p *peerServer) counts(t *testing.T) map[string]float64 {
	out := make(map[string]float64)
	for _, r := range allResults {
		if n := p.count(t, r); n != 0 {
			out[r] = n
		}
	}
	return out
}

func ctxT(t *testing.T) context.Context { return testenv.Context(t, 30*time.Second) }

// spilled builds a body that spool keeps in a file, as smtpfront does for
// large messages.
func spilled(t *testing.T, raw string) *spool.Buffer {
	t.Helper()
	w := spool.NewWriter(t.TempDir(), 1024)
	if _, err := io.WriteString(w, raw); err != nil {
		t.Fatal(err)
	}
	b := w.Finish()
	t.Cleanup(func() { b.Close() })
	return b
}

func TestRemoteVerdictMatchesLocal(t *testing.T) {
	local := newPool(t, "n1")
	ps := startServer(t, ServerOptions{Worker: newPool(t, "n2"), SpoolDir: t.TempDir()})
	c := NewClient("n1", "n2", ps.addr, secret)
	defer c.Close()

	big := textMsg(strings.Repeat("Quarterly numbers, nothing to see here.\n", 60000) + gtubeText) // ~2.4 MB: spooled to disk on the server
	tests := []struct {
		name   string
		msg    *scanner.Message
		action scanner.Action
	}{
		{"clean", newMessage("q1", textMsg("Hello Bob, see you Monday.")), scanner.ActionDeliver},
		{"gtube", newMessage("q2", textMsg(gtubeText)), scanner.ActionQuarantine},
		{"eicar", newMessage("q3", textMsg(eicarText)), scanner.ActionQuarantine},
		{"allowlisted gtube", func() *scanner.Message {
			m := newMessage("q4", textMsg(gtubeText))
			m.Allowlisted = true
			return m
		}(), ""},
		{"spilled body", func() *scanner.Message {
			m := newMessage("q5", "")
			m.Body = spilled(t, big)
			return m
		}(), scanner.ActionQuarantine},
		{"over a scan limit: unscannable", newMessage("q7", overLimitMsg()), scanner.ActionQuarantine},
		{"allowlisted with a banned attachment", func() *scanner.Message {
			m := newMessage("q8", exeMsg())
			m.Allowlisted = true
			return m
		}(), scanner.ActionQuarantine},
		{"allowlisted by an entry that skips attachments", func() *scanner.Message {
			m := newMessage("q9", exeMsg())
			m.Allowlisted, m.SkipAttachments = true, true
			return m
		}(), scanner.ActionDeliver},
		{"no client ip, null sender, utf8", func() *scanner.Message {
			m := newMessage("q6", textMsg(gtubeText))
			m.Env = scanner.Envelope{Helo: "[192.0.2.1]", Sender: "", Recipients: []string{"jörg@bücher.example"}}
			return m
		}(), scanner.ActionQuarantine},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, err := local.Scan(ctxT(t), tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Scan(ctxT(t), tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			if tc.action != "" && got.Action != tc.action {
				t.Errorf("action %s, want %s (%+v)", got.Action, tc.action, got)
			}
			if got.Node != "n2" {
				t.Errorf("node %q, want the scanning node n2", got.Node)
			}
			want.Node = "n2"
			if !reflect.DeepEqual(got, want) {
				t.Errorf("remote verdict differs from local:\nremote %+v\nlocal  %+v", got, want)
			}
		})
	}
	if n := ps.count(t, resultOK); n != float64(len(tests)) {
		t.Errorf("ok = %v, want %d", n, len(tests))
	}
}

// recorder keeps a copy of every request the client sends.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	header http.Header
	body   []byte
}

// CloseIdleConnections passes the client's Close on: without it every
// recording client would leave its connection open, and a test that
// records many would run into the server's per-source limit.
func (r *recorder) CloseIdleConnections() {
	if c, ok := r.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, recorded{req.Header.Clone(), body})
	r.mu.Unlock()
	req = req.Clone(req.Context())
	req.Body = io.NopCloser(bytes.NewReader(body))
	return r.next.RoundTrip(req)
}

// send posts body with header to the server as any HTTP client could.
func send(t *testing.T, addr string, header http.Header, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, "http://"+addr+Path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func TestReplayRefused(t *testing.T) {
	w := &countingWorker{next: newPool(t, "n2")}
	ps := startServer(t, ServerOptions{Worker: w})
	c := NewClient("n1", "n2", ps.addr, secret)
	rec := &recorder{next: c.hc.Transport}
	c.hc.Transport = rec

	if _, err := c.Scan(ctxT(t), newMessage("q1", textMsg(gtubeText))); err != nil {
		t.Fatal(err)
	}
	captured := rec.reqs[0]
	for i := range 3 {
		code, text := send(t, ps.addr, captured.header.Clone(), captured.body)
		if code != http.StatusUnauthorized || text != "replayed" {
			t.Fatalf("replay %d: %d %q, want 401 replayed", i, code, text)
		}
	}
	if n := w.calls.Load(); n != 1 {
		t.Errorf("scanner called %d times, want 1", n)
	}
	if got, want := ps.counts(t), map[string]float64{resultOK: 1, resultReplayed: 3}; !reflect.DeepEqual(got, want) {
		t.Errorf("counts %v, want %v", got, want)
	}
}

// wireBody is the body newRequest built: envelope frame and message.
func wireBody(t *testing.T, req *http.Request) []byte {
	t.Helper()
	b, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRefusals(t *testing.T) {
	msg := newMessage("q1", textMsg(gtubeText))
	body, _ := msg.Body.Bytes()
	tests := []struct {
		name   string
		client func(c *Client)                // adjusts the signing client
		tamper func(h http.Header, b *[]byte) // adjusts the signed request
		code   int
		text   string
		result string
	}{
		{name: "tampered body", tamper: func(_ http.Header, b *[]byte) { *b = bytes.Replace(*b, []byte("GTUBE"), []byte("GTUBF"), 1) },
			code: 401, text: "unauthenticated", result: resultUnauthenticated},
		{name: "truncated body", tamper: func(_ http.Header, b *[]byte) { *b = (*b)[:len(*b)-10] },
			code: 401, text: "unauthenticated", result: resultUnauthenticated},
		{name: "tampered envelope", tamper: func(_ http.Header, b *[]byte) {
			// Same length, so only the signed hash can tell.
			*b = bytes.Replace(*b, []byte(`"allowlisted":false}`), []byte(`"allowlisted":true }`), 1)
		}, code: 401, text: "unauthenticated", result: resultUnauthenticated},
		{name: "envelope and message shifted", tamper: func(_ http.Header, b *[]byte) {
			(*b)[3]++ // the envelope swallows the message's first byte
		}, code: 401, text: "unauthenticated", result: resultUnauthenticated},
		{name: "tampered body hash", tamper: func(h http.Header, _ *[]byte) {
			h.Set(HeaderBodySHA, strings.Repeat("0", 64))
		}, code: 401, text: "unauthenticated", result: resultUnauthenticated},
		{name: "tampered envelope hash", tamper: func(h http.Header, _ *[]byte) {
			h.Set(HeaderEnvelopeSHA, strings.Repeat("0", 64))
		}, code: 401, text: "unauthenticated", result: resultUnauthenticated},
		{name: "tampered target", tamper: func(h http.Header, _ *[]byte) { h.Set(HeaderTarget, "n3") },
			code: 401, text: "unauthenticated", result: resultUnauthenticated},
		{name: "tampered caller", tamper: func(h http.Header, _ *[]byte) { h.Set(HeaderNode, "n9") },
			code: 401, text: "unauthenticated", result: resultUnauthenticated},
		{name: "signed for another node", client: func(c *Client) { c.target = "n3" },
			code: 421, text: "misdirected: signed for another node", result: resultMisdirected},
		{name: "upper-case hex", tamper: func(h http.Header, _ *[]byte) {
			h.Set(HeaderNonce, strings.ToUpper(h.Get(HeaderNonce)))
		}, code: 401, text: "unauthenticated", result: resultUnauthenticated},
		{name: "tampered signature", tamper: func(h http.Header, _ *[]byte) {
			s := []byte(h.Get(HeaderSignature))
			s[0] ^= 1
			h.Set(HeaderSignature, string(s))
		}, code: 401, text: "unauthenticated", result: resultUnauthenticated},
		{name: "tampered date", tamper: func(h http.Header, _ *[]byte) {
			h.Set(HeaderDate, fmt.Sprint(time.Now().UnixMilli()+1))
		}, code: 401, text: "unauthenticated", result: resultUnauthenticated},
		{name: "tampered nonce", tamper: func(h http.Header, _ *[]byte) {
			h.Set(HeaderNonce, strings.Repeat("ab", nonceLen))
		}, code: 401, text: "unauthenticated", result: resultUnauthenticated},
		{name: "no signature", tamper: func(h http.Header, _ *[]byte) { h.Del(HeaderSignature) },
			code: 401, text: "unauthenticated", result: resultUnauthenticated},
		{name: "no headers", tamper: func(h http.Header, _ *[]byte) { clear(h) },
			code: 401, text: "unauthenticated", result: resultUnauthenticated},
		{name: "wrong secret", client: func(c *Client) { c.secret = []byte("other-secret") },
			code: 401, text: "unauthenticated", result: resultUnauthenticated},
		{name: "stale date", client: func(c *Client) { c.now = func() time.Time { return time.Now().Add(-31 * time.Second) } },
			code: 401, text: "stale", result: resultStale},
		{name: "future date", client: func(c *Client) { c.now = func() time.Time { return time.Now().Add(31 * time.Second) } },
			code: 401, text: "stale", result: resultStale},
		{name: "too large", client: func(c *Client) {}, tamper: nil, code: 413, text: "too large", result: resultTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := &countingWorker{next: newPool(t, "n2")}
			o := ServerOptions{Worker: w}
			if tc.result == resultTooLarge {
				o.MaxBytes = int64(len(body) - 1)
			}
			ps := startServer(t, o)
			c := NewClient("n1", "n2", ps.addr, secret)
			if tc.client != nil {
				tc.client(c)
			}
			req, _, err := c.newRequest(ctxT(t), msg)
			if err != nil {
				t.Fatal(err)
			}
			b := wireBody(t, req)
			if tc.tamper != nil {
				tc.tamper(req.Header, &b)
			}
			code, text := send(t, ps.addr, req.Header, b)
			if code != tc.code || text != tc.text {
				t.Errorf("got %d %q, want %d %q", code, text, tc.code, tc.text)
			}
			if n := w.calls.Load(); n != 0 {
				t.Errorf("refused request reached the scanner (%d calls)", n)
			}
			if got, want := ps.counts(t), map[string]float64{tc.result: 1}; !reflect.DeepEqual(got, want) {
				t.Errorf("counts %v, want %v", got, want)
			}
			// The client itself reports the refusal as an error.
			if tc.tamper == nil {
				if _, err := c.Scan(ctxT(t), msg); err == nil || !strings.Contains(err.Error(), fmt.Sprint(tc.code)) {
					t.Errorf("client error %v, want one naming %d", err, tc.code)
				}
			}
		})
	}
}

func TestBadEnvelopeSigned(t *testing.T) {
	// An authentic request with an envelope the decoder refuses (a peer's
	// bug) is a 400, not a scan.
	w := &countingWorker{next: newPool(t, "n2")}
	ps := startServer(t, ServerOptions{Worker: w})
	c := NewClient("n1", "n2", ps.addr, secret)
	msg := newMessage("q1", textMsg("hi"))
	req, _, err := c.newRequest(ctxT(t), msg)
	if err != nil {
		t.Fatal(err)
	}
	env := []byte("not json")
	a := authFromHeader(req.Header)
	sum := sha256.Sum256(env)
	a.envelopeSHA = hex.EncodeToString(sum[:])
	a.set(req.Header, []byte(secret))
	raw, _ := msg.Body.Bytes()
	body := append(append(envelopePrefix(env), env...), raw...)
	if code, text := send(t, ps.addr, req.Header, body); code != 400 || text != "bad envelope" {
		t.Errorf("got %d %q, want 400 bad envelope", code, text)
	}
	if w.calls.Load() != 0 || ps.count(t, resultBadRequest) != 1 {
		t.Errorf("calls %d, counts %v", w.calls.Load(), ps.counts(t))
	}
}

// TestLargeBodyRefusals: refusals that come before the body is read, or
// in the middle of it, with bodies larger than what the server drains.
func TestLargeBodyRefusals(t *testing.T) {
	big := textMsg(strings.Repeat("Quarterly numbers, nothing to see here.\n", 200000)) // ~8 MB
	t.Run("wrong secret", func(t *testing.T) {
		w := &countingWorker{next: newPool(t, "n2")}
		ps := startServer(t, ServerOptions{Worker: w})
		_, err := NewClient("n1", "n2", ps.addr, "other-secret").Scan(ctxT(t), newMessage("q1", big))
		if err == nil {
			t.Fatal("scan with the wrong secret succeeded")
		}
		// Either the 401 or a write error: the server does not read 8 MB
		// it will not scan.
		t.Logf("client error: %v", err)
		if w.calls.Load() != 0 || ps.count(t, resultUnauthenticated) != 1 {
			t.Errorf("calls %d, counts %v", w.calls.Load(), ps.counts(t))
		}
	})
	t.Run("chunked over the limit", func(t *testing.T) {
		w := &countingWorker{next: newPool(t, "n2")}
		ps := startServer(t, ServerOptions{Worker: w, MaxBytes: 1 << 20, SpoolDir: t.TempDir()})
		c := NewClient("n1", "n2", ps.addr, secret)
		m := newMessage("q1", big)
		req, _, err := c.newRequest(ctxT(t), m)
		if err != nil {
			t.Fatal(err)
		}
		// No Content-Length: only counting the bytes finds the excess.
		req.ContentLength, req.GetBody = -1, nil
		req.Body = io.NopCloser(io.MultiReader(req.Body))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("status %s, want 413", resp.Status)
			}
			resp.Body.Close()
		}
		if w.calls.Load() != 0 || ps.count(t, resultTooLarge) != 1 {
			t.Errorf("calls %d, counts %v", w.calls.Load(), ps.counts(t))
		}
	})
}

// overloadedWorker refuses every scan, for tests that need a Worker but
// no scans.
type overloadedWorker struct{}

func (overloadedWorker) Scan(_ context.Context, m *scanner.Message) (scanner.Verdict, error) {
	return scanner.Verdict{}, fmt.Errorf("scan %s: %w", m.ID, scanner.ErrOverloaded)
}

// slowPool is a real pool whose scans take the longest the scanner allows
// (the bound of its simulated delay, a minute) unless cancelled.
func slowPool(t *testing.T, workers, queue int) *scanner.Pool {
	t.Helper()
	o := scanner.DefaultOptions()
	o.NodeID, o.Workers, o.Queue = "n2", workers, queue
	o.SimulatedDelay.Duration, o.Timeout.Duration = scanner.MaxSimulatedDelay, scanner.MaxTimeout
	o.Logger = slog.New(slog.DiscardHandler)
	p, err := scanner.NewPool(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// waitBusy waits until pool runs n scans.
func waitBusy(t *testing.T, p *scanner.Pool, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		busy, _ := p.Stats()
		if busy == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool runs %d scans, want %d", busy, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOverloaded(t *testing.T) {
	t.Run("scanner", func(t *testing.T) {
		pool := slowPool(t, 1, 0)
		ps := startServer(t, ServerOptions{Worker: pool})
		c := NewClient("n1", "n2", ps.addr, secret)
		ctx, cancel := context.WithCancel(t.Context())
		held := make(chan error, 1)
		go func() {
			_, err := c.Scan(ctx, newMessage("q1", textMsg("hi")))
			held <- err
		}()
		waitBusy(t, pool, 1) // the only slot is taken, no queue
		_, err := c.Scan(ctxT(t), newMessage("q2", textMsg("hi")))
		if !errors.Is(err, scanner.ErrOverloaded) {
			t.Fatalf("err %v, want ErrOverloaded", err)
		}
		if n := ps.count(t, resultOverloaded); n != 1 {
			t.Errorf("overloaded = %v", n)
		}
		cancel()
		<-held
	})
	t.Run("replay cache full", func(t *testing.T) {
		w := &countingWorker{next: newPool(t, "n2")}
		ps := startServer(t, ServerOptions{Worker: w, maxNonces: 2})
		c := NewClient("n1", "n2", ps.addr, secret)
		for i := range 2 {
			if _, err := c.Scan(ctxT(t), newMessage(fmt.Sprint("q", i), textMsg("hi"))); err != nil {
				t.Fatal(err)
			}
		}
		_, err := c.Scan(ctxT(t), newMessage("q3", textMsg("hi")))
		if !errors.Is(err, scanner.ErrOverloaded) {
			t.Fatalf("err %v, want ErrOverloaded", err)
		}
		if w.calls.Load() != 2 {
			t.Errorf("scanner called %d times, want 2", w.calls.Load())
		}
	})
}

func TestClientCancelStopsServerScan(t *testing.T) {
	pool := slowPool(t, 1, 0)
	ps := startServer(t, ServerOptions{Worker: pool})
	c := NewClient("n1", "n2", ps.addr, secret)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Scan(ctx, newMessage("q1", textMsg("hi")))
		errc <- err
	}()
	waitBusy(t, pool, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("client err %v, want context.Canceled", err)
	}
	// The hour-long scan on the server ends with the connection.
	waitBusy(t, pool, 0)
	deadline := time.Now().Add(5 * time.Second)
	for ps.count(t, resultCanceled) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("counts %v, want canceled 1", ps.counts(t))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServerKilledMidScan(t *testing.T) {
	addr := testenv.FreeAddr(t)
	t.Setenv(childAddrEnv, addr)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := testenv.Start(t, exe)
	testenv.WaitPort(t, addr, 10*time.Second)

	c := NewClient("n1", "child", addr, secret)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Scan(ctxT(t), newMessage("q1", textMsg("hi")))
		errc <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(child.Text(), "scanning") {
		if time.Now().After(deadline) {
			t.Fatalf("child never started the scan; output:\n%s", child.Text())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := child.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("scan on a killed peer returned no error")
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			t.Fatalf("client waited for its context instead of noticing the kill: %v", err)
		}
		t.Logf("client error: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("client did not notice the peer was killed")
	}
	// The peer is gone: the next scan fails at once (connection refused).
	if _, err := c.Scan(ctxT(t), newMessage("q2", textMsg("hi"))); err == nil {
		t.Error("scan on a dead peer returned no error")
	}
}

func TestRunGracefulShutdown(t *testing.T) {
	w := &blockingWorker{next: newPool(t, "n2"), started: make(chan struct{}, 1), release: make(chan struct{})}
	srv, err := NewServer(ServerOptions{NodeID: "n2", Secret: secret, Worker: w})
	if err != nil {
		t.Fatal(err)
	}
	addr := testenv.FreeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- srv.Run(ctx, addr) }()
	testenv.WaitPort(t, addr, 10*time.Second)

	c := NewClient("n1", "n2", addr, secret)
	type result struct {
		v   scanner.Verdict
		err error
	}
	res := make(chan result, 1)
	go func() {
		v, err := c.Scan(ctxT(t), newMessage("q1", textMsg(gtubeText)))
		res <- result{v, err}
	}()
	<-w.started
	cancel() // node stops while a scan runs
	select {
	case err := <-ran:
		t.Fatalf("Run returned before the running scan finished: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(w.release)
	r := <-res
	if r.err != nil || r.v.Action != scanner.ActionQuarantine {
		t.Fatalf("scan during shutdown: %+v, %v", r.v, r.err)
	}
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("still listening after Run returned")
	}
}

func TestRunListenErrors(t *testing.T) {
	srv, err := NewServer(ServerOptions{NodeID: "n2", Secret: secret, Worker: overloadedWorker{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Run(t.Context(), ""); err == nil {
		t.Error("Run with no address succeeded")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := srv.Run(t.Context(), ln.Addr().String()); err == nil || !strings.Contains(err.Error(), "peer listen") {
		t.Errorf("Run on a taken port: %v", err)
	}
}

func TestNewServerErrors(t *testing.T) {
	reg := prometheus.NewRegistry()
	tests := []struct {
		name string
		o    ServerOptions
		want string
	}{
		{"no secret", ServerOptions{NodeID: "n2", Worker: overloadedWorker{}}, "no secret"},
		{"no node id", ServerOptions{Secret: "s", Worker: overloadedWorker{}}, "node id"},
		{"node id too long", ServerOptions{NodeID: strings.Repeat("n", 65), Secret: "s", Worker: overloadedWorker{}}, "node id"},
		{"no worker", ServerOptions{NodeID: "n2", Secret: "s"}, "no scanner"},
		{"negative max", ServerOptions{NodeID: "n2", Secret: "s", Worker: overloadedWorker{}, MaxBytes: -1}, "negative"},
		{"negative connections", ServerOptions{NodeID: "n2", Secret: "s", Worker: overloadedWorker{}, MaxConnections: -1}, "max connections -1"},
		{"connections over the bound", ServerOptions{NodeID: "n2", Secret: "s", Worker: overloadedWorker{}, MaxConnections: 65537}, "max connections 65537"},
		{"per IP over total", ServerOptions{NodeID: "n2", Secret: "s", Worker: overloadedWorker{}, MaxConnections: 10, MaxConnectionsPerIP: 11}, "per IP 11"},
		{"registered twice", ServerOptions{NodeID: "n2", Secret: "s", Worker: overloadedWorker{}, Registerer: reg}, "register peer metrics"},
	}
	if _, err := NewServer(ServerOptions{NodeID: "n2", Secret: "s", Worker: overloadedWorker{}, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewServer(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
}

// TestClientChecksVerdict: whatever answers on a peer's address must hold
// the secret to have a verdict accepted.
func TestClientChecksVerdict(t *testing.T) {
	good := `{"action":"deliver","class":"clean","score":0,"symbols":[],"viruses":[],"reason":"","node":"n2"}`
	tests := []struct {
		name string
		body string
		sign func(nonce string, body []byte) string
		want string
	}{
		{"unsigned", good, func(string, []byte) string { return "" }, "signature invalid"},
		{"wrong secret", good, func(n string, b []byte) string { return fmt.Sprintf("%x", verdictMAC([]byte("x"), n, b)) }, "signature invalid"},
		{"other request's nonce", good, func(_ string, b []byte) string {
			return fmt.Sprintf("%x", verdictMAC([]byte(secret), strings.Repeat("00", nonceLen), b))
		}, "signature invalid"},
		{"unknown action", strings.Replace(good, "deliver", "bounce", 1), nil, "unknown action"},
		{"not json", "deliver", nil, "decode verdict"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				nonce := r.Header.Get(HeaderNonce)
				sig := fmt.Sprintf("%x", verdictMAC([]byte(secret), nonce, []byte(tc.body)))
				if tc.sign != nil {
					sig = tc.sign(nonce, []byte(tc.body))
				}
				w.Header().Set(HeaderSignature, sig)
				io.WriteString(w, tc.body)
			})}
			go hs.Serve(ln)
			defer hs.Close()
			_, err = NewClient("n1", "n2", ln.Addr().String(), secret).Scan(ctxT(t), newMessage("q1", textMsg("hi")))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestClientNoBody(t *testing.T) {
	c := NewClient("n1", "n2", "127.0.0.1:1", secret)
	if _, err := c.Scan(t.Context(), &scanner.Message{ID: "q1"}); err == nil {
		t.Error("scan without a body succeeded")
	}
	bad := newMessage("q\r\n1", "x")
	if _, err := c.Scan(t.Context(), bad); err == nil || !strings.Contains(err.Error(), "control character") {
		t.Errorf("envelope with CRLF in the id: %v", err)
	}
}

// TestConcurrentScans runs many scans over kept-alive connections at once
// (-race finds shared state).
func TestConcurrentScans(t *testing.T) {
	// Room for all 200 at once: this test is about concurrent requests
	// each getting its own verdict, not about overload (TestOverloaded).
	o := scanner.DefaultOptions()
	o.NodeID, o.Queue, o.Logger = "n2", 256, slog.New(slog.DiscardHandler)
	pool, err := scanner.NewPool(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ps := startServer(t, ServerOptions{Worker: pool, MaxConnectionsPerIP: 256})
	c := NewClient("n1", "n2", ps.addr, secret)
	// Connections dialled in the rush but never used would hold up the
	// server's graceful shutdown for 5 s (net/http's rule for new ones).
	t.Cleanup(c.Close)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			body := textMsg("hello")
			want := scanner.ActionDeliver
			if i%3 == 0 {
				body, want = textMsg(gtubeText), scanner.ActionQuarantine
			}
			v, err := c.Scan(ctxT(t), newMessage(fmt.Sprint("q", i), body))
			if err == nil && v.Action != want {
				err = fmt.Errorf("q%d: action %s, want %s", i, v.Action, want)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := ps.count(t, resultOK); n != 200 {
		t.Errorf("ok = %v", n)
	}
}

func TestNonceCache(t *testing.T) {
	t0 := time.Now()
	nonce := func(i int) (n [nonceLen]byte) {
		n[0], n[1], n[2] = byte(i), byte(i>>8), byte(i>>16)
		return n
	}
	c := newNonceCache(time.Minute, 100)
	if ok, err := c.add(nonce(1), t0); !ok || err != nil {
		t.Fatalf("first add: %v %v", ok, err)
	}
	if ok, err := c.add(nonce(1), t0.Add(59*time.Second)); ok || err != nil {
		t.Fatalf("replay within ttl accepted: %v %v", ok, err)
	}
	// Expired: a request with this nonce would be stale by now anyway.
	if ok, err := c.add(nonce(1), t0.Add(61*time.Second)); !ok || err != nil {
		t.Fatalf("add after ttl: %v %v", ok, err)
	}

	// Full: refuse, never forget early.
	c = newNonceCache(time.Minute, 100)
	for i := range 100 {
		if ok, err := c.add(nonce(i), t0.Add(time.Duration(i)*time.Millisecond)); !ok || err != nil {
			t.Fatalf("add %d: %v %v", i, ok, err)
		}
	}
	if _, err := c.add(nonce(100), t0.Add(time.Second)); !errors.Is(err, errNonceCacheFull) {
		t.Fatalf("add to a full cache: %v", err)
	}
	if ok, _ := c.add(nonce(5), t0.Add(time.Second)); ok {
		t.Fatal("a full cache forgot a live nonce")
	}
	if ok, err := c.add(nonce(100), t0.Add(time.Minute+time.Millisecond)); !ok || err != nil {
		t.Fatalf("add once the oldest expired: %v %v", ok, err)
	}

	// Steady load: memory stays bounded by the live entries.
	c = newNonceCache(time.Second, 1000)
	for i := range 100000 {
		if ok, err := c.add(nonce(i), t0.Add(time.Duration(i)*10*time.Millisecond)); !ok || err != nil {
			t.Fatalf("add %d: %v %v", i, ok, err)
		}
	}
	if n := c.len(); n > 101 {
		t.Errorf("%d live nonces, want <= 101", n)
	}
	if n := cap(c.fifo); n > 1000 {
		t.Errorf("fifo capacity %d grew with the total, not the live entries", n)
	}
}

// overLimitMsg has more MIME parts than the scanner walks.
func overLimitMsg() string {
	var b strings.Builder
	b.WriteString("Subject: parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n")
	for range 501 {
		b.WriteString("--b\r\nContent-Type: text/plain\r\n\r\n\r\n")
	}
	b.WriteString("--b--\r\n")
	return b.String()
}

// exeMsg carries invoice.pdf.exe.
func exeMsg() string {
	return "Subject: invoice\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"invoice.pdf.exe\"\r\n\r\nMZ\r\n--b--\r\n"
}

func TestEnvelopeRoundTrip(t *testing.T) {
	tests := []*scanner.Message{
		newMessage("q1", ""),
		{ID: "q2", Env: scanner.Envelope{ClientIP: netip.MustParseAddr("2001:db8::1"), Recipients: []string{"a@b"}}, Allowlisted: true},
		{ID: "q2s", Allowlisted: true, SkipAttachments: true},
		{ID: "q2d", Symbols: []scanner.Symbol{{Name: "DNSBL_BL_TEST", Score: 3, Detail: "client listed in bl.test (127.0.0.2)"}}},
		{ID: "q3"},
		{ID: ""},
		{ID: "q4", Env: scanner.Envelope{Sender: "jörg@bücher.example", Recipients: []string{"ünï@例え.jp"}}},
	}
	for _, m := range tests {
		env, err := encodeEnvelope(m)
		if err != nil {
			t.Fatal(err)
		}
		framed, err := readEnvelope(bytes.NewReader(append(envelopePrefix(env), env...)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeEnvelope(framed)
		if err != nil {
			t.Fatal(err)
		}
		want := *m
		want.Body = nil
		if want.Env.Recipients == nil {
			want.Env.Recipients = []string{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip:\ngot  %+v\nwant %+v", got, want)
		}
	}
	for _, bad := range []string{"", "!!", "[]", `{"id":"q1"} 1`, `{"id":"q1\u0000"}`, `{"id":"q1"`,
		`{"envelope":{"recipients":[""]}}`, `{"envelope":{"client_ip":"1.2.3"}}`, "\xff",
		`{"symbols":[{"name":"X\n","score":1}]}`, `{"symbols":[{"name":"X","score":1e9}]}`} {
		if _, err := decodeEnvelope([]byte(bad)); err == nil {
			t.Errorf("decodeEnvelope(%q) accepted", bad)
		}
	}
	// The frame: a length within 1..maxEnvelopeBytes and that many bytes.
	frames := []struct {
		name  string
		frame []byte
	}{
		{"empty", nil},
		{"short length", []byte{0, 0, 1}},
		{"zero length", []byte{0, 0, 0, 0, '{', '}'}},
		{"over the limit", binary.BigEndian.AppendUint32(nil, maxEnvelopeBytes+1)},
		{"huge", []byte{0xff, 0xff, 0xff, 0xff}},
		{"truncated", append([]byte{0, 0, 0, 10}, "{}"...)},
	}
	for _, f := range frames {
		if _, err := readEnvelope(bytes.NewReader(f.frame)); err == nil {
			t.Errorf("readEnvelope(%s) accepted", f.name)
		}
	}
	// It reads the envelope and not a byte more.
	r := bytes.NewReader(append(append(envelopePrefix([]byte("{}")), "{}"...), "message"...))
	if env, err := readEnvelope(r); err != nil || string(env) != "{}" || r.Len() != len("message") {
		t.Errorf("readEnvelope: %q, %v, %d bytes left", env, err, r.Len())
	}
}

// FuzzEnvelope feeds the start of a request body to the envelope reader
// and decoder, as the server does once the headers are authenticated
// (the signed hash is not what is fuzzed: a fuzzer cannot forge it).
func FuzzEnvelope(f *testing.F) {
	for _, m := range []*scanner.Message{
		newMessage("q1", ""),
		{ID: "q2", Allowlisted: true, Env: scanner.Envelope{ClientIP: netip.MustParseAddr("::1")}},
	} {
		env, err := encodeEnvelope(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append(append(envelopePrefix(env), env...), "From: a\r\n\r\nhi\r\n"...))
	}
	for _, env := range []string{`{"id":"q1","envelope":{"client_ip":"1.2.3.4"}}`, `{"id":"q1","envelope":null}`, "", "{}"} {
		f.Add(append(envelopePrefix([]byte(env)), env...))
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, '{'})
	f.Fuzz(func(t *testing.T, body []byte) {
		r := bytes.NewReader(body)
		raw, err := readEnvelope(r)
		if read := len(body) - r.Len(); read > envelopeLenSize+maxEnvelopeBytes {
			t.Fatalf("read %d bytes, more than a frame can hold", read)
		}
		if err != nil {
			return
		}
		if read := len(body) - r.Len(); read != envelopeLenSize+len(raw) {
			t.Fatalf("read %d bytes for an envelope of %d", read, len(raw))
		}
		m, err := decodeEnvelope(raw)
		if err != nil {
			return
		}
		// What the decoder accepts is a valid envelope: it encodes again
		// and decodes to the same message.
		again, err := encodeEnvelope(&m)
		if err != nil {
			t.Fatalf("accepted %q but cannot encode it: %v", raw, err)
		}
		m2, err := decodeEnvelope(again)
		if err != nil {
			t.Fatalf("re-encoded %q not accepted: %v", again, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed the envelope:\n%+v\n%+v", m, m2)
		}
	})
}

type failingWorker struct{}

func (failingWorker) Scan(context.Context, *scanner.Message) (scanner.Verdict, error) {
	return scanner.Verdict{}, errors.New("engine broke at /var/lib/secret")
}

func TestScanFailed(t *testing.T) {
	ps := startServer(t, ServerOptions{Worker: failingWorker{}})
	_, err := NewClient("n1", "n2", ps.addr, secret).Scan(ctxT(t), newMessage("q1", textMsg("hi")))
	if err == nil || errors.Is(err, scanner.ErrOverloaded) || !strings.Contains(err.Error(), "500") {
		t.Fatalf("err %v, want a 500 error", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("internal error text reached the caller: %v", err)
	}
	if got, want := ps.counts(t), map[string]float64{resultError: 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("counts %v, want %v", got, want)
	}
}
