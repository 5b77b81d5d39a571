package admin

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// The time forms of the since, until and day query parameters, as an
// operator types them: how long ago, a UTC day, or an exact time.
const (
	whenForms = "want a duration like 90m, 24h or 7d (that long ago), a date like 2026-12-02 (00:00 UTC), " +
		"today, yesterday, or an RFC 3339 time like 2026-12-02T15:04:05Z"
	dayForms = "want today, yesterday or a date like 2026-12-02 (that whole UTC day)"
	// maxAgo bounds a duration before now: far enough for any retention,
	// near enough that now minus it stays a valid time.
	maxAgo = 100 * 365 * 24 * time.Hour
)

// parseWhen reads a point in time relative to now: a duration before now
// (Go's units plus d for days: 7d, 1d12h), a date (its 00:00 UTC), today
// or yesterday (00:00 UTC of that day), or an RFC 3339 time.
func parseWhen(v string, now time.Time) (time.Time, error) {
	if day, ok := namedDay(v, now); ok {
		return day, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	d, err := parseAgo(v)
	if err != nil {
		return time.Time{}, err
	}
	return now.Add(-d), nil
}

// parseDay reads a whole UTC day: today, yesterday or a date; the range
// [from, to) covers it.
func parseDay(v string, now time.Time) (from, to time.Time, err error) {
	from, ok := namedDay(v, now)
	if !ok {
		if from, err = time.Parse(time.DateOnly, v); err != nil {
			return time.Time{}, time.Time{}, errors.New(dayForms)
		}
	}
	return from, from.AddDate(0, 0, 1), nil
}

func namedDay(v string, now time.Time) (time.Time, bool) {
	y, m, d := now.UTC().Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	switch strings.ToLower(v) {
	case "today":
		return today, true
	case "yesterday":
		return today.AddDate(0, 0, -1), true
	}
	return time.Time{}, false
}

// parseAgo reads a positive duration: Go's (90m, 1h30m) with whole days
// in front (7d, 1d12h).
func parseAgo(v string) (time.Duration, error) {
	var days int64
	rest := v
	if i := strings.IndexByte(v, 'd'); i > 0 {
		n, err := strconv.ParseInt(v[:i], 10, 64)
		if err != nil || n < 0 || n > int64(maxAgo/(24*time.Hour)) {
			return 0, errors.New(whenForms)
		}
		days, rest = n, v[i+1:]
	}
	var d time.Duration
	if rest != "" || days == 0 {
		var err error
		if d, err = time.ParseDuration(rest); err != nil || days > 0 && strings.ContainsAny(rest[:1], "+-") {
			return 0, errors.New(whenForms)
		}
	}
	if d > maxAgo || d+time.Duration(days)*24*time.Hour > maxAgo {
		return 0, errors.New("the duration must be at most 100 years")
	}
	d += time.Duration(days) * 24 * time.Hour
	if d <= 0 {
		return 0, errors.New("the duration must be positive (how long ago)")
	}
	return d, nil
}
