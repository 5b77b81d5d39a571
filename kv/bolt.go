package kv

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// The bbolt side: buckets and the newest-first cursor walk. Time-ordered
// index keys are TimeKey, optionally preceded by a LenPrefix'd value so
// that each value's keys form one contiguous range; a reverse cursor over
// them walks newest first.

// CreateBuckets creates the named top-level buckets in db, in one
// transaction, where they do not exist yet.
func CreateBuckets(db *bbolt.DB, names ...string) error {
	return db.Update(func(tx *bbolt.Tx) error {
		for _, name := range names {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
		}
		return nil
	})
}

// WalkBack walks, newest first, the keys of c's bucket that are prefix
// followed by a TimeKey whose time may lie in InRange(since, until): a zero
// or non-Indexable bound does not narrow the walk (fn must still check the
// range itself), except that an until before 1970 leaves nothing to walk.
// For each key it calls fn with the key after prefix (time bytes and id)
// and the value, skipping keys too short to hold a time. It stops when fn
// returns false or an error, or when ctx is done (checked every 256 keys),
// and returns that error.
func WalkBack(ctx context.Context, c *bbolt.Cursor, prefix []byte, since, until time.Time, fn func(tk, v []byte) (more bool, err error)) error {
	if !until.IsZero() && until.Before(time.Unix(0, 0)) {
		return nil // nothing is stored before 1970
	}
	lower, upper := bounds(prefix, since, until)
	n := 0
	for k, v := seekBefore(c, upper); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
		tk := k[len(prefix):]
		if len(tk) < 8 {
			continue
		}
		if lower != nil && bytes.Compare(tk[:8], lower) < 0 {
			break
		}
		if n++; n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if more, err := fn(tk, v); err != nil || !more {
			return err
		}
	}
	return nil
}

// seekBefore positions c on the last key below upper (nil = the last key)
// and returns that key and its value, or nils when there is none.
func seekBefore(c *bbolt.Cursor, upper []byte) (key, value []byte) {
	if upper == nil {
		return c.Last()
	}
	if k, _ := c.Seek(upper); k == nil {
		return c.Last()
	}
	return c.Prev()
}
