package spamd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgate/mxgate/engines"
	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/spool"
	"github.com/mxgate/mxgate/testenv"
)

// cannedServer is a loopback spamd that answers what the real one cannot
// be made to: every connection is handed to handle, which gets the
// request's first line already read.
type cannedServer struct {
	addr    string
	accepts atomic.Int32
	stop    chan struct{} // closed at cleanup: handlers that hang return
}

func startCanned(t *testing.T, handle func(s *cannedServer, c net.Conn, br *bufio.Reader)) *cannedServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &cannedServer{addr: "tcp://" + l.Addr().String(), stop: make(chan struct{})}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(s.stop)
		l.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.accepts.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				go func() { <-s.stop; c.Close() }()
				c.SetDeadline(time.Now().Add(time.Minute))
				handle(s, c, bufio.NewReader(c))
			}()
		}
	}()
	return s
}

// answer reads the whole request (the client ends its side) and replies.
func answer(reply string) func(*cannedServer, net.Conn, *bufio.Reader) {
	return func(_ *cannedServer, c net.Conn, br *bufio.Reader) {
		io.Copy(io.Discard, br)
		io.WriteString(c, reply)
	}
}

// hang reads the request and never answers.
func hang(s *cannedServer, _ net.Conn, br *bufio.Reader) {
	io.Copy(io.Discard, br)
	<-s.stop
}

const sampleReport = `Spam detection software, running on the system "mx1",
has identified this incoming email as possible spam.

Content preview:  Buy now cheap watches
   [...]

Content analysis details:   (12.3 points, 5.0 required)

 pts rule name              description
---- ---------------------- --------------------------------------------------
 3.5 BAYES_99               BODY: Bayes spam probability is 99 to 100%
                            [score: 1.0000]
 2.0 A_VERY_LONG_RULE_NAME_OVER_22 URI: Contains a URL listed in a list with a
                            very long description that wraps
-0.0 NO_RELAYS              Informational: message was not relayed via SMTP
  10 LOTS                   BODY: many points
                            [cid: 0123456789abcdef@example.com]
[a quoted match longer than forty-seven characters without spaces_xxxxxxxxxxxx]
-3.2 NEGATIVE               Some whitelisting

`

func okReply(spam, report string) string {
	return fmt.Sprintf("SPAMD/1.1 0 EX_OK\r\nContent-length: %d\r\nSpam: %s\r\n\r\n%s", len(report), spam, report)
}

var sampleRules = []Rule{
	{"BAYES_99", 3.5, "BODY: Bayes spam probability is 99 to 100%"},
	{"A_VERY_LONG_RULE_NAME_OVER_22", 2.0, "URI: Contains a URL listed in a list with a very long description that wraps"},
	{"NO_RELAYS", 0, "Informational: message was not relayed via SMTP"},
	{"LOTS", 10, "BODY: many points"},
	{"NEGATIVE", -3.2, "Some whitelisting"},
}

func TestCanned(t *testing.T) {
	body := []byte("Subject: canned\r\n\r\nhello\r\n")
	tests := []struct {
		name     string
		handle   func(*cannedServer, net.Conn, *bufio.Reader)
		opt      Options
		wantKind string // "" = no error
		wantErr  string // in the error
		want     Reply
	}{
		{"spam with the report's table", answer(okReply("True ; 12.3 / 5.0", sampleReport)), Options{}, "", "",
			Reply{Spam: true, Score: 12.3, Threshold: 5, Rules: sampleRules}},
		{"ham without rules", answer(okReply("False ; 0.0 / 5.0", "no table here\n")), Options{}, "", "",
			Reply{Threshold: 5}},
		{"EX_PROTOCOL", answer("SPAMD/1.0 76 Bad header line: (Content-Length contains non-numeric bytes)\r\n"), Options{},
			engines.KindEngine, "EX_PROTOCOL (76): Bad header line", Reply{}},
		{"EX_TEMPFAIL", answer("SPAMD/1.0 75 EX_TEMPFAIL\r\n"), Options{}, engines.KindEngine, "EX_TEMPFAIL (75)", Reply{}},
		{"EX_UNAVAILABLE", answer("SPAMD/1.0 69 Service Unavailable: too busy\r\n"), Options{}, engines.KindEngine, "EX_UNAVAILABLE (69)", Reply{}},
		{"unknown EX code", answer("SPAMD/1.0 99 what\r\n"), Options{}, engines.KindEngine, "EX_99 (99)", Reply{}},
		{"missing Spam header", answer("SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\n\r\n"), Options{}, engines.KindProtocol, "no Spam header", Reply{}},
		{"missing Content-length", answer("SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1.0 / 5.0\r\n\r\n"), Options{}, engines.KindProtocol, "no Content-length", Reply{}},
		{"two Spam headers", answer("SPAMD/1.1 0 EX_OK\r\nSpam: False ; 1 / 5\r\nSpam: True ; 9 / 5\r\nContent-length: 0\r\n\r\n"), Options{},
			engines.KindProtocol, "two Spam headers", Reply{}},
		{"verdict not True or False", answer(okReply("Maybe ; 1.0 / 5.0", "")), Options{}, engines.KindProtocol, "not True or False", Reply{}},
		{"score not a number", answer(okReply("True ; NaN / 5.0", "")), Options{}, engines.KindProtocol, "not a number", Reply{}},
		{"Spam header without threshold", answer(okReply("True ; 1.0", "")), Options{}, engines.KindProtocol, "want \"True ; score / threshold\"", Reply{}},
		{"Content-length not a number", answer("SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1 / 5\r\nContent-length: -5\r\n\r\n"), Options{},
			engines.KindProtocol, "Content-length \"-5\"", Reply{}},
		{"header line without colon", answer("SPAMD/1.1 0 EX_OK\r\nSpam True\r\n\r\n"), Options{}, engines.KindProtocol, "header line", Reply{}},
		{"garbage", answer("HTTP/1.1 400 Bad Request\r\n\r\n"), Options{}, engines.KindProtocol, "want SPAMD/1.x", Reply{}},
		{"binary garbage", answer("\x00\x01\x02\xff\n"), Options{}, engines.KindProtocol, "want SPAMD/1.x", Reply{}},
		{"bad status code", answer("SPAMD/1.1 x EX_OK\r\n"), Options{}, engines.KindProtocol, "code", Reply{}},
		{"empty reply", answer(""), Options{}, engines.KindProtocol, "no reply", Reply{}},
		{"status line cut off", answer("SPAMD/1.1 0 EX_OK"), Options{}, engines.KindProtocol, "cut off", Reply{}},
		{"headers cut off", answer("SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1 / 5\r\n"), Options{}, engines.KindProtocol, "cut off after 1 header lines", Reply{}},
		{"report cut off", answer(okReply("True ; 12.3 / 5.0", sampleReport)[:200]), Options{}, engines.KindProtocol, "report ended after", Reply{}},
		{"huge header", answer("SPAMD/1.1 0 EX_OK\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("a", 1000)+"\r\n", 70)), Options{},
			engines.KindProtocol, "over the limit of 65536", Reply{}},
		{"huge header line", answer("SPAMD/1.1 0 EX_OK\r\nX: " + strings.Repeat("a", 70<<10) + "\r\n\r\n"), Options{},
			engines.KindProtocol, "over the limit of 65536", Reply{}},
		{"huge report", answer("SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1 / 5\r\nContent-length: 300000\r\n\r\n" + strings.Repeat("x\n", 150000)), Options{},
			engines.KindProtocol, "over the limit of 262144", Reply{}},
		{"never answers", hang, Options{Timeout: 300 * time.Millisecond}, engines.KindTimeout, "check", Reply{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startCanned(t, tt.handle)
			reg := prometheus.NewRegistry()
			tt.opt.Metrics, _ = engines.NewMetrics(reg)
			c := newClient(t, srv.addr, tt.opt)
			rep, err := c.Check(testenv.Context(t, 30*time.Second), bytes.NewReader(body), int64(len(body)))
			if tt.wantKind == "" {
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprintf("%+v", rep) != fmt.Sprintf("%+v", tt.want) {
					t.Errorf("reply\n %+v\nwant\n %+v", rep, tt.want)
				}
				if n := testenv.MetricValue(t, reg, "mxgate_engine_calls_total", "outcome", "ok"); n != 1 {
					t.Errorf("ok calls counted: %v", n)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; reply %+v", rep)
			}
			if kind := engines.Kind(err); kind != tt.wantKind || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q (kind %s), want kind %s with %q", err, kind, tt.wantKind, tt.wantErr)
			}
			if !strings.Contains(err.Error(), srv.addr) {
				t.Errorf("error %q does not name the address %s", err, srv.addr)
			}
			if n := testenv.MetricValue(t, reg, "mxgate_engine_errors_total", "kind", tt.wantKind); n != 1 {
				t.Errorf("errors of kind %s counted: %v, want 1", tt.wantKind, n)
			}
		})
	}
}

// TestRequest: what spamd receives, and that our side is ended after the
// body (spamd waits for it when the last line has no line break).
func TestRequest(t *testing.T) {
	requests := make(chan []byte, 1)
	srv := startCanned(t, func(_ *cannedServer, c net.Conn, br *bufio.Reader) {
		req, _ := io.ReadAll(br)
		requests <- req
		io.WriteString(c, okReply("False ; 0.1 / 5.0", ""))
	})
	body := "Subject: x\r\n\r\nno final line break"
	c := newClient(t, srv.addr, Options{User: "alice"})
	if _, err := c.Check(testenv.Context(t, 30*time.Second), strings.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("REPORT SPAMC/1.5\r\nContent-length: %d\r\nUser: alice\r\n\r\n%s", len(body), body)
	if got := string(<-requests); got != want {
		t.Errorf("request\n%q\nwant\n%q", got, want)
	}
}

// TestNotSent: a message over MaxSize, or one that ends before its size,
// never reaches spamd as a verdict request.
func TestNotSent(t *testing.T) {
	srv := startCanned(t, answer(okReply("False ; 0.0 / 5.0", "")))
	ctx := testenv.Context(t, 30*time.Second)
	c := newClient(t, srv.addr, Options{MaxSize: 100})

	_, err := c.Check(ctx, strings.NewReader(strings.Repeat("x", 101)), 101)
	if kind := engines.Kind(err); kind != engines.KindTooLarge {
		t.Errorf("101 bytes over max_size 100: %v (kind %s), want kind %s", err, kind, engines.KindTooLarge)
	}
	res, err := c.Scan(ctx, &scanner.Message{Body: spoolOf(strings.Repeat("x", 101))})
	if err != nil || len(res.Symbols) != 1 || res.Symbols[0].Name != SymbolSkippedSize ||
		res.Symbols[0].Detail != "not scanned by spamd: 101 bytes, over max_size 100" || res.Score != 0 {
		t.Errorf("Scan over max_size: %+v, %v; want only %s", res, err, SymbolSkippedSize)
	}
	if n := srv.accepts.Load(); n != 0 {
		t.Errorf("%d connections for messages over max_size, want none", n)
	}

	_, err = c.Check(ctx, strings.NewReader("short"), 50)
	if err == nil || !strings.Contains(err.Error(), "message ended after 5 of 50 bytes") {
		t.Errorf("a body shorter than its size: %v", err)
	}
}

// TestWriteFails: spamd refuses a request and closes while the body is
// still being sent; its answer is the error, not the failed write.
func TestWriteFails(t *testing.T) {
	srv := startCanned(t, func(_ *cannedServer, c net.Conn, br *bufio.Reader) {
		br.ReadString('\n')
		io.WriteString(c, "SPAMD/1.0 76 Bad header line: refused\r\n")
		c.(*net.TCPConn).CloseWrite()
		// Drain slowly enough that the client's write stalls, then go:
		// the rest of the body is never read.
		io.CopyN(io.Discard, br, 64<<10)
	})
	size := 8 << 20
	c := newClient(t, srv.addr, Options{MaxSize: int64(size)})
	_, err := c.Check(testenv.Context(t, 30*time.Second), bytes.NewReader(make([]byte, size)), int64(size))
	if kind := engines.Kind(err); kind != engines.KindEngine || !strings.Contains(err.Error(), "EX_PROTOCOL") {
		t.Errorf("error %v (kind %s), want spamd's EX_PROTOCOL", err, kind)
	}
}

// TestCanceled: a caller that gives up ends the call at once, even with
// no deadline.
func TestCanceled(t *testing.T) {
	accepted := make(chan struct{}, 1)
	srv := startCanned(t, func(s *cannedServer, c net.Conn, br *bufio.Reader) {
		accepted <- struct{}{}
		hang(s, c, br)
	})
	c := newClient(t, srv.addr, Options{Timeout: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-accepted; cancel() }()
	_, err := c.Check(ctx, strings.NewReader("x\r\n"), 3)
	if kind := engines.Kind(err); kind != engines.KindCanceled {
		t.Errorf("error %v (kind %s), want kind %s", err, kind, engines.KindCanceled)
	}
}

// TestMaxConnections: calls beyond the limit wait for a turn instead of
// opening more connections to spamd.
func TestMaxConnections(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var open, most int
	srv := startCanned(t, func(_ *cannedServer, c net.Conn, br *bufio.Reader) {
		mu.Lock()
		open++
		most = max(most, open)
		mu.Unlock()
		io.Copy(io.Discard, br)
		<-release
		io.WriteString(c, okReply("False ; 0.0 / 5.0", ""))
		mu.Lock()
		open--
		mu.Unlock()
	})
	c := newClient(t, srv.addr, Options{MaxConnections: 2})
	ctx := testenv.Context(t, 30*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Go(func() {
			_, err := c.Check(ctx, strings.NewReader("x\r\n"), 3)
			errs <- err
		})
	}
	for srv.accepts.Load() < 2 || c.limit.InFlight() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	// A broken limit would let the other three connect meanwhile.
	time.Sleep(100 * time.Millisecond)
	if n := srv.accepts.Load(); n != 2 {
		t.Errorf("%d connections with max_connections 2", n)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if most != 2 || srv.accepts.Load() != 5 {
		t.Errorf("at most %d connections at once of %d, want 2 of 5", most, srv.accepts.Load())
	}
}

func spoolOf(s string) *spool.Buffer { return spool.FromBytes([]byte(s)) }

func TestPingCanned(t *testing.T) {
	tests := []struct {
		reply, wantKind, wantErr string
	}{
		{"SPAMD/1.5 0 PONG\r\n", "", ""},
		{"SPAMD/1.5 0 PANG\r\n", engines.KindProtocol, "want PONG"},
		{"SPAMD/1.0 76 Bad header line: PING\r\n", engines.KindEngine, "EX_PROTOCOL"},
		{"", engines.KindProtocol, "no reply"},
		{"+PONG\r\n", engines.KindProtocol, "want SPAMD/1.x"},
	}
	for _, tt := range tests {
		t.Run(tt.reply, func(t *testing.T) {
			requests := make(chan string, 1)
			srv := startCanned(t, func(_ *cannedServer, c net.Conn, br *bufio.Reader) {
				req, _ := io.ReadAll(br)
				requests <- string(req)
				io.WriteString(c, tt.reply)
			})
			err := newClient(t, srv.addr, Options{}).Ping(testenv.Context(t, 30*time.Second))
			if got := <-requests; got != "PING SPAMC/1.5\r\n\r\n" {
				t.Errorf("request %q", got)
			}
			if kind := engines.Kind(err); (tt.wantKind == "") != (err == nil) || err != nil && (kind != tt.wantKind || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error %v (kind %s), want kind %q with %q", err, kind, tt.wantKind, tt.wantErr)
			}
		})
	}
}
