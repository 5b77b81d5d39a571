// Package report builds the daily report from the message log (counts by
// action, verdict and node, top senders and recipients of refused mail,
// virus names) and stores it exactly once per day, whichever node is
// master when the day ends.
package report

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mxgate/mxgate/msglog"
)

// Count is how often Key occurred.
type Count struct {
	Key string `json:"key"`
	N   int    `json:"n"`
}

// Report is one UTC day of the message log.
type Report struct {
	Day           string         `json:"day"` // YYYY-MM-DD (UTC)
	Generated     time.Time      `json:"generated"`
	Node          string         `json:"node"` // the master that wrote it
	Total         int            `json:"total"`
	ByAction      map[string]int `json:"by_action"` // deliver/quarantine/reject/tempfail/refused
	ByVerdict     map[string]int `json:"by_verdict"`
	ByNode        map[string]int `json:"by_node"`
	TopSenders    []Count        `json:"top_senders"` // of rejected and quarantined mail, top 10
	TopRecipients []Count        `json:"top_recipients"`
	Viruses       []Count        `json:"viruses"`
}

// ErrNotFound is Get's answer for a day without a stored report.
var ErrNotFound = errors.New("no report stored for that day")

// Store keeps the reports as every backend implements it.
type Store interface {
	// Create stores r unless a report for r.Day exists; created tells
	// which. Atomic: of concurrent Creates for one day exactly one wins.
	Create(ctx context.Context, r Report) (created bool, err error)
	// Get returns the report of day (YYYY-MM-DD); ErrNotFound when none.
	Get(ctx context.Context, day string) (Report, error)
	// Days lists the days with a report, newest first (limit <= 0: all).
	Days(ctx context.Context, limit int) ([]string, error)
	// ClaimMail records m as the mailing of day's report unless one is
	// recorded; claimed tells which, and cur is the one recorded then (m
	// when claimed). Atomic, like Create: of concurrent claims one wins.
	ClaimMail(ctx context.Context, day string, m Mailing) (cur Mailing, claimed bool, err error)
	// FinishMail ends the claim m of day: with sent, m (its Sent set) is
	// recorded for good; without, the claim is removed so that a later
	// run mails the report. A claim no longer m (another's) is left alone.
	FinishMail(ctx context.Context, day string, m Mailing, sent bool) error
}

// Mailing is the record of a day's report mail: claimed by Node before
// the send, and Sent once the downstream took it. A claim without Sent
// that stays is a send whose outcome is unknown (the node stopped, or the
// downstream's answer was lost): it is not sent again.
type Mailing struct {
	Token   string    `json:"token"` // tells one claim from another
	Node    string    `json:"node"`
	Claimed time.Time `json:"claimed"`
	To      []string  `json:"to"`
	Sent    time.Time `json:"sent,omitzero"`
}

// DayFormat is how a Report's Day is written.
const DayFormat = time.DateOnly

// TopN is how many senders and recipients a report lists.
const TopN = 10

// Labels for records that lack the field counted.
const (
	noVerdict = "none"    // refused or failed before a verdict
	noNode    = "unknown" // a record without a node id
	nullPath  = "<>"      // the null reverse-path (bounces)
	noVirus   = "unknown" // a virus verdict without a recognisable name
)

// knownVirusSymbols maps the scanner symbols that stand for a virus to the
// virus name the scanner reports. msglog.Record carries symbols but not the
// verdict's virus names, so the names are recovered from these.
var knownVirusSymbols = map[string]string{
	"EICAR_TEST": "Eicar-Test-Signature",
}

// Build reads the UTC day that contains day from the log and counts it.
// node is the node writing the report.
func Build(ctx context.Context, log msglog.Store, day time.Time, node string) (Report, error) {
	from := StartOfDay(day)
	r := Report{
		Day:       from.Format(DayFormat),
		Generated: time.Now().UTC().Truncate(time.Second),
		Node:      node,
		ByAction:  map[string]int{},
		ByVerdict: map[string]int{},
		ByNode:    map[string]int{},
	}
	senders, rcpts, viruses := map[string]int{}, map[string]int{}, map[string]int{}
	err := log.Range(ctx, from, from.AddDate(0, 0, 1), func(rec msglog.Record) error {
		if msglog.IsOperatorAction(rec.Action) {
			return nil // not a message: an operator's release or delete
		}
		r.Total++
		r.ByAction[rec.Action]++
		r.ByVerdict[orDefault(rec.Verdict, noVerdict)]++
		r.ByNode[orDefault(rec.Node, noNode)]++
		if rec.Action == "reject" || rec.Action == "quarantine" {
			senders[orDefault(strings.ToLower(rec.Sender), nullPath)]++
			for _, rc := range uniqueFolded(rec.Recipients) {
				rcpts[rc]++
			}
		}
		for _, v := range virusNames(rec) {
			viruses[v]++
		}
		return nil
	})
	if err != nil {
		return Report{}, fmt.Errorf("build report for %s: %w", r.Day, err)
	}
	r.TopSenders = top(senders, TopN)
	r.TopRecipients = top(rcpts, TopN)
	r.Viruses = top(viruses, 0)
	return r, nil
}

// StartOfDay is 00:00 UTC of the UTC day that contains t.
func StartOfDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// uniqueFolded lower-cases the recipients and drops repeats, so a message
// counts once per recipient.
func uniqueFolded(rs []string) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		r = strings.ToLower(r)
		if r != "" && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// virusNames are the names the engines gave a virus verdict; records
// written before the log kept them are recovered from their symbols
// ("EICAR_TEST(1000.00)"). A virus verdict with no known name still counts,
// as "unknown".
func virusNames(rec msglog.Record) []string {
	if rec.Verdict != "virus" {
		return nil
	}
	if len(rec.Viruses) > 0 {
		return rec.Viruses
	}
	var out []string
	for _, s := range rec.Symbols {
		name, _, _ := strings.Cut(s, "(")
		if v, ok := knownVirusSymbols[name]; ok && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		out = []string{noVirus}
	}
	return out
}

// top sorts counts by N descending then Key, and keeps the first n (n <= 0:
// all).
func top(m map[string]int, n int) []Count {
	out := make([]Count, 0, len(m))
	for k, v := range m {
		out = append(out, Count{Key: k, N: v})
	}
	slices.SortFunc(out, func(a, b Count) int {
		return cmp.Or(cmp.Compare(b.N, a.N), strings.Compare(a.Key, b.Key))
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// checkDay validates a Day before it becomes a key.
func checkDay(day string) error {
	if _, err := time.Parse(DayFormat, day); err != nil {
		return fmt.Errorf("day %q is not YYYY-MM-DD", day)
	}
	return nil
}
