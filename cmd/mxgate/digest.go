package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/digest"
)

func newDigestCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "digest",
		Short: "The recipients' quarantine digest: send now, opt-outs, signing key",
		Long: `The quarantine digest: once a day (digest.time, UTC) the master mails each
recipient with newly quarantined mail one message listing it, with signed
links to release or delete each message, to see their whole quarantine
and to opt out. Each recipient gets at most one digest a day, across the
cluster and its failovers. See the README, "Quarantine digest".

` + adminHelp,
		Example: `  mxgate digest send
  mxgate digest send --rcpt alice@example.org
  mxgate digest optout alice@example.org
  mxgate digest rotate-key`,
		RunE: groupRun,
	}
	adminFlags(cmd)
	cmd.AddCommand(newDigestSendCmd(), newDigestOptCmd(true), newDigestOptCmd(false), newDigestOptOutsCmd(), newDigestRotateCmd())
	return cmd
}

func newDigestSendCmd() *cobra.Command {
	var rcpt string
	cmd := &cobra.Command{
		Use:   "send [--rcpt ADDR] [--json]",
		Short: "Send today's digests now (still once per recipient and day)",
		Long: `Send today's digests now, to every recipient with new quarantined mail or to
--rcpt only. A recipient who had today's digest gets none (already sent
today), nor one who opted out. Prints one line per recipient: RCPT RESULT
ITEMS REASON. Exit status 1 when a digest failed.`,
		Example: `  mxgate digest send
  mxgate digest send --rcpt alice@example.org --json`,
		Args: noArgs,
	}
	asJSON := jsonFlag(cmd, "one JSON array of outcomes")
	cmd.RunE = withAdmin(func(cmd *cobra.Command, _ []string, c *admin.Client) error {
		out, err := c.DigestSend(cmd.Context(), rcpt)
		if err != nil {
			return err
		}
		failed := 0
		for _, o := range out {
			if o.Result == digest.Failed {
				failed++
			}
		}
		w := cmd.OutOrStdout()
		if *asJSON {
			if err := writeJSON(w, out); err != nil {
				return err
			}
		} else {
			t := newTable(w, "RCPT", "RESULT", "ITEMS", "REASON")
			for _, o := range out {
				t.row(clean(o.Rcpt), o.Result, strconv.Itoa(o.Items), clean(o.Reason))
			}
			if err := t.flush(); err != nil {
				return err
			}
		}
		if failed > 0 {
			return withCode(exitFailure, fmt.Errorf("%d of %d digests failed (see REASON and the node's log)", failed, len(out)))
		}
		return nil
	})
	cmd.Flags().StringVar(&rcpt, "rcpt", "", "only this recipient (an address)")
	return cmd
}

func newDigestOptCmd(out bool) *cobra.Command {
	use, short, long := "optout ADDR", "Send ADDR no more digests", "Stop the digests of ADDR (the recipient can do the same with the link in their digest)."
	if !out {
		use, short, long = "optin ADDR", "Send ADDR digests again", "Resume the digests of ADDR after an opt-out."
	}
	return &cobra.Command{
		Use:     use,
		Short:   short,
		Long:    long,
		Example: "  mxgate digest " + use[:len(use)-5] + " alice@example.org",
		Args:    exactArgs(1),
		RunE: withAdmin(func(cmd *cobra.Command, args []string, c *admin.Client) error {
			if err := c.DigestOptOut(cmd.Context(), args[0], out); err != nil {
				return err
			}
			state := "gets digests again"
			if out {
				state = "gets no digests"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", clean(args[0]), state)
			return nil
		}),
	}
}

func newDigestOptOutsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "optouts [--json]",
		Short:   "List the recipients who opted out",
		Long:    "List the recipients who get no digest, one per line (or with --json as one JSON array).",
		Example: "  mxgate digest optouts",
		Args:    noArgs,
	}
	asJSON := jsonFlag(cmd, "one JSON array")
	cmd.RunE = withAdmin(func(cmd *cobra.Command, _ []string, c *admin.Client) error {
		out, err := c.DigestOptOuts(cmd.Context())
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(cmd.OutOrStdout(), out)
		}
		for _, r := range out {
			fmt.Fprintln(cmd.OutOrStdout(), clean(r))
		}
		return nil
	})
	return cmd
}

func newDigestRotateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-key",
		Short: "Sign the digests' links with a new key",
		Long: `Add a new key for signing the digests' links. Links signed with the older
keys stay valid as long as they can live (store.quarantine_retention);
keys older than that are dropped now. Rotate when a key may have leaked:
then links signed before stop working once their key is dropped.`,
		Example: "  mxgate digest rotate-key",
		Args:    noArgs,
		RunE: withAdmin(func(cmd *cobra.Command, _ []string, c *admin.Client) error {
			res, err := c.DigestRotateKey(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "new signing key %s", res.ID)
			if len(res.Dropped) > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "; dropped %v", res.Dropped)
			}
			fmt.Fprintln(cmd.OutOrStdout())
			return nil
		}),
	}
}
