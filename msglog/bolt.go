package msglog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/mxgate/mxgate/kv"
)

// Bucket layout. Records are keyed by 8-byte big-endian unix-nano time and
// id, so a reverse cursor walks newest first and Expire walks oldest first
// (a Redis sorted set by time maps onto it). The id index makes tracking
// one message cheap: key uvarint(len id)+id+time+id.
const (
	bucketRecords = "msglog.records"
	bucketByID    = "msglog.by_id"
)

const expireBatch = 1000

// boltStore is the embedded message log on a bbolt database.
type boltStore struct {
	db *bbolt.DB
}

// NewBolt returns the message log in db, creating its buckets if needed.
func NewBolt(db *bbolt.DB) (Store, error) {
	if db == nil {
		return nil, errors.New("open message log: nil database")
	}
	if err := kv.CreateBuckets(db, bucketRecords, bucketByID); err != nil {
		return nil, fmt.Errorf("open message log: %w", err)
	}
	return &boltStore{db: db}, nil
}

// Append stores records in one transaction (one fsync for a whole batch).
// A second record with the same time and id replaces the first. Nothing is
// stored when any record is invalid.
func (b *boltStore) Append(ctx context.Context, rs ...Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("append message log: %w", err)
	}
	type entry struct{ tk, data []byte }
	batch := make([]entry, 0, len(rs))
	for _, r := range rs {
		if err := validate(r); err != nil {
			return fmt.Errorf("append message log %q: %w", r.ID, err)
		}
		data, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("append message log %q: %w", r.ID, err)
		}
		batch = append(batch, entry{kv.TimeKey(r.Time, r.ID), data})
	}
	err := b.db.Update(func(tx *bbolt.Tx) error {
		recs, byID := tx.Bucket([]byte(bucketRecords)), tx.Bucket([]byte(bucketByID))
		for i, e := range batch {
			if err := recs.Put(e.tk, e.data); err != nil {
				return err
			}
			if err := byID.Put(append(kv.LenPrefix(rs[i].ID), e.tk...), []byte{}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append message log (%d records): %w", len(rs), err)
	}
	return nil
}

// Search walks the id index when q.ID is set, else the records from Until
// down to Since, applying the whole query to each record.
func (b *boltStore) Search(ctx context.Context, q Query) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("search message log: %w", err)
	}
	if !q.Until.IsZero() && q.Until.Before(time.Unix(0, 1)) {
		return nil, nil // nothing is stored before 1970
	}
	limit := q.EffectiveLimit()
	m, err := newMatcher(q)
	if err != nil {
		return nil, fmt.Errorf("search message log: %w", err)
	}
	var out []Record
	err = b.db.View(func(tx *bbolt.Tx) error {
		records := tx.Bucket([]byte(bucketRecords))
		var prefix []byte
		bucket := records
		if q.ID != "" {
			prefix = kv.LenPrefix(q.ID)
			bucket = tx.Bucket([]byte(bucketByID))
		}
		return kv.WalkBack(ctx, bucket.Cursor(), prefix, q.Since, q.Until, func(tk, v []byte) (bool, error) {
			if q.ID != "" {
				if v = records.Get(tk); v == nil {
					return true, nil // orphaned index entry
				}
			}
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return false, fmt.Errorf("decode record %x: %w", tk, err)
			}
			if m.match(r) {
				out = append(out, r)
			}
			return len(out) < limit, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("search message log: %w", err)
	}
	return out, nil
}

// Expire deletes records older than before, expireBatch per transaction.
func (b *boltStore) Expire(ctx context.Context, before time.Time) (int, error) {
	if !before.After(time.Unix(0, 0)) {
		return 0, nil // nothing is stored before 1970
	}
	var limit []byte
	if kv.Indexable(before) {
		limit = kv.TimeKey(before, "")
	}
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("expire message log: %w", err)
		}
		var deleted int
		err := b.db.Update(func(tx *bbolt.Tx) error {
			records, byID := tx.Bucket([]byte(bucketRecords)), tx.Bucket([]byte(bucketByID))
			var keys [][]byte
			c := records.Cursor()
			for k, _ := c.First(); k != nil && len(keys) < expireBatch; k, _ = c.Next() {
				if len(k) < 8 || (limit != nil && bytes.Compare(k[:8], limit) >= 0) {
					break
				}
				keys = append(keys, bytes.Clone(k))
			}
			for _, k := range keys {
				if err := records.Delete(k); err != nil {
					return err
				}
				if err := byID.Delete(append(kv.LenPrefix(string(k[8:])), k...)); err != nil {
					return err
				}
			}
			deleted = len(keys)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("expire message log: %w", err)
		}
		total += deleted
		if deleted < expireBatch {
			return total, nil
		}
	}
}

// rangeBatch is how many records Range reads per read transaction: a
// long-lived bbolt read transaction keeps the writer from reusing freed
// pages, and a day of records can be large.
const rangeBatch = 1000

// Range walks the records oldest first, rangeBatch per read transaction,
// calling fn between transactions.
func (b *boltStore) Range(ctx context.Context, from, to time.Time, fn func(Record) error) error {
	if !to.IsZero() && !to.After(time.Unix(0, 0)) {
		return nil // nothing is stored before 1970
	}
	var start, limit []byte
	if !from.IsZero() && kv.Indexable(from) {
		start = kv.TimeKey(from, "")
	}
	if !to.IsZero() && kv.Indexable(to) {
		limit = kv.TimeKey(to, "")
	}
	resume := false // start is the last key handed out, not a lower bound
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("range message log: %w", err)
		}
		var (
			batch []Record
			last  []byte
			done  bool
		)
		err := b.db.View(func(tx *bbolt.Tx) error {
			c := tx.Bucket([]byte(bucketRecords)).Cursor()
			var k, v []byte
			if start == nil {
				k, v = c.First()
			} else if k, v = c.Seek(start); resume && bytes.Equal(k, start) {
				k, v = c.Next()
			}
			for n := 0; ; k, v = c.Next() {
				if k == nil || (limit != nil && len(k) >= 8 && bytes.Compare(k[:8], limit) >= 0) {
					done = true
					return nil
				}
				if n == rangeBatch {
					return nil
				}
				n++
				last = bytes.Clone(k)
				var r Record
				if err := json.Unmarshal(v, &r); err != nil {
					return fmt.Errorf("decode record %x: %w", k, err)
				}
				if kv.InRange(r.Time, from, to) {
					batch = append(batch, r)
				}
			}
		})
		if err != nil {
			return fmt.Errorf("range message log: %w", err)
		}
		for _, r := range batch {
			if err := fn(r); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
		start, resume = last, true
	}
}
