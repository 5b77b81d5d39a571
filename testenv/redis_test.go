package testenv

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestRedisSurvivesStopStart(t *testing.T) {
	r := StartRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opt, err := redis.ParseURL(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	if err := c.Set(ctx, "{mxgate}:k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}

	r.Stop()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING answered while redis-server is stopped")
	}

	r.Start()
	got, err := c.Get(ctx, "{mxgate}:k").Result()
	if err != nil || got != "v" {
		t.Fatalf("after restart GET = %q, %v; want v", got, err)
	}
}

func TestRedisInLab(t *testing.T) {
	NeedRoot(t)
	lab := NewLab(t, 1)
	addr := lab.ClientAddr() + ":6379"
	r := StartRedisWith(t, func(n string, a ...string) *Process {
		return lab.Start(t, lab.Client(), n, a...)
	}, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A node of the lab reaches it across the switch.
	c := redis.NewClient(&redis.Options{
		Addr: r.Addr,
		Dialer: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return lab.Dial(ctx, lab.Node(1), addr)
		},
	})
	defer c.Close()
	if err := c.Set(ctx, "{mxgate}:k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	r.Start()
	if got, err := c.Get(ctx, "{mxgate}:k").Result(); err != nil || got != "v" {
		t.Fatalf("after restart GET = %q, %v; want v", got, err)
	}
}
