package console_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/node"
	"github.com/mxgate/mxgate/testenv"
)

const (
	gtube     = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
	testToken = "console-test-token-0123456789"
)

// gateway is a real node on loopback in front of a real smtp-sink, its
// log kept for the audit lines.
type gateway struct {
	node  *node.Node
	sink  *testenv.Sink
	smtp  string // host:port
	admin string // http://host:port
	log   *lockedBuffer
}

// startGateway builds and starts a node; mod may change its configuration.
func startGateway(t *testing.T, mod func(*config.Config)) *gateway {
	t.Helper()
	ctx := context.Background()
	sink := testenv.StartSink(t)
	cfg := config.Default()
	cfg.Node.ID = "n1"
	cfg.Node.DataDir = t.TempDir()
	cfg.SMTP.Listen = []string{"127.0.0.1:0"}
	cfg.SMTP.Hostname = "mx.test"
	cfg.SMTP.AcceptDomains = []string{"example.org"}
	cfg.SMTP.DrainTimeout.Duration = 5 * time.Second
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Admin.Token = testToken
	cfg.Downstream.Address = sink.Addr
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	buf := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n, err := node.Build(ctx, cfg, logger)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if err := n.Start(ctx); err != nil {
		n.Stop(ctx)
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		n.Stop(context.Background())
		if t.Failed() {
			t.Logf("node log:\n%s", buf.String())
		}
	})
	return &gateway{node: n, sink: sink, smtp: n.SMTPAddrs()[0].String(), admin: "http://" + n.AdminAddr().String(), log: buf}
}

// send delivers one message to the node and returns its queue id.
func (g *gateway) send(t *testing.T, from string, to []string, subject, body string) string {
	t.Helper()
	return g.sendRaw(t, from, to, fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n\r\n%s\r\n", from, strings.Join(to, ", "), subject, time.Now().Format(time.RFC1123Z), body))
}

// sendRaw delivers raw (a whole message, CRLF lines) to the node and
// returns its queue id.
func (g *gateway) sendRaw(t *testing.T, from string, to []string, raw string) string {
	t.Helper()
	c, err := smtp.Dial(g.smtp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail(from, nil); err != nil {
		t.Fatalf("MAIL: %v", err)
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatalf("RCPT %s: %v", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	io.WriteString(w, raw)
	resp, err := w.CloseWithResponse()
	if err != nil {
		t.Fatalf("end of DATA: %v", err)
	}
	_ = c.Quit()
	_, id, ok := strings.Cut(resp.StatusText, "queued as ")
	if !ok {
		t.Fatalf("DATA reply %q has no queue id", resp.StatusText)
	}
	id, _, _ = strings.Cut(id, " ")
	return id
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
