package kv

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.etcd.io/bbolt"

	"github.com/mxgate/mxgate/testenv"
)

// TestLexRangeMatchesWalkBack holds the two walks to each other: over the
// same keys, in a bbolt bucket and in a Redis sorted set, with the same
// prefix and bounds, LexRange newest first visits exactly what WalkBack
// visits, in the same order, whatever its page size, and oldest first the
// same in reverse.
func TestLexRangeMatchesWalkBack(t *testing.T) {
	r := testenv.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { c.Close() })
	ctx := t.Context()
	db := openDB(t)

	ts := func(n int64) time.Time { return time.Unix(0, n) }
	last := time.Unix(0, 1<<63-1) // the last indexable time, in 2262
	pa, pb, pff := LenPrefix("a"), LenPrefix("ab"), []byte{1, 0xff}
	var keys [][]byte
	for _, p := range [][]byte{nil, pa, pb, pff} {
		for _, n := range []int64{0, 1, 10, 10, 20, 255, 256, 1 << 40} {
			for _, id := range []string{"x", "y\xff", ""} {
				keys = append(keys, append(bytes.Clone(p), TimeKey(ts(n), id)...))
			}
		}
		keys = append(keys, append(bytes.Clone(p), TimeKey(last, "z")...))
		keys = append(keys, append(bytes.Clone(p), "short"...)) // too short to hold a time
	}
	members := make([]redis.Z, len(keys))
	if err := db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("idx"))
		for i, k := range keys {
			members[i] = redis.Z{Member: string(k)}
			if err == nil {
				err = b.Put(k, nil)
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.ZAdd(ctx, "idx", members...).Err(); err != nil {
		t.Fatal(err)
	}

	never := time.Time{}
	far := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name         string
		prefix       []byte
		since, until time.Time
	}{
		{"everything", nil, never, never},
		{"prefix", pa, never, never},
		{"prefix all 0xff at the end", pff, never, never},
		{"since", pa, ts(10), never},
		{"until", pb, never, ts(256)},
		{"both", nil, ts(1), ts(256)},
		{"same bound", pa, ts(10), ts(10)},
		{"until 1970", pa, never, ts(0)},
		{"until before 1970", pa, never, ts(-1)},
		{"since before 1970", pb, ts(-1), never},
		{"until past 2262", pa, never, far},
		{"since past 2262", pa, far, never},
		{"since the last time", pff, last, never},
		{"no such prefix", LenPrefix("zz"), never, never},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []string
			err := db.View(func(tx *bbolt.Tx) error {
				return WalkBack(ctx, tx.Bucket([]byte("idx")).Cursor(), tt.prefix, tt.since, tt.until, func(tk, _ []byte) (bool, error) {
					want = append(want, string(tk))
					return true, nil
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, page := range []int64{1, 2, 7, 1000} {
				for _, rev := range []bool{true, false} {
					var got []string
					err := LexRange(ctx, c, "idx", tt.prefix, tt.since, tt.until, rev, page, func(tks []string) (bool, error) {
						if int64(len(tks)) > page {
							t.Errorf("page of %d, want at most %d", len(tks), page)
						}
						got = append(got, tks...)
						return true, nil
					})
					if err != nil {
						t.Fatal(err)
					}
					w := want
					if !rev {
						w = slices.Clone(want)
						slices.Reverse(w)
					}
					if !slices.Equal(got, w) {
						t.Errorf("page %d rev %v: LexRange visited\n %q\nWalkBack\n %q", page, rev, got, w)
					}
				}
			}
		})
	}

	// Stopping: fn's false ends the walk after that page.
	pages := 0
	err := LexRange(ctx, c, "idx", nil, never, never, true, 2, func([]string) (bool, error) {
		pages++
		return false, nil
	})
	if err != nil || pages != 1 {
		t.Errorf("LexRange stopped after %d pages, %v; want 1", pages, err)
	}
	errStop := fmt.Errorf("stop")
	if err := LexRange(ctx, c, "idx", nil, never, never, true, 2, func([]string) (bool, error) { return true, errStop }); err != errStop {
		t.Errorf("LexRange = %v, want fn's error", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := LexRange(cctx, c, "idx", nil, never, never, true, 2, func([]string) (bool, error) { return true, nil }); err != context.Canceled {
		t.Errorf("LexRange with a cancelled context = %v", err)
	}
}
