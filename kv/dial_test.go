package kv_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mxgate/mxgate/kv"
	"github.com/mxgate/mxgate/testenv"
)

func testCtx(t *testing.T) context.Context { return testenv.Context(t, time.Minute) }

// open connects to url, closing the client when the test ends.
func open(t *testing.T, url string) redis.UniversalClient {
	t.Helper()
	c, err := kv.Open(testCtx(t), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
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
	if err := c.HSet(ctx, "{mxgate}:lists:entries", "k", "v").Err(); err != nil {
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
			c, err := kv.Open(ctx, tc.url)
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
	if c, err := kv.Open(ctx, "redis+cluster://"+r.Addr); err == nil {
		c.Close()
		t.Fatal("Open with a cluster URL on a non-cluster server succeeded")
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
		if got := kv.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDialDoesNotConnect: Dial accepts a Redis that is down (the node
// starts degraded) but still rejects a bad URL.
func TestDialDoesNotConnect(t *testing.T) {
	c, err := kv.Dial("redis://" + testenv.FreeAddr(t) + "/0")
	if err != nil {
		t.Fatalf("Dial of an address where nothing listens: %v", err)
	}
	c.Close()
	if _, err := kv.Dial("redis-sentinel://h:1"); err == nil {
		t.Error("Dial of a bad URL succeeded")
	}
}

// FuzzDial: whatever the URL, Dial and Redact neither panic nor show its
// password, in an error or in the redacted form.
func FuzzDial(f *testing.F) {
	for _, s := range [][3]string{
		{"redis", "127.0.0.1:6379/0", "s3cret"},
		{"rediss", "h:1/2?dial_timeout=3s", "pw-pw-pw"},
		{"redis-sentinel", "h1:1,h2:2/mx/0?sentinel_password=x", "hunter22"},
		{"redis+cluster", "h1:1,h2:2", "p@ssw0rd"},
		{"redis", "127.0.0.1:port/0", "s3cret"},
		{"http", "x", "s3cret"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, scheme, rest, password string) {
		// The password is told from the rest of the URL by difference: the
		// same URL with another password of the same length and kind must
		// give the same error and redaction, whatever else they show (a
		// quoted scheme "\x000000" holds "000000" with no leak).
		if password == "" || strings.ContainsFunc(password, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~!$&'()*+,;=", r))
		}) {
			t.Skip()
		}
		other := strings.Repeat("Z", len(password))
		if other == password {
			other = strings.Repeat("Y", len(password))
		}
		url := scheme + "://user:" + password + "@" + rest
		url2 := scheme + "://user:" + other + "@" + rest
		dialErr := func(u string) string {
			c, err := kv.Dial(u)
			if err != nil {
				return err.Error()
			}
			c.Close()
			return ""
		}
		if e1, e2 := dialErr(url), dialErr(url2); e1 != e2 {
			t.Errorf("Dial's error depends on the password, so it shows it:\n%s\n%s", e1, e2)
		}
		if r1, r2 := kv.Redact(url), kv.Redact(url2); r1 != r2 {
			t.Errorf("Redact depends on the password, so it shows it: %q, %q", r1, r2)
		}
	})
}
