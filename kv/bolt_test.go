package kv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/mxgate/mxgate/testenv"
)

func openDB(t *testing.T) *bbolt.DB {
	t.Helper()
	db := testenv.Bolt(t)
	return db
}

func TestCreateBuckets(t *testing.T) {
	tests := []struct {
		name    string
		buckets []string
		wantErr bool
	}{
		{"none", nil, false},
		{"several", []string{"a.one", "a.two"}, false},
		{"again", []string{"a.one", "a.two", "a.three"}, false}, // existing ones are kept
		{"empty name", []string{"ok", ""}, true},
	}
	db := openDB(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CreateBuckets(db, tt.buckets...)
			if (err != nil) != tt.wantErr {
				t.Fatalf("CreateBuckets(%q) = %v, want error %v", tt.buckets, err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, bbolt.ErrBucketNameRequired) || !strings.HasPrefix(err.Error(), "bucket ") {
					t.Errorf("error %q does not name the bucket or wrap bbolt's", err)
				}
				return
			}
			db.View(func(tx *bbolt.Tx) error {
				for _, name := range tt.buckets {
					if tx.Bucket([]byte(name)) == nil {
						t.Errorf("bucket %q missing", name)
					}
				}
				return nil
			})
		})
	}
	// A failed call creates nothing: the transaction is rolled back.
	db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket([]byte("ok")) != nil {
			t.Error("bucket from a failed CreateBuckets survived")
		}
		return nil
	})
}

func TestSeekBefore(t *testing.T) {
	db := openDB(t)
	keys := []string{"b", "d", "f"}
	if err := db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("k"))
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := b.Put([]byte(k), []byte("v"+k)); err != nil {
				return err
			}
		}
		_, err = tx.CreateBucket([]byte("empty"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		bucket, upper string
		nilUpper      bool
		want          string // "" = none
	}{
		{"k", "", true, "f"},
		{"k", "a", false, ""},
		{"k", "b", false, ""},
		{"k", "c", false, "b"},
		{"k", "d", false, "b"},
		{"k", "e", false, "d"},
		{"k", "z", false, "f"},
		{"empty", "", true, ""},
		{"empty", "c", false, ""},
	}
	for _, tt := range tests {
		var upper []byte
		if !tt.nilUpper {
			upper = []byte(tt.upper)
		}
		db.View(func(tx *bbolt.Tx) error {
			k, v := seekBefore(tx.Bucket([]byte(tt.bucket)).Cursor(), upper)
			wantV := ""
			if tt.want != "" {
				wantV = "v" + tt.want
			}
			if string(k) != tt.want || string(v) != wantV || (tt.want == "") != (k == nil) {
				t.Errorf("seekBefore(%s, %q) = %q, %q; want %q, %q", tt.bucket, upper, k, v, tt.want, wantV)
			}
			return nil
		})
	}
}

func TestWalkBack(t *testing.T) {
	db := openDB(t)
	ts := func(n int64) time.Time { return time.Unix(0, n) }
	// Two values' ranges plus entries that must never be walked.
	pa, pb := LenPrefix("a"), LenPrefix("ab")
	if err := db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("idx"))
		if err != nil {
			return err
		}
		put := func(k []byte) {
			if err == nil {
				err = b.Put(k, []byte("v"))
			}
		}
		for n := int64(1); n <= 5; n++ {
			put(append(bytes.Clone(pa), TimeKey(ts(n*10), fmt.Sprint("a", n))...))
			put(append(bytes.Clone(pb), TimeKey(ts(n*10), fmt.Sprint("b", n))...))
		}
		put(append(bytes.Clone(pa), "short"...)) // too short to hold a time
		return err
	}); err != nil {
		t.Fatal(err)
	}
	never := time.Time{}
	errStop := errors.New("stop")
	tests := []struct {
		name         string
		prefix       []byte
		since, until time.Time
		max          int   // stop after this many (0 = all)
		fnErr        error // returned by fn on the first key
		want         string
		wantErr      error
	}{
		{"all of a", pa, never, never, 0, nil, "a5 a4 a3 a2 a1", nil},
		{"all of ab", pb, never, never, 0, nil, "b5 b4 b3 b2 b1", nil},
		{"range", pa, ts(20), ts(40), 0, nil, "a3 a2", nil},
		{"since between keys", pa, ts(25), never, 0, nil, "a5 a4 a3", nil},
		{"until between keys", pa, never, ts(35), 0, nil, "a3 a2 a1", nil},
		{"until at 1970", pa, never, ts(0), 0, nil, "", nil},
		{"until before 1970", pa, never, ts(-1), 0, nil, "", nil},
		{"since before 1970", pa, ts(-1), never, 0, nil, "a5 a4 a3 a2 a1", nil},
		{"until after 2262", pa, never, time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), 0, nil, "a5 a4 a3 a2 a1", nil},
		{"stop early", pa, never, never, 2, nil, "a5 a4", nil},
		{"fn error", pa, never, never, 0, errStop, "a5", errStop},
		{"no such value", LenPrefix("zz"), never, never, 0, nil, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := db.View(func(tx *bbolt.Tx) error {
				return WalkBack(context.Background(), tx.Bucket([]byte("idx")).Cursor(), tt.prefix, tt.since, tt.until, func(tk, v []byte) (bool, error) {
					if len(tk) < 8 || string(v) != "v" {
						t.Errorf("fn(%q, %q): not a time key and its value", tk, v)
					}
					got = append(got, string(tk[8:]))
					return tt.max == 0 || len(got) < tt.max, tt.fnErr
				})
			})
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("WalkBack error = %v, want %v", err, tt.wantErr)
			}
			if s := strings.Join(got, " "); s != tt.want {
				t.Errorf("WalkBack walked %q, want %q", s, tt.want)
			}
		})
	}
}

func TestWalkBackCanceled(t *testing.T) {
	db := openDB(t)
	if err := db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("idx"))
		for n := range 600 {
			if err == nil {
				err = b.Put(TimeKey(time.Unix(0, int64(n)), "x"), nil)
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := 0
	err := db.View(func(tx *bbolt.Tx) error {
		return WalkBack(ctx, tx.Bucket([]byte("idx")).Cursor(), nil, time.Time{}, time.Time{}, func(_, _ []byte) (bool, error) {
			calls++
			return true, nil
		})
	})
	// ctx is checked every 256 keys, so the walk ends before the 256th call.
	if !errors.Is(err, context.Canceled) || calls != 255 {
		t.Errorf("WalkBack = %v after %d calls; want context.Canceled after 255", err, calls)
	}
}
