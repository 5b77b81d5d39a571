package quarantine

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/mxgate/mxgate/kv"
)

// Cursor is a place in List's order, newest first: by Time, then by ID
// bytewise, as the indexes order their keys. A page's last item is the
// cursor of the next page (Filter.Before), which stays right while items
// come and go: nothing is skipped or shown twice, as an offset would.
type Cursor struct {
	Time time.Time
	ID   string
}

// CursorOf is the place of it: the next page lists what comes after it.
func CursorOf(it Item) Cursor { return Cursor{Time: it.Time, ID: it.ID} }

// IsZero reports whether c is no place (Filter.Before does not filter).
func (c Cursor) IsZero() bool { return c.ID == "" && c.Time.IsZero() }

// after reports whether it comes after c in List's order.
func (c Cursor) after(it Item) bool {
	if !it.Time.Equal(c.Time) {
		return it.Time.Before(c.Time)
	}
	return it.ID < c.ID
}

// String is c as opaque URL-safe text (its index key in base64url), for
// an API parameter; ParseCursor reads it back.
func (c Cursor) String() string {
	if c.IsZero() {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(kv.TimeKey(c.Time, c.ID))
}

// ParseCursor reads a Cursor.String; "" is the zero Cursor.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) < 9 {
		return Cursor{}, errors.New("not a cursor this gateway gave")
	}
	n := binary.BigEndian.Uint64(b)
	c := Cursor{Time: time.Unix(0, int64(n)).UTC(), ID: string(b[8:])}
	// Only what String makes: no ids a key cannot hold, no times out of
	// range, one spelling per cursor.
	// (The decoder skips CR and LF even when strict: the text must be
	// exactly what String writes.)
	if err := kv.CheckKey(c.ID, c.Time); err != nil || !bytes.Equal(kv.TimeKey(c.Time, c.ID), b) || c.String() != s {
		return Cursor{}, fmt.Errorf("not a cursor this gateway gave")
	}
	return c, nil
}
