package members

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mxgate/mxgate/testenv"
)

// backends opens a fresh, empty Store of each kind.
var backends = []struct {
	name string
	open func(t *testing.T) Store
}{
	{"memory", func(t *testing.T) Store { return NewMemory() }},
	{"redis", func(t *testing.T) Store { return NewRedis(redisClient(t)) }},
}

func redisClient(t *testing.T) *redis.Client {
	t.Helper()
	r := testenv.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestHeartbeatLive(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			s := b.open(t)
			live, err := s.Live(ctx)
			if err != nil || len(live) != 0 {
				t.Fatalf("Live on empty store = %v, %v; want none", live, err)
			}
			before := time.Now()
			for _, m := range []Member{
				{ID: "n2", PeerAddr: "198.18.0.12:8026", Weight: 50, Healthy: true, Busy: 1, Workers: 8, Revision: 3},
				{ID: "n1", PeerAddr: "198.18.0.11:8026", Weight: 100, Healthy: true, Workers: 8, Master: true, Revision: 3},
				{ID: "n3", PeerAddr: "198.18.0.13:8026", Weight: 0, Workers: 4},
			} {
				if err := s.Heartbeat(ctx, m, 10*time.Second); err != nil {
					t.Fatalf("Heartbeat(%s): %v", m.ID, err)
				}
			}
			// A second heartbeat replaces the first.
			if err := s.Heartbeat(ctx, Member{ID: "n2", PeerAddr: "198.18.0.12:8026", Weight: 50, Healthy: true, Busy: 7, Workers: 8, Revision: 4}, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			live, err = s.Live(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, m := range live {
				ids = append(ids, m.ID)
				if m.Seen.Before(before.Add(-time.Second)) || m.Seen.After(time.Now().Add(time.Second)) {
					t.Errorf("%s: Seen = %v, want about now", m.ID, m.Seen)
				}
			}
			if got := strings.Join(ids, ","); got != "n1,n2,n3" {
				t.Fatalf("Live ids = %s, want n1,n2,n3 (sorted)", got)
			}
			if n2 := live[1]; n2.Busy != 7 || n2.Revision != 4 || n2.PeerAddr != "198.18.0.12:8026" || !n2.Healthy || n2.Weight != 50 {
				t.Errorf("n2 = %+v, want the second heartbeat's fields", n2)
			}
			if n1 := live[0]; !n1.Master || n1.Weight != 100 || n1.Workers != 8 {
				t.Errorf("n1 = %+v", n1)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			s := b.open(t)
			const short = 300 * time.Millisecond
			if err := s.Heartbeat(ctx, Member{ID: "gone", Weight: 1}, short); err != nil {
				t.Fatal(err)
			}
			if err := s.Heartbeat(ctx, Member{ID: "stays", Weight: 1}, time.Minute); err != nil {
				t.Fatal(err)
			}
			if got := liveIDs(t, s); got != "gone,stays" {
				t.Fatalf("before the TTL: live = %s", got)
			}
			time.Sleep(short + 100*time.Millisecond)
			if got := liveIDs(t, s); got != "stays" {
				t.Fatalf("after the TTL: live = %s, want stays", got)
			}
			// A member that heartbeats again is back.
			if err := s.Heartbeat(ctx, Member{ID: "gone", Weight: 1}, short); err != nil {
				t.Fatal(err)
			}
			if got := liveIDs(t, s); got != "gone,stays" {
				t.Fatalf("after returning: live = %s", got)
			}
		})
	}
}

func liveIDs(t *testing.T, s Store) string {
	t.Helper()
	live, err := s.Live(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range live {
		ids = append(ids, m.ID)
	}
	return strings.Join(ids, ",")
}

func TestHeartbeatInvalid(t *testing.T) {
	tests := []struct {
		name string
		m    Member
		ttl  time.Duration
	}{
		{"empty id", Member{}, time.Second},
		{"long id", Member{ID: strings.Repeat("x", 65)}, time.Second},
		{"space in id", Member{ID: "n 1"}, time.Second},
		{"zero ttl", Member{ID: "n1"}, 0},
		{"negative ttl", Member{ID: "n1"}, -time.Second},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			for _, tt := range tests {
				if err := s.Heartbeat(t.Context(), tt.m, tt.ttl); err == nil {
					t.Errorf("%s: Heartbeat accepted it", tt.name)
				}
			}
			if got := liveIDs(t, s); got != "" {
				t.Errorf("live after refused heartbeats = %q", got)
			}
		})
	}
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
