// Package boltkv holds the key encoding and cursor helpers shared by the
// bbolt-backed stores (msglog, quarantine).
//
// Time-ordered index keys are an 8-byte big-endian unix-nanosecond time
// followed by an id (TimeKey), optionally preceded by a length-prefixed
// value (LenPrefix) so that each value's keys form one contiguous range.
// A reverse cursor over such keys walks newest first.
package boltkv

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

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

// TimeKey is the key for id at t: t as 8-byte big-endian unix nanoseconds,
// then id. With an empty id it is just the 8 time bytes. t must be
// Indexable for the keys to sort by time.
func TimeKey(t time.Time, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(t.UnixNano()))
	return append(k, id...)
}

// LenPrefix is s preceded by its length as a uvarint. No LenPrefix is a
// prefix of another, so keys under one value never mix with another's.
func LenPrefix(s string) []byte {
	k := binary.AppendUvarint(nil, uint64(len(s)))
	return append(k, s...)
}

// maxIDLen is the longest id CheckKey accepts.
const maxIDLen = 255

// CheckKey reports why a record with this id and time cannot be keyed by
// TimeKey(t, id): an empty id, an id longer than 255 bytes, or a t that is
// not Indexable. It returns nil when the key is fine.
func CheckKey(id string, t time.Time) error {
	if id == "" {
		return errors.New("empty id")
	}
	if len(id) > maxIDLen {
		return errors.New("id longer than 255 bytes")
	}
	if !Indexable(t) {
		return fmt.Errorf("time %v outside 1970..2262", t)
	}
	return nil
}

// Indexable reports whether t fits the unix-nanosecond time keys, that is
// whether it lies between 1970 and 2262.
func Indexable(t time.Time) bool {
	n := t.UnixNano()
	return n >= 0 && time.Unix(0, n).Equal(t)
}

// InRange reports whether t lies in the half-open range since <= t < until,
// where a zero since or until does not bound.
func InRange(t, since, until time.Time) bool {
	if !since.IsZero() && t.Before(since) {
		return false
	}
	if !until.IsZero() && !t.Before(until) {
		return false
	}
	return true
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

// bounds limits a reverse walk over the keys prefix+TimeKey(t, id) to the
// half-open range since <= t < until; a zero or non-Indexable time does
// not bound. lower is the 8 time bytes to compare with those after prefix
// (nil = no lower bound); upper is the exclusive key to hand to seekBefore
// (nil = the end of the bucket).
func bounds(prefix []byte, since, until time.Time) (lower, upper []byte) {
	if !since.IsZero() && Indexable(since) {
		lower = TimeKey(since, "")
	}
	upper = prefixEnd(prefix)
	if !until.IsZero() && Indexable(until) {
		upper = append(bytes.Clone(prefix), TimeKey(until, "")...)
	}
	return lower, upper
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

// prefixEnd is the smallest key above every key starting with p, or nil
// when there is none (p empty or all 0xff).
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
