package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// The stop guard's three ways to end a stop: the first signal asks for a
// graceful stop, a second one exits at once, and a stop that runs past its
// limit exits too (also one the node began by itself, without a signal).
func TestStopGuard(t *testing.T) {
	tests := []struct {
		name    string
		trigger func(g *stopGuard)
		limit   time.Duration
		wantLog string
	}{
		{"second signal", func(g *stopGuard) {
			syscall.Kill(os.Getpid(), syscall.SIGTERM)
			<-g.ctx.Done()
			syscall.Kill(os.Getpid(), syscall.SIGINT)
		}, time.Hour, "second stop signal"},
		{"signal, then the limit", func(g *stopGuard) {
			syscall.Kill(os.Getpid(), syscall.SIGTERM)
		}, 100 * time.Millisecond, "stop not finished in time"},
		{"own stop, then the limit", func(g *stopGuard) { g.stopping() }, 100 * time.Millisecond, "stop not finished in time"},
		{"own stop, then a signal", func(g *stopGuard) {
			g.stopping()
			syscall.Kill(os.Getpid(), syscall.SIGTERM)
		}, time.Hour, "second stop signal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			exited := make(chan int, 1)
			g := newStopGuard(context.Background(), slog.New(slog.NewTextHandler(&logs, nil)), tt.limit, func(code int) { exited <- code })
			defer g.release()
			tt.trigger(g)
			select {
			case code := <-exited:
				if code == 0 {
					t.Error("a forced stop exits 0")
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("no exit after 30 s:\n%s", logs.String())
			}
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log lacks %q:\n%s", tt.wantLog, logs.String())
			}
		})
	}
}

// A node that ends by itself before any stop leaves no guard behind, and a
// graceful stop that ends in time never exits.
func TestStopGuardReleased(t *testing.T) {
	exited := make(chan int, 1)
	g := newStopGuard(context.Background(), slog.New(slog.DiscardHandler), 50*time.Millisecond, func(code int) { exited <- code })
	g.stopping()
	g.release()
	select {
	case <-exited:
		t.Fatal("released guard exited")
	case <-time.After(200 * time.Millisecond):
	}
	if g.ctx.Err() == nil {
		t.Error("released guard's context still live")
	}
}
