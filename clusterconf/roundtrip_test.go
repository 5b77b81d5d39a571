package clusterconf

import (
	"reflect"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/testenv"
)

// What the store backends share is store/storetest's; the Follower's tests
// here open them directly.

func openBolt(t *testing.T) Store {
	t.Helper()
	db := testenv.Bolt(t)
	s, err := NewBolt(db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// redisClient is a client of r that gives up quickly when r is down, as the
// outage tests need.
func redisClient(t *testing.T, r *testenv.Redis) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr, DialTimeout: 300 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

// settings is a valid Settings with a marker to tell revisions apart.
func settings(quarantine float64) Settings {
	s := Defaults()
	s.Scanner.Thresholds.Quarantine = quarantine
	return s
}

// TestRoundTrip: the settings of a node file are valid, and Apply is the
// inverse of FromConfig. (That they come back equal from a store is
// store/storetest's Config/RoundTrip.)
func TestRoundTrip(t *testing.T) {
	cfgs := map[string]config.Config{"default": config.Default()}
	c := config.Default()
	c.Scanner.Rules = []string{`VIAGRA header Subject =~ /v[i1]agra/i 3.5`}
	c.Scanner.Attachments.BlockedExtensions = []string{"exe", "js"}
	c.Cluster.Mode = config.ModeActivePassive
	cfgs["custom"] = c
	for name, c := range cfgs {
		want := FromConfig(c)
		if err := want.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := want.Apply(config.Default()); !reflect.DeepEqual(FromConfig(got), want) {
			t.Errorf("%s: Apply then FromConfig = %#v", name, FromConfig(got))
		}
	}
}
