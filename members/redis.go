package members

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mxgate/mxgate/kv"
)

// Redis keys. Each member is one string key that expires by itself (PX
// ttl, on the Redis server's clock, so node clock skew does not bend
// liveness); a sorted set indexes the ids by expiry so Live need not SCAN.
// All keys carry kv.Prefix's hash tag: one Cluster slot, so the scripts
// may touch them together.
const (
	keyIndex  = kv.Prefix + "members"    // ZSET id → expiry (server unix ms)
	keyMember = kv.Prefix + "members:m:" // + id → Member JSON, PX ttl
)

// heartbeatScript stores the member and indexes it under the server's time,
// dropping index entries that have expired: one round trip.
var heartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return 1
`)

// liveScript reads the members whose index entry has not expired. The
// member key is read too (it expires on its own): an id whose key is gone is
// not live. The member keys are derived from ARGV[1] rather than passed in
// KEYS because the ids are only known inside the script; they share the
// index's hash slot, so this holds on Redis Cluster too.
var liveScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
local out = {}
for _, id in ipairs(ids) do
  local v = redis.call('GET', ARGV[1] .. id)
  if v then out[#out + 1] = v end
end
return out
`)

type redisStore struct {
	c redis.UniversalClient
}

// NewRedis returns the membership in Redis: one key per member with a PX
// ttl plus a sorted set of expiries. Heartbeat and Live are one round trip
// each (a script).
func NewRedis(c redis.UniversalClient) Store {
	return &redisStore{c: c}
}

func (s *redisStore) Heartbeat(ctx context.Context, m Member, ttl time.Duration) error {
	if err := check(m, ttl); err != nil {
		return fmt.Errorf("heartbeat %q: %w", m.ID, err)
	}
	if ttl < time.Millisecond {
		ttl = time.Millisecond // PX counts whole milliseconds, and 0 is refused
	}
	m.Seen = time.Now()
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("heartbeat %q: %w", m.ID, err)
	}
	err = heartbeatScript.Run(ctx, s.c, []string{keyIndex, keyMember + m.ID}, data, ttl.Milliseconds(), m.ID).Err()
	if err != nil {
		return fmt.Errorf("heartbeat %q: %w", m.ID, err)
	}
	return nil
}

func (s *redisStore) Live(ctx context.Context) ([]Member, error) {
	vals, err := liveScript.Run(ctx, s.c, []string{keyIndex}, keyMember).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("live members: %w", err)
	}
	out := make([]Member, 0, len(vals))
	for _, v := range vals {
		var m Member
		if err := json.Unmarshal([]byte(v), &m); err != nil {
			return nil, fmt.Errorf("live members: decode %.40q: %w", v, err)
		}
		out = append(out, m)
	}
	sortByID(out)
	return out, nil
}
