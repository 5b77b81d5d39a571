package clusterconf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/mxgate/mxgate/kv"
)

// Redis keys (all under kv.Prefix's hash tag: one Cluster slot, so the Put
// script may touch every key).
const (
	keyRevision = kv.Prefix + "config:revision" // current revision number (integer string)
	keyCurrent  = kv.Prefix + "config:current"  // current Revision JSON
	keyHistory  = kv.Prefix + "config:history"  // LIST of Revision JSON, newest first (the audit trail)
	keySeed     = kv.Prefix + "config:seed"     // HASH node id → SeedHash of its file as last read at start
	// channelChanged carries announcements. The payload is the revision
	// number in decimal: readers only take the signal, but nodes of older
	// versions, which parse it, may share the store during an upgrade.
	channelChanged = kv.Prefix + "config:changed"
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

type redisStore struct {
	c redis.UniversalClient
}

// NewRedis returns the cluster config in Redis: current revision as a
// string, the audit trail as a list, announcements by pub/sub on
// channelChanged. Put is one atomic script.
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
	res, err := putScript.Run(ctx, s.c, []string{keyRevision, keyCurrent, keyHistory}, expect, data, channelChanged).Int64Slice()
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
	if err := s.c.Publish(ctx, channelChanged, number).Err(); err != nil {
		return fmt.Errorf("announce cluster config %d: %w", number, err)
	}
	return nil
}

// Changes signals every announcement by any node, and every
// resubscription after a lost connection (see kv.Subscribe).
func (s *redisStore) Changes(ctx context.Context) <-chan struct{} {
	return kv.Subscribe(ctx, s.c, channelChanged)
}

func (s *redisStore) SeedMark(ctx context.Context, node string) (string, error) {
	if err := checkSeedNode(node); err != nil {
		return "", fmt.Errorf("read cluster config seed mark: %w", err)
	}
	v, err := s.c.HGet(ctx, keySeed, node).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read cluster config seed mark: %w", err)
	}
	return v, nil
}

func (s *redisStore) SetSeedMark(ctx context.Context, node, hash string) error {
	if err := checkSeedNode(node); err != nil {
		return fmt.Errorf("store cluster config seed mark: %w", err)
	}
	if err := s.c.HSet(ctx, keySeed, node, hash).Err(); err != nil {
		return fmt.Errorf("store cluster config seed mark: %w", err)
	}
	return nil
}
