package quarantine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/mxgate/mxgate/testenv"
)

func openBolt(t *testing.T) (Store, *bbolt.DB) {
	t.Helper()
	db := testenv.Bolt(t)
	b, err := NewBolt(db)
	if err != nil {
		t.Fatal(err)
	}
	return b, db
}

func bucketSizes(t *testing.T, db *bbolt.DB) map[string]int {
	t.Helper()
	sizes := map[string]int{}
	err := db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			sizes[string(name)] = b.Stats().KeyN
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return sizes
}

// TestRemovalLeavesNoKeys checks the bolt layout directly: after Delete and
// Expire have removed every item, no bucket may hold a key.
func TestRemovalLeavesNoKeys(t *testing.T) {
	ctx := context.Background()
	b, db := openBolt(t)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 6 {
		it := Item{
			ID: fmt.Sprintf("id%d", i), Time: base.Add(time.Duration(i) * time.Second),
			Sender: "S@x.example", Recipients: []string{"a@example.org", "A@Example.org", "b@example.org"},
			Verdict: "spam",
		}
		if i%2 == 0 {
			it.Expires = base.Add(time.Hour)
		}
		if i < 4 {
			it.Digest = MessageDigest(it.Sender, it.Recipients, []byte(it.ID))
		}
		if err := b.Put(ctx, it, []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	sizes := bucketSizes(t, db)
	// Six items, two distinct recipients each (case folded), three
	// expiring, four with a digest.
	want := map[string]int{bucketItems: 6, bucketRaw: 6, indexBuckets[byTime]: 6, indexBuckets[byRcpt]: 12, indexBuckets[bySender]: 6, indexBuckets[byVerdict]: 6, indexBuckets[byExpires]: 3, indexBuckets[byDigest]: 4}
	for name, n := range want {
		if sizes[name] != n {
			t.Errorf("bucket %s has %d keys after Put, want %d", name, sizes[name], n)
		}
	}
	if n, err := b.Expire(ctx, base.Add(time.Hour)); err != nil || n != 3 {
		t.Fatalf("Expire = %d, %v; want 3", n, err)
	}
	for _, id := range []string{"id1", "id3", "id5"} {
		if err := b.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	for name, n := range bucketSizes(t, db) {
		if n != 0 {
			t.Errorf("bucket %s keeps %d keys after every item was removed", name, n)
		}
	}
}
