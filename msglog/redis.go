package msglog

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mxgate/mxgate/kv"
)

// Redis keys, mirroring the bbolt buckets: the records by time+id, their
// JSON in one hash under the same key, and the id index (uvarint length,
// id, time, id).
const (
	logRecords = kv.Prefix + "log:records" // lex zset of TimeKey(time, id)
	logData    = kv.Prefix + "log:data"    // hash TimeKey → Record JSON
	logByID    = kv.Prefix + "log:by_id"   // lex zset of LenPrefix(id)+TimeKey
)

const (
	logPage        = 500  // index members per ZRANGE (plus one HMGET) in Search and Range
	logExpireBatch = 1000 // records per Expire round
)

// redisStore is the message log in Redis.
type redisStore struct {
	c redis.UniversalClient
}

// NewRedis returns the message log in Redis.
func NewRedis(c redis.UniversalClient) Store { return &redisStore{c: c} }

// Append stores the batch in one MULTI/EXEC (three commands whatever its
// size): all records or none. A second record with the same time and id
// replaces the first, as in the bbolt backend.
func (l *redisStore) Append(ctx context.Context, rs ...Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("append message log: %w", err)
	}
	if len(rs) == 0 {
		return nil
	}
	members := make([]redis.Z, 0, len(rs))
	byID := make([]redis.Z, 0, len(rs))
	data := make([]any, 0, 2*len(rs))
	for _, r := range rs {
		if err := validate(r); err != nil {
			return fmt.Errorf("append message log %q: %w", r.ID, err)
		}
		js, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("append message log %q: %w", r.ID, err)
		}
		tk := string(kv.TimeKey(r.Time, r.ID))
		members = append(members, redis.Z{Member: tk})
		byID = append(byID, redis.Z{Member: string(kv.LenPrefix(r.ID)) + tk})
		data = append(data, tk, js)
	}
	_, err := l.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, logData, data...)
		p.ZAdd(ctx, logRecords, members...)
		p.ZAdd(ctx, logByID, byID...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("append message log (%d records): %w", len(rs), err)
	}
	return nil
}

// records fetches the records stored under the time keys tks, in that
// order; missing ones (orphaned index entries) are left out.
func (l *redisStore) records(ctx context.Context, tks []string) ([]Record, error) {
	vals, err := l.c.HMGet(ctx, logData, tks...).Result()
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(vals))
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue
		}
		var r Record
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			return nil, fmt.Errorf("decode record %x: %w", tks[i], err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Search walks the id index when q.ID is set, else the records from Until
// down to Since, applying the whole query to each record.
func (l *redisStore) Search(ctx context.Context, q Query) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("search message log: %w", err)
	}
	limit := q.EffectiveLimit()
	m, err := newMatcher(q)
	if err != nil {
		return nil, fmt.Errorf("search message log: %w", err)
	}
	key, prefix := logRecords, []byte(nil)
	if q.ID != "" {
		key, prefix = logByID, kv.LenPrefix(q.ID)
	}
	var out []Record
	err = kv.LexRange(ctx, l.c, key, prefix, q.Since, q.Until, true, logPage, func(tks []string) (bool, error) {
		rs, err := l.records(ctx, tks)
		if err != nil {
			return false, err
		}
		for _, r := range rs {
			if m.match(r) {
				if out = append(out, r); len(out) == limit {
					return false, nil
				}
			}
		}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("search message log: %w", err)
	}
	return out, nil
}

// Range reads logPage records per step (a ZRANGE and an HMGET) and calls
// fn between steps.
func (l *redisStore) Range(ctx context.Context, from, to time.Time, fn func(Record) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("range message log: %w", err)
	}
	var fnErr error
	err := kv.LexRange(ctx, l.c, logRecords, nil, from, to, false, logPage, func(tks []string) (bool, error) {
		rs, err := l.records(ctx, tks)
		if err != nil {
			return false, err
		}
		for _, r := range rs {
			if !kv.InRange(r.Time, from, to) {
				continue
			}
			if fnErr = fn(r); fnErr != nil {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("range message log: %w", err)
	}
	return fnErr
}

// Expire deletes records older than before, logExpireBatch per round: a
// ZRANGE, then one MULTI/EXEC removing them from both indexes and the
// data hash. The count comes from ZREM, so two nodes expiring at once do
// not both count a record.
func (l *redisStore) Expire(ctx context.Context, before time.Time) (int, error) {
	if !before.After(time.Unix(0, 0)) {
		return 0, nil // nothing is stored before 1970
	}
	hi := "+"
	if kv.Indexable(before) {
		hi = "(" + string(kv.TimeKey(before, ""))
	}
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("expire message log: %w", err)
		}
		tks, err := l.c.ZRangeArgs(ctx, redis.ZRangeArgs{Key: logRecords, Start: "-", Stop: hi, ByLex: true, Count: logExpireBatch}).Result()
		if err != nil {
			return total, fmt.Errorf("expire message log: %w", err)
		}
		if len(tks) == 0 {
			return total, nil
		}
		members := make([]any, len(tks))
		byID := make([]any, 0, len(tks))
		for i, tk := range tks {
			members[i] = tk
			if len(tk) >= 8 {
				byID = append(byID, string(kv.LenPrefix(tk[8:]))+tk)
			}
		}
		var rem *redis.IntCmd
		_, err = l.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			rem = p.ZRem(ctx, logRecords, members...)
			p.HDel(ctx, logData, tks...)
			if len(byID) > 0 {
				p.ZRem(ctx, logByID, byID...)
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("expire message log: %w", err)
		}
		total += int(rem.Val())
		if len(tks) < logExpireBatch {
			return total, nil
		}
	}
}
