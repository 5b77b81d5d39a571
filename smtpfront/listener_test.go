package smtpfront

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// serveEcho accepts from l and answers every connection with a greeting
// naming the client address it sees, like the SMTP server would use it.
func serveEcho(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			fmt.Fprintf(c, "220 %s\r\n", remoteIP(c))
			io.Copy(io.Discard, c)
			c.Close()
		}()
	}
}

// refusals counts the reasons the listener reports, as the metric does.
type refusals struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *refusals) add(reason string) {
	r.mu.Lock()
	r.n[reason]++
	r.mu.Unlock()
}

func (r *refusals) get(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[reason]
}

func startLimited(t *testing.T, o Options) (string, *refusals) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ref := &refusals{n: map[string]int{}}
	l := newLimitListener(inner, &o, slog.New(slog.NewTextHandler(io.Discard, nil)), ref.add)
	go serveEcho(l)
	t.Cleanup(func() { l.Close() })
	return inner.Addr().String(), ref
}

func greeting(t *testing.T, addr, preamble string) (net.Conn, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if preamble != "" {
		io.WriteString(c, preamble)
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	return c, strings.TrimSpace(line)
}

func TestLimitListener(t *testing.T) {
	cases := []struct {
		name     string
		o        Options
		dials    int
		wantLast string
		reason   string // counted refusal, "" = none
	}{
		{"under limits", Options{MaxConnections: 5, MaxConnectionsPerIP: 5}, 3, "220 127.0.0.1", ""},
		{"total", Options{MaxConnections: 2, MaxConnectionsPerIP: 10, Hostname: "mx.test"}, 3, "421 4.3.2 mx.test Too many connections, try again later", "max_connections"},
		{"per ip", Options{MaxConnections: 10, MaxConnectionsPerIP: 2, Hostname: "mx.test"}, 3, "421 4.7.0 mx.test Too many connections from your address, try again later", "max_connections_per_ip"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr, ref := startLimited(t, c.o)
			var last string
			for i := 0; i < c.dials; i++ {
				_, last = greeting(t, addr, "")
			}
			if last != c.wantLast {
				t.Errorf("last greeting = %q, want %q", last, c.wantLast)
			}
			for _, r := range []string{"max_connections", "max_connections_per_ip"} {
				want := 0
				if r == c.reason {
					want = 1
				}
				if got := ref.get(r); got != want {
					t.Errorf("refusals counted as %s = %d, want %d", r, got, want)
				}
			}
		})
	}
}

func TestLimitListenerReleasesOnClose(t *testing.T) {
	addr, _ := startLimited(t, Options{MaxConnections: 1})
	c, g := greeting(t, addr, "")
	if !strings.HasPrefix(g, "220") {
		t.Fatalf("first: %q", g)
	}
	c.Close()
	// The server side notices the close on its next read; retry briefly.
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, g = greeting(t, addr, "")
		if strings.HasPrefix(g, "220") || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.HasPrefix(g, "220") {
		t.Errorf("slot not released after close: %q", g)
	}
}

func TestProxyHeader(t *testing.T) {
	loop := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	other := []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")}
	cases := []struct {
		name     string
		trusted  []netip.Prefix
		preamble string
		want     string
	}{
		{"v1 from trusted balancer", loop, "PROXY TCP4 198.18.0.77 127.0.0.1 40000 25\r\n", "220 198.18.0.77"},
		{"v2 from trusted balancer", loop, string(proxyV2(t, "198.18.0.78")), "220 198.18.0.78"},
		{"untrusted peer cannot forge", other, "PROXY TCP4 198.18.0.77 127.0.0.1 40000 25\r\n", "220 127.0.0.1"},
		{"trusted balancer without header is refused", loop, "EHLO x\r\n", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr, ref := startLimited(t, Options{ProxyProtocol: true, ProxyTrusted: c.trusted})
			if _, g := greeting(t, addr, c.preamble); g != c.want {
				t.Errorf("greeting = %q, want %q", g, c.want)
			}
			// The listener counts before it closes, so the count is there.
			wantRefused := 0
			if c.want == "" {
				wantRefused = 1
			}
			if got := ref.get("proxy_header"); got != wantRefused {
				t.Errorf("refusals counted as proxy_header = %d, want %d", got, wantRefused)
			}
		})
	}
}

// proxyV2 builds a PROXY v2 header for a TCP4 client at ip.
func proxyV2(t *testing.T, ip string) []byte {
	t.Helper()
	a := netip.MustParseAddr(ip).As4()
	b := []byte("\r\n\r\n\x00\r\nQUIT\n")
	b = append(b, 0x21, 0x11, 0, 12)
	b = append(b, a[:]...)
	b = append(b, 127, 0, 0, 1, 0x9c, 0x40, 0, 25)
	return b
}
