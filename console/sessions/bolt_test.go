package sessions

import (
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/mxgate/mxgate/testenv"
)

// TestBoltPrunes: the embedded bucket does not grow with logouts past
// their sessions' end; a write drops them, live ones stay.
func TestBoltPrunes(t *testing.T) {
	db := testenv.Bolt(t)
	s, err := NewBolt(db)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	now := time.Now()
	for _, r := range []struct {
		id    string
		until time.Time
	}{{"a", now.Add(200 * time.Millisecond)}, {"b", now.Add(200 * time.Millisecond)}, {"c", now.Add(time.Hour)}} {
		if err := s.Revoke(ctx, r.id, r.until); err != nil {
			t.Fatal(err)
		}
	}
	count := func() (n int) {
		db.View(func(tx *bbolt.Tx) error {
			n = tx.Bucket([]byte(bucketRevoked)).Stats().KeyN
			return nil
		})
		return n
	}
	if n := count(); n != 3 {
		t.Fatalf("%d entries after 3 revokes, want 3", n)
	}
	time.Sleep(time.Until(now.Add(300 * time.Millisecond)))
	if err := s.Revoke(ctx, "d", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 2 {
		t.Errorf("%d entries after the write, want 2 (c and d)", n)
	}
}
