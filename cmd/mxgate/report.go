package main

import (
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/report"
)

func newReportCmd() *cobra.Command {
	var day string
	cmd := &cobra.Command{
		Use:   "report [--day YYYY-MM-DD] [--json]",
		Short: "The daily report: counts by verdict and node, top senders and recipients, viruses",
		Long: `Print the daily report of the cluster (UTC days). The master writes one report
a day, exactly once even across a failover; a day without a stored report
(today, say) is built from the message log when asked and marked so.
Without --day: yesterday.`,
		Example: `  mxgate report
  mxgate report --day 2026-11-27 --json`,
		Args: noArgs,
	}
	asJSON := jsonFlag(cmd, "the report as one JSON object")
	cmd.RunE = withAdmin(func(cmd *cobra.Command, _ []string, c *admin.Client) error {
		res, err := c.Report(cmd.Context(), day)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if *asJSON {
			return writeJSON(out, res)
		}
		r := res.Report
		state := "stored, written by " + clean(r.Node) + " at " + when(r.Generated)
		if !res.Stored {
			state = "not stored: built now from the message log by " + clean(r.Node)
		}
		fmt.Fprintf(out, "Report for %s (%s)\n\nMessages: %d\n", clean(r.Day), state, r.Total)
		for _, s := range []struct {
			title string
			cs    []report.Count
		}{
			{"By action", mapCounts(r.ByAction)},
			{"By verdict", mapCounts(r.ByVerdict)},
			{"By node", mapCounts(r.ByNode)},
			{"Top senders of rejected and quarantined mail", r.TopSenders},
			{"Top recipients of rejected and quarantined mail", r.TopRecipients},
			{"Viruses", r.Viruses},
		} {
			if err := printCounts(out, s.title, s.cs); err != nil {
				return err
			}
		}
		return nil
	})
	adminFlags(cmd)
	cmd.Flags().StringVar(&day, "day", "", "the UTC day YYYY-MM-DD (default yesterday)")
	return cmd
}

// mapCounts orders a count map by count, then key.
func mapCounts(m map[string]int) []report.Count {
	cs := make([]report.Count, 0, len(m))
	for k, n := range m {
		cs = append(cs, report.Count{Key: k, N: n})
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].N != cs[j].N {
			return cs[i].N > cs[j].N
		}
		return cs[i].Key < cs[j].Key
	})
	return cs
}

func printCounts(out io.Writer, title string, cs []report.Count) error {
	fmt.Fprintf(out, "\n%s:\n", title)
	if len(cs) == 0 {
		_, err := fmt.Fprintln(out, "  (none)")
		return err
	}
	t := newTable(out)
	for _, c := range cs {
		t.row(fmt.Sprintf("  %d", c.N), clean(c.Key))
	}
	return t.flush()
}
