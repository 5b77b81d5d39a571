package quarantine

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

// Redis keys. Per item: its metadata and its raw message, both expiring
// in Redis at the item's Expires (a backstop should no node run Expire),
// and its index record, which lists the index members the item added and
// has no TTL, so that Delete and Expire remove exactly those even after
// Redis dropped the metadata. The indexes are lex-ordered sorted sets
// holding the keys of indexEntries, as the bbolt buckets do.
const (
	qMeta = kv.Prefix + "q:meta:" // + id → Item JSON
	qRaw  = kv.Prefix + "q:raw:"  // + id → raw message
	qIdx  = kv.Prefix + "q:idx:"  // + id → JSON [{k, m}] of its index members
)

// qIndexKeys names each index's sorted set, in the order the put script
// gets them as KEYS[4..]. An index record stores these names, so they
// are part of the stored data: renaming one orphans what is stored.
var qIndexKeys = [numIndexes]string{
	byTime:    kv.Prefix + "q:by_time",
	byExpires: kv.Prefix + "q:by_expires",
	byRcpt:    kv.Prefix + "q:by_rcpt",
	bySender:  kv.Prefix + "q:by_sender",
	byVerdict: kv.Prefix + "q:by_verdict",
	byDigest:  kv.Prefix + "q:by_digest",
}

// qDigestLookup bounds how many entries of one digest the put script looks
// at: entries whose item Redis expired stay until Expire runs, and the
// newest come first.
const qDigestLookup = 16

// qTxAttempts bounds the optimistic transactions (WATCH/MULTI) of
// ClaimRelease and FinishRelease: one that loses to a concurrent writer
// reads again and then decides on what the winner wrote.
const qTxAttempts = 16

// qPage is how many index members List reads per round trip (plus one
// MGET of their items).
const qPage = 256

// qExpireBatch bounds one Expire round, like the bbolt backend's batch.
const qExpireBatch = 1000

// putScript stores a new item in one round trip, atomically: a check for
// the digest and the id, the item, its message, its index record and its
// index members. A retry of a Put whose reply was lost (go-redis retries
// on network errors, the front end retries a failed Put) finds its own
// item (same digest, or same JSON and message) and succeeds again instead
// of reporting ErrExists.
//
// KEYS: meta, raw, idx, then qIndexKeys. ARGV: item JSON, raw, idx JSON,
// expiry in unix ms ("0" = none), digest lookup range (lowest, highest;
// "" = no digest), the KEYS number of the digest index, the meta key
// prefix, then pairs of index key number (into KEYS) and member. It
// returns 1 (stored, or stored before), 0 (the id holds another item) or
// the id of the item holding the same message. The meta keys of other
// items are read by prefix: they carry the same hash tag, hence the same
// slot.
var putScript = redis.NewScript(`
if ARGV[5] ~= '' then
	local ms = redis.call('ZREVRANGEBYLEX', KEYS[tonumber(ARGV[7])], ARGV[6], ARGV[5], 'LIMIT', 0, ` + strconv.Itoa(qDigestLookup) + `)
	-- A member is the prefix (ARGV[5] without its "["), 8 time bytes, the id.
	local skip = #ARGV[5] + 8
	for _, m in ipairs(ms) do
		local id = string.sub(m, skip)
		if redis.call('EXISTS', ARGV[8] .. id) == 1 then
			if ARGV[8] .. id == KEYS[1] then return 1 end
			return id
		end
	end
end
if redis.call('EXISTS', KEYS[1], KEYS[3]) > 0 then
	if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[2] then return 1 end
	return 0
end
if ARGV[4] == '0' then
	redis.call('SET', KEYS[1], ARGV[1])
	redis.call('SET', KEYS[2], ARGV[2])
else
	redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[4])
	redis.call('SET', KEYS[2], ARGV[2], 'PXAT', ARGV[4])
end
redis.call('SET', KEYS[3], ARGV[3])
for i = 9, #ARGV, 2 do
	redis.call('ZADD', KEYS[tonumber(ARGV[i])], 0, ARGV[i+1])
end
return 1
`)

// qIndexMember is one member of one index, as an index record holds it.
type qIndexMember struct {
	Key    string `json:"k"`
	Member []byte `json:"m"`
}

// redisStore is the shared quarantine in Redis.
type redisStore struct {
	c redis.UniversalClient
}

// NewRedis returns the quarantine in Redis.
func NewRedis(c redis.UniversalClient) Store {
	return &redisStore{c: c}
}

// qIndexMembers are an item's index entries as members of the sorted
// sets.
func qIndexMembers(es []indexEntry) []qIndexMember {
	ms := make([]qIndexMember, len(es))
	for i, e := range es {
		ms[i] = qIndexMember{Key: qIndexKeys[e.idx], Member: e.key}
	}
	return ms
}

// digestRange is the ZRANGEBYLEX range of every index member of digest:
// "[" + its prefix, "(" + the prefix with its last byte raised (a valid
// digest is hex, so that byte is never 0xff).
func digestRange(digest string) (lo, hi string) {
	p := kv.LenPrefix(digest)
	next := slices.Clone(p)
	next[len(next)-1]++
	return "[" + string(p), "(" + string(next)
}

// Put stores the item in one round trip (an EVALSHA; EVAL once after a
// Redis restart emptied the script cache). It returns when Redis has
// executed the write: how durable that is depends on the server's
// appendonly/appendfsync and replication settings.
func (q *redisStore) Put(ctx context.Context, it Item, raw []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put quarantine item %q: %w", it.ID, err)
	}
	if err := validate(it); err != nil {
		return fmt.Errorf("put quarantine item %q: %w", it.ID, err)
	}
	meta, err := json.Marshal(it)
	if err != nil {
		return fmt.Errorf("put quarantine item %q: %w", it.ID, err)
	}
	entries := indexEntries(it)
	idx, err := json.Marshal(qIndexMembers(entries))
	if err != nil {
		return fmt.Errorf("put quarantine item %q: %w", it.ID, err)
	}
	// An expiry already past gets no TTL: Redis would drop the item at
	// once, while the contract is that it stays until Expire runs.
	expireAt := "0"
	if !it.Expires.IsZero() && it.Expires.After(time.Now()) {
		expireAt = strconv.FormatInt(it.Expires.UnixMilli(), 10)
	}
	if raw == nil {
		raw = []byte{}
	}
	keys := append([]string{qMeta + it.ID, qRaw + it.ID, qIdx + it.ID}, qIndexKeys[:]...)
	var lo, hi string
	if it.Digest != "" {
		lo, hi = digestRange(it.Digest)
	}
	args := []any{meta, raw, idx, expireAt, lo, hi, 4 + int(byDigest), qMeta}
	for _, e := range entries {
		args = append(args, 4+int(e.idx), e.key)
	}
	res, err := putScript.Run(ctx, q.c, keys, args...).Result()
	if err != nil {
		return fmt.Errorf("put quarantine item %q: %w", it.ID, err)
	}
	switch res := res.(type) {
	case int64:
		if res == 1 {
			return nil
		}
		return fmt.Errorf("put quarantine item %q: %w", it.ID, ErrExists)
	case string:
		return fmt.Errorf("put quarantine item %q: %w", it.ID, &DuplicateError{ID: res})
	}
	return fmt.Errorf("put quarantine item %q: unexpected script reply %v", it.ID, res)
}

func decodeItem(data string) (Item, error) {
	var it Item
	if err := json.Unmarshal([]byte(data), &it); err != nil {
		return Item{}, fmt.Errorf("decode: %w", err)
	}
	return it, nil
}

func (q *redisStore) Get(ctx context.Context, id string) (Item, error) {
	if err := ctx.Err(); err != nil {
		return Item{}, fmt.Errorf("get quarantine item %q: %w", id, err)
	}
	data, err := q.c.Get(ctx, qMeta+id).Result()
	if errors.Is(err, redis.Nil) {
		err = ErrNotFound
	}
	if err != nil {
		return Item{}, fmt.Errorf("get quarantine item %q: %w", id, err)
	}
	it, err := decodeItem(data)
	if err != nil {
		return Item{}, fmt.Errorf("get quarantine item %q: %w", id, err)
	}
	return it, nil
}

func (q *redisStore) Raw(ctx context.Context, id string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read quarantined message %q: %w", id, err)
	}
	raw, err := q.c.Get(ctx, qRaw+id).Bytes()
	if errors.Is(err, redis.Nil) {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read quarantined message %q: %w", id, err)
	}
	return raw, nil
}

// List walks the index f.walk names from Until down to Since, qPage
// members and one MGET of their items per step, and applies the whole
// filter to each item, as the bbolt backend does.
func (q *redisStore) List(ctx context.Context, f Filter) ([]Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list quarantine: %w", err)
	}
	m, err := f.matcher()
	if err != nil {
		return nil, fmt.Errorf("list quarantine: %w", err)
	}
	limit := f.EffectiveLimit()
	idx, prefix := m.walk()
	var out []Item
	err = kv.LexRange(ctx, q.c, qIndexKeys[idx], prefix, f.Since, m.until, true, qPage, func(tks []string) (bool, error) {
		keys := make([]string, len(tks))
		for i, tk := range tks {
			keys[i] = qMeta + tk[8:]
		}
		vals, err := q.c.MGet(ctx, keys...).Result()
		if err != nil {
			return false, err
		}
		for i, v := range vals {
			s, ok := v.(string)
			if !ok {
				continue // an orphaned index entry must not break listing
			}
			it, err := decodeItem(s)
			if err != nil {
				return false, fmt.Errorf("item %q: %w", tks[i][8:], err)
			}
			if m.match(it) {
				if out = append(out, it); len(out) == limit {
					return false, nil
				}
			}
		}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list quarantine: %w", err)
	}
	return out, nil
}

// Count is the time index's ZCARD: one O(1) command. Items Redis expired
// by their TTL count until Expire removes their index members.
func (q *redisStore) Count(ctx context.Context) (int, error) {
	n, err := q.c.ZCard(ctx, qIndexKeys[byTime]).Result()
	if err != nil {
		return 0, fmt.Errorf("count quarantine: %w", err)
	}
	return int(n), nil
}

// removeCmds queues, in a MULTI/EXEC pipeline, the removal of item id
// with the index members recorded for it. The returned command is the
// DEL of its index record: 1 when this call removed the item, 0 when
// someone else did first.
func removeCmds(ctx context.Context, p redis.Pipeliner, id string, members []qIndexMember) *redis.IntCmd {
	p.Del(ctx, qMeta+id, qRaw+id)
	for _, m := range members {
		p.ZRem(ctx, m.Key, m.Member)
	}
	return p.Del(ctx, qIdx+id)
}

func decodeIdx(data string) ([]qIndexMember, error) {
	var ms []qIndexMember
	if err := json.Unmarshal([]byte(data), &ms); err != nil {
		return nil, fmt.Errorf("decode index record: %w", err)
	}
	return ms, nil
}

// Delete reads the item's index record, then removes the item, its
// message, its index record and its index members in one MULTI/EXEC.
func (q *redisStore) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete quarantine item %q: %w", id, err)
	}
	err := q.delete(ctx, id)
	if err != nil {
		return fmt.Errorf("delete quarantine item %q: %w", id, err)
	}
	return nil
}

func (q *redisStore) delete(ctx context.Context, id string) error {
	data, err := q.c.Get(ctx, qIdx+id).Result()
	if errors.Is(err, redis.Nil) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	members, err := decodeIdx(data)
	if err != nil {
		return err
	}
	var delMeta *redis.IntCmd
	_, err = q.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		delMeta = p.Del(ctx, qMeta+id)
		removeCmds(ctx, p, id, members)
		return nil
	})
	if err != nil {
		return err
	}
	// Gone already (Redis expired it, or another node deleted it): the
	// leftovers are cleaned up all the same.
	if delMeta.Val() == 0 {
		return ErrNotFound
	}
	return nil
}

// update changes one item in an optimistic transaction: WATCH its key,
// read it, let fn decide, then SET XX KEEPTTL in MULTI/EXEC, which fails
// (and is tried again on what is stored now) when anyone wrote the item
// in between. The item as it was before is returned, also when fn
// refuses.
func (q *redisStore) update(ctx context.Context, id string, fn func(*Item) (bool, error)) (Item, error) {
	key := qMeta + id
	var before Item
	for range qTxAttempts {
		err := q.c.Watch(ctx, func(tx *redis.Tx) error {
			data, err := tx.Get(ctx, key).Result()
			if errors.Is(err, redis.Nil) {
				return ErrNotFound
			}
			if err != nil {
				return err
			}
			if before, err = decodeItem(data); err != nil {
				return err
			}
			it, _ := decodeItem(data) // a copy sharing nothing with before
			write, err := fn(&it)
			if err != nil || !write {
				return err
			}
			meta, err := json.Marshal(it)
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.SetArgs(ctx, key, meta, redis.SetArgs{Mode: "XX", KeepTTL: true})
				return nil
			})
			return err
		}, key)
		if !errors.Is(err, redis.TxFailedErr) {
			return before, err
		}
	}
	return before, fmt.Errorf("item changed by others %d times in a row", qTxAttempts)
}

func (q *redisStore) ClaimRelease(ctx context.Context, id string, r Release) (Item, error) {
	if err := ctx.Err(); err != nil {
		return Item{}, fmt.Errorf("claim release of quarantine item %q: %w", id, err)
	}
	before, err := q.update(ctx, id, func(it *Item) (bool, error) { return true, ApplyClaim(it, r) })
	if err != nil {
		return before, fmt.Errorf("claim release of quarantine item %q: %w", id, err)
	}
	return before, nil
}

func (q *redisStore) FinishRelease(ctx context.Context, id string, r Release, delivered bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("finish release of quarantine item %q: %w", id, err)
	}
	_, err := q.update(ctx, id, func(it *Item) (bool, error) { return ApplyFinish(it, r, delivered) })
	if err != nil {
		return fmt.Errorf("finish release of quarantine item %q: %w", id, err)
	}
	return nil
}

// Expire deletes items whose Expires <= now, qExpireBatch per round: one
// ZRANGE of the expiry index, one pipelined GET of the index records, one
// MULTI/EXEC removing them. Items whose index record is gone leave only
// their expiry entry, which is dropped.
func (q *redisStore) Expire(ctx context.Context, now time.Time) (int, error) {
	if !kv.Indexable(now) {
		return 0, nil // nothing expires before 1970
	}
	hi := "+"
	if next := now.Add(time.Nanosecond); kv.Indexable(next) {
		hi = "(" + string(kv.TimeKey(next, ""))
	}
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("expire quarantine: %w", err)
		}
		n, seen, err := q.expireBatch(ctx, hi)
		total += n
		if err != nil {
			return total, fmt.Errorf("expire quarantine: %w", err)
		}
		if seen < qExpireBatch {
			return total, nil
		}
	}
}

func (q *redisStore) expireBatch(ctx context.Context, hi string) (deleted, seen int, err error) {
	members, err := q.c.ZRangeArgs(ctx, redis.ZRangeArgs{Key: qIndexKeys[byExpires], Start: "-", Stop: hi, ByLex: true, Count: qExpireBatch}).Result()
	if err != nil || len(members) == 0 {
		return 0, 0, err
	}
	idxCmds := make([]*redis.StringCmd, len(members))
	_, err = q.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range members {
			idxCmds[i] = p.Get(ctx, qIdx+m[8:])
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, 0, err
	}
	var dels []*redis.IntCmd
	_, err = q.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range members {
			data, err := idxCmds[i].Result()
			var ms []qIndexMember
			if err == nil {
				ms, err = decodeIdx(data)
			}
			if err != nil {
				// Orphaned entry: drop it, or Expire would meet it forever.
				p.ZRem(ctx, qIndexKeys[byExpires], m)
				continue
			}
			dels = append(dels, removeCmds(ctx, p, m[8:], ms))
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	for _, d := range dels {
		deleted += int(d.Val())
	}
	return deleted, len(members), nil
}
