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

	"github.com/mxgate/mxgate/boltkv"
)

// Bucket layout. Index keys end in an 8-byte big-endian unix-nano time and
// the id, so a reverse cursor walks newest first; the by_* indexes prefix
// that with the uvarint length of the value and the value, which keeps one
// value's range contiguous whatever bytes it holds. Each index maps onto a
// Redis sorted set (score = time, member = id).
const (
	bucketItems   = "quarantine.items"      // id → Item JSON
	bucketRaw     = "quarantine.raw"        // id → raw message
	bucketTime    = "quarantine.by_time"    // time+id
	bucketExpires = "quarantine.by_expires" // expires+id (only items that expire)
	bucketRcpt    = "quarantine.by_rcpt"    // len+rcpt+time+id (lower-cased)
	bucketSender  = "quarantine.by_sender"  // len+sender+time+id (lower-cased)
	bucketVerdict = "quarantine.by_verdict" // len+verdict+time+id (lower-cased)
	bucketDigest  = "quarantine.by_digest"  // len+digest+time+id (only items with a digest)
)

// expireBatch bounds one Expire transaction, so a large backlog does not
// hold the single bbolt writer (and quarantine Puts) for long.
const expireBatch = 1000

// Bolt is the embedded quarantine on a bbolt database.
type Bolt struct {
	db *bbolt.DB
}

var _ Store = (*Bolt)(nil)

// NewBolt creates the quarantine buckets in db if needed.
func NewBolt(db *bbolt.DB) (*Bolt, error) {
	if db == nil {
		return nil, errors.New("open quarantine: nil database")
	}
	err := boltkv.CreateBuckets(db, bucketItems, bucketRaw, bucketTime, bucketExpires, bucketRcpt, bucketSender, bucketVerdict, bucketDigest)
	if err != nil {
		return nil, fmt.Errorf("open quarantine: %w", err)
	}
	return &Bolt{db: db}, nil
}

type indexEntry struct {
	bucket string
	key    []byte
}

// indexEntries lists every index key of it. Put writes exactly these and
// removal deletes exactly these, so no index can keep a stale id.
func indexEntries(it Item) []indexEntry {
	tk := boltkv.TimeKey(it.Time, it.ID)
	e := []indexEntry{{bucketTime, tk}}
	if !it.Expires.IsZero() {
		e = append(e, indexEntry{bucketExpires, boltkv.TimeKey(it.Expires, it.ID)})
	}
	var seen []string
	for _, r := range it.Recipients {
		r = fold(r)
		if r == "" || slices.Contains(seen, r) {
			continue
		}
		seen = append(seen, r)
		e = append(e, indexEntry{bucketRcpt, append(boltkv.LenPrefix(r), tk...)})
	}
	if it.Sender != "" {
		e = append(e, indexEntry{bucketSender, append(boltkv.LenPrefix(fold(it.Sender)), tk...)})
	}
	if it.Verdict != "" {
		e = append(e, indexEntry{bucketVerdict, append(boltkv.LenPrefix(fold(it.Verdict)), tk...)})
	}
	if it.Digest != "" {
		e = append(e, indexEntry{bucketDigest, append(boltkv.LenPrefix(it.Digest), tk...)})
	}
	return e
}

// heldBy finds the item that holds the message with this digest.
func heldBy(tx *bbolt.Tx, digest string) (string, bool) {
	items := tx.Bucket([]byte(bucketItems))
	p := boltkv.LenPrefix(digest)
	c := tx.Bucket([]byte(bucketDigest)).Cursor()
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
func (b *Bolt) Put(ctx context.Context, it Item, raw []byte) error {
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
			if err := tx.Bucket([]byte(e.bucket)).Put(e.key, []byte{}); err != nil {
				return fmt.Errorf("index %s: %w", e.bucket, err)
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

func (b *Bolt) Get(ctx context.Context, id string) (Item, error) {
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

func (b *Bolt) Raw(ctx context.Context, id string) ([]byte, error) {
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

// List walks the most selective index the filter names (recipient, then
// sender, then verdict, else time) from Until down to Since, and applies the
// whole filter to each item it finds there.
func (b *Bolt) List(ctx context.Context, f Filter) ([]Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list quarantine: %w", err)
	}
	limit := f.EffectiveLimit()
	var out []Item
	err := b.db.View(func(tx *bbolt.Tx) error {
		bucket, prefix := bucketTime, []byte(nil)
		switch {
		case f.Rcpt != "":
			bucket, prefix = bucketRcpt, boltkv.LenPrefix(fold(f.Rcpt))
		case f.Sender != "":
			bucket, prefix = bucketSender, boltkv.LenPrefix(fold(f.Sender))
		case f.Verdict != "":
			bucket, prefix = bucketVerdict, boltkv.LenPrefix(fold(f.Verdict))
		}
		c := tx.Bucket([]byte(bucket)).Cursor()
		return boltkv.WalkBack(ctx, c, prefix, f.Since, f.Until, func(tk, _ []byte) (bool, error) {
			it, err := getItem(tx, tk[8:])
			if errors.Is(err, ErrNotFound) {
				return true, nil // an orphaned index entry must not break listing
			}
			if err != nil {
				return false, fmt.Errorf("item %q: %w", tk[8:], err)
			}
			if f.Match(it) {
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
			if err := tx.Bucket([]byte(e.bucket)).Delete(e.key); err != nil {
				return fmt.Errorf("index %s: %w", e.bucket, err)
			}
		}
	}
	if err := items.Delete(id); err != nil {
		return err
	}
	return tx.Bucket([]byte(bucketRaw)).Delete(id)
}

func (b *Bolt) Delete(ctx context.Context, id string) error {
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
func (b *Bolt) update(id string, fn func(*Item) (bool, error)) (Item, error) {
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

func (b *Bolt) ClaimRelease(ctx context.Context, id string, r Release) (Item, error) {
	if err := ctx.Err(); err != nil {
		return Item{}, fmt.Errorf("claim release of quarantine item %q: %w", id, err)
	}
	before, err := b.update(id, func(it *Item) (bool, error) { return true, ApplyClaim(it, r) })
	if err != nil {
		return before, fmt.Errorf("claim release of quarantine item %q: %w", id, err)
	}
	return before, nil
}

func (b *Bolt) FinishRelease(ctx context.Context, id string, r Release, delivered bool) error {
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
func (b *Bolt) Expire(ctx context.Context, now time.Time) (int, error) {
	if !boltkv.Indexable(now) {
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
			exp := tx.Bucket([]byte(bucketExpires))
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
