package sessions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/mxgate/mxgate/kv"
)

// bucketRevoked of the embedded store: id → RFC 3339 until.
const bucketRevoked = "console_revoked"

type boltStore struct {
	db *bbolt.DB
}

// NewBolt creates the bucket of revoked sessions in db if needed.
func NewBolt(db *bbolt.DB) (Store, error) {
	if db == nil {
		return nil, errors.New("open console sessions store: nil database")
	}
	if err := kv.CreateBuckets(db, bucketRevoked); err != nil {
		return nil, fmt.Errorf("open console sessions store: %w", err)
	}
	return &boltStore{db: db}, nil
}

func (b *boltStore) Revoke(ctx context.Context, id string, until time.Time) error {
	if err := errors.Join(checkID(id), ctx.Err()); err != nil {
		return fmt.Errorf("revoke console session: %w", err)
	}
	now := time.Now()
	err := b.db.Update(func(tx *bbolt.Tx) error {
		bk := tx.Bucket([]byte(bucketRevoked))
		// The sessions past their expiry go now: the bucket holds at
		// most the logouts of one session life, and a logout is rare
		// enough to pay for the walk.
		var stale [][]byte
		if err := bk.ForEach(func(k, v []byte) error {
			if !live(v, now) {
				stale = append(stale, bytes.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range stale {
			if err := bk.Delete(k); err != nil {
				return err
			}
		}
		if !now.Before(until) {
			return nil
		}
		return bk.Put([]byte(id), []byte(until.UTC().Format(time.RFC3339Nano)))
	})
	if err != nil {
		return fmt.Errorf("revoke console session: %w", err)
	}
	return nil
}

func (b *boltStore) Revoked(ctx context.Context, id string) (bool, error) {
	if err := errors.Join(checkID(id), ctx.Err()); err != nil {
		return false, fmt.Errorf("read console session revocation: %w", err)
	}
	var revoked bool
	err := b.db.View(func(tx *bbolt.Tx) error {
		revoked = live(tx.Bucket([]byte(bucketRevoked)).Get([]byte(id)), time.Now())
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("read console session revocation: %w", err)
	}
	return revoked, nil
}

// live tells whether the stored until v is still ahead of now. A value
// that does not parse counts as live: refusing a session is the safe
// mistake.
func live(v []byte, now time.Time) bool {
	if v == nil {
		return false
	}
	var t time.Time
	return t.UnmarshalText(v) != nil || now.Before(t)
}
