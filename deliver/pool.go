package deliver

import (
	"context"
	"sync"
	"time"
)

// Pool keeps downstream connections between client sessions. A gateway
// whose clients send one message per connection would otherwise pay a TCP
// handshake, a greeting and EHLO/QUIT with the downstream for every
// message; the downstream sees the same few long-lived sessions instead.
type Pool struct {
	o           Options
	maxIdle     int
	idleTimeout time.Duration

	mu     sync.Mutex
	idle   []idleConn // newest last
	closed bool
}

type idleConn struct {
	c     *Conn
	since time.Time
}

// NewPool keeps at most maxIdle connections, each for at most idleTimeout:
// well below the downstream's own idle timeout (Postfix: 300 s), so a kept
// connection is rarely found closed by the other side.
func NewPool(o Options, maxIdle int, idleTimeout time.Duration) *Pool {
	return &Pool{o: o, maxIdle: maxIdle, idleTimeout: idleTimeout}
}

// Get returns a kept connection (reused = true) or a new one. A reused
// connection may still turn out dead at its first command; the caller
// then dials a fresh one with Dial.
func (p *Pool) Get(ctx context.Context) (c *Conn, reused bool, err error) {
	now := time.Now()
	p.mu.Lock()
	var stale []*Conn
	for len(p.idle) > 0 {
		ic := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if now.Sub(ic.since) < p.idleTimeout {
			c = ic.c
			break
		}
		stale = append(stale, ic.c)
	}
	p.mu.Unlock()
	for _, s := range stale {
		s.Close()
	}
	if c != nil {
		return c, true, nil
	}
	c, err = Dial(ctx, p.o)
	return c, false, err
}

// Dial always opens a new connection.
func (p *Pool) Dial(ctx context.Context) (*Conn, error) { return Dial(ctx, p.o) }

// Put gives back a connection with no transaction open. A full or closed
// pool closes it instead.
func (p *Pool) Put(c *Conn) {
	p.mu.Lock()
	if p.closed || len(p.idle) >= p.maxIdle || c.broken {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.idle = append(p.idle, idleConn{c: c, since: time.Now()})
	p.mu.Unlock()
}

// Close ends every kept connection; later Puts close theirs.
func (p *Pool) Close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, ic := range idle {
		ic.c.Close()
	}
}
