package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/lists"
)

const valueHelp = `VALUE is an address (user@example.org), @domain (that domain), .domain (the
domain and all its subdomains), an IP address or a CIDR (192.0.2.0/24).
There are no wildcards: *@example.org is refused (use @example.org).
--rcpt makes the entry apply to one recipient (user@example.org) or one
recipient domain (@example.org) only; without it the entry is global.`

const allowHelp = `An allow entry wins over the spam score only: viruses, content that could
not be scanned and, unless the entry has --skip-attachments, blocked
attachments still go to quarantine (a sender address is easily forged).`

func newListsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lists",
		Short: "Show, add and remove block/allow list entries",
		Long: `Show and edit the cluster-wide block and allow lists through the master's
admin API. Entries match the sender address or domain, or the client IP
address or network, globally or for one recipient.

` + valueHelp + "\n\n" + allowHelp,
		Example: `  mxgate lists show
  mxgate lists add block @spam.example --comment "ticket 42"
  mxgate lists add allow 192.0.2.0/24 --rcpt alice@example.org
  mxgate lists remove block @spam.example`,
		RunE: groupRun,
	}
	adminFlags(cmd)
	cmd.AddCommand(newListsShowCmd(), newListsAddCmd(), newListsRemoveCmd())
	return cmd
}

func newListsShowCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show [--json]",
		Short: "Show every list entry",
		Long: `Show every list entry as a table (KIND VALUE RCPT ADDED ATTACHMENTS COMMENT;
RCPT "*" is a global entry; ATTACHMENTS "waived" is an allow entry with
--skip-attachments) or with --json as one JSON array.`,
		Example: `  mxgate lists show
  mxgate lists show --json`,
		Args: noArgs,
	}
	asJSON := jsonFlag(cmd, "one JSON array")
	cmd.RunE = withAdmin(func(cmd *cobra.Command, _ []string, c *admin.Client) error {
		all, err := c.Lists(cmd.Context())
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if *asJSON {
			return writeJSON(out, all)
		}
		t := newTable(out, "KIND", "VALUE", "RCPT", "ADDED", "ATTACHMENTS", "COMMENT")
		for _, e := range all {
			t.row(clean(string(e.Kind)), clean(e.Value), scope(e.Rcpt), when(e.Added), attachments(e), clean(e.Comment))
		}
		return t.flush()
	})
	return cmd
}

func scope(rcpt string) string {
	if rcpt == "" {
		return "*"
	}
	return clean(rcpt)
}

// attachments says whether an entry leaves the attachment policy on.
func attachments(e lists.Entry) string {
	switch {
	case e.Kind != lists.Allow:
		return "-"
	case e.SkipAttachments:
		return "waived"
	}
	return "policy"
}

// addedNote says when and why an existing entry was added.
func addedNote(e lists.Entry) string {
	var s string
	if !e.Added.IsZero() {
		s = ", added " + when(e.Added)
	}
	if e.Comment != "" {
		s += fmt.Sprintf(", comment %q", clean(e.Comment))
	}
	return s
}

func describe(e lists.Entry) string {
	where := "global"
	if e.Rcpt != "" {
		where = "for " + clean(e.Rcpt)
	}
	if e.SkipAttachments {
		where += ", attachment policy waived"
	}
	return fmt.Sprintf("%s %s (%s)", e.Kind, clean(e.Value), where)
}

// listArgs checks KIND VALUE before the client is made, so that a typo is
// reported the same way whether the server is up (or its address right)
// or not.
func listArgs(cmd *cobra.Command, args []string) error {
	if err := exactArgs(2)(cmd, args); err != nil {
		return err
	}
	_, err := listKind(args[0])
	return err
}

func listKind(s string) (lists.Kind, error) {
	switch k := lists.Kind(s); k {
	case lists.Block, lists.Allow:
		return k, nil
	}
	return "", fmt.Errorf("invalid list kind %q: want block or allow", s)
}

func newListsAddCmd() *cobra.Command {
	var rcpt, comment string
	var skipAttachments bool
	cmd := &cobra.Command{
		Use:   "add block|allow VALUE [--rcpt A] [--comment C] [--skip-attachments]",
		Short: "Add a block or allow entry",
		Long: "Add a block or allow entry. Adding an entry that exists already (same kind,\n" +
			"value and --rcpt) says \"already listed\", changes nothing and exits 0; remove\n" +
			"it first to change its comment or --skip-attachments.\n\n" + valueHelp + "\n\n" + allowHelp,
		Example: `  mxgate lists add block spammer@bad.example
  mxgate lists add block .bad.example --comment "whole domain tree"
  mxgate lists add allow 2001:db8::/32 --rcpt @example.org
  mxgate lists add allow 10.1.0.0/16 --skip-attachments --comment "internal relays"`,
		Args: listArgs,
		PreRunE: func(_ *cobra.Command, args []string) error {
			if skipAttachments && lists.Kind(args[0]) != lists.Allow {
				return fmt.Errorf("--skip-attachments is for allow entries only")
			}
			return nil
		},
		RunE: withAdmin(func(cmd *cobra.Command, args []string, c *admin.Client) error {
			res, err := c.ListAdd(cmd.Context(), admin.ListRequest{Kind: lists.Kind(args[0]), Value: args[1], Rcpt: rcpt, Comment: comment, SkipAttachments: skipAttachments})
			if err != nil {
				return err
			}
			if res.Existing {
				// Exit 0, like postconf -e with the value already set:
				// what was asked for holds.
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "already listed: %s%s; nothing changed\n", describe(res.Entry), addedNote(res.Entry))
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "added %s\n", describe(res.Entry))
			return err
		}),
	}
	cmd.Flags().StringVar(&rcpt, "rcpt", "", "only for this recipient (address or @domain)")
	cmd.Flags().StringVar(&comment, "comment", "", "why the entry is there")
	cmd.Flags().BoolVar(&skipAttachments, "skip-attachments", false, "allow entries: waive the attachment policy too (viruses and unscannable content are still held)")
	return cmd
}

func newListsRemoveCmd() *cobra.Command {
	var rcpt string
	cmd := &cobra.Command{
		Use:   "remove block|allow VALUE [--rcpt A]",
		Short: "Remove a block or allow entry",
		Long:  "Remove a block or allow entry; give --rcpt for a per-recipient entry.\n\n" + valueHelp,
		Example: `  mxgate lists remove block spammer@bad.example
  mxgate lists remove allow 2001:db8::/32 --rcpt @example.org`,
		Args: listArgs,
		RunE: withAdmin(func(cmd *cobra.Command, args []string, c *admin.Client) error {
			kind := lists.Kind(args[0])
			if err := c.ListRemove(cmd.Context(), kind, args[1], rcpt); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", describe(lists.Entry{Kind: kind, Value: args[1], Rcpt: rcpt}))
			return nil
		}),
	}
	cmd.Flags().StringVar(&rcpt, "rcpt", "", "the entry's recipient (address or @domain); empty = the global entry")
	return cmd
}
