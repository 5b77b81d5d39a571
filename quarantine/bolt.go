package quarantine

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/mxgate/mxgate/kv"
)

// Bucket layout: the items and their messages by id, and one bucket per
// index (see indexEntries), each key mapping to nothing.
const (
	bucketItems = "quarantine.items" // id → Item JSON
	bucketRaw   = "quarantine.raw"   // id → raw message
)

// indexBuckets names each index's bucket.
var indexBuckets = [numIndexes]string{
	byTime:    "quarantine.by_time",
	byExpires: "quarantine.by_expires",
	byRcpt:    "quarantine.by_rcpt",
	bySender:  "quarantine.by_sender",
	byVerdict: "quarantine.by_verdict",
	byDigest:  "quarantine.by_digest",
}

// expireBatch bounds one Expire transaction, so a large backlog does not
// hold the single bbolt writer (and quarantine Puts) for long.
const expireBatch = 1000

// boltStore is the embedded quarantine on a bbolt database.
type boltStore struct {
	db *bbolt.DB
}

// NewBolt returns the quarantine in db, creating its buckets if needed.
func NewBolt(db *bbolt.DB) (Store, error) {
	if db == nil {
		return nil, errors.New("open quarantine: nil database")
	}
	err := kv.CreateBuckets(db, append([]string{bucketItems, bucketRaw}, indexBuckets[:]...)...)
	if err != nil {
		return nil, fmt.Errorf("open quarantine: %w", err)
	}
	return &boltStore{db: db}, nil
}

func indexBucket(tx *bbolt.Tx, i index) *bbolt.Bucket {
	return tx.Bucket([]byte(indexBuckets[i]))
}

// heldBy finds the item that holds the message with this digest.
func heldBy(tx *bbolt.Tx, digest string) (string, bool) {
	items := tx.Bucket([]byte(bucketItems))
	p := kv.LenPrefix(digest)
	c := indexBucket(tx, byDigest).Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		if id := k[len(p)+8:]; items.Get(id) != nil {
			return string(id), true
		}
	}
	return "", false
}

// Put stores a new item. bbolt's Update fsyncs on commit, so the item is
// durable when Put returns nil. The digest check and the write are one
// transaction, so two Puts of one message cannot both store it.
func (b *boltStore) Put(ctx context.Context, it Item, raw []byte) error {
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
	err = b.db.Update(func(tx *bbolt.Tx) error {
		items := tx.Bucket([]byte(bucketItems))
		raws := tx.Bucket([]byte(bucketRaw))
		id := []byte(it.ID)
		if it.Digest != "" {
			if held, ok := heldBy(tx, it.Digest); ok {
				if held == it.ID {
					return nil // this Put again: the message is held
				}
				return &DuplicateError{ID: held}
			}
		}
		if old := items.Get(id); old != nil {
			if bytes.Equal(old, meta) && bytes.Equal(raws.Get(id), raw) {
				return nil
			}
			return ErrExists
		}
		if err := items.Put(id, meta); err != nil {
			return err
		}
		if raw == nil {
			raw = []byte{}
		}
		if err := raws.Put(id, raw); err != nil {
			return err
		}
		for _, e := range indexEntries(it) {
			if err := indexBucket(tx, e.idx).Put(e.key, []byte{}); err != nil {
				return fmt.Errorf("index %s: %w", indexBuckets[e.idx], err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put quarantine item %q: %w", it.ID, err)
	}
	return nil
}

func getItem(tx *bbolt.Tx, id []byte) (Item, error) {
	data := tx.Bucket([]byte(bucketItems)).Get(id)
	if data == nil {
		return Item{}, ErrNotFound
	}
	var it Item
	if err := json.Unmarshal(data, &it); err != nil {
		return Item{}, fmt.Errorf("decode: %w", err)
	}
	return it, nil
}

func (b *boltStore) Get(ctx context.Context, id string) (Item, error) {
	if err := ctx.Err(); err != nil {
		return Item{}, fmt.Errorf("get quarantine item %q: %w", id, err)
	}
	var it Item
	err := b.db.View(func(tx *bbolt.Tx) error {
		var err error
		it, err = getItem(tx, []byte(id))
		return err
	})
	if err != nil {
		return Item{}, fmt.Errorf("get quarantine item %q: %w", id, err)
	}
	return it, nil
}

func (b *boltStore) Raw(ctx context.Context, id string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read quarantined message %q: %w", id, err)
	}
	var raw []byte
	err := b.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket([]byte(bucketRaw)).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		// bbolt memory is only valid inside the transaction.
		raw = bytes.Clone(v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read quarantined message %q: %w", id, err)
	}
	return raw, nil
}

// List walks the index f.walk names from Until down to Since, and applies
// the whole filter to each item it finds there.
func (b *boltStore) List(ctx context.Context, f Filter) ([]Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list quarantine: %w", err)
	}
	m, err := f.matcher()
	if err != nil {
		return nil, fmt.Errorf("list quarantine: %w", err)
	}
	limit := f.EffectiveLimit()
	var out []Item
	err = b.db.View(func(tx *bbolt.Tx) error {
		idx, prefix := m.walk()
		c := indexBucket(tx, idx).Cursor()
		return kv.WalkBack(ctx, c, prefix, f.Since, m.until, func(tk, _ []byte) (bool, error) {
			it, err := getItem(tx, tk[8:])
			if errors.Is(err, ErrNotFound) {
				return true, nil // an orphaned index entry must not break listing
			}
			if err != nil {
				return false, fmt.Errorf("item %q: %w", tk[8:], err)
			}
			if m.match(it) {
				out = append(out, it)
			}
			return len(out) < limit, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list quarantine: %w", err)
	}
	return out, nil
}

// Count reads the key count of the time index's pages; no item is decoded.
func (b *boltStore) Count(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("count quarantine: %w", err)
	}
	var n int
	err := b.db.View(func(tx *bbolt.Tx) error {
		n = indexBucket(tx, byTime).Stats().KeyN
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count quarantine: %w", err)
	}
	return n, nil
}

// deleteItem removes an item, its raw message and all its index entries.
func deleteItem(tx *bbolt.Tx, id []byte) error {
	items := tx.Bucket([]byte(bucketItems))
	it, err := getItem(tx, id)
	if errors.Is(err, ErrNotFound) {
		return err
	}
	// An undecodable item loses its index entries to List's orphan
	// skipping, but the item and message themselves still go.
	if err == nil {
		for _, e := range indexEntries(it) {
			if err := indexBucket(tx, e.idx).Delete(e.key); err != nil {
				return fmt.Errorf("index %s: %w", indexBuckets[e.idx], err)
			}
		}
	}
	if err := items.Delete(id); err != nil {
		return err
	}
	return tx.Bucket([]byte(bucketRaw)).Delete(id)
}

func (b *boltStore) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete quarantine item %q: %w", id, err)
	}
	err := b.db.Update(func(tx *bbolt.Tx) error { return deleteItem(tx, []byte(id)) })
	if err != nil {
		return fmt.Errorf("delete quarantine item %q: %w", id, err)
	}
	return nil
}

// update changes one item in one transaction: fn decides on the item as
// stored; the item as it was before is returned, also when fn refuses.
func (b *boltStore) update(id string, fn func(*Item) (bool, error)) (Item, error) {
	var before Item
	err := b.db.Update(func(tx *bbolt.Tx) error {
		it, err := getItem(tx, []byte(id))
		if err != nil {
			return err
		}
		before = it
		// fn must not share slices with before.
		it.Releases = slices.Clone(it.Releases)
		write, err := fn(&it)
		if err != nil || !write {
			return err
		}
		meta, err := json.Marshal(it)
		if err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketItems)).Put([]byte(id), meta)
	})
	return before, err
}

func (b *boltStore) ClaimRelease(ctx context.Context, id string, r Release) (Item, error) {
	if err := ctx.Err(); err != nil {
		return Item{}, fmt.Errorf("claim release of quarantine item %q: %w", id, err)
	}
	before, err := b.update(id, func(it *Item) (bool, error) { return true, ApplyClaim(it, r) })
	if err != nil {
		return before, fmt.Errorf("claim release of quarantine item %q: %w", id, err)
	}
	return before, nil
}

func (b *boltStore) FinishRelease(ctx context.Context, id string, r Release, delivered bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("finish release of quarantine item %q: %w", id, err)
	}
	_, err := b.update(id, func(it *Item) (bool, error) { return ApplyFinish(it, r, delivered) })
	if err != nil {
		return fmt.Errorf("finish release of quarantine item %q: %w", id, err)
	}
	return nil
}

// Expire deletes expired items in batches of expireBatch per transaction,
// checking ctx between batches.
func (b *boltStore) Expire(ctx context.Context, now time.Time) (int, error) {
	if !kv.Indexable(now) {
		return 0, nil // nothing expires before 1970
	}
	limit := uint64(now.UnixNano())
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("expire quarantine: %w", err)
		}
		var seen, deleted int
		err := b.db.Update(func(tx *bbolt.Tx) error {
			exp := indexBucket(tx, byExpires)
			var keys [][]byte
			c := exp.Cursor()
			for k, _ := c.First(); k != nil && len(keys) < expireBatch; k, _ = c.Next() {
				if len(k) < 8 || binary.BigEndian.Uint64(k) > limit {
					break
				}
				keys = append(keys, bytes.Clone(k))
			}
			seen = len(keys)
			for _, k := range keys {
				err := deleteItem(tx, k[8:])
				if errors.Is(err, ErrNotFound) {
					// Orphaned entry: drop it, or Expire would meet it forever.
					err = exp.Delete(k)
				} else if err == nil {
					deleted++
				}
				if err != nil {
					return fmt.Errorf("item %q: %w", k[8:], err)
				}
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("expire quarantine: %w", err)
		}
		total += deleted
		if seen < expireBatch {
			return total, nil
		}
	}
}
