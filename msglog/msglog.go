// Package msglog is the message log: one record per SMTP transaction the
// gateway finished, for tracking a message across the cluster.
package msglog

import (
	"context"
	"encoding/json"
	"math"
	"time"

	"github.com/mxgate/mxgate/addrmatch"
	"github.com/mxgate/mxgate/kv"
)

// Record is what happened to one message, or to a transaction that ended
// without one (Action "refused": every recipient was refused).
type Record struct {
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	ClientIP string    `json:"client_ip"`
	Helo     string    `json:"helo"`
	Sender   string    `json:"sender"`
	// Recipients are the accepted recipients; the refused ones are in
	// Refused.
	Recipients []string `json:"recipients"`
	// Refused are the recipients refused at RCPT, each with its reply
	// (bounded: the client chooses how many it tries).
	Refused []Refusal `json:"refused,omitempty"`
	// List is the allow entry that decided for the accepted recipients.
	List         *ListEntry `json:"list,omitempty"`
	Size         int64      `json:"size"`
	Action       string     `json:"action"`
	Verdict      string     `json:"verdict"` // class
	Score        float64    `json:"score"`
	Symbols      []string   `json:"symbols"`
	Viruses      []string   `json:"viruses,omitempty"` // names the engines gave
	Node         string     `json:"node"`
	Reply        string     `json:"reply"`      // the reply given to the client
	Downstream   string     `json:"downstream"` // the downstream's reply or error
	QuarantineID string     `json:"quarantine_id,omitempty"`
	// Duration is kept in JSON as seconds (duration_s); records written
	// before that carry nanoseconds (duration_ns), which are still read.
	Duration time.Duration `json:"-"`
	// By is who did an operator's action (ActionRelease, ActionDelete),
	// as the admin API names the actor; "" for an SMTP transaction.
	By string `json:"by,omitempty"`
}

// The actions of an operator on a quarantined message, recorded next to
// the SMTP transactions (deliver, quarantine, reject, tempfail, refused)
// under the message's id; they are not messages, and the daily report
// skips them.
const (
	ActionRelease = "release"
	ActionDelete  = "delete"
)

// IsOperatorAction reports whether action is one of an operator's, not
// an SMTP transaction's.
func IsOperatorAction(action string) bool {
	return action == ActionRelease || action == ActionDelete
}

// Refusal is one recipient refused at RCPT.
type Refusal struct {
	Rcpt  string     `json:"rcpt"`
	Reply string     `json:"reply"`          // "550 5.7.1 ..."
	List  *ListEntry `json:"list,omitempty"` // the block entry that refused it
}

// ListEntry names a block or allow list entry as the lists show it, so the
// administrator finds the line to change.
type ListEntry struct {
	Kind    string `json:"kind"`
	Value   string `json:"value"`
	Rcpt    string `json:"rcpt,omitempty"` // "" = global
	Comment string `json:"comment,omitempty"`
}

// String is "block @spam.example (for @example.org)".
func (e ListEntry) String() string {
	s := e.Kind + " " + e.Value
	if e.Rcpt != "" {
		s += " (for " + e.Rcpt + ")"
	}
	return s
}

// AllRecipients are the accepted and the refused recipients, as a
// recipient filter sees them.
func (r Record) AllRecipients() []string {
	if len(r.Refused) == 0 {
		return r.Recipients
	}
	out := append([]string(nil), r.Recipients...)
	for _, f := range r.Refused {
		if f.Rcpt != "" {
			out = append(out, f.Rcpt)
		}
	}
	return out
}

type recordFields Record // without the methods, for the JSON wrappers

// MarshalJSON writes Duration as seconds.
func (r Record) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		recordFields
		Seconds float64 `json:"duration_s"`
	}{recordFields(r), math.Round(r.Duration.Seconds()*1e6) / 1e6})
}

// UnmarshalJSON reads Duration from seconds, or from the nanoseconds of
// records written before.
func (r *Record) UnmarshalJSON(b []byte) error {
	v := struct {
		*recordFields
		Seconds *float64 `json:"duration_s"`
		Nanos   *int64   `json:"duration_ns"`
	}{recordFields: (*recordFields)(r)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch {
	case v.Seconds != nil:
		r.Duration = time.Duration(math.Round(*v.Seconds * float64(time.Second)))
	case v.Nanos != nil:
		r.Duration = time.Duration(*v.Nanos)
	}
	return nil
}

// Query selects records for Search. Empty fields do not filter. ID and
// Action match exactly; Sender and Rcpt are address filters in addrmatch's
// forms (an address, @domain or .domain; Rcpt matches when any recipient,
// accepted or refused, does). The time range is half-open: Since <= Time
// < Until. Search refuses a filter addrmatch.Parse does.
type Query struct {
	ID, Sender, Rcpt, Action string
	Since, Until             time.Time
	Limit                    int // 0 = DefaultLimit; capped at MaxLimit
}

const (
	DefaultLimit = 1000
	// MaxLimit bounds one answer so a careless query cannot make the
	// gateway allocate without bound.
	MaxLimit = 10000
)

// Store is the message log as every backend implements it.
type Store interface {
	// Append stores records durably, all or none.
	Append(ctx context.Context, rs ...Record) error
	// Search returns matching records, newest first.
	Search(ctx context.Context, q Query) ([]Record, error)
	// Expire deletes records with Time before before and returns how many.
	Expire(ctx context.Context, before time.Time) (int, error)
	// Range calls fn with every record whose Time lies in from <= Time < to
	// (a zero bound does not bound), oldest first, without a limit: the
	// daily report reads a whole day. Records are read in batches, so fn
	// runs outside any store transaction; an error from fn stops the walk
	// and is returned as is.
	Range(ctx context.Context, from, to time.Time, fn func(Record) error) error
}

// EffectiveLimit is Limit with its default and cap applied.
func (q Query) EffectiveLimit() int {
	switch {
	case q.Limit <= 0:
		return DefaultLimit
	case q.Limit > MaxLimit:
		return MaxLimit
	}
	return q.Limit
}

// matcher is a Query with its address filters parsed once, not per
// record; every backend filters with it, so they agree to the letter.
type matcher struct {
	q   Query
	env addrmatch.Envelope
}

func newMatcher(q Query) (matcher, error) {
	env, err := addrmatch.ParseEnvelope(q.Sender, q.Rcpt)
	if err != nil {
		return matcher{}, err
	}
	return matcher{q: q, env: env}, nil
}

// match reports whether r passes the query (the limit aside).
func (m matcher) match(r Record) bool {
	q := m.q
	if q.ID != "" && r.ID != q.ID {
		return false
	}
	if q.Action != "" && r.Action != q.Action {
		return false
	}
	if !m.env.Match(r.Sender, r.AllRecipients()) {
		return false
	}
	return kv.InRange(r.Time, q.Since, q.Until)
}

func validate(r Record) error {
	return kv.CheckKey(r.ID, r.Time)
}
