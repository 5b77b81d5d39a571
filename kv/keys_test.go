package kv

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

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
