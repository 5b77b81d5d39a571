package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mxgate/mxgate/admin"
)

func newLogCmd() *cobra.Command {
	var q admin.LogQuery
	cmd := &cobra.Command{
		Use:   "log [--id ID] [--sender A] [--rcpt A] [--action A] [--since WHEN] [--until WHEN] [--day DAY] [--limit N] [--json]",
		Short: "Track messages across the cluster (the message log)",
		Long: `Search the cluster-wide message log, newest first, as a table (TIME ID FROM
TO ACTION VERDICT SCORE NODE BY) or with --json as one JSON array of records.

The log holds every SMTP transaction (actions deliver, quarantine, reject,
tempfail, refused) and what operators did to quarantined messages
(release, delete), under the message's queue id, with who did it (BY).

` + filterHelp + ` The recipients refused at RCPT count too. --id (in any
case) and --action match exactly.

` + timeHelp,
		Example: `  mxgate log --since 1h
  mxgate log --rcpt alice@example.org --action reject --day today
  mxgate log --sender .spam.example --since 7d --json
  mxgate log --id ` + exampleID + `  # its whole story: received, quarantined, released
  mxgate log --action release --since 2026-12-01`,
		Args: noArgs,
	}
	asJSON := jsonFlag(cmd, "one JSON array")
	cmd.RunE = withAdmin(func(cmd *cobra.Command, _ []string, c *admin.Client) error {
		recs, err := c.Log(cmd.Context(), q)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if *asJSON {
			return writeJSON(out, recs)
		}
		if len(recs) == 0 {
			_, err := fmt.Fprintln(out, "no log records match")
			return err
		}
		t := newTable(out, "TIME", "ID", "FROM", "TO", "ACTION", "VERDICT", "SCORE", "NODE", "BY")
		for _, r := range recs {
			t.row(when(r.Time), clean(r.ID), sender(r.Sender), rcpts(r.AllRecipients()), clean(r.Action), clean(r.Verdict), fmt.Sprintf("%.2f", r.Score), clean(r.Node), clean(r.By))
		}
		return t.flush()
	})
	adminFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&q.ID, "id", "", "only this message id")
	f.StringVar(&q.Sender, "sender", "", "only messages from A: user@example.org, @example.org or .example.org")
	f.StringVar(&q.Rcpt, "rcpt", "", "only messages to A: user@example.org, @example.org or .example.org")
	f.StringVar(&q.Action, "action", "", "only this action: deliver, quarantine, reject, tempfail, refused, release or delete")
	rangeFlags(cmd, &q.Since, &q.Until, &q.Day)
	f.IntVar(&q.Limit, "limit", 0, "at most N records (default 1000, at most 10000)")
	return cmd
}
