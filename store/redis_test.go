package store_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mxgate/mxgate/kv"
	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/quarantine"
	"github.com/mxgate/mxgate/store"
	"github.com/mxgate/mxgate/store/storetest"
	"github.com/mxgate/mxgate/testenv"
)

func testCtx(t *testing.T) context.Context { return testenv.Context(t, time.Minute) }

// dial connects to url, closing the client when the test ends.
func dial(t *testing.T, url string) redis.UniversalClient {
	t.Helper()
	c, err := kv.Open(testCtx(t), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// openRedis opens the Redis backend at url, closed when the test ends.
func openRedis(t *testing.T, url string) *store.Backend {
	t.Helper()
	b, err := store.OpenRedis(testCtx(t), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	return b
}

// flush empties the databases behind url, for one conformance subtest.
func flush(t *testing.T, url string) {
	t.Helper()
	c := dial(t, url)
	var err error
	if cc, ok := c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(testCtx(t), func(ctx context.Context, s *redis.Client) error { return s.FlushDB(ctx).Err() })
	} else {
		err = c.FlushDB(testCtx(t)).Err()
	}
	if err != nil {
		t.Fatalf("FLUSHDB: %v", err)
	}
}

// redisEnv opens a fresh backend on the Redis at url per subtest; a second
// node is a second backend on the same URL.
func redisEnv(url string, outage func(t *testing.T, down time.Duration)) func(t *testing.T) storetest.Env {
	return func(t *testing.T) storetest.Env {
		flush(t, url)
		return storetest.Env{
			Backend: openRedis(t, url),
			Node:    func(t *testing.T) *store.Backend { return openRedis(t, url) },
			Outage:  outage,
		}
	}
}

func TestRedisConformance(t *testing.T) {
	r := testenv.StartRedis(t)
	storetest.Run(t, redisEnv(r.URL, func(t *testing.T, down time.Duration) {
		r.Stop()
		time.Sleep(down)
		r.Start()
	}))
}

// TestRedisClusterConformance runs the suites on a one-node Redis Cluster:
// the hash tag must put every key in one slot, or scripts and MULTI fail
// with CROSSSLOT.
func TestRedisClusterConformance(t *testing.T) {
	bin := testenv.Need(t, "redis-server")[0]
	addr := testenv.FreeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	testenv.Start(t, bin, "--bind", host, "--port", port, "--dir", dir, "--save", "",
		"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"))
	testenv.WaitPort(t, addr, 10*time.Second)
	ctx := testCtx(t)
	plain := redis.NewClient(&redis.Options{Addr: addr})
	defer plain.Close()
	if err := plain.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		info, err := plain.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ok: %q, %v", info, err)
		}
	}
	url := "redis+cluster://" + addr
	if _, ok := dial(t, url).(*redis.ClusterClient); !ok {
		t.Fatalf("Open(%s) did not give a cluster client", url)
	}
	storetest.Run(t, redisEnv(url, nil))
}

// roundTrips counts the requests a client sends: a command, or a pipeline
// or MULTI/EXEC block, is one round trip. The handshake of a new pooled
// connection (HELLO, CLIENT SETINFO) is not the operation's.
type roundTrips struct{ n atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() != "hello" {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) == 0 || cmds[0].Name() != "client" {
			h.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

// TestRedisRoundTrips holds the hot-path operations to their round-trip
// budget: a quarantined message is one, a log batch is one, a list change
// is one.
func TestRedisRoundTrips(t *testing.T) {
	r := testenv.StartRedis(t)
	c := dial(t, r.URL)
	rt := &roundTrips{}
	c.AddHook(rt)
	ctx := testCtx(t)
	q, l, lg := quarantine.NewRedis(c), lists.NewRedis(c), msglog.NewRedis(c)
	now := time.Now()
	item := func(id string) quarantine.Item {
		return quarantine.Item{ID: id, Time: now, Sender: "a@x.example", Recipients: []string{"r@example.org", "s@example.org"}, Verdict: "spam", Expires: now.Add(time.Hour)}
	}
	// The first Put after a (re)start loads the script: EVALSHA, EVAL.
	if err := q.Put(ctx, item("warm"), []byte("raw")); err != nil {
		t.Fatal(err)
	}
	batch := make([]msglog.Record, 100)
	for i := range batch {
		batch[i] = msglog.Record{ID: fmt.Sprintf("m%d", i), Time: now.Add(time.Duration(i)), Action: "deliver"}
	}
	for _, tc := range []struct {
		name string
		op   func() error
		want int64
	}{
		{"quarantine put", func() error { return q.Put(ctx, item("Q1"), make([]byte, 100<<10)) }, 1},
		{"log append of 100", func() error { return lg.Append(ctx, batch...) }, 1},
		{"lists add", func() error {
			_, _, err := l.Add(ctx, lists.Entry{Kind: lists.Block, Value: "@evil.example"})
			return err
		}, 1},
		{"lists remove", func() error { return l.Remove(ctx, lists.Block, "@evil.example", "") }, 1},
		{"lists all", func() error { _, err := l.All(ctx); return err }, 1},
	} {
		before := rt.n.Load()
		if err := tc.op(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := rt.n.Load() - before; got != tc.want {
			t.Errorf("%s: %d round trips, want %d", tc.name, got, tc.want)
		}
	}
}
