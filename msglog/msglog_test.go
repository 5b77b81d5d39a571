package msglog

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// A record's duration is written as seconds, never as nanoseconds, and
// records written before (duration_ns) still read back.
func TestRecordDurationJSON(t *testing.T) {
	r := Record{ID: "A", Time: time.Unix(1, 0).UTC(), Duration: 1234567890 * time.Nanosecond}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"duration_s":1.234568`) || strings.Contains(string(b), "duration_ns") {
		t.Errorf("record JSON %s, want duration_s in seconds and no duration_ns", b)
	}
	for _, tc := range []struct {
		name, in string
		want     time.Duration
	}{
		{"seconds", `{"id":"A","duration_s":1.5}`, 1500 * time.Millisecond},
		{"nanoseconds of an older record", `{"id":"A","duration_ns":2500000000}`, 2500 * time.Millisecond},
		{"none", `{"id":"A"}`, 0},
	} {
		var got Record
		if err := json.Unmarshal([]byte(tc.in), &got); err != nil || got.Duration != tc.want || got.ID != "A" {
			t.Errorf("%s: %+v, %v; want duration %s", tc.name, got, err, tc.want)
		}
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil || back.Duration != 1234568*time.Microsecond || back.ID != "A" {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}

// A recipient filter finds a transaction by its refused recipients too.
func TestMatcherSeesRefusedRecipients(t *testing.T) {
	refused := Record{ID: "R", Action: "refused", Refused: []Refusal{
		{Rcpt: "bob@example.org", Reply: "550 5.7.1 Sender blocked by list entry block @spam.example"},
		{Reply: "… 3 more"},
	}}
	mixed := Record{ID: "M", Action: "deliver", Recipients: []string{"alice@example.org"}, Refused: []Refusal{{Rcpt: "carol@example.org", Reply: "550 5.1.1 unknown"}}}
	for _, tc := range []struct {
		rcpt string
		r    Record
		want bool
	}{
		{"bob@example.org", refused, true},
		{"BOB@example.org", refused, true},
		{"alice@example.org", refused, false},
		{"@example.org", refused, true},
		{".org", mixed, true},
		{"@sub.example.org", mixed, false},
		{"alice@example.org", mixed, true},
		{"carol@example.org", mixed, true},
		{"dave@example.org", mixed, false},
	} {
		m, err := newMatcher(Query{Rcpt: tc.rcpt})
		if err != nil {
			t.Fatal(err)
		}
		if got := m.match(tc.r); got != tc.want {
			t.Errorf("rcpt %q on %s: %v, want %v", tc.rcpt, tc.r.ID, got, tc.want)
		}
	}
}
