package clusterconf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis key schema (all under the {mxgate} hash tag: one Cluster slot, so
// the Put script may touch every key).
const (
	keyRevision = "{mxgate}:config:revision" // current revision number (integer string)
	keyCurrent  = "{mxgate}:config:current"  // current Revision JSON
	keyHistory  = "{mxgate}:config:history"  // LIST of Revision JSON, newest first (the audit trail)
	// ChannelChanged carries announcements: the payload is the revision
	// number in decimal.
	ChannelChanged = "{mxgate}:config:changed"
)

// putScript is Put's compare-and-set: the number check, the new current,
// the audit entry and the announcement happen in one atomic step, so two
// admins editing at once cannot both win and no revision lacks its audit
// entry. It answers {1, new} or {0, current}.
var putScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur ~= tonumber(ARGV[1]) then
  return {0, cur}
end
local n = cur + 1
redis.call('SET', KEYS[1], n)
redis.call('SET', KEYS[2], ARGV[2])
redis.call('LPUSH', KEYS[3], ARGV[2])
redis.call('PUBLISH', ARGV[3], n)
return {1, n}
`)

// subscribeWait bounds how long Changes waits for Redis to confirm the
// subscription. Past it (Redis down) go-redis keeps resubscribing in the
// background and the Follower's polling covers the gap.
const subscribeWait = time.Second

type redisStore struct {
	c redis.UniversalClient
}

// NewRedis returns the cluster config in Redis: current revision as a
// string, the audit trail as a list, announcements by pub/sub on
// ChannelChanged. Put is one atomic script.
func NewRedis(c redis.UniversalClient) Store {
	return &redisStore{c: c}
}

func (s *redisStore) Current(ctx context.Context) (Revision, error) {
	v, err := s.c.Get(ctx, keyCurrent).Bytes()
	if errors.Is(err, redis.Nil) {
		return Revision{}, fmt.Errorf("read cluster config: %w", ErrNone)
	}
	if err != nil {
		return Revision{}, fmt.Errorf("read cluster config: %w", err)
	}
	var r Revision
	if err := json.Unmarshal(v, &r); err != nil {
		return Revision{}, fmt.Errorf("read cluster config: decode: %w", err)
	}
	return r, nil
}

func (s *redisStore) Put(ctx context.Context, set Settings, by, comment string, expect int64) (Revision, error) {
	rev, err := newRevision(set, by, comment, expect)
	if err != nil {
		return Revision{}, fmt.Errorf("put cluster config: %w", err)
	}
	data, err := json.Marshal(rev)
	if err != nil {
		return Revision{}, fmt.Errorf("put cluster config: %w", err)
	}
	res, err := putScript.Run(ctx, s.c, []string{keyRevision, keyCurrent, keyHistory}, expect, data, ChannelChanged).Int64Slice()
	if err != nil {
		return Revision{}, fmt.Errorf("put cluster config: %w", err)
	}
	if len(res) != 2 {
		return Revision{}, fmt.Errorf("put cluster config: unexpected script answer %v", res)
	}
	if res[0] != 1 {
		return Revision{}, fmt.Errorf("put cluster config: %w", conflict(res[1], expect))
	}
	return rev, nil
}

func (s *redisStore) History(ctx context.Context, limit int) ([]Revision, error) {
	stop := int64(-1)
	if limit > 0 {
		stop = int64(limit) - 1
	}
	vals, err := s.c.LRange(ctx, keyHistory, 0, stop).Result()
	if err != nil {
		return nil, fmt.Errorf("read cluster config history: %w", err)
	}
	out := make([]Revision, 0, len(vals))
	for _, v := range vals {
		var r Revision
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			return nil, fmt.Errorf("read cluster config history: decode: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}

func (s *redisStore) Announce(ctx context.Context, number int64) error {
	if err := s.c.Publish(ctx, ChannelChanged, number).Err(); err != nil {
		return fmt.Errorf("announce cluster config %d: %w", number, err)
	}
	return nil
}

// Changes subscribes to ChannelChanged. It waits (up to subscribeWait) for
// the subscription to be confirmed, so that an announcement made after
// Changes returns is not missed; messages lost while Redis is unreachable
// are not replayed (pub/sub keeps nothing), which is why readers also poll.
func (s *redisStore) Changes(ctx context.Context) <-chan int64 {
	out := make(chan int64, 1)
	ps := s.c.Subscribe(ctx, ChannelChanged)
	wctx, cancel := context.WithTimeout(ctx, subscribeWait)
	_, _ = ps.ReceiveTimeout(wctx, subscribeWait) // the subscription confirmation
	cancel()
	msgs := ps.Channel()
	go func() {
		defer close(out)
		defer ps.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-msgs:
				if !ok {
					return
				}
				n, err := strconv.ParseInt(m.Payload, 10, 64)
				if err != nil {
					continue // not ours to interpret; the poll catches up anyway
				}
				offer(out, n)
			}
		}
	}()
	return out
}
