package lists

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/mxgate/mxgate/kv"
)

const (
	// listsEntries maps the entry key (EntryKey) to the entry's JSON, as
	// the bbolt bucket does.
	listsEntries = kv.Prefix + "lists:entries"
	// listsChanged is the pub/sub channel Add and Remove publish on.
	listsChanged = kv.Prefix + "lists:changed"
)

// redisStore is the list store in Redis.
type redisStore struct {
	c redis.UniversalClient
}

// NewRedis returns the list store in Redis. Its writes publish on a
// channel that Changes follows on every node.
func NewRedis(c redis.UniversalClient) Store { return &redisStore{c: c} }

// Add stores e unless an equal entry exists (HSETNX) and publishes a
// change, in one MULTI/EXEC; the HGET in it reads what is stored then.
func (l *redisStore) Add(ctx context.Context, e Entry) (Entry, bool, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, false, fmt.Errorf("add list entry: %w", err)
	}
	e, err := Normalize(e)
	if err != nil {
		return Entry{}, false, fmt.Errorf("add list entry: %w", err)
	}
	data, err := json.Marshal(e)
	if err != nil {
		return Entry{}, false, fmt.Errorf("add list entry: %w", err)
	}
	key := EntryKey(e.Kind, e.Value, e.Rcpt)
	var set *redis.BoolCmd
	var get *redis.StringCmd
	_, err = l.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		set = p.HSetNX(ctx, listsEntries, key, data)
		get = p.HGet(ctx, listsEntries, key)
		p.Publish(ctx, listsChanged, "add")
		return nil
	})
	if err != nil {
		return Entry{}, false, fmt.Errorf("add list entry %s %s: %w", e.Kind, e.Value, err)
	}
	if set.Val() {
		return e, true, nil
	}
	var stored Entry
	if err := json.Unmarshal([]byte(get.Val()), &stored); err != nil {
		return Entry{}, false, fmt.Errorf("add list entry %s %s: decode the stored one: %w", e.Kind, e.Value, err)
	}
	return stored, false, nil
}

// Remove deletes the entry and publishes a change, in one MULTI/EXEC.
func (l *redisStore) Remove(ctx context.Context, kind Kind, value, rcpt string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("remove list entry: %w", err)
	}
	e, err := Normalize(Entry{Kind: kind, Value: value, Rcpt: rcpt})
	if err != nil {
		return fmt.Errorf("remove list entry: %w", err)
	}
	var del *redis.IntCmd
	_, err = l.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		del = p.HDel(ctx, listsEntries, EntryKey(e.Kind, e.Value, e.Rcpt))
		p.Publish(ctx, listsChanged, "remove")
		return nil
	})
	if err == nil && del.Val() == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("remove list entry %s %s: %w", kind, value, err)
	}
	return nil
}

// All returns every entry, ordered by kind, recipient and value (the
// entry key), as the bbolt backend does.
func (l *redisStore) All(ctx context.Context) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read lists: %w", err)
	}
	m, err := l.c.HGetAll(ctx, listsEntries).Result()
	if err != nil {
		return nil, fmt.Errorf("read lists: %w", err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []Entry
	for _, k := range keys {
		var e Entry
		if err := json.Unmarshal([]byte(m[k]), &e); err != nil {
			return nil, fmt.Errorf("read lists: decode entry %q: %w", k, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// Changes signals every change made by any node, and every
// resubscription after a lost connection (see kv.Subscribe).
func (l *redisStore) Changes(ctx context.Context) <-chan struct{} {
	return kv.Subscribe(ctx, l.c, listsChanged)
}
