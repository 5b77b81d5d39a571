package smtpfront

// Regression tests for what one client may make the front end hold and
// how sessions end: refused recipients, address lengths, the hard error
// limit, read timeouts mid-command and the final reply under TLS.

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/testenv"
)

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// pipeline sends n lines without waiting and counts the replies by code,
// read while the lines are still going out (so neither side's buffers fill).
func (c *client) pipeline(n int, line func(i int) string) map[int]int {
	c.t.Helper()
	sent := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(c.nc, 64<<10)
		for i := range n {
			w.WriteString(line(i))
			w.WriteString("\r\n")
		}
		sent <- w.Flush()
	}()
	codes := map[int]int{}
	for range n {
		codes[c.code()]++
	}
	if err := <-sent; err != nil {
		c.t.Fatal(err)
	}
	return codes
}

func (c *client) code() int {
	c.t.Helper()
	code, msg, err := c.c.ReadResponse(0)
	if code == 0 {
		c.t.Fatalf("no reply: %v %s", err, msg)
	}
	return code
}

func TestRefusedRecipientsStayBounded(t *testing.T) {
	logs := &testenv.SyncBuffer{}
	f := startFront(t, nil, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
		o.ReadTimeout = time.Minute
	})
	c := dial(t, f.addr)
	c.nc.SetDeadline(time.Now().Add(5 * time.Minute))
	c.ehlo()
	if r := c.do("MAIL FROM:<a@sender.test>"); !strings.HasPrefix(r, "250") {
		t.Fatalf("MAIL = %q", r)
	}
	// 100 000 relay-denied recipients of about 200 octets in one
	// transaction: the old code kept every one, and joined them into one
	// log line and record (about 40 MB).
	const n = 100_000
	pad := strings.Repeat("x", 180)
	before := heapAlloc()
	codes := c.pipeline(n, func(i int) string { return fmt.Sprintf("RCPT TO:<%s%06d@foreign.test>", pad, i) })
	after := heapAlloc()
	if codes[554] != n {
		t.Fatalf("replies by code: %v, want %d × 554", codes, n)
	}
	growth := int64(after) - int64(before)
	t.Logf("heap growth over %d refused recipients: %d bytes", n, growth)
	if growth > 4<<20 {
		t.Errorf("heap grew by %d bytes over %d refused recipients, want it bounded (< 4 MiB)", growth, n)
	}
	if r := c.do("RSET"); !strings.HasPrefix(r, "250") {
		t.Fatalf("RSET = %q", r)
	}

	// The record of the abandoned transaction keeps the first few and a count.
	var recs []msglog.Record
	deadline := time.Now().Add(10 * time.Second)
	for len(recs) == 0 && time.Now().Before(deadline) {
		var err error
		recs, err = f.store.Log.Search(context.Background(), msglog.Query{Action: "refused"})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(recs) != 1 {
		t.Fatalf("%d refused records, want 1", len(recs))
	}
	if r := recs[0].Reply; len(r) > 8<<10 || !strings.Contains(r, fmt.Sprintf("… %d more", n-10)) {
		t.Errorf("record reply is %d bytes, want at most 8 KiB ending in a count: %.300q…", len(r), r)
	}
	var line string
	for l := range strings.Lines(logs.String()) {
		if strings.Contains(l, "action=refused") {
			line = l
		}
	}
	if line == "" || len(line) > 16<<10 {
		t.Errorf("log line of the transaction is %d bytes, want 1 to 16 KiB", len(line))
	}
}

func TestAddressLimits(t *testing.T) {
	local := func(n int) string { return strings.Repeat("a", n) }
	cases := []struct {
		name  string
		cmds  []string // MAIL (and RCPT); the last reply is checked
		want  string
		helo  string
		utf8  bool
		plain bool // no downstream involved
	}{
		// RFC 5321 §4.5.3.1.3: 256 octets for the path, brackets included.
		{name: "sender 256", cmds: []string{"MAIL FROM:<" + local(242) + "@sender.test>"}, want: "250"},
		{name: "sender 257", cmds: []string{"MAIL FROM:<" + local(243) + "@sender.test>"}, want: "501 5.1.7"},
		{name: "sender 60 KB", cmds: []string{"MAIL FROM:<" + local(60<<10) + "@sender.test>"}, want: "501 5.1.7"},
		{name: "sender quoted over the limit", cmds: []string{`MAIL FROM:<"` + strings.Repeat(`\"`, 125) + `"@sender.test>`}, want: "501 5.1.7"},
		{name: "recipient 256", cmds: []string{"MAIL FROM:<a@sender.test>", "RCPT TO:<" + local(242) + "@example.org>"}, want: "250"},
		{name: "recipient 257", cmds: []string{"MAIL FROM:<a@sender.test>", "RCPT TO:<" + local(243) + "@example.org>"}, want: "501 5.1.3"},
		{name: "recipient 60 KB", cmds: []string{"MAIL FROM:<a@sender.test>", "RCPT TO:<" + local(60<<10) + "@example.org>"}, want: "501 5.1.3"},
		// NUL, control characters and invalid UTF-8.
		{name: "sender NUL", cmds: []string{"MAIL FROM:<a\x00b@sender.test>"}, want: "501 5.1.7"},
		{name: "sender control", cmds: []string{"MAIL FROM:<a\x01b@sender.test>"}, want: "501 5.1.7"},
		{name: "sender DEL", cmds: []string{"MAIL FROM:<a\x7fb@sender.test>"}, want: "501 5.1.7"},
		{name: "sender bare CR", cmds: []string{"MAIL FROM:<a\rb@sender.test>"}, want: "501 5.1.7"},
		{name: "sender invalid UTF-8", cmds: []string{"MAIL FROM:<a\xffb@sender.test> SMTPUTF8"}, want: "501 5.1.7"},
		{name: "sender C1 control", cmds: []string{"MAIL FROM:<a\u0085b@sender.test> SMTPUTF8"}, want: "501 5.1.7"},
		{name: "recipient NUL", cmds: []string{"MAIL FROM:<a@sender.test>", "RCPT TO:<b\x00@example.org>"}, want: "501 5.1.3"},
		{name: "recipient NUL in domain", cmds: []string{"MAIL FROM:<a@sender.test>", "RCPT TO:<b@example.org\x00>"}, want: "501 5.1.3"},
		{name: "recipient invalid UTF-8", cmds: []string{"MAIL FROM:<a@sender.test> SMTPUTF8", "RCPT TO:<b\xc3@example.org>"}, want: "501 5.1.3"},
		// UTF-8 only with SMTPUTF8 (RFC 6531 §3.4).
		{name: "sender UTF-8 undeclared", cmds: []string{"MAIL FROM:<jörg@sender.test>"}, want: "553 5.6.7"},
		{name: "recipient UTF-8 undeclared", cmds: []string{"MAIL FROM:<a@sender.test>", "RCPT TO:<jörg@example.org>"}, want: "553 5.6.7"},
		// The HELO argument lands in every record and Received header.
		{name: "helo 255", helo: local(251) + ".org", cmds: []string{"MAIL FROM:<a@sender.test>"}, want: "250"},
		{name: "helo 256", helo: local(252) + ".org", want: "501 5.5.4"},
		{name: "helo control", helo: "a\x01b.test", want: "501 5.5.4"},
		{name: "helo invalid UTF-8", helo: "a\xffb.test", want: "501 5.5.4"},
	}
	f := startFront(t, nil, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, f.addr)
			helo := tc.helo
			if helo == "" {
				helo = "client.test"
			}
			got := c.do("EHLO " + helo)
			for _, cmd := range tc.cmds {
				if !strings.HasPrefix(got, "250") {
					break
				}
				got = c.do(cmd)
			}
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("reply = %.80q, want %s", got, tc.want)
			}
		})
	}
}

// A client that re-sends EHLO with an over-long argument after a good one
// gets no record with it, and no MAIL.
func TestSecondEHLOIsChecked(t *testing.T) {
	f := startFront(t, nil, nil)
	c := dial(t, f.addr)
	c.ehlo()
	c.do("EHLO " + strings.Repeat("h", 4000))
	if got := c.do("MAIL FROM:<a@sender.test>"); !strings.HasPrefix(got, "501 5.5.4") {
		t.Errorf("MAIL after a long second EHLO = %q, want 501 5.5.4", got)
	}
}

func TestHardErrorLimit(t *testing.T) {
	const limit = 3
	relayDenied := "RCPT TO:<x@foreign.test>"
	cases := []struct {
		name  string
		setup func(t *testing.T, f *front)
		cmds  []string
		want  []string // reply prefixes, in order; "EOF" = closed
	}{
		{"relay denials", nil,
			[]string{"MAIL FROM:<a@sender.test>", relayDenied, relayDenied, relayDenied, "NOOP"},
			[]string{"250", "554 5.7.1", "554 5.7.1", "421 4.7.0", "EOF"}},
		{"blocked recipients", func(t *testing.T, f *front) {
			if _, _, err := f.lists.Add(context.Background(), lists.Entry{Kind: lists.Block, Value: "127.0.0.1", Rcpt: "blocked@example.org"}); err != nil {
				t.Fatal(err)
			}
		}, []string{"MAIL FROM:<a@sender.test>", "RCPT TO:<blocked@example.org>", "RCPT TO:<blocked@example.org>", "RCPT TO:<blocked@example.org>"},
			[]string{"250", "550 5.7.1", "550 5.7.1", "421 4.7.0"}},
		{"bad addresses and MAIL refusals", nil,
			[]string{"MAIL FROM:<a\x00@sender.test>", "MAIL FROM:<jörg@sender.test>", "MAIL FROM:<" + strings.Repeat("a", 300) + "@s.test>", "NOOP"},
			[]string{"501 5.1.7", "553 5.6.7", "421 4.7.0", "EOF"}},
		{"mixed, across transactions", nil,
			[]string{"MAIL FROM:<a@sender.test>", relayDenied, "RSET", "MAIL FROM:<a@sender.test>", "RCPT TO:<b\x01@example.org>", "RSET", "MAIL FROM:<a@sender.test>", relayDenied},
			[]string{"250", "554", "250", "250", "501 5.1.3", "250", "250", "421 4.7.0"}},
		{"recipient split does not count", func(t *testing.T, f *front) {
			if _, _, err := f.lists.Add(context.Background(), lists.Entry{Kind: lists.Allow, Value: "127.0.0.1", Rcpt: "vip@example.org"}); err != nil {
				t.Fatal(err)
			}
		}, []string{"MAIL FROM:<a@sender.test>", "RCPT TO:<vip@example.org>", "RCPT TO:<b@example.org>", "RCPT TO:<b@example.org>", "RCPT TO:<b@example.org>", "RCPT TO:<b@example.org>", "NOOP"},
			[]string{"250", "250", "452 4.5.3", "452 4.5.3", "452 4.5.3", "452 4.5.3", "250"}},
		{"an accepted message starts anew", nil,
			[]string{"MAIL FROM:<a@sender.test>", relayDenied, relayDenied, "RCPT TO:<b@example.org>", "DATA", "Subject: ok\r\n\r\nfine\r\n.",
				"MAIL FROM:<a@sender.test>", relayDenied, relayDenied, relayDenied},
			[]string{"250", "554", "554", "250", "354", "250", "250", "554", "554", "421 4.7.0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := startFront(t, nil, func(o *Options) { o.HardErrorLimit = limit })
			if tc.setup != nil {
				tc.setup(t, f)
			}
			c := dial(t, f.addr)
			c.ehlo()
			for i, cmd := range tc.cmds {
				got := c.try(cmd)
				if !strings.HasPrefix(got, tc.want[i]) {
					t.Fatalf("%.40q = %q, want %s", cmd, got, tc.want[i])
				}
			}
		})
	}
}

// The limit holds across STARTTLS, and its 421 reaches a TLS client.
func TestHardErrorLimitUnderTLS(t *testing.T) {
	cert := selfSigned(t)
	f := startFront(t, nil, func(o *Options) {
		o.HardErrorLimit = 3
		o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	})
	c := dial(t, f.addr)
	c.ehlo()
	c.do("MAIL FROM:<a@sender.test>")
	if got := c.do("RCPT TO:<x@foreign.test>"); !strings.HasPrefix(got, "554") {
		t.Fatalf("plain-text RCPT = %q", got)
	}
	c.do("RSET")
	c.startTLS()
	c.ehlo()
	c.do("MAIL FROM:<a@sender.test>")
	for i, want := range []string{"554 5.7.1", "421 4.7.0", "EOF"} {
		if got := c.try("RCPT TO:<x@foreign.test>"); !strings.HasPrefix(got, want) {
			t.Fatalf("RCPT %d over TLS = %q, want %s", i+1, got, want)
		}
	}
}

// try sends a command and returns its reply, or "EOF" when the server
// closed the connection instead.
func (c *client) try(line string) string {
	c.t.Helper()
	if err := c.c.PrintfLine("%s", line); err != nil {
		return "EOF"
	}
	code, msg, err := c.c.ReadResponse(0)
	if code == 0 {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatalf("%q: no reply and no close: %v", line, err)
		}
		return "EOF" // closed, or reset by the command sent after the close
	}
	lines := strings.Split(msg, "\n")
	return fmt.Sprintf("%d %s", code, lines[len(lines)-1])
}

func (c *client) startTLS() {
	c.t.Helper()
	if got := c.do("STARTTLS"); !strings.HasPrefix(got, "220") {
		c.t.Fatalf("STARTTLS = %q", got)
	}
	tc := tls.Client(c.nc, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.nc = tc
	c.c = textproto.NewConn(tc)
}

// rest reads what the server still sends until it closes: its reply lines.
func (c *client) rest() []string {
	c.t.Helper()
	lines, err := c.untilClosed()
	if err != nil {
		c.t.Fatal(err)
	}
	return lines
}

// untilClosed reads reply lines until the server closes the connection;
// an error says it did not within 20 s.
func (c *client) untilClosed() ([]string, error) {
	c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	var lines []string
	for {
		l, err := c.c.ReadLine()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return lines, fmt.Errorf("connection still open after %q", lines)
			}
			return lines, nil
		}
		lines = append(lines, l)
	}
}

// After STARTTLS the closing replies (221, 421, 500) reach the client:
// crypto/tls closes with a write deadline of now, which cut off what the
// coalescing writer still held.
func TestTLSFinalReplies(t *testing.T) {
	cert := selfSigned(t)
	cases := []struct {
		name string
		send string // raw, after EHLO over TLS; "" = say nothing
		want string // prefix of the last line before the close
	}{
		{"QUIT", "QUIT\r\n", "221 2.0.0"},
		{"idle timeout", "", "421 4.4.2"},
		{"line too long", strings.Repeat("x", 3000) + "\r\n", "500 5.4.0"},
		{"too many bad commands", "XX\r\nXX\r\nXX\r\nXX\r\n", "500 5.5.1"},
	}
	f := startFront(t, nil, func(o *Options) {
		o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		o.ReadTimeout = time.Second
		o.MaxLineLength = 2000
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, f.addr)
			c.ehlo()
			c.startTLS()
			c.ehlo()
			io.WriteString(c.nc, tc.send)
			lines := c.rest()
			if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], tc.want) {
				t.Errorf("the server's last words = %q, want %s…", lines, tc.want)
			}
		})
	}
}

// A read timeout in the middle of a command ends the session: the partial
// command never acts, and what the client sends after it is never read.
func TestPartialCommandAfterTimeout(t *testing.T) {
	// Longer than read_timeout, shorter than twice it: the old code read
	// the rest of the line under the fresh deadline and acted on both halves.
	const pause = 3 * time.Second
	cert := selfSigned(t)
	cases := []struct {
		name   string
		tls    bool
		before []string // whole commands first
		part   string   // then this, the pause, and the rest of the line
		rest   string
		want   []string // every reply line after the pause, by prefix
	}{
		{"DA..TA", false, nil, "DA", "TA\r\nNOOP\r\n", []string{"421 4.4.2"}},
		{"partial RCPT", false, []string{"MAIL FROM:<a@sender.test>"}, "RCPT TO:<b@example.org>", "\r\nDATA\r\n", []string{"421 4.4.2"}},
		{"partial MAIL", false, nil, "MAIL FROM:<a@sender.test>", "\r\nRCPT TO:<b@example.org>\r\n", []string{"421 4.4.2"}},
		// Under TLS only go-smtp itself answers a partial line it refuses
		// (501 to "DA"); a session command gets the 421 instead of acting.
		{"DA..TA over TLS", true, nil, "DA", "TA\r\nNOOP\r\n", []string{"501", "421 4.4.2"}},
		{"partial RCPT over TLS", true, []string{"MAIL FROM:<a@sender.test>"}, "RCPT TO:<b@example.org>", "\r\nDATA\r\n", []string{"421 4.4.2"}},
		{"partial MAIL over TLS", true, nil, "MAIL FROM:<a@sender.test>", "\r\nRCPT TO:<b@example.org>\r\n", []string{"421 4.4.2"}},
	}
	f := startFront(t, nil, func(o *Options) {
		o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		o.ReadTimeout = 2 * time.Second
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, f.addr)
			c.ehlo()
			if tc.tls {
				c.startTLS()
				c.ehlo()
			}
			for _, cmd := range tc.before {
				if got := c.do(cmd); !strings.HasPrefix(got, "250") {
					t.Fatalf("%s = %q", cmd, got)
				}
			}
			io.WriteString(c.nc, tc.part)
			// Read from now on: the server may answer and close before the
			// rest of the line is sent, and a reset by the late bytes must
			// not swallow what it said.
			type result struct {
				lines []string
				err   error
			}
			done := make(chan result, 1)
			go func() {
				lines, err := c.untilClosed()
				done <- result{lines, err}
			}()
			time.Sleep(pause)
			io.WriteString(c.nc, tc.rest)
			r := <-done
			lines := r.lines
			if r.err != nil {
				t.Fatal(r.err)
			}
			if len(lines) != len(tc.want) {
				t.Fatalf("after the pause the server said %q, want %q", lines, tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("reply %d = %q, want %s", i+1, lines[i], w)
				}
			}
		})
	}
}

// mxgate advertises SMTPUTF8 whatever its downstream does. Towards one
// without it (smtp-sink announces no SMTPUTF8), an ASCII transaction goes
// through without the parameter, and one that needs it is refused for
// good; towards one with it (Postfix) everything passes.
func TestSMTPUTF8Downstream(t *testing.T) {
	type step struct{ cmd, want string }
	utf8Header := "Subject: Grüße\r\n\r\nbody\r\n."
	cases := []struct {
		name      string
		postfix   bool
		steps     []step
		delivered int
		raw8bit   bool // an 8-bit header without SMTPUTF8 (RFC 6532 aside) passes untouched
	}{
		{"ASCII envelope to a server without SMTPUTF8", false, []step{
			{"MAIL FROM:<a@sender.test> SMTPUTF8", "250"}, {"RCPT TO:<b@example.org>", "250"},
			{"DATA", "354"}, {"Subject: ascii\r\n\r\nGrüße im Text\r\n.", "250"}}, 1, false},
		{"UTF-8 sender to a server without SMTPUTF8", false, []step{
			{"MAIL FROM:<jörg@sender.test> SMTPUTF8", "553 5.6.7"}}, 0, false},
		{"UTF-8 recipient to a server without SMTPUTF8", false, []step{
			{"MAIL FROM:<a@sender.test> SMTPUTF8", "250"}, {"RCPT TO:<jörg@example.org>", "553 5.6.7"},
			{"RCPT TO:<b@example.org>", "250"}}, 0, false},
		{"UTF-8 header to a server without SMTPUTF8", false, []step{
			{"MAIL FROM:<a@sender.test> SMTPUTF8", "250"}, {"RCPT TO:<b@example.org>", "250"},
			{"DATA", "354"}, {utf8Header, "554 5.6.7"},
			// and the session goes on, on a new downstream connection
			{"MAIL FROM:<a@sender.test> SMTPUTF8", "250"}, {"RCPT TO:<b@example.org>", "250"},
			{"DATA", "354"}, {"Subject: second\r\n\r\nok\r\n.", "250"}}, 1, false},
		{"no SMTPUTF8 asked: 8-bit header passes as before", false, []step{
			{"MAIL FROM:<a@sender.test>", "250"}, {"RCPT TO:<b@example.org>", "250"},
			{"DATA", "354"}, {utf8Header, "250"}}, 1, true},
		{"UTF-8 envelope and header to Postfix", true, []step{
			{"MAIL FROM:<jörg@sender.test> SMTPUTF8", "250"}, {"RCPT TO:<jürgen@example.org>", "250"},
			{"DATA", "354"}, {utf8Header, "250"}}, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var pf *testenv.Postfix
			if tc.postfix {
				sink := testenv.StartSink(t)
				pf = testenv.StartPostfix(t, "example.org", sink.Addr)
			}
			f := startFront(t, nil, func(o *Options) {
				if pf != nil {
					o.Downstream.Addr = pf.Addr
				}
			})
			c := dial(t, f.addr)
			c.ehlo()
			for _, s := range tc.steps {
				if got := c.do(s.cmd); !strings.HasPrefix(got, s.want) {
					t.Fatalf("%.40q = %q, want %s", s.cmd, got, s.want)
				}
			}
			c.do("QUIT")
			if tc.postfix {
				return
			}
			msgs := f.sink.Messages(t)
			if tc.delivered > 0 {
				msgs = f.sink.WaitMessages(t, tc.delivered, 10*time.Second)
			}
			time.Sleep(200 * time.Millisecond)
			if msgs = f.sink.Messages(t); len(msgs) != tc.delivered {
				t.Fatalf("downstream has %d messages, want %d", len(msgs), tc.delivered)
			}
			for _, m := range msgs {
				if strings.Contains(testenv.Header(m, "X-Mail-Args"), "SMTPUTF8") || !tc.raw8bit && strings.Contains(m, "Grüße\n") {
					t.Errorf("SMTPUTF8 or a UTF-8 header reached a server without SMTPUTF8:\n%s", m)
				}
			}
		})
	}
}

// A bare CR is a line end for some servers and not for others: it is made
// a CRLF before the scan, so the scanner reads the lines the downstream
// will get, and the dot after it arrives stuffed.
func TestBareCRIsALineEnd(t *testing.T) {
	var mu sync.Mutex
	var scanned []byte
	w := workerFunc(func(_ context.Context, m *scanner.Message) (scanner.Verdict, error) {
		b, _ := io.ReadAll(m.Body.Reader())
		mu.Lock()
		scanned = b
		mu.Unlock()
		return scanner.Verdict{Action: scanner.ActionDeliver, Class: "clean", Node: "t1"}, nil
	})
	f := startFront(t, w, nil)
	c := dial(t, f.addr)
	c.ehlo()
	c.do("MAIL FROM:<a@sender.test>")
	c.do("RCPT TO:<b@example.org>")
	c.do("DATA")
	if got := c.do("Subject: cr\rContent-Type: multipart/mixed\r\n\r\nfirst\r.\rMAIL FROM:<forged@evil.test>\r\nend\r\n."); !strings.HasPrefix(got, "250") {
		t.Fatalf("end of data = %q", got)
	}
	mu.Lock()
	body := string(scanned)
	mu.Unlock()
	if want := "Subject: cr\r\nContent-Type: multipart/mixed\r\n\r\nfirst\r\n.\r\nMAIL FROM:<forged@evil.test>\r\nend\r\n"; body != want {
		t.Errorf("scanner got %q, want %q", body, want)
	}
	m := f.sink.WaitMessages(t, 1, 10*time.Second)[0]
	// smtp-sink drops bare CRs from its dump and un-stuffs dots.
	if testenv.Header(m, "Content-Type") != "multipart/mixed" || !strings.Contains(m, "\nfirst\n.\nMAIL FROM:<forged@evil.test>\nend\n") {
		t.Errorf("downstream got:\n%s", m)
	}
}
