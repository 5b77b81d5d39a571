package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/store"
	"github.com/mxgate/mxgate/testenv"
)

const gtube = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

// nodeConfig is a single node on loopback (ports chosen by the kernel)
// relaying to downstream, with its store in a new data directory, or in
// Redis at redisURL when it is set.
func nodeConfig(t *testing.T, downstream, redisURL string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Node.ID = "n1"
	cfg.Node.DataDir = t.TempDir()
	cfg.SMTP.Listen = []string{"127.0.0.1:0"}
	cfg.SMTP.Hostname = "mx.test"
	cfg.SMTP.AcceptDomains = []string{"example.org"}
	cfg.SMTP.DrainTimeout.Duration = 10 * time.Second
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Downstream.Address = downstream
	cfg.Store.Redis = redisURL
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openData dials addr and opens a transaction to b@example.org up to DATA;
// the client closes when the test ends.
func openData(t *testing.T, addr string) (*smtp.Client, *smtp.DataCommand) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("a@sender.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.org", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}

// send runs one transaction to b@example.org and returns the text of the
// DATA reply, which must be a success.
func send(t *testing.T, addr, subject, body string) string {
	t.Helper()
	c, w := openData(t, addr)
	fmt.Fprintf(w, "From: a@sender.test\r\nTo: b@example.org\r\nSubject: %s\r\n\r\n%s\r\n", subject, body)
	resp, err := w.CloseWithResponse()
	if err != nil {
		t.Fatalf("end of data (%s): %v", subject, err)
	}
	c.Quit()
	return resp.StatusText
}

// A real node built in-process, on the embedded store and on a real
// redis-server: a clean message reaches the smtp-sink behind it, a GTUBE
// message is quarantined and released through the admin API, and Stop
// closes every port and the store, which holds both messages' log records.
func TestNodeCarriesMail(t *testing.T) {
	for _, tt := range []struct {
		name  string
		redis func(t *testing.T) string
		// reopen opens the node's store after Stop; on the embedded store
		// that also proves Stop let go of the file.
		reopen func(ctx context.Context, cfg config.Config) (*store.Backend, error)
	}{
		{"embedded", func(*testing.T) string { return "" }, func(_ context.Context, cfg config.Config) (*store.Backend, error) {
			return store.OpenEmbedded(cfg.Node.DataDir)
		}},
		{"redis", func(t *testing.T) string { return testenv.StartRedis(t).URL }, func(ctx context.Context, cfg config.Config) (*store.Backend, error) {
			return store.OpenRedis(ctx, cfg.Store.Redis)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			sink := testenv.StartSink(t)
			cfg := nodeConfig(t, sink.Addr, tt.redis(t))
			n, err := Build(ctx, cfg, testLogger(t))
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if err := n.Start(ctx); err != nil {
				n.Stop(ctx)
				t.Fatalf("Start: %v", err)
			}
			smtpAddr, adminAddr := n.SMTPAddrs()[0].String(), n.AdminAddr().String()
			for _, a := range []string{smtpAddr, adminAddr} {
				if !answers(a) {
					t.Errorf("%s does not answer after Start", a)
				}
			}

			send(t, smtpAddr, "clean", "hello")
			r := send(t, smtpAddr, "spam", gtube)
			_, qid, ok := strings.Cut(r, "queued as ")
			if !ok {
				t.Fatalf("GTUBE message: %q, want … queued as ID", r)
			}
			m := sink.WaitMessages(t, 1, 30*time.Second)[0]
			if v, node := testenv.Header(m, "X-Mxgate-Verdict"), testenv.Header(m, "X-Mxgate-Node"); v != "deliver (clean)" || node != "n1" {
				t.Errorf("delivered with verdict %q from node %q:\n%s", v, node, m)
			}

			ac, err := admin.NewClient("http://"+adminAddr, "")
			if err != nil {
				t.Fatal(err)
			}
			items, err := ac.QuarantineList(ctx, admin.QuarantineQuery{})
			if err != nil || len(items) != 1 || items[0].ID != qid {
				t.Fatalf("quarantine through the admin API: %v, %v; want only %s", items, err, qid)
			}
			if res, err := ac.QuarantineRelease(ctx, qid, admin.ReleaseOptions{}); err != nil {
				t.Fatalf("release %s: %v (%+v)", qid, err, res)
			}
			// The sink's dumps come in no particular order.
			var released string
			for _, m := range sink.WaitMessages(t, 2, 30*time.Second) {
				if strings.Contains(m, gtube) {
					released = m
				}
			}
			if testenv.Header(released, "X-Mxgate-Released") == "" {
				t.Errorf("released message, without X-Mxgate-Released:\n%s", released)
			}

			n.Stop(ctx)
			for _, a := range []string{smtpAddr, adminAddr} {
				if answers(a) {
					t.Errorf("%s still answers after Stop", a)
				}
			}
			select {
			case err := <-n.Failed():
				t.Errorf("a part failed: %v", err)
			default:
			}

			st, err := tt.reopen(ctx, cfg)
			if err != nil {
				t.Fatalf("the store after Stop: %v", err)
			}
			defer st.Close()
			for _, action := range []string{"deliver", "quarantine"} {
				recs, err := st.Log.Search(ctx, msglog.Query{Action: action})
				if err != nil || len(recs) != 1 || recs[0].Node != "n1" {
					t.Errorf("message log, action %s: %+v, %v; want one record from n1", action, recs, err)
				}
			}
		})
	}
}

// answers reports whether anything at addr answers a request (an SMTP
// greeting, an HTTP response) within a second.
func answers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	c.Write([]byte("GET /healthz HTTP/1.0\r\n\r\n"))
	n, _ := c.Read(make([]byte, 1))
	return n > 0
}

// A busy port fails Start with one error naming its key, and nothing is
// served, neither SMTP nor the admin API. Stop then releases the store (a
// second node can open it).
func TestBusyPortFailsTheStart(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tt := range []struct {
		key     string
		set     func(cfg *config.Config, busy string)
		wantErr string
	}{
		{"admin.listen", func(cfg *config.Config, busy string) { cfg.Admin.Listen = busy },
			"admin.listen: listen tcp " + busy.Addr().String() + ": bind: address already in use"},
		{"smtp.listen", func(cfg *config.Config, busy string) { cfg.SMTP.Listen = []string{busy} },
			"smtp.listen: listen on " + busy.Addr().String() + ": listen tcp " + busy.Addr().String() + ": bind: address already in use"},
	} {
		t.Run(tt.key, func(t *testing.T) {
			ctx := context.Background()
			cfg := nodeConfig(t, "127.0.0.1:1", "")
			cfg.SMTP.Listen, cfg.Admin.Listen = []string{testenv.FreeAddr(t)}, testenv.FreeAddr(t)
			tt.set(&cfg, busy.Addr().String())
			n, err := Build(ctx, cfg, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Start(ctx); err == nil || err.Error() != tt.wantErr {
				t.Errorf("Start = %v, want %q", err, tt.wantErr)
			}
			for _, a := range []string{cfg.SMTP.Listen[0], cfg.Admin.Listen} {
				if answers(a) {
					t.Errorf("%s is served by a node that cannot start", a)
				}
			}
			n.Stop(ctx)
			again, err := Build(ctx, cfg, testLogger(t))
			if err != nil {
				t.Fatalf("Build after the failed start's Stop: %v", err)
			}
			again.Stop(ctx)
		})
	}
}

// A Build whose ctx ends says so (the error wraps ctx's) and leaves nothing
// open: the store can be opened again at once.
func TestBuildEndsWithItsContext(t *testing.T) {
	cfg := nodeConfig(t, "127.0.0.1:1", "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n, err := Build(ctx, cfg, testLogger(t))
	if !errors.Is(err, context.Canceled) || n != nil {
		t.Fatalf("Build with an ended context = %v, %v; want an error wrapping context.Canceled", n, err)
	}
	st, err := store.OpenEmbedded(cfg.Node.DataDir)
	if err != nil {
		t.Fatalf("the store after the stopped Build: %v", err)
	}
	st.Close()
}

// Stop lets a message in flight finish: its end of data, sent after the
// listener has closed, gets its 250 and the message reaches the
// downstream; Stop returns once that session has ended.
func TestStopDrainsMessageInFlight(t *testing.T) {
	ctx := context.Background()
	sink := testenv.StartSink(t)
	n, err := Build(ctx, nodeConfig(t, sink.Addr, ""), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		n.Stop(ctx)
		t.Fatal(err)
	}
	addr := n.SMTPAddrs()[0].String()
	c, w := openData(t, addr)
	fmt.Fprint(w, "Subject: in flight\r\n\r\nfirst half\r\n")

	stopped := make(chan struct{})
	go func() { n.Stop(ctx); close(stopped) }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		l, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		l.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener still takes connections 30 s after Stop began")
		}
	}
	select {
	case <-stopped:
		t.Fatal("Stop returned while a session was in DATA")
	default:
	}
	fmt.Fprint(w, "second half\r\n")
	if err := w.Close(); err != nil {
		t.Fatalf("end of data during the drain: %v", err)
	}
	c.Quit()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("Stop did not return after the last session ended")
	}
	if m := sink.WaitMessages(t, 1, 10*time.Second)[0]; !strings.Contains(m, "second half") {
		t.Errorf("delivered message is incomplete:\n%s", m)
	}
}
