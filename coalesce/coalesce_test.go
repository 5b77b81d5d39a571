package coalesce

import (
	"bufio"
	"io"
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
