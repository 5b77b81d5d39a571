package coalesce

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// countingConn counts the writes that reach the real connection.
type countingConn struct {
	net.Conn
	writes int
}

func (c *countingConn) Write(p []byte) (int, error) { c.writes++; return c.Conn.Write(p) }

func TestHeldUntilRead(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	cc := &countingConn{Conn: a}
	c := New(cc, NewBuffers())
	got := make(chan string, 1)
	go func() {
		r := bufio.NewReader(b)
		var lines []string
		for i := 0; i < 3; i++ {
			l, _ := r.ReadString('\n')
			lines = append(lines, l)
		}
		got <- strings.Join(lines, "")
		io.WriteString(b, "354 go\r\n")
	}()
	for _, l := range []string{"250 a\r\n", "250 b\r\n", "354 c\r\n"} {
		if _, err := io.WriteString(c, l); err != nil {
			t.Fatal(err)
		}
	}
	if cc.writes != 0 {
		t.Fatalf("%d writes before the read, want 0", cc.writes)
	}
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "354 go\r\n" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if s := <-got; s != "250 a\r\n250 b\r\n354 c\r\n" {
		t.Errorf("peer got %q", s)
	}
	if cc.writes != 1 {
		t.Errorf("%d writes, want 1", cc.writes)
	}
}

func TestLargeWritesAndClose(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := New(a, NewBuffers())
	done := make(chan int)
	go func() {
		n, _ := io.Copy(io.Discard, b)
		done <- int(n)
	}()
	big := strings.Repeat("x", 3*maxHeld+17)
	io.WriteString(c, "head\r\n")
	io.WriteString(c, big)
	io.WriteString(c, "tail\r\n")
	c.Close()
	if n := <-done; n != len(big)+12 {
		t.Errorf("peer got %d bytes, want %d", n, len(big)+12)
	}
}

func TestReadAhead(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := New(a, NewBuffers())
	msg := strings.Repeat("0123456789", 1000)
	go func() { io.WriteString(b, msg); b.Close() }()
	var got strings.Builder
	small := make([]byte, 7) // smaller than what the socket has
	for {
		n, err := c.Read(small)
		got.Write(small[:n])
		if err != nil {
			break
		}
	}
	if got.String() != msg {
		t.Errorf("read %d bytes, want %d, same order", got.Len(), len(msg))
	}
	if c.rbuf != nil {
		t.Error("a drained connection still holds its read buffer")
	}
}

func TestShorterDeadlineFlushes(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go io.Copy(io.Discard, b)
	cc := &countingConn{Conn: a}
	c := New(cc, NewBuffers())
	now := time.Now()
	steps := []struct {
		name     string
		deadline time.Time
		writes   int // reaching the connection so far
	}{
		{"a first deadline sends what was held under none", now.Add(time.Minute), 1},
		{"a later deadline keeps the bytes held", now.Add(2 * time.Minute), 1},
		{"no deadline keeps them held", time.Time{}, 1},
		{"a deadline after none sends them", now.Add(3 * time.Minute), 2},
		{"later again", now.Add(4 * time.Minute), 2},
		{"an earlier deadline sends them", now.Add(time.Minute), 3},
	}
	for _, s := range steps {
		io.WriteString(c, "250 ok\r\n")
		if err := c.SetWriteDeadline(s.deadline); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if cc.writes != s.writes {
			t.Errorf("%s: %d writes, want %d", s.name, cc.writes, s.writes)
		}
	}
}

// crypto/tls closes by setting the write deadline to now before the
// close_notify goes out: the last reply held must reach the peer first.
func TestLastReplyBeforeTLSClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cert := selfSigned(t)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			return
		}
		tc := tls.Server(New(raw, NewBuffers()), &tls.Config{Certificates: []tls.Certificate{cert}})
		if tc.Handshake() != nil {
			raw.Close()
			return
		}
		// As go-smtp replies: a write deadline, the reply, then the close.
		tc.SetWriteDeadline(time.Now().Add(time.Minute))
		io.WriteString(tc, "221 2.0.0 Bye\r\n")
		tc.Close()
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if line != "221 2.0.0 Bye\r\n" {
		t.Errorf("client read %q, %v; want the 221", line, err)
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
