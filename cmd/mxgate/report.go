package main

import (
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
		return report.WriteText(out, res.Report, res.Stored)
	})
	adminFlags(cmd)
	cmd.Flags().StringVar(&day, "day", "", "the UTC day YYYY-MM-DD (default yesterday)")
	return cmd
}
