package lists

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/mxgate/mxgate/kv"
)

// bucketEntries maps entryKey → Entry JSON (a Redis hash maps onto it).
const bucketEntries = "lists.entries"

// boltStore is the embedded list store on a bbolt database: one node, so
// its change signals only need to reach this process.
type boltStore struct {
	db      *bbolt.DB
	changes kv.Broadcast
}

// NewBolt returns the list store in db, creating its bucket if needed.
// Changes reaches the readers of this Store value only: open it once per
// process.
func NewBolt(db *bbolt.DB) (Store, error) {
	if db == nil {
		return nil, errors.New("open lists: nil database")
	}
	if err := kv.CreateBuckets(db, bucketEntries); err != nil {
		return nil, fmt.Errorf("open lists: %w", err)
	}
	return &boltStore{db: db}, nil
}

func (b *boltStore) Add(ctx context.Context, e Entry) (Entry, bool, error) {
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
	key := []byte(EntryKey(e.Kind, e.Value, e.Rcpt))
	var old []byte
	err = b.db.Update(func(tx *bbolt.Tx) error {
		bk := tx.Bucket([]byte(bucketEntries))
		if v := bk.Get(key); v != nil {
			old = bytes.Clone(v)
			return nil
		}
		return bk.Put(key, data)
	})
	if err != nil {
		return Entry{}, false, fmt.Errorf("add list entry %s %s: %w", e.Kind, e.Value, err)
	}
	if old != nil {
		var stored Entry
		if err := json.Unmarshal(old, &stored); err != nil {
			return Entry{}, false, fmt.Errorf("add list entry %s %s: decode the stored one: %w", e.Kind, e.Value, err)
		}
		return stored, false, nil
	}
	b.changes.Send()
	return e, true, nil
}

func (b *boltStore) Remove(ctx context.Context, kind Kind, value, rcpt string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("remove list entry: %w", err)
	}
	e, err := Normalize(Entry{Kind: kind, Value: value, Rcpt: rcpt})
	if err != nil {
		return fmt.Errorf("remove list entry: %w", err)
	}
	key := []byte(EntryKey(e.Kind, e.Value, e.Rcpt))
	err = b.db.Update(func(tx *bbolt.Tx) error {
		bk := tx.Bucket([]byte(bucketEntries))
		if bk.Get(key) == nil {
			return ErrNotFound
		}
		return bk.Delete(key)
	})
	if err != nil {
		return fmt.Errorf("remove list entry %s %s: %w", kind, value, err)
	}
	b.changes.Send()
	return nil
}

// All returns every entry, ordered by kind, recipient and value.
func (b *boltStore) All(ctx context.Context) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read lists: %w", err)
	}
	var out []Entry
	err := b.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketEntries)).ForEach(func(k, v []byte) error {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode entry %q: %w", k, err)
			}
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read lists: %w", err)
	}
	return out, nil
}

// Changes signals every Add and Remove made through this Store value.
func (b *boltStore) Changes(ctx context.Context) <-chan struct{} {
	return b.changes.Subscribe(ctx)
}
