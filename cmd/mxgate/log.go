package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mxgate/mxgate/admin"
)

func newLogCmd() *cobra.Command {
	var q admin.LogQuery
	cmd := &cobra.Command{
		Use:   "log [--id ID] [--sender A] [--rcpt A] [--action A] [--since DUR] [--until T] [--limit N] [--json]",
		Short: "Track messages across the cluster (the message log)",
		Long: `Search the cluster-wide message log, newest first, as a table (TIME ID FROM
TO ACTION VERDICT SCORE NODE) or with --json as one JSON array of records.

--sender and --rcpt match a part of the address, ignoring case; --id and
--action (deliver, quarantine, reject, tempfail) match exactly. --since and
--until take a duration before now (24h) or an RFC 3339 time.`,
		Example: `  mxgate log --since 1h
  mxgate log --rcpt alice@example.org --action reject --json
  mxgate log --id 1a2b3c4d`,
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
		t := newTable(out, "TIME", "ID", "FROM", "TO", "ACTION", "VERDICT", "SCORE", "NODE")
		for _, r := range recs {
			t.row(when(r.Time), clean(r.ID), sender(r.Sender), rcpts(r.AllRecipients()), clean(r.Action), clean(r.Verdict), fmt.Sprintf("%.2f", r.Score), clean(r.Node))
		}
		return t.flush()
	})
	adminFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&q.ID, "id", "", "only this message id")
	f.StringVar(&q.Sender, "sender", "", "only senders containing A")
	f.StringVar(&q.Rcpt, "rcpt", "", "only recipients containing A")
	f.StringVar(&q.Action, "action", "", "only this action: deliver, quarantine, reject or tempfail")
	f.StringVar(&q.Since, "since", "", "only messages since DUR ago or time T")
	f.StringVar(&q.Until, "until", "", "only messages before DUR ago or time T")
	f.IntVar(&q.Limit, "limit", 0, "at most N records (default 1000, at most 10000)")
	return cmd
}
