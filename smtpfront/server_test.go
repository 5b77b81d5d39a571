package smtpfront

// Integration tests of the front end in-process: the real go-smtp server,
// the real scanner pool, the real embedded store and Postfix's smtp-sink as
// the downstream server. Failures that cannot be provoked from outside
// (a scanner error, a store that fails) come from small Worker stand-ins.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/deliver"
	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/quarantine"
	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/store"
	"github.com/mxgate/mxgate/testenv"
)

type workerFunc func(ctx context.Context, m *scanner.Message) (scanner.Verdict, error)

func (f workerFunc) Scan(ctx context.Context, m *scanner.Message) (scanner.Verdict, error) {
	return f(ctx, m)
}

type front struct {
	srv   *Server
	addr  string
	sink  *testenv.Sink
	store *store.Backend
	lists *lists.Cache
}

func startFront(t testing.TB, w scanner.Worker, mutate func(*Options)) *front {
	t.Helper()
	sink := testenv.StartSink(t)
	st, err := store.OpenEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if w == nil {
		o := scanner.DefaultOptions()
		o.NodeID, o.Workers = "t1", 2
		pool, err := scanner.NewPool(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		w = pool
	}
	cache := lists.NewCache(st.Lists)
	o := Options{
		NodeID: "t1", Hostname: "mx.test", Listen: []string{"127.0.0.1:0"},
		AcceptDomains: []string{"example.org"}, MaxMessageBytes: 1 << 20, MaxRecipients: 3,
		MaxConnections: 100, MaxConnectionsPerIP: 100, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		Downstream: deliver.Options{Addr: sink.Addr, Helo: "mx.test", Timeout: 5 * time.Second},
		Scanner:    w, Lists: cache, Quarantine: st.Quarantine, QuarantineRetention: time.Hour,
		Log: st.Log, SpoolDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mutate != nil {
		mutate(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return &front{srv: s, addr: s.Addrs()[0].String(), sink: sink, store: st, lists: cache}
}

type client struct {
	t  *testing.T
	nc net.Conn
	c  *textproto.Conn
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	c := &client{t: t, nc: nc, c: textproto.NewConn(nc)}
	t.Cleanup(func() { nc.Close() })
	if code, msg, err := c.c.ReadResponse(220); err != nil {
		t.Fatalf("greeting: %d %s %v", code, msg, err)
	}
	return c
}

// do sends a command and returns the reply as "code text" (last line).
func (c *client) do(line string) string {
	c.t.Helper()
	if err := c.c.PrintfLine("%s", line); err != nil {
		c.t.Fatal(err)
	}
	code, msg, err := c.c.ReadResponse(0)
	if code == 0 {
		c.t.Fatalf("%q: no reply: %v", line, err)
	}
	lines := strings.Split(msg, "\n")
	return strings.TrimSpace(strings.Join([]string{strconv.Itoa(code), lines[len(lines)-1]}, " "))
}

func (c *client) ehlo() []string {
	c.t.Helper()
	c.c.PrintfLine("EHLO client.test")
	_, msg, err := c.c.ReadResponse(250)
	if err != nil {
		c.t.Fatal(err)
	}
	return strings.Split(msg, "\n")[1:]
}

// send runs one transaction to example.org and returns the DATA reply.
func (c *client) send(body string) string {
	c.t.Helper()
	c.ehlo()
	if r := c.do("MAIL FROM:<a@sender.test>"); !strings.HasPrefix(r, "250") {
		return r
	}
	if r := c.do("RCPT TO:<b@example.org>"); !strings.HasPrefix(r, "250") {
		return r
	}
	if r := c.do("DATA"); !strings.HasPrefix(r, "354") {
		return r
	}
	return c.do(body + "\r\n.")
}

func TestInternalFailuresAreTemporary(t *testing.T) {
	cases := []struct {
		name string
		w    workerFunc
		want string
	}{
		{"overloaded", func(context.Context, *scanner.Message) (scanner.Verdict, error) {
			return scanner.Verdict{}, scanner.ErrOverloaded
		}, "451 4.3.2 "},
		{"scanner error", func(context.Context, *scanner.Message) (scanner.Verdict, error) {
			return scanner.Verdict{}, errors.New("engine exploded: secret internal detail")
		}, "451 4.3.0 "},
		{"tempfail verdict", func(context.Context, *scanner.Message) (scanner.Verdict, error) {
			return scanner.Verdict{Action: scanner.ActionTempfail}, nil
		}, "451 4.7.0 Message could not be scanned, try again later"},
		{"unknown action", func(context.Context, *scanner.Message) (scanner.Verdict, error) {
			return scanner.Verdict{Action: "explode"}, nil
		}, "451 4.3.0 "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := startFront(t, c.w, nil)
			got := dial(t, f.addr).send("Subject: x\r\n\r\nhello")
			if !strings.HasPrefix(got, c.want) || strings.Contains(got, "secret") {
				t.Errorf("DATA reply = %q, want %q… without internals", got, c.want)
			}
			time.Sleep(100 * time.Millisecond)
			if n := len(f.sink.Messages(t)); n != 0 {
				t.Errorf("downstream got %d messages after a tempfail", n)
			}
		})
	}
}

func TestQuarantineStoreDownTempfails(t *testing.T) {
	quarantineAll := workerFunc(func(context.Context, *scanner.Message) (scanner.Verdict, error) {
		return scanner.Verdict{Action: scanner.ActionQuarantine, Class: "spam", Score: 9, Node: "t1"}, nil
	})
	f := startFront(t, quarantineAll, nil)
	c := dial(t, f.addr)
	if got := c.send("Subject: one\r\n\r\nfirst"); !strings.HasPrefix(got, "250 2.0.0 Ok: queued as ") {
		t.Fatalf("quarantined message reply = %q", got)
	}
	items, err := f.store.Quarantine.List(context.Background(), quarantine.Filter{})
	if err != nil || len(items) != 1 {
		t.Fatalf("quarantine after 250: %d items, %v", len(items), err)
	}
	// The store goes away: the next quarantine write fails, so no 250.
	f.store.Close()
	if got := dial(t, f.addr).send("Subject: two\r\n\r\nsecond"); !strings.HasPrefix(got, "451 4.3.0 ") {
		t.Errorf("reply with the store down = %q, want 451 4.3.0", got)
	}
}

func TestEHLOExtensions(t *testing.T) {
	cert := selfSigned(t)
	cases := []struct {
		name   string
		tls    *tls.Config
		want   []string
		absent []string
	}{
		{"plain", nil, []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "CHUNKING", "SMTPUTF8", "SIZE 1048576"}, []string{"STARTTLS"}},
		{"with certificate", &tls.Config{Certificates: []tls.Certificate{cert}}, []string{"STARTTLS", "SIZE 1048576"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := startFront(t, nil, func(o *Options) { o.TLS = c.tls })
			ext := strings.Join(dial(t, f.addr).ehlo(), "|")
			for _, w := range c.want {
				if !strings.Contains("|"+ext+"|", "|"+w+"|") {
					t.Errorf("EHLO lacks %s: %s", w, ext)
				}
			}
			for _, a := range c.absent {
				if strings.Contains(ext, a) {
					t.Errorf("EHLO advertises %s: %s", a, ext)
				}
			}
		})
	}
}

func TestRequireTLS(t *testing.T) {
	cert := selfSigned(t)
	f := startFront(t, nil, func(o *Options) {
		o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		o.RequireTLS = true
	})
	c := dial(t, f.addr)
	c.ehlo()
	if got := c.do("MAIL FROM:<a@sender.test>"); got != "530 5.7.0 Must issue a STARTTLS command first" {
		t.Errorf("MAIL before STARTTLS = %q", got)
	}
	if got := c.do("STARTTLS"); !strings.HasPrefix(got, "220") {
		t.Fatalf("STARTTLS = %q", got)
	}
	tc := tls.Client(c.nc, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.c = textproto.NewConn(tc)
	if got := c.send("Subject: tls\r\n\r\nsecret"); !strings.HasPrefix(got, "250") {
		t.Fatalf("DATA over TLS = %q", got)
	}
	m := f.sink.WaitMessages(t, 1, 5*time.Second)[0]
	if !strings.Contains(m, "with ESMTPS id") {
		t.Errorf("Received header does not record TLS:\n%s", m)
	}
}

func TestSessionLimits(t *testing.T) {
	f := startFront(t, nil, func(o *Options) { o.ReadTimeout = time.Second })
	c := dial(t, f.addr)
	c.ehlo()
	c.do("MAIL FROM:<a@sender.test>")
	for i, want := range []string{"250", "250", "250", "452 4.5.3"} {
		if got := c.do("RCPT TO:<r" + strconv.Itoa(i) + "@example.org>"); !strings.HasPrefix(got, want) {
			t.Errorf("RCPT %d = %q, want %s", i+1, got, want)
		}
	}
	// An idle client is told and dropped.
	code, msg, _ := c.c.ReadResponse(0)
	if code != 421 || !strings.HasPrefix(msg, "4.4.2") {
		t.Errorf("idle session = %d %s, want 421 4.4.2", code, msg)
	}
}

func TestLongLineIsAClearError(t *testing.T) {
	f := startFront(t, nil, func(o *Options) { o.MaxLineLength = 2000 })
	got := dial(t, f.addr).send("Subject: long\r\n\r\n" + strings.Repeat("x", 5000))
	if !strings.HasPrefix(got, "552 5.6.0 ") {
		t.Errorf("long line reply = %q, want 552 5.6.0", got)
	}
}

func TestListsAtRCPT(t *testing.T) {
	f := startFront(t, nil, nil)
	ctx := context.Background()
	for _, e := range []lists.Entry{
		{Kind: lists.Block, Value: "198.18.0.0/24"},
		{Kind: lists.Block, Value: "127.0.0.1", Rcpt: "blocked@example.org"},
	} {
		if _, _, err := f.lists.Add(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	c := dial(t, f.addr)
	c.ehlo()
	c.do("MAIL FROM:<a@sender.test>")
	if got := c.do("RCPT TO:<blocked@example.org>"); got != "550 5.7.1 Client blocked by list entry block 127.0.0.1 (rcpt-specific for blocked@example.org)" {
		t.Errorf("per-recipient block = %q", got)
	}
	if got := c.do("RCPT TO:<open@example.org>"); !strings.HasPrefix(got, "250") {
		t.Errorf("other recipient = %q", got)
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.test"}, DNSNames: []string{"mx.test"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestChunking(t *testing.T) {
	f := startFront(t, nil, nil)
	c := dial(t, f.addr)
	c.ehlo()
	c.do("MAIL FROM:<a@sender.test>")
	c.do("RCPT TO:<b@example.org>")
	part1, part2 := "Subject: chunks\r\n\r\nfirst half,\r\n", "second half\r\n"
	if got := c.do("BDAT " + strconv.Itoa(len(part1)) + "\r\n" + part1[:len(part1)-2]); !strings.HasPrefix(got, "250") {
		t.Fatalf("first chunk = %q", got)
	}
	// do() added the CRLF that completes the chunk; the last one is raw.
	fmtLast := "BDAT " + strconv.Itoa(len(part2)) + " LAST\r\n" + part2
	c.c.W.WriteString(fmtLast)
	c.c.W.Flush()
	code, msg, _ := c.c.ReadResponse(0)
	if code != 250 {
		t.Fatalf("last chunk = %d %s", code, msg)
	}
	m := f.sink.WaitMessages(t, 1, 5*time.Second)[0]
	if !strings.Contains(m, "first half,\nsecond half\n") {
		t.Errorf("chunked message arrived wrong:\n%s", m)
	}

	// RSET in the middle of a chunked transfer abandons it cleanly and the
	// session goes on.
	c.do("MAIL FROM:<a@sender.test>")
	c.do("RCPT TO:<b@example.org>")
	c.c.W.WriteString("BDAT 5\r\nhello")
	c.c.W.Flush()
	if code, msg, _ := c.c.ReadResponse(0); code != 250 {
		t.Fatalf("chunk = %d %s", code, msg)
	}
	if got := c.do("RSET"); !strings.HasPrefix(got, "250") {
		t.Fatalf("RSET = %q", got)
	}
	if got := c.send("Subject: after\r\n\r\nafter reset"); !strings.HasPrefix(got, "250") {
		t.Fatalf("transaction after RSET = %q", got)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(f.sink.Messages(t)); n != 2 {
		t.Errorf("downstream has %d messages, want 2 (the abandoned one must not arrive)", n)
	}
}

// A VIP handed to another node leaves sessions whose clients now talk to
// that node; Orphan must end them soon even though go-smtp re-arms its own,
// longer read deadline before every command, and leave other addresses be.
func TestOrphanedSessions(t *testing.T) {
	f := startFront(t, nil, func(o *Options) { o.Listen = []string{"127.0.0.1:0", "127.0.0.2:0"} })
	addrs := f.srv.Addrs()
	vip, other := dial(t, addrs[0].String()), dial(t, addrs[1].String())
	vip.ehlo()
	other.ehlo()

	const grace = 300 * time.Millisecond
	start := time.Now()
	if n := f.srv.Orphan(netip.MustParseAddr("127.0.0.1"), grace); n != 1 {
		t.Fatalf("Orphan found %d sessions, want 1", n)
	}
	// The session still works within the grace, and the command re-arms
	// go-smtp's 10 s read deadline, which the cutoff must bound.
	if r := vip.do("NOOP"); !strings.HasPrefix(r, "250") {
		t.Fatalf("NOOP within the grace: %s", r)
	}
	vip.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	code, _, err := vip.c.ReadResponse(0)
	ended := time.Since(start)
	if err == nil && code != 421 {
		t.Fatalf("orphaned session got %d, want 421 or a close", code)
	}
	if ended < grace || ended > grace+2*time.Second {
		t.Errorf("orphaned session ended after %v, want about %v", ended, grace)
	}
	if r := other.do("NOOP"); !strings.HasPrefix(r, "250") {
		t.Errorf("session on another address: %s", r)
	}
}
