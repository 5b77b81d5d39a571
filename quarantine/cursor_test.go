package quarantine

import (
	"testing"
	"time"
)

func TestCursor(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 123, time.UTC)
	for _, c := range []Cursor{{t0, "Q1"}, {time.Unix(0, 0).UTC(), "x"}, {t0, "id with spaces/and\x00bytes"}} {
		got, err := ParseCursor(c.String())
		if err != nil || !got.Time.Equal(c.Time) || got.ID != c.ID {
			t.Errorf("ParseCursor(%q) = %+v, %v; want %+v", c.String(), got, err, c)
		}
	}
	if c, err := ParseCursor(""); err != nil || !c.IsZero() {
		t.Errorf(`ParseCursor("") = %+v, %v; want the zero cursor`, c, err)
	}
	if s := (Cursor{}).String(); s != "" {
		t.Errorf("zero cursor as %q, want empty", s)
	}
	for _, bad := range []string{"Q1", "AAAAAAAAAAA", "////////////", "AAAAAAAAAAA=", "_____________w", "gAAAAAAAAABR", "A0000000\r0000", "A0000000\n0000"} {
		if c, err := ParseCursor(bad); err == nil {
			t.Errorf("ParseCursor(%q) = %+v, want an error", bad, c)
		}
	}
	// The order List pages by: older first, then at one time the smaller id.
	tests := []struct {
		it   Item
		want bool
	}{
		{Item{ID: "Q1", Time: t0.Add(-time.Nanosecond)}, true},
		{Item{ID: "Q0", Time: t0}, true},
		{Item{ID: "Q1", Time: t0}, false},
		{Item{ID: "Q2", Time: t0}, false},
		{Item{ID: "A", Time: t0.Add(time.Nanosecond)}, false},
	}
	for _, tt := range tests {
		if got := (Cursor{t0, "Q1"}).after(tt.it); got != tt.want {
			t.Errorf("after(%s at %v) = %v, want %v", tt.it.ID, tt.it.Time, got, tt.want)
		}
	}
}

// FuzzParseCursor: a cursor comes from a URL; whatever it holds, a cursor
// that parses must be one String makes, and that no key check refuses.
func FuzzParseCursor(f *testing.F) {
	f.Add("")
	f.Add(Cursor{time.Unix(1700000000, 5), "Q1"}.String())
	f.Add("gAAAAAAAAABR")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCursor(s)
		if err != nil {
			return
		}
		if c.String() != s {
			t.Fatalf("ParseCursor(%q) = %+v, which is %q", s, c, c.String())
		}
		if s != "" {
			if _, err := (Filter{Before: c}).matcher(); err != nil {
				t.Fatalf("cursor %q parses but List refuses it: %v", s, err)
			}
		}
	})
}
