package lists

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
)

// bucketEntries maps entryKey → Entry JSON (a Redis hash maps onto it).
const bucketEntries = "lists.entries"

// Bolt is the embedded list store on a bbolt database.
type Bolt struct {
	db *bbolt.DB
}

var _ Store = (*Bolt)(nil)

// NewBolt creates the lists bucket in db if needed.
func NewBolt(db *bbolt.DB) (*Bolt, error) {
	if db == nil {
		return nil, errors.New("open lists: nil database")
	}
	err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte(bucketEntries))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open lists: %w", err)
	}
	return &Bolt{db: db}, nil
}

func (b *Bolt) Add(ctx context.Context, e Entry) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("add list entry: %w", err)
	}
	e, err := Normalize(e)
	if err != nil {
		return fmt.Errorf("add list entry: %w", err)
	}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("add list entry: %w", err)
	}
	key := []byte(EntryKey(e.Kind, e.Value, e.Rcpt))
	err = b.db.Update(func(tx *bbolt.Tx) error {
		bk := tx.Bucket([]byte(bucketEntries))
		if bk.Get(key) != nil {
			return nil
		}
		return bk.Put(key, data)
	})
	if err != nil {
		return fmt.Errorf("add list entry %s %s: %w", e.Kind, e.Value, err)
	}
	return nil
}

func (b *Bolt) Remove(ctx context.Context, kind Kind, value, rcpt string) error {
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
	return nil
}

// All returns every entry, ordered by kind, recipient and value.
func (b *Bolt) All(ctx context.Context) ([]Entry, error) {
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
