package digest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mxgate/mxgate/kv"
)

// Redis keys (under kv.Prefix's hash tag: one Cluster slot, so scripts
// may touch any of them).
const (
	keyKeys      = kv.Prefix + "digest:keys"       // HASH key id → Key JSON
	keySending   = kv.Prefix + "digest:sending:"   // + day + ":" + rcpt → Sending JSON (SET NX, expires)
	keyOptOut    = kv.Prefix + "digest:optout"     // SET of rcpt
	keyCovered   = kv.Prefix + "digest:covered"    // HASH rcpt → unix nanoseconds
	keyDismissed = kv.Prefix + "digest:dismissed:" // + rcpt → ZSET id by until (unix seconds)
)

type redisStore struct {
	c redis.UniversalClient
}

// NewRedis returns the digest's state in Redis.
func NewRedis(c redis.UniversalClient) Store {
	return &redisStore{c: c}
}

func decodeKeys(vals map[string]string) ([]Key, error) {
	keys := make([]Key, 0, len(vals))
	for _, v := range vals {
		var k Key
		if err := json.Unmarshal([]byte(v), &k); err != nil {
			return nil, fmt.Errorf("decode digest key: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func (s *redisStore) Keys(ctx context.Context) ([]Key, error) {
	vals, err := s.c.HGetAll(ctx, keyKeys).Result()
	if err != nil {
		return nil, fmt.Errorf("read digest keys: %w", err)
	}
	return decodeKeys(vals)
}

// initKey sets ARGV[1] → ARGV[2] in the hash KEYS[1] when it is empty,
// and returns the hash.
var initKey = redis.NewScript(`
if redis.call("HLEN", KEYS[1]) == 0 then redis.call("HSET", KEYS[1], ARGV[1], ARGV[2]) end
return redis.call("HGETALL", KEYS[1])`)

func (s *redisStore) InitKey(ctx context.Context, k Key) ([]Key, error) {
	data, err := json.Marshal(k)
	if err != nil {
		return nil, fmt.Errorf("create digest key: %w", err)
	}
	flat, err := initKey.Run(ctx, s.c, []string{keyKeys}, k.ID, data).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("create digest key: %w", err)
	}
	vals := map[string]string{}
	for i := 0; i+1 < len(flat); i += 2 {
		vals[flat[i]] = flat[i+1]
	}
	return decodeKeys(vals)
}

func (s *redisStore) AddKey(ctx context.Context, k Key, drop []string) error {
	data, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("add digest key: %w", err)
	}
	drop = slices.DeleteFunc(slices.Clone(drop), func(id string) bool { return id == k.ID })
	_, err = s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if len(drop) > 0 {
			p.HDel(ctx, keyKeys, drop...)
		}
		p.HSet(ctx, keyKeys, k.ID, data)
		return nil
	})
	if err != nil {
		return fmt.Errorf("add digest key: %w", err)
	}
	return nil
}

// sendingTTL keeps a day's claims ClaimDays days past the day.
const sendingTTL = (ClaimDays + 1) * 24 * time.Hour

func (s *redisStore) Claim(ctx context.Context, rcpt, day string, sd Sending) (Sending, bool, error) {
	if err := cmpErr(checkRcpt(rcpt), checkDay(day)); err != nil {
		return Sending{}, false, fmt.Errorf("claim digest: %w", err)
	}
	data, err := json.Marshal(sd)
	if err != nil {
		return Sending{}, false, fmt.Errorf("claim digest: %w", err)
	}
	// SET NX GET: the claim and, when it loses, the one that won.
	prev, err := s.c.SetArgs(ctx, keySending+day+":"+rcpt, data, redis.SetArgs{Mode: "NX", Get: true, TTL: sendingTTL}).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return sd, true, nil
	case err != nil:
		return Sending{}, false, fmt.Errorf("claim digest of %s %s: %w", rcpt, day, err)
	}
	var cur Sending
	if err := json.Unmarshal(prev, &cur); err != nil {
		return Sending{}, false, fmt.Errorf("claim digest of %s %s: decode: %w", rcpt, day, err)
	}
	return cur, false, nil
}

// finish replaces (ARGV[2], keeping the TTL) or deletes (ARGV[2] empty)
// KEYS[1] if it is still the claim ARGV[1].
var finish = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == "" then redis.call("DEL", KEYS[1]) else redis.call("SET", KEYS[1], ARGV[2], "KEEPTTL") end
return 1`)

func (s *redisStore) Finish(ctx context.Context, rcpt, day string, sd Sending, sent bool) error {
	if err := cmpErr(checkRcpt(rcpt), checkDay(day)); err != nil {
		return fmt.Errorf("finish digest: %w", err)
	}
	claim := sd
	claim.Sent = time.Time{}
	old, err := json.Marshal(claim)
	if err != nil {
		return fmt.Errorf("finish digest: %w", err)
	}
	var next []byte
	if sent {
		if next, err = json.Marshal(sd); err != nil {
			return fmt.Errorf("finish digest: %w", err)
		}
	}
	if err := finish.Run(ctx, s.c, []string{keySending + day + ":" + rcpt}, old, next).Err(); err != nil {
		return fmt.Errorf("finish digest of %s %s: %w", rcpt, day, err)
	}
	return nil
}

func (s *redisStore) SetOptOut(ctx context.Context, rcpt string, out bool) error {
	if err := checkRcpt(rcpt); err != nil {
		return fmt.Errorf("digest opt-out: %w", err)
	}
	var err error
	if out {
		err = s.c.SAdd(ctx, keyOptOut, rcpt).Err()
	} else {
		err = s.c.SRem(ctx, keyOptOut, rcpt).Err()
	}
	if err != nil {
		return fmt.Errorf("digest opt-out of %s: %w", rcpt, err)
	}
	return nil
}

func (s *redisStore) OptedOut(ctx context.Context, rcpt string) (bool, error) {
	out, err := s.c.SIsMember(ctx, keyOptOut, rcpt).Result()
	if err != nil {
		return false, fmt.Errorf("read digest opt-out of %s: %w", rcpt, err)
	}
	return out, nil
}

func (s *redisStore) OptOuts(ctx context.Context) ([]string, error) {
	out, err := s.c.SMembers(ctx, keyOptOut).Result()
	if err != nil {
		return nil, fmt.Errorf("list digest opt-outs: %w", err)
	}
	slices.Sort(out)
	return out, nil
}

func (s *redisStore) Covered(ctx context.Context, rcpt string) (time.Time, error) {
	v, err := s.c.HGet(ctx, keyCovered, rcpt).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read digest coverage of %s: %w", rcpt, err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("read digest coverage of %s: %w", rcpt, err)
	}
	return time.Unix(0, n).UTC(), nil
}

// setCovered sets the hash field only forward.
var setCovered = redis.NewScript(`
local cur = tonumber(redis.call("HGET", KEYS[1], ARGV[1]) or "0")
if tonumber(ARGV[2]) > cur then redis.call("HSET", KEYS[1], ARGV[1], ARGV[2]) end
return 1`)

func (s *redisStore) SetCovered(ctx context.Context, rcpt string, t time.Time) error {
	if err := checkRcpt(rcpt); err != nil {
		return fmt.Errorf("digest coverage: %w", err)
	}
	if !kv.Indexable(t) {
		return fmt.Errorf("digest coverage of %s: time %v outside 1970..2262", rcpt, t)
	}
	if err := setCovered.Run(ctx, s.c, []string{keyCovered}, rcpt, t.UnixNano()).Err(); err != nil {
		return fmt.Errorf("digest coverage of %s: %w", rcpt, err)
	}
	return nil
}

func (s *redisStore) Dismiss(ctx context.Context, rcpt, id string, until time.Time) error {
	if err := cmpErr(checkRcpt(rcpt), checkID(id)); err != nil {
		return fmt.Errorf("dismiss: %w", err)
	}
	key := keyDismissed + rcpt
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRemRangeByScore(ctx, key, "-inf", strconv.FormatInt(time.Now().Unix(), 10))
		p.ZAdd(ctx, key, redis.Z{Score: float64(until.Unix()), Member: id})
		// The set lives as long as its last dismissal: NX gives a new set
		// its TTL, GT lengthens an older one's.
		ttl := time.Until(until) + time.Minute
		p.ExpireNX(ctx, key, ttl)
		p.ExpireGT(ctx, key, ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("dismiss %s for %s: %w", id, rcpt, err)
	}
	return nil
}

func (s *redisStore) Dismissed(ctx context.Context, rcpt string, now time.Time) (map[string]bool, error) {
	ids, err := s.c.ZRangeByScore(ctx, keyDismissed+rcpt, &redis.ZRangeBy{Min: "(" + strconv.FormatInt(now.Unix(), 10), Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("read dismissals of %s: %w", rcpt, err)
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}
