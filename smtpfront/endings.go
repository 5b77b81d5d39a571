package smtpfront

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/mxgate/mxgate/coalesce"
)

// How a connection ends when go-smtp would not end it.
//
// go-smtp keeps a session open after any reply a session method returns,
// 421 included, and after a read timeout it hands the partial line it had
// to its command parser (bufio's ReadLine drops the error when it has
// bytes), then reads the next line under a fresh deadline. The connection
// below go-smtp (trackedConn) therefore ends sessions itself:
//
//   - ending: the session's last reply is written; the next read returns
//     EOF, which go-smtp takes for the client's close after it flushed.
//   - a read timeout is sticky: every later read fails the same way. In
//     plain text the 421 4.4.2 goes out at once and nothing go-smtp writes
//     after it (the answer to a partial command) reaches the client. Under
//     TLS no plain text may be written below the tls.Conn, so the session
//     methods refuse to act on what was read before the timeout instead.

// finalReplyTimeout bounds the write of our own closing reply.
const finalReplyTimeout = 10 * time.Second

// timeoutReply is Postfix's answer to a client that went quiet.
func timeoutReply(hostname string) []byte {
	return fmt.Appendf(nil, "421 4.4.2 %s Error: timeout exceeded\r\n", hostname)
}

func (c *trackedConn) Read(p []byte) (int, error) {
	if c.ending.Load() {
		return 0, io.EOF
	}
	if e := c.readErr.Load(); e != nil {
		return 0, *e
	}
	n, err := c.Conn.Read(p)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		c.readErr.CompareAndSwap(nil, &err)
		if !c.inTLS.Load() {
			c.finalReply(c.timeoutReply)
		}
	}
	return n, err
}

func (c *trackedConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.discard {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// finalReply writes b as the last thing the client hears in plain text.
func (c *trackedConn) finalReply(b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.discard {
		return
	}
	c.Conn.SetWriteDeadline(time.Now().Add(finalReplyTimeout))
	c.Conn.Write(b)
	c.discard = true
}

// end makes the next read return EOF: the reply being written is the last.
func (c *trackedConn) end() { c.ending.Store(true) }

// timedOut reports whether a read has timed out: whatever go-smtp parsed
// since is a partial command and must not act.
func (c *trackedConn) timedOut() bool { return c.readErr.Load() != nil }

// refuse counts a refused command and reports whether that makes limit
// (0 = no limit) refused commands since the last accepted message.
func (c *trackedConn) refuse(limit int) bool {
	n := c.errors.Add(1)
	return limit > 0 && int(n) >= limit
}

// accepted starts the count of refused commands anew, as Postfix does
// after a delivered message: a busy MTA that sends many messages, each
// with a few unknown recipients, is not an attacker.
func (c *trackedConn) accepted() { c.errors.Store(0) }

// trackedOf finds the connection below what go-smtp reads from: our
// coalesce.Conn, or after STARTTLS a tls.Conn over it.
func trackedOf(c net.Conn) *trackedConn {
	for c != nil {
		switch v := c.(type) {
		case *trackedConn:
			return v
		case *coalesce.Conn:
			c = v.Conn
		case *tls.Conn:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// markTLS returns conf with a hook that tells the connection when a TLS
// handshake begins above it, from which point it must never write plain
// text. nil stays nil (no STARTTLS).
func markTLS(conf *tls.Config) *tls.Config {
	if conf == nil {
		return nil
	}
	c := conf.Clone()
	inner := conf.GetConfigForClient
	c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if t := trackedOf(hello.Conn); t != nil {
			t.inTLS.Store(true)
		}
		if inner != nil {
			return inner(hello)
		}
		return nil, nil
	}
	return c
}
