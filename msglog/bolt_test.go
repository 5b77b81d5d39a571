package msglog

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/mxgate/mxgate/testenv"
)

// TestExpireLeavesNoKeys checks the bolt layout directly: Expire removes
// records and their id index entries, across several batches.
func TestExpireLeavesNoKeys(t *testing.T) {
	ctx := context.Background()
	db := testenv.Bolt(t)
	b, err := NewBolt(db)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	n := 2*expireBatch + 5
	for i := range n {
		if err := b.Append(ctx, Record{ID: fmt.Sprintf("m%d", i%100), Time: base.Add(time.Duration(i) * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.Expire(ctx, base.Add(time.Hour))
	if err != nil || got != n {
		t.Fatalf("Expire = %d, %v; want %d", got, err, n)
	}
	err = db.View(func(tx *bbolt.Tx) error {
		for _, name := range []string{bucketRecords, bucketByID} {
			if k := tx.Bucket([]byte(name)).Stats().KeyN; k != 0 {
				t.Errorf("bucket %s keeps %d keys", name, k)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
