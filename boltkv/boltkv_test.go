package boltkv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

func openDB(t *testing.T) *bbolt.DB {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "kv.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
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

func TestTimeKey(t *testing.T) {
	tests := []struct {
		t    time.Time
		id   string
		want []byte
	}{
		{time.Unix(0, 0), "", []byte{0, 0, 0, 0, 0, 0, 0, 0}},
		{time.Unix(0, 0x0102030405060708), "id", []byte{1, 2, 3, 4, 5, 6, 7, 8, 'i', 'd'}},
		{time.Unix(0, 255).In(time.FixedZone("x", 3600)), "\xff", []byte{0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}},
	}
	for _, tt := range tests {
		if got := TimeKey(tt.t, tt.id); !bytes.Equal(got, tt.want) {
			t.Errorf("TimeKey(%v, %q) = %x, want %x", tt.t, tt.id, got, tt.want)
		}
	}
	// The time decides the order before the id does.
	if bytes.Compare(TimeKey(time.Unix(0, 255), "zz"), TimeKey(time.Unix(0, 256), "a")) >= 0 {
		t.Error("time key does not order by time first")
	}
}

func TestLenPrefix(t *testing.T) {
	long := strings.Repeat("x", 200)
	tests := []struct {
		s    string
		want []byte
	}{
		{"", []byte{0}},
		{"a@x", []byte{3, 'a', '@', 'x'}},
		{long, append([]byte{0xc8, 0x01}, long...)}, // uvarint spills into a second byte
	}
	for _, tt := range tests {
		if got := LenPrefix(tt.s); !bytes.Equal(got, tt.want) {
			t.Errorf("LenPrefix(%.10q) = %x, want %x", tt.s, got, tt.want)
		}
	}
	// A value that is a prefix of another must not share its key range.
	for _, p := range [][2]string{{"a@x", "a@x.y"}, {"", "a"}, {"a", long}} {
		if bytes.HasPrefix(LenPrefix(p[1]), LenPrefix(p[0])) {
			t.Errorf("LenPrefix(%.10q) starts with LenPrefix(%.10q)", p[1], p[0])
		}
	}
}

func TestIndexable(t *testing.T) {
	tests := []struct {
		t    time.Time
		want bool
	}{
		{time.Unix(0, 0), true},
		{time.Date(2025, 1, 1, 0, 0, 0, 1, time.UTC), true},
		{time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{time.Time{}, false},
		{time.Unix(0, -1), false},
		{time.Date(2263, 1, 1, 0, 0, 0, 0, time.UTC), false},
	}
	for _, tt := range tests {
		if got := Indexable(tt.t); got != tt.want {
			t.Errorf("Indexable(%v) = %v, want %v", tt.t, got, tt.want)
		}
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct {
		p, want []byte
	}{
		{nil, nil},
		{[]byte{}, nil},
		{[]byte{0xff, 0xff}, nil},
		{[]byte{1, 2}, []byte{1, 3}},
		{[]byte{1, 0xff}, []byte{2}},
		{[]byte{0, 0xff, 0xff}, []byte{1}},
	}
	for _, tt := range tests {
		p := bytes.Clone(tt.p)
		if got := prefixEnd(p); !bytes.Equal(got, tt.want) {
			t.Errorf("prefixEnd(%x) = %x, want %x", tt.p, got, tt.want)
		}
		if !bytes.Equal(p, tt.p) {
			t.Errorf("prefixEnd modified its argument: %x", p)
		}
	}
}

func TestBounds(t *testing.T) {
	t1 := time.Unix(0, 0x10)
	tk1 := []byte{0, 0, 0, 0, 0, 0, 0, 0x10}
	far := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name         string
		prefix       []byte
		since, until time.Time
		lower, upper []byte
	}{
		{"unbounded", nil, time.Time{}, time.Time{}, nil, nil},
		{"unbounded prefix", []byte{1, 'a'}, time.Time{}, time.Time{}, nil, []byte{1, 'b'}},
		{"since", []byte{1, 'a'}, t1, time.Time{}, tk1, []byte{1, 'b'}},
		{"until", nil, time.Time{}, t1, nil, tk1},
		{"until prefix", []byte{1, 'a'}, t1, t1, tk1, append([]byte{1, 'a'}, tk1...)},
		{"not indexable", []byte{1, 'a'}, far, far, nil, []byte{1, 'b'}},
		{"before 1970", nil, time.Unix(-1, 0), time.Unix(-1, 0), nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := bytes.Clone(tt.prefix)
			lower, upper := bounds(prefix, tt.since, tt.until)
			if !bytes.Equal(lower, tt.lower) || !bytes.Equal(upper, tt.upper) {
				t.Errorf("bounds = %x, %x; want %x, %x", lower, upper, tt.lower, tt.upper)
			}
			if !bytes.Equal(prefix, tt.prefix) {
				t.Errorf("bounds modified prefix: %x", prefix)
			}
		})
	}
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

func TestInRange(t *testing.T) {
	t1, t2, t3 := time.Unix(10, 0), time.Unix(20, 0), time.Unix(30, 0)
	tests := []struct {
		t, since, until time.Time
		want            bool
	}{
		{t2, time.Time{}, time.Time{}, true},
		{t2, t1, t3, true},
		{t2, t2, t3, true},  // since is inclusive
		{t2, t1, t2, false}, // until is exclusive
		{t1, t2, time.Time{}, false},
		{t3, time.Time{}, t2, false},
		{t2.In(time.FixedZone("x", 7200)), t2, time.Time{}, true}, // zones do not matter
	}
	for _, tt := range tests {
		if got := InRange(tt.t, tt.since, tt.until); got != tt.want {
			t.Errorf("InRange(%v, %v, %v) = %v, want %v", tt.t, tt.since, tt.until, got, tt.want)
		}
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

func TestCheckKey(t *testing.T) {
	ok := time.Unix(0, 1)
	tests := []struct {
		id   string
		t    time.Time
		want string // "" = valid
	}{
		{"m1", ok, ""},
		{strings.Repeat("x", 255), ok, ""},
		{"", ok, "empty id"},
		{strings.Repeat("x", 256), ok, "id longer than 255 bytes"},
		{"m1", time.Unix(0, -1).UTC(), "time 1969-12-31 23:59:59.999999999 +0000 UTC outside 1970..2262"},
		{"m1", time.Time{}, "time 0001-01-01 00:00:00 +0000 UTC outside 1970..2262"},
		{"", time.Time{}, "empty id"}, // the id is checked first
	}
	for _, tt := range tests {
		err := CheckKey(tt.id, tt.t)
		if got := fmt.Sprint(err); (err == nil) != (tt.want == "") || err != nil && got != tt.want {
			t.Errorf("CheckKey(%.10q, %v) = %v, want %q", tt.id, tt.t, err, tt.want)
		}
	}
}
