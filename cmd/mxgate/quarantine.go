package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/quarantine"
)

// exampleID and exampleID2 are queue ids in the form the gateway gives
// them (upper-case hex; any case is accepted).
const (
	exampleID  = "1A2372C4E0B5F3A9"
	exampleID2 = "1A2372C5117D20C4"
)

func newQuarantineCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quarantine",
		Short: "List, show, release and delete quarantined messages (cluster-wide)",
		Long: `Query and act on the cluster-wide quarantine through the master's admin API.

A message is named by its queue id, the one the gateway gave in its SMTP
reply and in the message log (` + exampleID + `); the case does not matter.
release, delete and learn-spam take several ids, and - reads ids from
standard input, one per line (as postsuper -d - does).

` + adminHelp,
		Example: `  mxgate quarantine list --rcpt alice@example.org --since 1d
  mxgate quarantine show ` + exampleID + `
  mxgate quarantine release ` + exampleID + ` --rcpt alice@example.org
  mxgate quarantine list --sender @spam.example --json | jq -r '.[].id' | mxgate quarantine delete -`,
		RunE: groupRun,
	}
	adminFlags(cmd)
	cmd.AddCommand(newQuarantineListCmd(), newQuarantineShowCmd(), newQuarantineReleaseCmd(), newQuarantineLearnSpamCmd(), newQuarantineDeleteCmd())
	return cmd
}

// filterHelp explains --rcpt and --sender, which match the same way in
// quarantine list and log.
const filterHelp = `--rcpt and --sender take an address (alice@example.org), @domain (every
address in exactly that domain) or .domain (the domain and all its
subdomains), ignoring case; --rcpt matches a message when any of its
recipients does.`

// timeHelp explains --since, --until and --day.
const timeHelp = `--since and --until take a duration before now (90m, 24h, 7d, 1d12h), a
date (2026-12-02, meaning 00:00 UTC), today, yesterday, or an RFC 3339
time (2026-12-02T15:04:05Z). --day today|yesterday|YYYY-MM-DD is that
whole UTC day.`

// rangeFlags registers --since, --until and --day.
func rangeFlags(cmd *cobra.Command, since, until, day *string) {
	f := cmd.Flags()
	f.StringVar(since, "since", "", "only since WHEN: 24h, 7d, 2026-12-02, today, or an RFC 3339 time")
	f.StringVar(until, "until", "", "only before WHEN (as --since)")
	f.StringVar(day, "day", "", "only that whole UTC day: today, yesterday or YYYY-MM-DD")
	cmd.MarkFlagsMutuallyExclusive("day", "since")
	cmd.MarkFlagsMutuallyExclusive("day", "until")
}

func newQuarantineListCmd() *cobra.Command {
	var q admin.QuarantineQuery
	cmd := &cobra.Command{
		Use:   "list [--rcpt A] [--sender A] [--verdict V] [--since WHEN] [--until WHEN] [--day DAY] [--limit N] [--json]",
		Short: "List quarantined messages, newest first",
		Long: `List quarantined messages, newest first, as a table (TIME ID FROM TO VERDICT
SCORE SIZE RELEASED SUBJECT) or with --json as one JSON array of items.
RELEASED is when the message was last released, with how many of its
recipients have it when a release went to some of them only.

` + filterHelp + ` --verdict matches exactly, ignoring case.

` + timeHelp,
		Example: `  mxgate quarantine list --since 1d
  mxgate quarantine list --day yesterday --rcpt @example.org
  mxgate quarantine list --sender .spam.example --since 2026-12-01 --json
  mxgate quarantine list --rcpt alice@example.org --verdict virus`,
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
		if len(items) == 0 {
			_, err := fmt.Fprintln(out, "no quarantined messages match")
			return err
		}
		t := newTable(out, "TIME", "ID", "FROM", "TO", "VERDICT", "SCORE", "SIZE", "RELEASED", "SUBJECT")
		for _, it := range items {
			t.row(when(it.Time), clean(it.ID), sender(it.Sender), rcpts(it.Recipients), clean(it.Verdict), fmt.Sprintf("%.2f", it.Score),
				size(it.Size), released(it), clean(shorten(it.Subject, 50)))
		}
		return t.flush()
	})
	f := cmd.Flags()
	f.StringVar(&q.Rcpt, "rcpt", "", "only messages to A: user@example.org, @example.org or .example.org")
	f.StringVar(&q.Sender, "sender", "", "only messages from A: user@example.org, @example.org or .example.org")
	f.StringVar(&q.Verdict, "verdict", "", "only this verdict: spam, virus, banned, unscannable, engine_failed or policy")
	f.StringVar(&q.Subject, "subject", "", "only subjects containing this text (any case)")
	rangeFlags(cmd, &q.Since, &q.Until, &q.Day)
	f.IntVar(&q.Limit, "limit", 0, "at most N messages (default 1000, at most 10000)")
	return cmd
}

// released is the RELEASED cell: when, and to how many recipients if not
// to all.
func released(it quarantine.Item) string {
	if !it.WasReleased() {
		return "-"
	}
	if rest := len(it.Unreleased()); rest > 0 {
		return fmt.Sprintf("%s (%d of %d)", when(it.Released), len(it.Recipients)-rest, len(it.Recipients))
	}
	return when(it.Released)
}

// size is a byte count as ls -h shows it.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d", n)
	}
	f, suffix := float64(n)/unit, "KMGT"
	i := 0
	for f >= unit && i < len(suffix)-1 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f%c", f, suffix[i])
}

// shorten cuts s to at most n runes, marking the cut.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

func newQuarantineShowCmd() *cobra.Command {
	var raw bool
	cmd := &cobra.Command{
		Use:   "show ID [--raw]",
		Short: "Show a quarantined message: its metadata and headers",
		Long: `Show a quarantined message's metadata, then the header of the message.
--raw prints the whole message exactly as received instead (to save or
inspect it); --json prints the metadata as one JSON object.`,
		Example: `  mxgate quarantine show ` + exampleID + `
  mxgate quarantine show ` + strings.ToLower(exampleID) + ` --raw > message.eml`,
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
		to := ""
		if len(r.Rcpts) > 0 {
			to = " to " + cleanList(r.Rcpts)
		}
		row(what, when(r.Done)+to+" by "+clean(r.By))
	}
	if !it.Released.IsZero() && len(it.Releases) == 0 {
		row("Released", when(it.Released))
	}
	if rest := it.Unreleased(); it.WasReleased() && len(rest) > 0 {
		row("Not released to", cleanList(rest))
	}
	if c := it.Claim; c != nil {
		to := ""
		if len(c.Rcpts) > 0 {
			to = " to " + cleanList(c.Rcpts)
		}
		row("Release", "claimed "+when(c.At)+to+" by "+clean(c.By)+", not finished")
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
		Use:   "release ID... [--rcpt ADDR]... [--force] [--learn-ham]",
		Short: "Deliver quarantined messages to their recipients",
		Long: `Deliver quarantined messages to their recipients through the downstream
server, and mark them released. - reads the ids from standard input, one
per line. Each message is released in turn, one line each; when some
fail, the others are still released and the command exits non-zero.

--rcpt ADDR (repeatable) releases to those recipients only: the others
can be released later. Each recipient is released once: a release that
was done already, or that is under way (or was interrupted, when the node
doing it stopped or the downstream's answer was lost), is refused with a
message naming who released it and when. --force delivers again all the
same; the release is then recorded and logged as forced.

--learn-ham then teaches Rspamd (scanner.rspamd_controller) the message as
ham; a lesson that fails is a warning: the message is delivered.`,
		Example: `  mxgate quarantine release ` + exampleID + `
  mxgate quarantine release ` + exampleID + ` ` + exampleID2 + ` --learn-ham  # false positives: tell Rspamd
  mxgate quarantine release ` + exampleID + ` --rcpt alice@example.org  # to her only
  mxgate quarantine release ` + exampleID + ` --force   # a second copy, on purpose
  mxgate quarantine list --rcpt alice@example.org --json | jq -r '.[].id' | mxgate quarantine release -`,
		Args: minIDs,
		RunE: withAdmin(func(cmd *cobra.Command, args []string, c *admin.Client) error {
			out := cmd.OutOrStdout()
			return eachID(cmd, args, func(id string) error {
				res, err := c.QuarantineRelease(cmd.Context(), id, o)
				if err != nil {
					return err
				}
				to := ""
				if len(res.Rcpts) > 0 {
					to = " to " + cleanList(res.Rcpts)
				}
				fmt.Fprintf(out, "released %s%s: %s\n", clean(res.ID), to, clean(res.Reply))
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
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s: %s\n", clean(res.ID), clean(res.Warning))
				}
				return nil
			})
		}),
	}
	cmd.Flags().StringArrayVar(&o.Rcpts, "rcpt", nil, "release to this recipient only (repeatable); the others stay held")
	cmd.Flags().BoolVar(&o.Force, "force", false, "release again a message released (or being released) before: a second copy")
	cmd.Flags().BoolVar(&o.LearnHam, "learn-ham", false, "after delivering it, teach Rspamd the message as ham")
	return cmd
}

func newQuarantineLearnSpamCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "learn-spam ID...",
		Short: "Teach Rspamd quarantined messages as spam",
		Long: `Teach Rspamd (through scanner.rspamd_controller) quarantined messages as
spam, without releasing or deleting them. A message Rspamd has learned
already is reported as learned. - reads the ids from standard input.`,
		Example: `  mxgate quarantine learn-spam ` + exampleID + `
  mxgate quarantine list --verdict spam --day today --json | jq -r '.[].id' | mxgate quarantine learn-spam -`,
		Args: minIDs,
		RunE: withAdmin(func(cmd *cobra.Command, args []string, c *admin.Client) error {
			return eachID(cmd, args, func(id string) error {
				res, err := c.QuarantineLearn(cmd.Context(), id, true)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "learned %s as %s\n", clean(res.ID), clean(res.Learned))
				return nil
			})
		}),
	}
}

func newQuarantineDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID...",
		Short: "Delete quarantined messages",
		Long: `Delete quarantined messages; - reads the ids from standard input, one per
line (as postsuper -d - does). Each deletion is written to the message log
(mxgate log --action delete) with who did it.`,
		Example: `  mxgate quarantine delete ` + exampleID + ` ` + exampleID2 + `
  mxgate quarantine list --sender @spam.example --json | jq -r '.[].id' | mxgate quarantine delete -`,
		Args: minIDs,
		RunE: withAdmin(func(cmd *cobra.Command, args []string, c *admin.Client) error {
			return eachID(cmd, args, func(id string) error {
				if err := c.QuarantineDelete(cmd.Context(), id); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", clean(id))
				return nil
			})
		}),
	}
}
