package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/quarantine"
)

func newQuarantineCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quarantine",
		Short: "List, show, release and delete quarantined messages (cluster-wide)",
		Long: `Query and act on the cluster-wide quarantine through the master's admin API.

Management commands reach the admin API given by --admin (env MXGATE_ADMIN,
default ` + defaultAdminURL + `) with the token --token (env MXGATE_TOKEN).`,
		Example: `  mxgate quarantine list --rcpt alice@example.org --since 24h
  mxgate quarantine show 1a2b3c4d
  mxgate quarantine release 1a2b3c4d`,
		RunE: groupRun,
	}
	adminFlags(cmd)
	cmd.AddCommand(newQuarantineListCmd(), newQuarantineShowCmd(), newQuarantineReleaseCmd(), newQuarantineLearnSpamCmd(), newQuarantineDeleteCmd())
	return cmd
}

func newQuarantineListCmd() *cobra.Command {
	var q admin.QuarantineQuery
	cmd := &cobra.Command{
		Use:   "list [--rcpt A] [--sender A] [--verdict V] [--since DUR] [--until T] [--limit N] [--json]",
		Short: "List quarantined messages, newest first",
		Long: `List quarantined messages, newest first, as a table (TIME ID FROM TO VERDICT
SCORE) or with --json as one JSON array of items.

--since and --until take a duration before now (24h, 90m) or an RFC 3339
time (2026-01-02T15:04:05Z). Recipient, sender and verdict match exactly,
ignoring case.`,
		Example: `  mxgate quarantine list --since 24h
  mxgate quarantine list --rcpt alice@example.org --verdict virus --json`,
		Args: noArgs,
	}
	asJSON := jsonFlag(cmd, "one JSON array")
	cmd.RunE = withAdmin(func(cmd *cobra.Command, _ []string, c *admin.Client) error {
		items, err := c.QuarantineList(cmd.Context(), q)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if *asJSON {
			return writeJSON(out, items)
		}
		t := newTable(out, "TIME", "ID", "FROM", "TO", "VERDICT", "SCORE")
		for _, it := range items {
			t.row(when(it.Time), clean(it.ID), sender(it.Sender), rcpts(it.Recipients), clean(it.Verdict), fmt.Sprintf("%.2f", it.Score))
		}
		return t.flush()
	})
	f := cmd.Flags()
	f.StringVar(&q.Rcpt, "rcpt", "", "only messages to this recipient")
	f.StringVar(&q.Sender, "sender", "", "only messages from this sender")
	f.StringVar(&q.Verdict, "verdict", "", "only this verdict: spam, virus, banned, unscannable, engine_failed or policy")
	f.StringVar(&q.Since, "since", "", "only messages since DUR ago or time T")
	f.StringVar(&q.Until, "until", "", "only messages before DUR ago or time T")
	f.IntVar(&q.Limit, "limit", 0, "at most N messages (default 1000, at most 10000)")
	return cmd
}

func newQuarantineShowCmd() *cobra.Command {
	var raw bool
	cmd := &cobra.Command{
		Use:   "show ID [--raw]",
		Short: "Show a quarantined message: its metadata and headers",
		Long: `Show a quarantined message's metadata, then the header of the message.
--raw prints the whole message exactly as received instead (to save or
inspect it); --json prints the metadata as one JSON object.`,
		Example: `  mxgate quarantine show 1a2b3c4d
  mxgate quarantine show 1a2b3c4d --raw > message.eml`,
		Args: exactArgs(1),
	}
	asJSON := jsonFlag(cmd, "the metadata as one JSON object")
	cmd.RunE = withAdmin(func(cmd *cobra.Command, args []string, c *admin.Client) error {
		ctx, out, id := cmd.Context(), cmd.OutOrStdout(), args[0]
		if raw {
			// Deliberately as received, control characters and all:
			// this is for saving the message, not for reading it.
			msg, err := c.QuarantineRaw(ctx, id)
			if err != nil {
				return err
			}
			_, err = out.Write(msg)
			return err
		}
		it, err := c.QuarantineGet(ctx, id)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(out, it)
		}
		msg, err := c.QuarantineRaw(ctx, id)
		if err != nil {
			return err
		}
		if err := printItem(out, it); err != nil {
			return err
		}
		fmt.Fprintln(out)
		return printHeader(out, msg)
	})
	cmd.Flags().BoolVar(&raw, "raw", false, "print the whole message as received")
	cmd.MarkFlagsMutuallyExclusive("raw", "json")
	return cmd
}

func printItem(w io.Writer, it quarantine.Item) error {
	t := newTable(w)
	row := func(k, v string) { t.row(k+":", v) }
	row("ID", clean(it.ID))
	row("Time", when(it.Time))
	row("Verdict", clean(it.Verdict))
	row("Score", fmt.Sprintf("%.2f", it.Score))
	row("Symbols", cleanList(it.Symbols))
	if len(it.Viruses) > 0 {
		row("Viruses", cleanList(it.Viruses))
	}
	row("From", sender(it.Sender))
	row("To", cleanList(it.Recipients))
	row("Subject", clean(it.Subject))
	row("Message-ID", clean(it.MessageID))
	row("Client", clean(it.ClientIP)+" (HELO "+clean(it.Helo)+")")
	row("Size", fmt.Sprintf("%d bytes", it.Size))
	row("Node", clean(it.Node))
	for _, r := range it.Releases {
		what := "Released"
		if r.Forced {
			what = "Released (forced)"
		}
		row(what, when(r.Done)+" by "+clean(r.By))
	}
	if !it.Released.IsZero() && len(it.Releases) == 0 {
		row("Released", when(it.Released))
	}
	if c := it.Claim; c != nil {
		row("Release", "claimed "+when(c.At)+" by "+clean(c.By)+", not finished")
	}
	row("Expires", when(it.Expires))
	return t.flush()
}

// printHeader prints the message's header section, line by line made safe
// for the terminal (folded lines keep their leading tab).
func printHeader(w io.Writer, msg []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(msg))
	sc.Buffer(nil, len(msg)+1)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			break
		}
		if _, err := fmt.Fprintln(w, safe(line, true)); err != nil {
			return err
		}
	}
	return sc.Err()
}

func newQuarantineReleaseCmd() *cobra.Command {
	var o admin.ReleaseOptions
	cmd := &cobra.Command{
		Use:   "release ID [--force] [--learn-ham]",
		Short: "Deliver a quarantined message to its recipients",
		Long: `Deliver a quarantined message to its recipients through the downstream server,
and mark it released.

A message is released once: a release that was done already, or that is
under way (or was interrupted, when the node doing it stopped or the
downstream's answer was lost), is refused with a message naming who
released it and when. --force delivers it again all the same; the release
is then recorded and logged as forced.

--learn-ham then teaches Rspamd (scanner.rspamd_controller) the message as
ham; a lesson that fails is a warning: the message is delivered.`,
		Example: `  mxgate quarantine release 1a2b3c4d
  mxgate quarantine release 1a2b3c4d --learn-ham  # a false positive: tell Rspamd
  mxgate quarantine release 1a2b3c4d --force   # a second copy, on purpose`,
		Args: exactArgs(1),
		RunE: withAdmin(func(cmd *cobra.Command, args []string, c *admin.Client) error {
			res, err := c.QuarantineRelease(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "released %s: %s\n", clean(res.ID), clean(res.Reply))
			if o := res.Overridden; res.Forced && o != nil {
				if o.Done.IsZero() {
					fmt.Fprintf(out, "note: forced over the unfinished release claimed by %s at %s\n", clean(o.By), when(o.At))
				} else {
					fmt.Fprintf(out, "note: forced; a second copy (released before by %s at %s)\n", clean(o.By), when(o.Done))
				}
			} else if !res.PreviousRelease.IsZero() {
				fmt.Fprintf(out, "note: it had been released before, at %s\n", when(res.PreviousRelease))
			}
			if res.Learned != "" {
				fmt.Fprintf(out, "learned as %s\n", clean(res.Learned))
			}
			if res.Warning != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", clean(res.Warning))
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&o.Force, "force", false, "release again a message released (or being released) before: a second copy")
	cmd.Flags().BoolVar(&o.LearnHam, "learn-ham", false, "after delivering it, teach Rspamd the message as ham")
	return cmd
}

func newQuarantineLearnSpamCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "learn-spam ID",
		Short: "Teach Rspamd a quarantined message as spam",
		Long: `Teach Rspamd (through scanner.rspamd_controller) a quarantined message as
spam, without releasing or deleting it. A message Rspamd has learned
already is reported as learned.`,
		Example: `  mxgate quarantine learn-spam 1a2b3c4d`,
		Args:    exactArgs(1),
		RunE: withAdmin(func(cmd *cobra.Command, args []string, c *admin.Client) error {
			res, err := c.QuarantineLearn(cmd.Context(), args[0], true)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "learned %s as %s\n", clean(res.ID), clean(res.Learned))
			return nil
		}),
	}
}

func newQuarantineDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "delete ID",
		Short:   "Delete a quarantined message",
		Example: `  mxgate quarantine delete 1a2b3c4d`,
		Args:    exactArgs(1),
		RunE: withAdmin(func(cmd *cobra.Command, args []string, c *admin.Client) error {
			if err := c.QuarantineDelete(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", clean(args[0]))
			return nil
		}),
	}
}
