package smtpfront

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/textproto"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgate/mxgate/deliver"
	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/store"
)

// newIdleServer is a front end on 127.0.0.1:0 that is never sent mail: for
// the start and stop sequence alone.
func newIdleServer(t *testing.T, st *store.Backend, mutate func(*Options)) *Server {
	t.Helper()
	o := Options{
		NodeID: "t1", Hostname: "mx.test", Listen: []string{"127.0.0.1:0", "127.0.0.1:0"},
		AcceptDomains: []string{"example.org"}, MaxMessageBytes: 1 << 20, MaxRecipients: 3,
		MaxConnections: 10, MaxConnectionsPerIP: 10, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		Downstream: deliver.Options{Addr: "127.0.0.1:1", Helo: "mx.test", Timeout: time.Second},
		Scanner: workerFunc(func(context.Context, *scanner.Message) (scanner.Verdict, error) {
			return scanner.Verdict{Action: scanner.ActionDeliver}, nil
		}),
		Lists: lists.NewCache(st.Lists), Quarantine: st.Quarantine, QuarantineRetention: time.Hour,
		Log: st.Log, SpoolDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer: prometheus.NewRegistry(),
	}
	if mutate != nil {
		mutate(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Shutdown right after Start, or while Start still runs, ends every Serve
// and closes every port, however the goroutines are scheduled: go-smtp's
// own Shutdown closes only the listeners its Serve has registered, so a
// Serve that registered a moment later served for ever and Shutdown waited
// for it for ever (a node stopped during start-up hung, answering mail).
func TestShutdownRacesStart(t *testing.T) {
	st := openStore(t)
	rounds := 300
	if testing.Short() {
		rounds = 50
	}
	for i := range rounds {
		s := newIdleServer(t, st, nil)
		started := make(chan error, 1)
		concurrent := i%2 == 1
		if concurrent {
			go func() { started <- s.Start() }()
			// Anywhere from before the bind to after the serving began.
			time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		} else {
			started <- s.Start()
		}
		stopped := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			stopped <- s.Shutdown(ctx)
		}()
		select {
		case err := <-stopped:
			if err != nil {
				t.Errorf("round %d: Shutdown: %v", i, err)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("round %d (concurrent %v): Shutdown still waits after 60 s", i, concurrent)
		}
		startErr := <-started
		if startErr == nil && len(s.Addrs()) != 2 {
			t.Fatalf("round %d: Start succeeded with %d listeners", i, len(s.Addrs()))
		}
		for _, a := range s.Addrs() {
			if c, err := net.DialTimeout("tcp", a.String(), 2*time.Second); err == nil {
				c.Close()
				t.Fatalf("round %d (concurrent %v): %s still accepts after Shutdown", i, concurrent, a)
			}
		}
		if err := s.Start(); err == nil {
			t.Fatalf("round %d: Start after Shutdown succeeded", i)
		}
	}
}

func openStore(t *testing.T) *store.Backend {
	t.Helper()
	st, err := store.OpenEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// A session still open when the drain time is over is cut: Shutdown
// returns soon after its deadline and the client sees its connection
// closed, not kept until the read timeout (go-smtp's Close does nothing
// once its Shutdown has begun).
func TestShutdownCutsSessionsAfterDrain(t *testing.T) {
	s := newIdleServer(t, openStore(t), func(o *Options) {
		o.Listen = []string{"127.0.0.1:0"}
		o.ReadTimeout = 5 * time.Minute
	})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	nc, err := net.DialTimeout("tcp", s.Addrs()[0].String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(2 * time.Minute))
	c := textproto.NewConn(nc)
	if _, _, err := c.ReadResponse(220); err != nil {
		t.Fatal(err)
	}
	c.PrintfLine("EHLO client.test")
	if _, _, err := c.ReadResponse(250); err != nil {
		t.Fatal(err)
	}

	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if took := time.Since(begin); took > 30*time.Second {
		t.Errorf("Shutdown took %s with a 200ms drain", took)
	}
	if _, err := c.ReadLine(); err == nil {
		t.Error("the session still answers after the drain time")
	}
	if took := time.Since(begin); took > time.Minute {
		t.Errorf("the session ended %s after the stop, not when the drain time was over", took)
	}
}
