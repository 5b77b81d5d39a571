// Package coalesce cuts the system calls a relayed message costs.
//
// SMTP is request/response: a side that writes always reads next, either
// the peer's reply or its next command. go-smtp flushes after every line,
// so a pipelined MAIL/RCPT/DATA costs three write system calls, and it
// reads through a 4 KB buffer, so a 10 KB body costs three reads. On
// loopback and in VMs the system call is the expensive part of relaying.
//
// Writes are held until the next read (or until 64 KB are held): the same
// bytes in the same order, in fewer segments, and never delaying anything
// the peer waits for, since the holder is about to wait for the peer
// itself. Reads take whatever the socket has, up to 32 KB, into a pooled
// buffer that goes back to the pool once drained, so an idle connection
// holds no buffer.
//
// Held bytes go out before any write deadline that is earlier than the one
// they were written under: crypto/tls closes a connection by setting the
// write deadline to now, which would otherwise cut off a last reply (221,
// 421) still held here.
package coalesce

import (
	"errors"
	"net"
	"sync"
	"time"
)

const (
	// maxHeld bounds what is held: a large body goes out in pieces of this size.
	maxHeld = 64 << 10
	// readAhead is the size of the pooled read buffers.
	readAhead = 32 << 10
)

// Buffers is a pool of read-ahead buffers shared by many connections.
type Buffers struct{ p sync.Pool }

// NewBuffers returns an empty pool.
func NewBuffers() *Buffers {
	b := &Buffers{}
	b.p.New = func() any { s := make([]byte, readAhead); return &s }
	return b
}

// Conn wraps a net.Conn. Read and Close send what is held first.
type Conn struct {
	net.Conn
	bufs *Buffers

	wmu  sync.Mutex
	held []byte
	wdl  time.Time // the write deadline in force; zero = none

	rbuf *[]byte // pooled; nil when nothing is read ahead
	r, w int     // unread bytes are (*rbuf)[r:w]
}

// New wraps c; bufs may be nil (no read-ahead).
func New(c net.Conn, bufs *Buffers) *Conn { return &Conn{Conn: c, bufs: bufs} }

func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if len(c.held)+len(p) > maxHeld {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > maxHeld {
			return c.Conn.Write(p)
		}
	}
	c.held = append(c.held, p...)
	return len(p), nil
}

// Flush sends what is held.
func (c *Conn) Flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.flushLocked()
}

func (c *Conn) flushLocked() error {
	if len(c.held) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.held)
	if cap(c.held) > 2*maxHeld {
		c.held = nil
	} else {
		c.held = c.held[:0]
	}
	return err
}

// SetWriteDeadline sends what is held first when t is earlier than the
// deadline in force, so the held bytes get the time they were written with.
// go-smtp moves the deadline later before every reply, which keeps them held.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	ferr := c.flushBefore(t)
	return errors.Join(c.Conn.SetWriteDeadline(t), ferr)
}

// SetDeadline is SetWriteDeadline and SetReadDeadline at once.
func (c *Conn) SetDeadline(t time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	ferr := c.flushBefore(t)
	return errors.Join(c.Conn.SetDeadline(t), ferr)
}

// flushBefore flushes when t shortens the write deadline, and records t.
func (c *Conn) flushBefore(t time.Time) error {
	var err error
	if !t.IsZero() && (c.wdl.IsZero() || t.Before(c.wdl)) {
		err = c.flushLocked()
	}
	c.wdl = t
	return err
}

// Read is not safe for concurrent use (no reader of a stream is).
func (c *Conn) Read(p []byte) (int, error) {
	if err := c.Flush(); err != nil {
		return 0, err
	}
	if c.rbuf == nil {
		if c.bufs == nil || len(p) >= readAhead {
			return c.Conn.Read(p)
		}
		c.rbuf = c.bufs.p.Get().(*[]byte)
		n, err := c.Conn.Read(*c.rbuf)
		c.r, c.w = 0, n
		if n == 0 {
			c.release()
			return 0, err
		}
	}
	n := copy(p, (*c.rbuf)[c.r:c.w])
	c.r += n
	if c.r == c.w {
		c.release()
	}
	return n, nil
}

func (c *Conn) release() {
	c.bufs.p.Put(c.rbuf)
	c.rbuf = nil
}

// Close sends what is held (a last reply, a QUIT), then closes.
func (c *Conn) Close() error {
	c.Flush()
	return c.Conn.Close()
}
