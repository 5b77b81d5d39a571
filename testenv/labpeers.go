package testenv

import (
	"context"
	"testing"
	"time"
)

// StartSink runs smtp-sink inside namespace ns on addr (e.g.
// "198.18.0.12:25"), dumping every message like StartSink, and waits until
// it listens.
func (l *Lab) StartSink(t testing.TB, ns, addr string, extra ...string) *Sink {
	t.Helper()
	s := startSink(t, addr, extra, func(name string, args ...string) *Process { return l.Start(t, ns, name, args...) })
	l.WaitListen(t, ns, addr, 5*time.Second)
	return s
}

// WaitListen waits until addr accepts connections from namespace ns.
func (l *Lab) WaitListen(t testing.TB, ns, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		c, err := l.Dial(ctx, ns, addr)
		cancel()
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s (from %s) after %s: %v", addr, ns, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
