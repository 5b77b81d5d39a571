package redisstore_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/quarantine"
	"github.com/mxgate/mxgate/store"
	"github.com/mxgate/mxgate/store/redisstore"
	"github.com/mxgate/mxgate/store/storetest"
	"github.com/mxgate/mxgate/testenv"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// open connects to url, closing the client when the test ends.
func open(t *testing.T, url string) redis.UniversalClient {
	t.Helper()
	c, err := redisstore.Open(testCtx(t), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// fresh connects and empties the database, for one conformance subtest.
func fresh(t *testing.T, url string) redis.UniversalClient {
	t.Helper()
	c := open(t, url)
	var err error
	if cc, ok := c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(testCtx(t), func(ctx context.Context, s *redis.Client) error { return s.FlushDB(ctx).Err() })
	} else {
		err = c.FlushDB(testCtx(t)).Err()
	}
	if err != nil {
		t.Fatalf("FLUSHDB: %v", err)
	}
	return c
}

func backend(c redis.UniversalClient) *store.Backend {
	return &store.Backend{
		Quarantine: redisstore.NewQuarantine(c),
		Lists:      redisstore.NewLists(c),
		Log:        redisstore.NewLog(c),
	}
}

func TestConformance(t *testing.T) {
	r := testenv.StartRedis(t)
	storetest.Run(t, func(t *testing.T) *store.Backend { return backend(fresh(t, r.URL)) })
}

// TestConformanceCluster runs the suite on a one-node Redis Cluster: the
// hash tag must put every key in one slot, or scripts and MULTI fail with
// CROSSSLOT.
func TestConformanceCluster(t *testing.T) {
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
	if _, ok := open(t, url).(*redis.ClusterClient); !ok {
		t.Fatalf("Open(%s) did not give a cluster client", url)
	}
	storetest.Run(t, func(t *testing.T) *store.Backend { return backend(fresh(t, url)) })
}

// TestOpenSentinel opens through a real Sentinel watching a real master.
func TestOpenSentinel(t *testing.T) {
	r := testenv.StartRedis(t)
	bin := testenv.Need(t, "redis-server")[0]
	addr := testenv.FreeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	mhost, mport, _ := net.SplitHostPort(r.Addr)
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	text := fmt.Sprintf("bind %s\nport %s\nsentinel monitor mx %s %s 1\n", host, port, mhost, mport)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.Start(t, bin, conf, "--sentinel")
	testenv.WaitPort(t, addr, 10*time.Second)

	c := open(t, "redis-sentinel://127.0.0.1:1,"+addr+"/mx/0")
	ctx := testCtx(t)
	l := redisstore.NewLists(c)
	if err := l.Add(ctx, lists.Entry{Kind: lists.Block, Value: "@evil.example"}); err != nil {
		t.Fatal(err)
	}
	// The write went to the master the sentinel named.
	direct := open(t, r.URL)
	if n, err := direct.HLen(ctx, "{mxgate}:lists:entries").Result(); err != nil || n != 1 {
		t.Errorf("master has %d list entries, %v; want 1", n, err)
	}
}

func TestOpenErrors(t *testing.T) {
	dead := testenv.FreeAddr(t) // nothing listens there
	tests := []struct {
		name, url, want string
	}{
		{"empty", "", "not a URL"},
		{"no scheme", "127.0.0.1:6379", "not a URL"},
		{"unknown scheme", "http://127.0.0.1:6379", `unknown scheme "http"`},
		{"bad db", "redis://127.0.0.1:6379/x", "invalid database number"},
		{"bad port", "redis://127.0.0.1:port/0", `invalid port ":port"`},
		{"bad port, password not shown", "redis://u:s3cret@127.0.0.1:port/0", "redis://xxx@127.0.0.1:port/0"},
		{"sentinel without master", "redis-sentinel://127.0.0.1:26379", "/mastername"},
		{"sentinel bad db", "redis-sentinel://127.0.0.1:26379/mx/x", "not a number"},
		{"sentinel bad address", "redis-sentinel://127.0.0.1:26379,nohost/mx", `"nohost" is not host:port`},
		{"sentinel unknown parameter", "redis-sentinel://127.0.0.1:26379/mx?db=2", `unknown sentinel URL parameter "db"`},
		{"cluster with db", "redis+cluster://127.0.0.1:7000/1", "no path"},
		{"cluster bad port", "redis+cluster://127.0.0.1:0", "bad port"},
		{"nobody listening", "redis://" + dead + "/0", "PING"},
		{"password not shown", "redis://user:s3cret@" + dead + "/0", "redis://xxx@" + dead + "/0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := redisstore.Open(ctx, tc.url)
			if err == nil {
				c.Close()
				t.Fatalf("Open(%q) succeeded", tc.url)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open(%q): %v; want it to say %q", tc.url, err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

// TestOpenClusterURLOnPlainServer: a cluster URL naming a server without
// cluster support fails at Open, not at the first write.
func TestOpenClusterURLOnPlainServer(t *testing.T) {
	r := testenv.StartRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c, err := redisstore.Open(ctx, "redis+cluster://"+r.Addr); err == nil {
		c.Close()
		t.Fatal("Open with a cluster URL on a non-cluster server succeeded")
	}
}

// TestKeysArePrefixed writes through every store and checks that every
// key in Redis carries the {mxgate}: hash tag.
func TestKeysArePrefixed(t *testing.T) {
	r := testenv.StartRedis(t)
	c := open(t, r.URL)
	ctx := testCtx(t)
	b := backend(c)
	now := time.Now()
	it := quarantine.Item{ID: "Q1", Time: now, Sender: "a@x.example", Recipients: []string{"r@example.org"}, Verdict: "spam", Expires: now.Add(time.Hour)}
	if err := b.Quarantine.Put(ctx, it, []byte("raw")); err != nil {
		t.Fatal(err)
	}
	if err := b.Lists.Add(ctx, lists.Entry{Kind: lists.Block, Value: "@evil.example"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Log.Append(ctx, msglog.Record{ID: "Q1", Time: now, Action: "quarantine"}); err != nil {
		t.Fatal(err)
	}
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 10 {
		t.Errorf("only %d keys: %q", len(keys), keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "{mxgate}:") {
			t.Errorf("key %q lacks the {mxgate}: prefix", k)
		}
	}
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

// TestRoundTrips holds the hot-path operations to their round-trip
// budget: a quarantined message is one, a log batch is one, a list change
// is one.
func TestRoundTrips(t *testing.T) {
	r := testenv.StartRedis(t)
	c := open(t, r.URL)
	rt := &roundTrips{}
	c.AddHook(rt)
	ctx := testCtx(t)
	b := backend(c)
	now := time.Now()
	item := func(id string) quarantine.Item {
		return quarantine.Item{ID: id, Time: now, Sender: "a@x.example", Recipients: []string{"r@example.org", "s@example.org"}, Verdict: "spam", Expires: now.Add(time.Hour)}
	}
	// The first Put after a (re)start loads the script: EVALSHA, EVAL.
	if err := b.Quarantine.Put(ctx, item("warm"), []byte("raw")); err != nil {
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
		{"quarantine put", func() error { return b.Quarantine.Put(ctx, item("Q1"), make([]byte, 100<<10)) }, 1},
		{"log append of 100", func() error { return b.Log.Append(ctx, batch...) }, 1},
		{"lists add", func() error { return b.Lists.Add(ctx, lists.Entry{Kind: lists.Block, Value: "@evil.example"}) }, 1},
		{"lists remove", func() error { return b.Lists.Remove(ctx, lists.Block, "@evil.example", "") }, 1},
		{"lists all", func() error { _, err := b.Lists.All(ctx); return err }, 1},
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

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"redis://127.0.0.1:6379/0":                              "redis://127.0.0.1:6379/0",
		"redis://user:pw@127.0.0.1:6379/0?dial_timeout=3":       "redis://xxx@127.0.0.1:6379/0",
		"redis-sentinel://:pw@h1:1,h2:2/mx?sentinel_password=s": "redis-sentinel://xxx@h1:1,h2:2/mx",
		"redis+cluster://u:p@w@h1:1,h2:2":                       "redis+cluster://xxx@h1:1,h2:2",
		"user:pw@host":                                          "(unparsable URL)",
	} {
		if got := redisstore.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDialDoesNotConnect: Dial accepts a Redis that is down (the node
// starts degraded) but still rejects a bad URL.
func TestDialDoesNotConnect(t *testing.T) {
	c, err := redisstore.Dial("redis://" + testenv.FreeAddr(t) + "/0")
	if err != nil {
		t.Fatalf("Dial of an address where nothing listens: %v", err)
	}
	c.Close()
	if _, err := redisstore.Dial("redis-sentinel://h:1"); err == nil {
		t.Error("Dial of a bad URL succeeded")
	}
}
