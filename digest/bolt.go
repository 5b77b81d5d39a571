package digest

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

// Buckets of the embedded store.
const (
	bucketKeys      = "digest_keys"      // key id → Key JSON
	bucketSending   = "digest_sending"   // day + 0 + rcpt → Sending JSON (days sort by date)
	bucketOptOut    = "digest_optout"    // rcpt → ""
	bucketCovered   = "digest_covered"   // rcpt → RFC 3339 time
	bucketDismissed = "digest_dismissed" // LenPrefix(rcpt) + id → RFC 3339 until
)

type boltStore struct {
	db *bbolt.DB
}

// NewBolt creates the digest's buckets in db if needed.
func NewBolt(db *bbolt.DB) (Store, error) {
	if db == nil {
		return nil, errors.New("open digest store: nil database")
	}
	if err := kv.CreateBuckets(db, bucketKeys, bucketSending, bucketOptOut, bucketCovered, bucketDismissed); err != nil {
		return nil, fmt.Errorf("open digest store: %w", err)
	}
	return &boltStore{db: db}, nil
}

func (b *boltStore) view(ctx context.Context, what string, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := b.db.View(fn); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (b *boltStore) update(ctx context.Context, what string, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := b.db.Update(fn); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func readKeys(tx *bbolt.Tx) ([]Key, error) {
	var keys []Key
	err := tx.Bucket([]byte(bucketKeys)).ForEach(func(_, v []byte) error {
		var k Key
		if err := json.Unmarshal(v, &k); err != nil {
			return err
		}
		keys = append(keys, k)
		return nil
	})
	return keys, err
}

func (b *boltStore) Keys(ctx context.Context) (keys []Key, err error) {
	err = b.view(ctx, "read digest keys", func(tx *bbolt.Tx) error {
		keys, err = readKeys(tx)
		return err
	})
	return keys, err
}

func (b *boltStore) InitKey(ctx context.Context, k Key) (keys []Key, err error) {
	data, err := json.Marshal(k)
	if err != nil {
		return nil, fmt.Errorf("create digest key: %w", err)
	}
	err = b.update(ctx, "create digest key", func(tx *bbolt.Tx) error {
		bk := tx.Bucket([]byte(bucketKeys))
		if first, _ := bk.Cursor().First(); first == nil {
			if err := bk.Put([]byte(k.ID), data); err != nil {
				return err
			}
		}
		keys, err = readKeys(tx)
		return err
	})
	return keys, err
}

func (b *boltStore) AddKey(ctx context.Context, k Key, drop []string) error {
	data, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("add digest key: %w", err)
	}
	return b.update(ctx, "add digest key", func(tx *bbolt.Tx) error {
		bk := tx.Bucket([]byte(bucketKeys))
		for _, id := range drop {
			if id != k.ID {
				if err := bk.Delete([]byte(id)); err != nil {
					return err
				}
			}
		}
		return bk.Put([]byte(k.ID), data)
	})
}

func sendingKey(rcpt, day string) []byte { return []byte(day + "\x00" + rcpt) }

func (b *boltStore) Claim(ctx context.Context, rcpt, day string, s Sending) (Sending, bool, error) {
	if err := cmpErr(checkRcpt(rcpt), checkDay(day)); err != nil {
		return Sending{}, false, fmt.Errorf("claim digest: %w", err)
	}
	data, err := json.Marshal(s)
	if err != nil {
		return Sending{}, false, fmt.Errorf("claim digest: %w", err)
	}
	cur, claimed := s, false
	err = b.update(ctx, "claim digest of "+rcpt+" "+day, func(tx *bbolt.Tx) error {
		bk := tx.Bucket([]byte(bucketSending))
		// Forget the days long past: keys start with their day.
		old := []byte(oldestDay(day))
		c := bk.Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k, old) < 0; k, _ = c.First() {
			if err := bk.Delete(k); err != nil {
				return err
			}
		}
		key := sendingKey(rcpt, day)
		if v := bk.Get(key); v != nil {
			return json.Unmarshal(v, &cur)
		}
		claimed = true
		return bk.Put(key, data)
	})
	if err != nil {
		return Sending{}, false, err
	}
	return cur, claimed, nil
}

func (b *boltStore) Finish(ctx context.Context, rcpt, day string, s Sending, sent bool) error {
	if err := cmpErr(checkRcpt(rcpt), checkDay(day)); err != nil {
		return fmt.Errorf("finish digest: %w", err)
	}
	return b.update(ctx, "finish digest of "+rcpt+" "+day, func(tx *bbolt.Tx) error {
		bk := tx.Bucket([]byte(bucketSending))
		key := sendingKey(rcpt, day)
		var cur Sending
		if v := bk.Get(key); v == nil || json.Unmarshal(v, &cur) != nil || cur.Token != s.Token {
			return nil
		}
		if !sent {
			return bk.Delete(key)
		}
		data, err := json.Marshal(s)
		if err != nil {
			return err
		}
		return bk.Put(key, data)
	})
}

func (b *boltStore) SetOptOut(ctx context.Context, rcpt string, out bool) error {
	if err := checkRcpt(rcpt); err != nil {
		return fmt.Errorf("digest opt-out: %w", err)
	}
	return b.update(ctx, "digest opt-out of "+rcpt, func(tx *bbolt.Tx) error {
		bk := tx.Bucket([]byte(bucketOptOut))
		if out {
			return bk.Put([]byte(rcpt), []byte{})
		}
		return bk.Delete([]byte(rcpt))
	})
}

func (b *boltStore) OptedOut(ctx context.Context, rcpt string) (out bool, err error) {
	err = b.view(ctx, "read digest opt-out", func(tx *bbolt.Tx) error {
		out = tx.Bucket([]byte(bucketOptOut)).Get([]byte(rcpt)) != nil
		return nil
	})
	return out, err
}

func (b *boltStore) OptOuts(ctx context.Context) (out []string, err error) {
	err = b.view(ctx, "list digest opt-outs", func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketOptOut)).ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	return out, err
}

func (b *boltStore) Covered(ctx context.Context, rcpt string) (t time.Time, err error) {
	err = b.view(ctx, "read digest coverage", func(tx *bbolt.Tx) error {
		if v := tx.Bucket([]byte(bucketCovered)).Get([]byte(rcpt)); v != nil {
			return t.UnmarshalText(v)
		}
		return nil
	})
	return t, err
}

func (b *boltStore) SetCovered(ctx context.Context, rcpt string, t time.Time) error {
	if err := checkRcpt(rcpt); err != nil {
		return fmt.Errorf("digest coverage: %w", err)
	}
	return b.update(ctx, "digest coverage of "+rcpt, func(tx *bbolt.Tx) error {
		bk := tx.Bucket([]byte(bucketCovered))
		var cur time.Time
		if v := bk.Get([]byte(rcpt)); v != nil && cur.UnmarshalText(v) == nil && !t.After(cur) {
			return nil
		}
		return bk.Put([]byte(rcpt), []byte(t.UTC().Format(time.RFC3339Nano)))
	})
}

func (b *boltStore) Dismiss(ctx context.Context, rcpt, id string, until time.Time) error {
	if err := cmpErr(checkRcpt(rcpt), checkID(id)); err != nil {
		return fmt.Errorf("dismiss: %w", err)
	}
	return b.update(ctx, "dismiss "+id+" for "+rcpt, func(tx *bbolt.Tx) error {
		bk := tx.Bucket([]byte(bucketDismissed))
		// This recipient's dismissals past their time go now: what grows
		// with the recipients' clicks must shrink too.
		prefix := kv.LenPrefix(rcpt)
		c := bk.Cursor()
		var stale [][]byte
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var t time.Time
			if t.UnmarshalText(v) != nil || !time.Now().Before(t) {
				stale = append(stale, bytes.Clone(k))
			}
		}
		for _, k := range stale {
			if err := bk.Delete(k); err != nil {
				return err
			}
		}
		return bk.Put(append(prefix, id...), []byte(until.UTC().Format(time.RFC3339Nano)))
	})
}

func (b *boltStore) Dismissed(ctx context.Context, rcpt string, now time.Time) (map[string]bool, error) {
	out := map[string]bool{}
	err := b.view(ctx, "read dismissals", func(tx *bbolt.Tx) error {
		prefix := kv.LenPrefix(rcpt)
		c := tx.Bucket([]byte(bucketDismissed)).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var t time.Time
			if t.UnmarshalText(v) == nil && now.Before(t) {
				out[string(k[len(prefix):])] = true
			}
		}
		return nil
	})
	return out, err
}

// cmpErr is the first non-nil error.
func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
