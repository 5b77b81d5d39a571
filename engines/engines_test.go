package engines_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mxgate/mxgate/engines"
)

func TestParseAddr(t *testing.T) {
	for _, tt := range []struct {
		in      string
		schemes []string
		want    engines.Addr
		wantErr string
	}{
		{"tcp://127.0.0.1:3310", []string{"tcp", "unix"}, engines.Addr{Network: "tcp", Address: "127.0.0.1:3310", Scheme: "tcp"}, ""},
		{"unix:///run/clamav/clamd.ctl", []string{"tcp", "unix"}, engines.Addr{Network: "unix", Address: "/run/clamav/clamd.ctl", Scheme: "unix"}, ""},
		{"http://[::1]:11333", []string{"http"}, engines.Addr{Network: "tcp", Address: "[::1]:11333", Scheme: "http"}, ""},
		{"http://127.0.0.1:11333/", []string{"http"}, engines.Addr{Network: "tcp", Address: "127.0.0.1:11333", Scheme: "http"}, ""},
		{"127.0.0.1:3310", []string{"tcp", "unix"}, engines.Addr{}, "want tcp://host:port or unix:///path"},
		{"http://127.0.0.1:11333", []string{"tcp", "unix"}, engines.Addr{}, `scheme "http" not accepted`},
		{"tcp://127.0.0.1", []string{"tcp"}, engines.Addr{}, "want host:port"},
		{"tcp://:3310", []string{"tcp"}, engines.Addr{}, "want host:port"},
		{"unix://relative/path", []string{"unix"}, engines.Addr{}, "want unix:///absolute/path"},
		{"tcp://u:p@h:1", []string{"tcp"}, engines.Addr{}, "no user, query or fragment"},
		{"http://h:1/checkv2", []string{"http"}, engines.Addr{}, "no path"},
		{"", []string{"tcp"}, engines.Addr{}, "want tcp://host:port"},
	} {
		got, err := engines.ParseAddr(tt.in, tt.schemes...)
		if tt.wantErr == "" {
			if err != nil || got != tt.want {
				t.Errorf("ParseAddr(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			if err == nil && strings.TrimSuffix(tt.in, "/") != got.String() {
				t.Errorf("ParseAddr(%q).String() = %q", tt.in, got.String())
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseAddr(%q) = %+v, %v; want an error saying %q", tt.in, got, err, tt.wantErr)
		}
	}
}

func TestKind(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	_, refused := engines.Addr{Network: "tcp", Address: addr, Scheme: "tcp"}.Dial(context.Background())
	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	for _, tt := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("scan: %w", ctx.Err()), engines.KindTimeout},
		{fmt.Errorf("scan: %w", canceled.Err()), engines.KindCanceled},
		{refused, engines.KindConnect},
		{fmt.Errorf("stream: %w", engines.ErrTooLarge), engines.KindTooLarge},
		{fmt.Errorf("reply %q: %w", "x", engines.ErrProtocol), engines.KindProtocol},
		{fmt.Errorf("clamd: %w: lstat() failed", engines.ErrEngine), engines.KindEngine},
		{errors.New("write: broken pipe"), engines.KindIO},
	} {
		if got := engines.Kind(tt.err); got != tt.want {
			t.Errorf("Kind(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// The limiter lets n calls through and makes the next one wait, until its
// context ends.
func TestLimiter(t *testing.T) {
	l := engines.NewLimiter(2)
	r1, err1 := l.Acquire(context.Background())
	_, err2 := l.Acquire(context.Background())
	if err1 != nil || err2 != nil || l.InFlight() != 2 {
		t.Fatalf("two turns: %v, %v, in flight %d", err1, err2, l.InFlight())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := l.Acquire(ctx); engines.Kind(err) != engines.KindTimeout {
		t.Errorf("third turn with both taken = %v, want a timeout", err)
	}
	r1()
	r3, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatalf("a turn after a release: %v", err)
	}
	r3()
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := engines.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.Observe("clamd", time.Now(), nil)
	m.Observe("clamd", time.Now(), fmt.Errorf("x: %w", engines.ErrProtocol))
	if _, err := engines.NewMetrics(reg); err == nil {
		t.Error("registering twice succeeded")
	}
	if n := testutil.CollectAndCount(reg, "mxgate_engine_calls_total"); n != 2 {
		t.Errorf("%d call series, want 2 (ok, error)", n)
	}
	var nilMetrics *engines.Metrics
	nilMetrics.Observe("clamd", time.Now(), nil) // must not panic
}
