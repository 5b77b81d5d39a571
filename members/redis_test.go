package members

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mxgate/mxgate/testenv"
)

// The behaviour both backends share is store/storetest's; these are the
// Redis backend's own.

func redisClient(t *testing.T) *redis.Client {
	t.Helper()
	r := testenv.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRedisKeys checks the key schema: every key under the {mxgate} hash
// tag, the member key expiring by itself.
func TestRedisKeys(t *testing.T) {
	c := redisClient(t)
	ctx := t.Context()
	s := NewRedis(c)
	if err := s.Heartbeat(ctx, Member{ID: "n1"}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Errorf("keys = %q, want the index and one member", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "{mxgate}:") {
			t.Errorf("key %q lacks the {mxgate}: prefix", k)
		}
	}
	ttl, err := c.PTTL(ctx, keyMember+"n1").Result()
	if err != nil || ttl <= 0 || ttl > 5*time.Second {
		t.Errorf("PTTL of the member key = %v, %v; want (0, 5s]", ttl, err)
	}
}

// TestRedisUnreachable: an error, not a hang or an empty list that would
// look like "no members".
func TestRedisUnreachable(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: testenv.FreeAddr(t), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	s := NewRedis(c)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.Heartbeat(ctx, Member{ID: "n1"}, time.Second); err == nil {
		t.Error("Heartbeat to a dead server succeeded")
	}
	if _, err := s.Live(ctx); err == nil {
		t.Error("Live from a dead server succeeded")
	}
}
