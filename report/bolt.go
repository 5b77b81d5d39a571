package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/mxgate/mxgate/kv"
)

// bucketReports maps a day (YYYY-MM-DD, which sorts by date) to its Report
// JSON; a reverse cursor walks newest first.
const bucketReports = "reports"

// bucketMail maps a day to the Mailing JSON of its report.
const bucketMail = "report_mail"

type boltStore struct {
	db *bbolt.DB
}

// NewBolt creates the reports bucket in db if needed.
func NewBolt(db *bbolt.DB) (Store, error) {
	if db == nil {
		return nil, errors.New("open reports: nil database")
	}
	if err := kv.CreateBuckets(db, bucketReports, bucketMail); err != nil {
		return nil, fmt.Errorf("open reports: %w", err)
	}
	return &boltStore{db: db}, nil
}

func (b *boltStore) Create(ctx context.Context, r Report) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("create report %s: %w", r.Day, err)
	}
	if err := checkDay(r.Day); err != nil {
		return false, fmt.Errorf("create report: %w", err)
	}
	data, err := json.Marshal(r)
	if err != nil {
		return false, fmt.Errorf("create report %s: %w", r.Day, err)
	}
	created := false
	// One writer transaction: the check and the write cannot interleave
	// with another Create.
	err = b.db.Update(func(tx *bbolt.Tx) error {
		bk := tx.Bucket([]byte(bucketReports))
		if bk.Get([]byte(r.Day)) != nil {
			return nil
		}
		created = true
		return bk.Put([]byte(r.Day), data)
	})
	if err != nil {
		return false, fmt.Errorf("create report %s: %w", r.Day, err)
	}
	return created, nil
}

func (b *boltStore) Get(ctx context.Context, day string) (Report, error) {
	if err := ctx.Err(); err != nil {
		return Report{}, fmt.Errorf("read report %s: %w", day, err)
	}
	if err := checkDay(day); err != nil {
		return Report{}, fmt.Errorf("read report: %w", err)
	}
	var r Report
	err := b.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket([]byte(bucketReports)).Get([]byte(day))
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &r)
	})
	if err != nil {
		return Report{}, fmt.Errorf("read report %s: %w", day, err)
	}
	return r, nil
}

func (b *boltStore) Days(ctx context.Context, limit int) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list reports: %w", err)
	}
	var out []string
	err := b.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket([]byte(bucketReports)).Cursor()
		for k, _ := c.Last(); k != nil && (limit <= 0 || len(out) < limit); k, _ = c.Prev() {
			out = append(out, string(k))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list reports: %w", err)
	}
	return out, nil
}

func (b *boltStore) ClaimMail(ctx context.Context, day string, m Mailing) (Mailing, bool, error) {
	if err := ctx.Err(); err != nil {
		return Mailing{}, false, fmt.Errorf("claim report mail %s: %w", day, err)
	}
	if err := checkDay(day); err != nil {
		return Mailing{}, false, fmt.Errorf("claim report mail: %w", err)
	}
	data, err := json.Marshal(m)
	if err != nil {
		return Mailing{}, false, fmt.Errorf("claim report mail %s: %w", day, err)
	}
	cur, claimed := m, false
	err = b.db.Update(func(tx *bbolt.Tx) error {
		bk := tx.Bucket([]byte(bucketMail))
		if v := bk.Get([]byte(day)); v != nil {
			return json.Unmarshal(v, &cur)
		}
		claimed = true
		return bk.Put([]byte(day), data)
	})
	if err != nil {
		return Mailing{}, false, fmt.Errorf("claim report mail %s: %w", day, err)
	}
	return cur, claimed, nil
}

func (b *boltStore) FinishMail(ctx context.Context, day string, m Mailing, sent bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("finish report mail %s: %w", day, err)
	}
	if err := checkDay(day); err != nil {
		return fmt.Errorf("finish report mail: %w", err)
	}
	err := b.db.Update(func(tx *bbolt.Tx) error {
		bk := tx.Bucket([]byte(bucketMail))
		var cur Mailing
		if v := bk.Get([]byte(day)); v == nil || json.Unmarshal(v, &cur) != nil || cur.Token != m.Token {
			return nil
		}
		if !sent {
			return bk.Delete([]byte(day))
		}
		data, err := json.Marshal(m)
		if err != nil {
			return err
		}
		return bk.Put([]byte(day), data)
	})
	if err != nil {
		return fmt.Errorf("finish report mail %s: %w", day, err)
	}
	return nil
}
