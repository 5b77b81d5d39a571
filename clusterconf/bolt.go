package clusterconf

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/mxgate/mxgate/kv"
)

// Bucket layout: the current revision under one key, and every revision
// (the audit trail) keyed by its 8-byte big-endian number, so a reverse
// cursor walks newest first.
const (
	bucketConf    = "clusterconf"         // "current" → Revision JSON
	bucketHistory = "clusterconf.history" // number → Revision JSON
)

var boltCurrent = []byte("current")

// boltStore is the cluster config of the embedded store: one node, so
// announcements only need to reach this process.
type boltStore struct {
	db      *bbolt.DB
	changes kv.Broadcast
}

// NewBolt returns the cluster config in db, creating its buckets if
// needed. Changes reaches the readers of this Store value only: open it
// once per process.
func NewBolt(db *bbolt.DB) (Store, error) {
	if db == nil {
		return nil, errors.New("open cluster config: nil database")
	}
	if err := kv.CreateBuckets(db, bucketConf, bucketHistory); err != nil {
		return nil, fmt.Errorf("open cluster config: %w", err)
	}
	return &boltStore{db: db}, nil
}

func (b *boltStore) Current(ctx context.Context) (Revision, error) {
	if err := ctx.Err(); err != nil {
		return Revision{}, fmt.Errorf("read cluster config: %w", err)
	}
	var r Revision
	err := b.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket([]byte(bucketConf)).Get(boltCurrent)
		if v == nil {
			return ErrNone
		}
		return json.Unmarshal(v, &r)
	})
	if err != nil {
		return Revision{}, fmt.Errorf("read cluster config: %w", err)
	}
	return r, nil
}

func (b *boltStore) Put(ctx context.Context, s Settings, by, comment string, expect int64) (Revision, error) {
	if err := ctx.Err(); err != nil {
		return Revision{}, fmt.Errorf("put cluster config: %w", err)
	}
	rev, err := newRevision(s, by, comment, expect)
	if err != nil {
		return Revision{}, fmt.Errorf("put cluster config: %w", err)
	}
	data, err := json.Marshal(rev)
	if err != nil {
		return Revision{}, fmt.Errorf("put cluster config: %w", err)
	}
	// bbolt has one writer at a time: the check and both writes are one
	// transaction, so concurrent Puts with the same expect cannot both win.
	err = b.db.Update(func(tx *bbolt.Tx) error {
		conf := tx.Bucket([]byte(bucketConf))
		var cur int64
		if v := conf.Get(boltCurrent); v != nil {
			var r Revision
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode current revision: %w", err)
			}
			cur = r.Number
		}
		if cur != expect {
			return conflict(cur, expect)
		}
		if err := conf.Put(boltCurrent, data); err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketHistory)).Put(numberKey(rev.Number), data)
	})
	if err != nil {
		return Revision{}, fmt.Errorf("put cluster config: %w", err)
	}
	b.changes.Send()
	return rev, nil
}

func numberKey(n int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(n))
}

func (b *boltStore) History(ctx context.Context, limit int) ([]Revision, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read cluster config history: %w", err)
	}
	var out []Revision
	err := b.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket([]byte(bucketHistory)).Cursor()
		for k, v := c.Last(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
			var r Revision
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode revision %x: %w", k, err)
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read cluster config history: %w", err)
	}
	return out, nil
}

func (b *boltStore) Announce(ctx context.Context, number int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("announce cluster config %d: %w", number, err)
	}
	b.changes.Send()
	return nil
}

func (b *boltStore) Changes(ctx context.Context) <-chan struct{} {
	return b.changes.Subscribe(ctx)
}

func (b *boltStore) SeedMark(ctx context.Context, node string) (string, error) {
	if err := errors.Join(ctx.Err(), checkSeedNode(node)); err != nil {
		return "", fmt.Errorf("read cluster config seed mark: %w", err)
	}
	var mark string
	err := b.db.View(func(tx *bbolt.Tx) error {
		mark = string(tx.Bucket([]byte(bucketConf)).Get([]byte(seedKey(node))))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read cluster config seed mark: %w", err)
	}
	return mark, nil
}

func (b *boltStore) SetSeedMark(ctx context.Context, node, hash string) error {
	if err := errors.Join(ctx.Err(), checkSeedNode(node)); err != nil {
		return fmt.Errorf("store cluster config seed mark: %w", err)
	}
	err := b.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketConf)).Put([]byte(seedKey(node)), []byte(hash))
	})
	if err != nil {
		return fmt.Errorf("store cluster config seed mark: %w", err)
	}
	return nil
}
