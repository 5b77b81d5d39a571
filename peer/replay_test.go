package peer

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/testenv"
)

// startStoppable serves o on a loopback port until stop is called (a node
// that goes down) or the test ends.
func startStoppable(t *testing.T, o ServerOptions) (ps *peerServer, stop func()) {
	t.Helper()
	reg := prometheus.NewRegistry()
	o.Registerer = reg
	if o.Secret == "" {
		o.Secret = secret
	}
	srv, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	t.Cleanup(stop)
	return &peerServer{srv: srv, addr: ln.Addr().String(), reg: reg}, stop
}

// redisClient is a go-redis client of r for the test.
func redisClient(t *testing.T, r *testenv.Redis) redis.UniversalClient {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

// capture scans one message through a recording client signed for
// target and returns the request as it went over the wire.
func capture(t *testing.T, addr, target string, skew time.Duration) recorded {
	t.Helper()
	c := NewClient("n1", target, addr, secret)
	defer c.Close()
	c.now = func() time.Time { return time.Now().Add(skew) }
	rec := &recorder{next: c.hc.Transport}
	c.hc.Transport = rec
	if _, err := c.Scan(ctxT(t), newMessage("q1", textMsg(gtubeText))); err != nil {
		t.Fatal(err)
	}
	return rec.reqs[0]
}

// TestReplayToOtherNode: a request captured on its way to n2 and replayed
// to n3 (same secret, own replay cache, maybe the same shared store) is
// refused and never scanned.
func TestReplayToOtherNode(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("shared store %v", shared), func(t *testing.T) {
			var nonces NonceStore
			if shared {
				nonces = NewRedisNonces(redisClient(t, testenv.StartRedis(t)))
			}
			n2 := &countingWorker{next: newPool(t, "n2")}
			n3 := &countingWorker{next: newPool(t, "n3")}
			ps2 := startServer(t, ServerOptions{NodeID: "n2", Worker: n2, Nonces: nonces})
			ps3 := startServer(t, ServerOptions{NodeID: "n3", Worker: n3, Nonces: nonces})
			req := capture(t, ps2.addr, "n2", 0)
			code, text := send(t, ps3.addr, req.header.Clone(), req.body)
			if code != http.StatusMisdirectedRequest || !strings.HasPrefix(text, "misdirected") {
				t.Errorf("replay to n3: %d %q, want 421 misdirected", code, text)
			}
			if n3.calls.Load() != 0 {
				t.Errorf("n3 scanned a request signed for n2")
			}
			if got := ps3.count(t, resultMisdirected); got != 1 {
				t.Errorf("n3 misdirected = %v, want 1", got)
			}
		})
	}
}

// TestReplayAfterRestart: a request n2 accepted is refused by n2's next
// process. On the embedded store (no shared nonces) the start floor
// refuses it; with the shared store it is refused even when the floor
// cannot help, because the caller's clock was ahead of n2's by more than
// the restart took.
func TestReplayAfterRestart(t *testing.T) {
	tests := []struct {
		name   string
		shared bool
		skew   time.Duration // the caller's clock ahead of n2's
		want   string
	}{
		{"embedded store", false, 0, "stale"},
		{"shared store", true, 0, "stale"},
		{"shared store, caller's clock 20 s ahead", true, 20 * time.Second, "replayed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var nonces NonceStore
			if tc.shared {
				nonces = NewRedisNonces(redisClient(t, testenv.StartRedis(t)))
			}
			first, stop := startStoppable(t, ServerOptions{NodeID: "n2", Worker: newPool(t, "n2"), Nonces: nonces})
			req := capture(t, first.addr, "n2", tc.skew)
			stop()
			// The node comes back, with the same store (and the same
			// secret, id and address as far as the request can tell).
			time.Sleep(5 * time.Millisecond) // its start is after the capture, as in a real restart
			w := &countingWorker{next: newPool(t, "n2")}
			again, _ := startStoppable(t, ServerOptions{NodeID: "n2", Worker: w, Nonces: nonces})
			code, text := send(t, again.addr, req.header.Clone(), req.body)
			if code != http.StatusUnauthorized || text != tc.want {
				t.Errorf("replay after the restart: %d %q, want 401 %s", code, text, tc.want)
			}
			if w.calls.Load() != 0 {
				t.Error("the restarted node scanned a replayed request")
			}
			// A fresh request is scanned as ever.
			if _, err := NewClient("n1", "n2", again.addr, secret).Scan(ctxT(t), newMessage("q2", textMsg("hi"))); err != nil {
				t.Errorf("fresh request after the restart: %v", err)
			}
		})
	}
}

func TestRedisNonces(t *testing.T) {
	r := testenv.StartRedis(t)
	rc := redisClient(t, r)
	s := NewRedisNonces(rc)
	ctx := ctxT(t)
	nonce := strings.Repeat("ab", nonceLen)
	if fresh, err := s.Claim(ctx, nonce, nonceTTL); !fresh || err != nil {
		t.Fatalf("first claim: %v %v", fresh, err)
	}
	if fresh, err := s.Claim(ctx, nonce, nonceTTL); fresh || err != nil {
		t.Fatalf("second claim: %v %v, want not fresh", fresh, err)
	}
	// One key under the shared prefix, expiring within the ttl.
	keys, err := rc.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"{mxgate}:peer:nonce:" + nonce}; !reflect.DeepEqual(keys, want) {
		t.Errorf("keys %q, want %q", keys, want)
	}
	if ttl, err := rc.PTTL(ctx, keys[0]).Result(); err != nil || ttl <= 0 || ttl > nonceTTL {
		t.Errorf("PTTL %v %v, want 0 < ttl <= %s", ttl, err, nonceTTL)
	}
	// A short ttl runs out on the Redis server's clock.
	short := strings.Repeat("cd", nonceLen)
	if fresh, err := s.Claim(ctx, short, 50*time.Millisecond); !fresh || err != nil {
		t.Fatalf("claim: %v %v", fresh, err)
	}
	waitFor(t, "the nonce key to expire", func() bool {
		n, err := rc.Exists(ctx, keyNonce+short).Result()
		return err == nil && n == 0
	})
	if fresh, err := s.Claim(ctx, short, nonceTTL); !fresh || err != nil {
		t.Errorf("claim after expiry: %v %v, want fresh", fresh, err)
	}
	// Unreachable: an error, never "fresh".
	r.Stop()
	if fresh, err := s.Claim(ctx, strings.Repeat("ef", nonceLen), nonceTTL); fresh || err == nil {
		t.Errorf("claim with Redis down: %v %v, want an error", fresh, err)
	}
}

// TestSharedStoreDown: with the shared store down the node keeps scanning
// (nonces checked in its memory, counted), still refuses a replay to
// itself, and uses the store again once it answers.
func TestSharedStoreDown(t *testing.T) {
	r := testenv.StartRedis(t)
	rc := redisClient(t, r)
	ps := startServer(t, ServerOptions{NodeID: "n2", Worker: newPool(t, "n2"), Nonces: NewRedisNonces(rc)})
	c := NewClient("n1", "n2", ps.addr, secret)
	defer c.Close()
	fallback := func() float64 { return testenv.MetricValue(t, ps.reg, "mxgate_peer_nonce_fallback_total", "", "") }
	scan := func(id string) {
		t.Helper()
		if v, err := c.Scan(ctxT(t), newMessage(id, textMsg(gtubeText))); err != nil || v.Action != scanner.ActionQuarantine {
			t.Fatalf("scan %s: %+v %v", id, v, err)
		}
	}
	scan("up1")
	if n := fallback(); n != 0 {
		t.Fatalf("fallback %v with Redis up", n)
	}

	r.Stop()
	for i := range 5 {
		scan(fmt.Sprint("down", i))
	}
	if n := fallback(); n != 5 {
		t.Errorf("fallback = %v after 5 scans with Redis down, want 5", n)
	}
	req := capture(t, ps.addr, "n2", 0)
	if code, text := send(t, ps.addr, req.header.Clone(), req.body); code != http.StatusUnauthorized || text != "replayed" {
		t.Errorf("replay with Redis down: %d %q, want 401 replayed", code, text)
	}

	r.Start()
	// Within sharedRetryAfter the node asks the store again.
	ctx := ctxT(t)
	waitFor(t, "nonces stored in Redis again", func() bool {
		req := capture(t, ps.addr, "n2", 0)
		n, err := rc.Exists(ctx, keyNonce+req.header.Get(HeaderNonce)).Result()
		return err == nil && n == 1
	})
}

// TestOldProtocol: a version 1 node gets a clear refusal, before anything
// of its request is read; a version 2 client names a version 1 peer.
func TestOldProtocol(t *testing.T) {
	w := &countingWorker{next: newPool(t, "n2")}
	ps := startServer(t, ServerOptions{Worker: w})
	v1 := func(envelope string) (int, string) {
		h := http.Header{
			"X-Mxgate-Node": {"n1"}, "X-Mxgate-Date": {fmt.Sprint(time.Now().UnixMilli())},
			"X-Mxgate-Nonce": {strings.Repeat("ab", 16)}, "X-Mxgate-Envelope": {envelope},
			"X-Mxgate-Body-Sha256": {strings.Repeat("0", 64)}, "X-Mxgate-Signature": {strings.Repeat("0", 64)},
		}
		req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, "http://"+ps.addr+oldPath, strings.NewReader("hi"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return resp.StatusCode, string(b)
	}
	if code, text := v1("eyJpZCI6InExIn0"); code != http.StatusGone || !strings.Contains(text, "v2") || !strings.Contains(text, "upgrade") {
		t.Errorf("v1 request: %d %q, want 410 naming v2", code, text)
	}
	if code, _ := v1(strings.Repeat("A", 500<<10)); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("v1 request with a large envelope: %d, want 431", code)
	}
	if w.calls.Load() != 0 || ps.count(t, resultOldProtocol) != 1 {
		t.Errorf("calls %d, counts %v", w.calls.Load(), ps.counts(t))
	}

	// A version 1 node answers 404 to /v2/scan.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+oldPath, func(http.ResponseWriter, *http.Request) {})
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	defer hs.Close()
	_, err = NewClient("n1", "n2", ln.Addr().String(), secret).Scan(ctxT(t), newMessage("q1", "hi"))
	if err == nil || !strings.Contains(err.Error(), "does not speak peer protocol v2") {
		t.Errorf("scan on a v1 node: %v", err)
	}
}

// TestWireVerdictCoversVerdict: every field of scanner.Verdict travels,
// so a field added to the verdict (a new class of limit, say) cannot be
// dropped silently between the scanning node and the master.
func TestWireVerdictCoversVerdict(t *testing.T) {
	wire := map[string]bool{}
	wt := reflect.TypeFor[wireVerdict]()
	for i := range wt.NumField() {
		wire[wt.Field(i).Name] = true
	}
	vt := reflect.TypeFor[scanner.Verdict]()
	for i := range vt.NumField() {
		if name := vt.Field(i).Name; !wire[name] {
			t.Errorf("scanner.Verdict.%s is not in the peer wire verdict (peer/auth.go toWire, fromWire)", name)
		}
	}
}
