package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"
)

// Section is one titled list of counts of a report, in the order the text
// and HTML forms show them.
type Section struct {
	Title  string
	Counts []Count
}

// Sections are r's lists: the maps sorted by count, then key.
func (r Report) Sections() []Section {
	return []Section{
		{"By action", top(r.ByAction, 0)},
		{"By verdict", top(r.ByVerdict, 0)},
		{"By node", top(r.ByNode, 0)},
		{"Top senders of rejected and quarantined mail", r.TopSenders},
		{"Top recipients of rejected and quarantined mail", r.TopRecipients},
		{"Viruses", r.Viruses},
	}
}

// State says where r comes from: stored (written once by the master of
// the day), or built when asked for a day that has none stored.
func (r Report) State(stored bool) string {
	if !stored {
		return "not stored: built now from the message log by " + Printable(r.Node)
	}
	return "stored, written by " + Printable(r.Node) + " at " + localTime(r.Generated)
}

// WriteText writes r as `mxgate report` prints it (and the mailed report's
// text part carries it). Every value from the log is Printable: addresses
// come from strangers and must not reach a terminal with its escapes.
func WriteText(w io.Writer, r Report, stored bool) error {
	if _, err := fmt.Fprintf(w, "Report for %s (%s)\n\nMessages: %d\n", Printable(r.Day), r.State(stored), r.Total); err != nil {
		return err
	}
	for _, s := range r.Sections() {
		if _, err := fmt.Fprintf(w, "\n%s:\n", s.Title); err != nil {
			return err
		}
		if len(s.Counts) == 0 {
			if _, err := fmt.Fprintln(w, "  (none)"); err != nil {
				return err
			}
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, c := range s.Counts {
			fmt.Fprintf(tw, "  %d\t%s\n", c.N, Printable(c.Key))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// Printable replaces control and format characters (bidi overrides too)
// and invalid UTF-8 with '?', and shows an empty value as "-".
func Printable(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return '?'
		}
		return r
	}, s)
}

func localTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}
