package httpserve

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// A request under way when ctx ends finishes (its own context is not
// cancelled); Serve then returns nil and the port is closed.
func TestGracefulStop(t *testing.T) {
	started, finish := make(chan struct{}), make(chan struct{})
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-finish:
			io.WriteString(w, "done")
		case <-r.Context().Done():
			http.Error(w, "cancelled", http.StatusServiceUnavailable)
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, hs, ln, 5*time.Second) }()

	reply := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String())
		if err != nil {
			reply <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		reply <- string(b)
	}()
	<-started
	cancel()
	time.Sleep(50 * time.Millisecond) // the shutdown has begun
	close(finish)
	if got := <-reply; got != "done" {
		t.Errorf("request under way got %q, want done", got)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve after cancel: %v", err)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("port still open after Serve returned")
	}
}
