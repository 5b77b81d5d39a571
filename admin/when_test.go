package admin

import (
	"strings"
	"testing"
	"time"
)

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 12, 2, 15, 4, 5, 0, time.UTC)
	midnight := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		err  string
	}{
		{"24h", now.Add(-24 * time.Hour), ""},
		{"90m", now.Add(-90 * time.Minute), ""},
		{"1d", now.AddDate(0, 0, -1), ""},
		{"7d", now.AddDate(0, 0, -7), ""},
		{"1d12h", now.Add(-36 * time.Hour), ""},
		{"today", midnight, ""},
		{"Yesterday", midnight.AddDate(0, 0, -1), ""},
		{"2026-11-30", time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), ""},
		{"2026-11-30T10:00:00+01:00", time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC), ""},
		{"-5h", time.Time{}, "must be positive"},
		{"0s", time.Time{}, "must be positive"},
		{"0d", time.Time{}, "want a duration like 90m, 24h or 7d"},
		{"1d-5h", time.Time{}, "want a duration"},
		{"d", time.Time{}, "want a duration"},
		{"1w", time.Time{}, "want a duration"},
		{"2026-13-01", time.Time{}, "a date like 2026-12-02 (00:00 UTC)"},
		{"99999999d", time.Time{}, "want a duration"},
		{"900000h", time.Time{}, "at most 100 years"},
		{"tomorrow", time.Time{}, "today, yesterday"},
	}
	for _, tt := range tests {
		got, err := parseWhen(tt.in, now)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("parseWhen(%q) = %v, %v; want an error with %q", tt.in, got, err, tt.err)
		case tt.err == "" && (err != nil || !got.Equal(tt.want)):
			t.Errorf("parseWhen(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseDay(t *testing.T) {
	now := time.Date(2026, 12, 2, 0, 30, 0, 0, time.FixedZone("X", -5*3600)) // 05:30 UTC
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		in       string
		from     time.Time
		wantFail bool
	}{
		{"today", day(2026, 12, 2), false},
		{"yesterday", day(2026, 12, 1), false},
		{"2026-03-01", day(2026, 3, 1), false},
		{"2026-3-1", time.Time{}, true},
		{"24h", time.Time{}, true},
		{"", time.Time{}, true},
	}
	for _, tt := range tests {
		from, to, err := parseDay(tt.in, now)
		if tt.wantFail {
			if err == nil || !strings.Contains(err.Error(), "want today, yesterday or a date") {
				t.Errorf("parseDay(%q) = %v, %v; want an error", tt.in, from, err)
			}
			continue
		}
		if err != nil || !from.Equal(tt.from) || !to.Equal(tt.from.AddDate(0, 0, 1)) {
			t.Errorf("parseDay(%q) = %v..%v, %v; want the day from %v", tt.in, from, to, err, tt.from)
		}
	}
}

// FuzzParseWhen: any input is a time not after now (a point in the past,
// or a given date) or an error naming the accepted forms, never a panic.
func FuzzParseWhen(f *testing.F) {
	for _, s := range []string{"24h", "7d", "1d12h", "today", "2026-12-02", "2026-12-02T15:04:05Z", "-1h", "1d-1h", "9223372036d", "0.5h"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 2, 15, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseWhen(s, now)
		if err != nil {
			if !strings.Contains(err.Error(), "duration") && !strings.Contains(err.Error(), "date") {
				t.Fatalf("parseWhen(%q): error %q says nothing of the forms", s, err)
			}
			return
		}
		if d, derr := parseAgo(s); derr == nil && (d <= 0 || !got.Equal(now.Add(-d)) || got.After(now)) {
			t.Fatalf("parseWhen(%q) = %v: not %v before now", s, got, d)
		}
		if got.IsZero() {
			t.Fatalf("parseWhen(%q) accepted a zero time", s)
		}
	})
}
