package main

// The quarantine write and the SMTP reply agree (issue 8, point 12): a
// Redis connection reset at the moment of the write, or a client that
// lost our 250, must not leave two items for one message after the
// client's retry.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxgate/mxgate/testenv"
)

// cutProxy is a TCP proxy between mxgate and redis-server that loses the
// reply to the first quarantine write: it forwards the script (the first
// command naming a quarantine message key), swallows Redis's answer, and
// cuts every connection. With stayDown it then refuses every new
// connection until restore, so that every retry of the write fails too.
type cutProxy struct {
	t        *testing.T
	ln       net.Listener
	target   string
	stayDown bool
	cut      chan struct{} // closed when the reply was lost

	mu     sync.Mutex
	down   bool
	done   bool // the one cut happened
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
	closed bool
}

// quarantineWriteMarker is in the put script's keys and in no command that
// runs before it in these tests.
var quarantineWriteMarker = []byte("{mxgate}:q:raw:")

func startCutProxy(t *testing.T, target string, stayDown bool) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{t: t, ln: ln, target: target, stayDown: stayDown, cut: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		p.closed = true
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) URL() string { return "redis://" + p.ln.Addr().String() + "/0" }

// restore lets connections through again.
func (p *cutProxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// track registers c; it reports false (and closes c) when the proxy is
// down or closing.
func (p *cutProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down || p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *cutProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(p.conns, c)
	}
}

// lose cuts every connection, once, and goes down if asked to.
func (p *cutProxy) lose() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.done = true
	p.down = p.stayDown
	for c := range p.conns {
		c.Close()
	}
	close(p.cut)
}

func (p *cutProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(client) {
			continue
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil || !p.track(server) {
			p.untrack(client)
			if server != nil {
				server.Close()
			}
			continue
		}
		var armed sync.Mutex // held from the script's forwarding to its reply
		armedSet := false
		p.wg.Go(func() {
			defer p.untrack(client, server)
			buf := make([]byte, 64<<10)
			var tail []byte
			for {
				n, err := client.Read(buf)
				if n > 0 {
					window := append(tail, buf[:n]...)
					armed.Lock()
					p.mu.Lock()
					if !p.done && bytes.Contains(window, quarantineWriteMarker) {
						armedSet = true
					}
					p.mu.Unlock()
					armed.Unlock()
					if _, err := server.Write(buf[:n]); err != nil {
						return
					}
					tail = append(tail[:0], window[max(0, len(window)-len(quarantineWriteMarker)):]...)
				}
				if err != nil {
					return
				}
			}
		})
		p.wg.Go(func() {
			defer p.untrack(client, server)
			buf := make([]byte, 64<<10)
			for {
				n, err := server.Read(buf)
				if n > 0 {
					armed.Lock()
					lose := armedSet && buf[0] != '-' // an error (NOSCRIPT) ran nothing: pass it on
					armedSet = false
					armed.Unlock()
					if lose {
						p.lose()
						return
					}
					if _, err := client.Write(buf[:n]); err != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		})
	}
}

// sendSame sends the one message of these tests in a session of its own,
// as an MTA's retry does, and returns the reply to its data.
func sendSame(t *testing.T, addr string) (int, string) {
	t.Helper()
	s, code, msg := dialSMTP(t, addr)
	if code != 220 {
		t.Fatalf("greeting %d %s", code, msg)
	}
	defer s.cmd("QUIT")
	for _, c := range []string{"EHLO client.test", "MAIL FROM:<spammer@sender.test>", "RCPT TO:<carol@example.org>", "RCPT TO:<dave@example.org>"} {
		if code, msg := s.cmd("%s", c); code != 250 {
			t.Fatalf("%s: %d %s", c, code, msg)
		}
	}
	if code, msg := s.cmd("DATA"); code != 354 {
		t.Fatalf("DATA: %d %s", code, msg)
	}
	return s.raw("From: spammer@sender.test\r\nTo: carol@example.org\r\nSubject: cheap stuff\r\n" +
		"Message-ID: <retry-1@sender.test>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\nBuy now\r\n" + gtube + "\r\n.\r\n")
}

// queuedAs is the id in "Ok: queued as ID".
func queuedAs(t *testing.T, msg string) string {
	t.Helper()
	_, id, ok := strings.Cut(msg, "queued as ")
	if !ok {
		t.Fatalf("reply %q names no queue id", msg)
	}
	return strings.TrimSpace(id)
}

// TestQuarantineWriteAgreesWithReply: the reply to a quarantine write
// whose Redis reply was lost, and a client's retry of the same message,
// leave exactly one item.
func TestQuarantineWriteAgreesWithReply(t *testing.T) {
	tests := []struct {
		name string
		// stayDown keeps Redis unreachable after the lost reply, until
		// the gateway logs a failed write (restoreOnRetry) or the client
		// got its 451.
		stayDown, restoreOnRetry bool
		want451                  bool
	}{
		// go-redis's own retry finds the item the script stored.
		{"reply lost, store back at once", false, false, false},
		// The front end's retry of the write finds it.
		{"reply lost, store back during the retries", true, true, false},
		// 451, and the client's retry finds it.
		{"reply lost, store away", true, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := testenv.StartRedis(t)
			proxy := startCutProxy(t, r.Addr, tc.stayDown)
			sink := testenv.StartSink(t)
			// The store section goes after the scanner's lines, at the top
			// level of the file.
			g := startGateway(t, sink.Addr, map[string]string{"store": fmt.Sprintf("  redis: %q", proxy.URL())})

			sent := make(chan struct{})
			var watcher sync.WaitGroup
			if tc.restoreOnRetry {
				watcher.Go(func() {
					for !strings.Contains(g.Proc.Text(), `msg="quarantine write failed, trying again"`) {
						select {
						case <-sent:
							return
						case <-time.After(20 * time.Millisecond):
						}
					}
					proxy.restore()
				})
			}
			code, msg := sendSame(t, g.SMTP)
			close(sent)
			watcher.Wait()
			select {
			case <-proxy.cut:
			default:
				t.Fatalf("the proxy never saw the quarantine write (reply %d %s)", code, msg)
			}
			var first string
			if tc.want451 {
				if code != 451 || !strings.Contains(msg, "4.3.0") {
					t.Fatalf("first attempt with the store away: %d %s, want 451 4.3.0", code, msg)
				}
				proxy.restore()
			} else {
				if code != 250 {
					t.Fatalf("first attempt: %d %s, want 250 (the item is stored)", code, msg)
				}
				first = queuedAs(t, msg)
			}
			if tc.restoreOnRetry && !strings.Contains(g.Proc.Text(), `msg="quarantine write confirmed on retry" id=`+first) {
				t.Errorf("no log line confirming the write on a retry:\n%s", g.Proc.Text())
			}
			if items := g.quarantine(t); len(items) != 1 {
				t.Fatalf("quarantine has %d items after the first attempt, want 1 (stored whatever the reply): %v", len(items), items)
			}

			// The client's retry (after the 451, or after losing our 250).
			code, msg = sendSame(t, g.SMTP)
			if code != 250 {
				t.Fatalf("retry: %d %s, want 250", code, msg)
			}
			again := queuedAs(t, msg)
			items := g.quarantine(t)
			if len(items) != 1 {
				t.Fatalf("quarantine has %d items after the retry, want 1: %v", len(items), items)
			}
			held := items[0]["id"].(string)
			if again != held || (first != "" && first != held) {
				t.Errorf("replies named %q then %q, the item is %q", first, again, held)
			}
			// The retry's transaction has its own id: it was told the first.
			if !strings.Contains(g.Proc.Text(), "held_as="+held) {
				t.Errorf("no log line mapping the retry to %s:\n%s", held, g.Proc.Text())
			}
		})
	}
}

// TestQuarantineRetransmissionHeldOnce: a client that lost our 250 and
// sends the message again gets the first id, on the embedded store and on
// Redis.
func TestQuarantineRetransmissionHeldOnce(t *testing.T) {
	for _, backend := range []string{"embedded", "redis"} {
		t.Run(backend, func(t *testing.T) {
			extra := map[string]string{}
			if backend == "redis" {
				r := testenv.StartRedis(t)
				extra["store"] = fmt.Sprintf("  redis: %q", r.URL)
			}
			sink := testenv.StartSink(t)
			g := startGateway(t, sink.Addr, extra)
			var ids []string
			for i := range 3 {
				code, msg := sendSame(t, g.SMTP)
				if code != 250 {
					t.Fatalf("attempt %d: %d %s", i+1, code, msg)
				}
				ids = append(ids, queuedAs(t, msg))
			}
			if ids[1] != ids[0] || ids[2] != ids[0] {
				t.Errorf("the same message was queued as %v, want the first id each time", ids)
			}
			if items := g.quarantine(t); len(items) != 1 || items[0]["id"] != ids[0] {
				t.Errorf("quarantine holds %v, want the one item %s", items, ids[0])
			}
			// Every transaction has its record, each naming the one item.
			deadline := time.Now().Add(10 * time.Second)
			for {
				out, err := g.cli(t, "log", "--action", "quarantine", "--json")
				var recs []struct {
					ID           string `json:"id"`
					QuarantineID string `json:"quarantine_id"`
				}
				if err == nil && json.Unmarshal([]byte(out), &recs) == nil && len(recs) == 3 {
					for _, rec := range recs {
						if rec.QuarantineID != ids[0] {
							t.Errorf("log record %s names quarantine item %q, want %s", rec.ID, rec.QuarantineID, ids[0])
						}
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("message log has no 3 quarantine records (err %v):\n%s", err, out)
				}
				time.Sleep(100 * time.Millisecond)
			}
			// Something else for the same envelope is a message of its own.
			out, code := swaks(t, g.SMTP, "--from", "spammer@sender.test", "--to", "carol@example.org", "--body", "Other\n"+gtube+"\n")
			if code != 0 || !strings.Contains(out, "<-  250 ") {
				t.Fatalf("another message: exit %d\n%s", code, out)
			}
			if items := g.quarantine(t); len(items) != 2 {
				t.Errorf("quarantine holds %d items, want 2", len(items))
			}
		})
	}
}

// TestQuarantineWriteStoreStopped: a stopped Redis refuses connections;
// nothing can have been written, so the client gets its 451 without the
// front end's retries holding the session, and its retry once Redis is
// back is stored.
func TestQuarantineWriteStoreStopped(t *testing.T) {
	r := testenv.StartRedis(t)
	sink := testenv.StartSink(t)
	g := startGateway(t, sink.Addr, map[string]string{"store": fmt.Sprintf("  redis: %q", r.URL)})
	r.Stop()
	if code, msg := sendSame(t, g.SMTP); code != 451 || !strings.Contains(msg, "4.3.0") {
		t.Fatalf("with Redis stopped: %d %s, want 451 4.3.0", code, msg)
	}
	if strings.Contains(g.Proc.Text(), "quarantine write failed, trying again") {
		t.Errorf("the front end retried a write to a store that refused the connection:\n%s", g.Proc.Text())
	}
	r.Start()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, msg := sendSame(t, g.SMTP)
		if code == 250 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retry after Redis came back: %d %s", code, msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if items := g.quarantine(t); len(items) != 1 {
		t.Errorf("quarantine holds %d items, want 1", len(items))
	}
}
