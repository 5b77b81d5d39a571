package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/clusterconf"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show, change and push the cluster-wide configuration",
		Long: `The cluster-wide settings (scanner thresholds, rules, attachment policy, mode,
weight overrides) live in the shared store with a revision number and an
audit trail. Every node applies a new revision within a second, without a
restart; ` + "`mxgate cluster status`" + ` shows the revision each node applied.
Node-local settings (listen addresses, interface, priority, weight) stay in
each node's file.

Commands reach the master's admin API given by --admin (env MXGATE_ADMIN,
default ` + defaultAdminURL + `) with --token (env MXGATE_TOKEN).`,
		Example: `  mxgate config show > cluster.yaml
  $EDITOR cluster.yaml
  mxgate config set -f cluster.yaml --comment "raise the spam threshold"
  mxgate config show --history`,
		RunE: groupRun,
	}
	adminFlags(cmd)
	cmd.AddCommand(newConfigShowCmd(), newConfigSetCmd(), newConfigPushCmd())
	return cmd
}

func newConfigShowCmd() *cobra.Command {
	var asJSON, history bool
	var limit int
	cmd := &cobra.Command{
		Use:   "show [--json] [--history [--limit N]]",
		Short: "Print the current cluster configuration (YAML), or its history",
		Long: `Print the current revision as YAML that ` + "`mxgate config set -f`" + ` takes back,
headed by a comment naming the revision, when and by whom it was made. With
--history: one line per revision, newest first. --json prints the revision
(or the list of revisions) as JSON.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := adminClient(cmd)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if history {
				revs, err := c.ConfigHistory(cmd.Context(), limit)
				if err != nil {
					return apiError(err)
				}
				if asJSON {
					return printJSON(out, revs)
				}
				tw := newTable(out)
				fmt.Fprintln(tw, "REVISION\tTIME\tBY\tCOMMENT")
				for _, r := range revs {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.Number, when(r.Time), clean(r.By), clean(r.Comment))
				}
				return tw.Flush()
			}
			rev, err := c.Config(cmd.Context())
			if err != nil {
				return apiError(err)
			}
			if asJSON {
				return printJSON(out, rev)
			}
			b, err := yaml.Marshal(rev.Settings)
			if err != nil {
				return fmt.Errorf("encode settings: %w", err)
			}
			fmt.Fprintf(out, "# revision %d, %s, by %s", rev.Number, when(rev.Time), clean(rev.By))
			if rev.Comment != "" {
				fmt.Fprintf(out, ": %s", clean(rev.Comment))
			}
			fmt.Fprintf(out, "\n%s", b)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.BoolVar(&history, "history", false, "list the revisions, newest first")
	f.IntVar(&limit, "limit", 0, "with --history: at most N revisions (default 20)")
	return cmd
}

func newConfigSetCmd() *cobra.Command {
	var file, comment string
	var expect int64
	cmd := &cobra.Command{
		Use:   "set -f FILE [--comment C] [--expect REV]",
		Short: "Store new cluster-wide settings as the next revision",
		Long: `Read the settings from FILE (the YAML that ` + "`mxgate config show`" + ` prints; "-" reads
standard input), check them here and on the master, and store them as the
next revision. An unknown key or a bad value is refused with the key and its
line. --expect REV refuses the change when the current revision is no
longer REV (someone else changed it since you looked).`,
		Example: `  mxgate config set -f cluster.yaml --comment "block .iso attachments"`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("mxgate config set needs -f FILE (or -f - for standard input)")
			}
			var data []byte
			var err error
			if file == "-" {
				data, err = readAllLimited(cmd.InOrStdin())
			} else {
				data, err = os.ReadFile(file)
			}
			if err != nil {
				return fmt.Errorf("read settings: %w", err)
			}
			s, err := clusterconf.Parse(data)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			if err := s.Validate(); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			c, err := adminClient(cmd)
			if err != nil {
				return err
			}
			rev, err := c.SetConfig(cmd.Context(), admin.ConfigRequest{Settings: s, Comment: comment, Expect: expect})
			if err != nil {
				return apiError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stored revision %d\n", rev.Number)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "settings file (YAML or JSON; - = standard input)")
	f.StringVar(&comment, "comment", "", "why, for the audit trail")
	f.Int64Var(&expect, "expect", 0, "refuse unless the current revision is REV")
	return cmd
}

func newConfigPushCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "push",
		Short: "Announce the current revision to every node again",
		Long: `Nodes apply a new revision by themselves within a second; push re-announces
the current one by hand, e.g. after a node's clock or network hiccup.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := adminClient(cmd)
			if err != nil {
				return err
			}
			res, err := c.PushConfig(cmd.Context())
			if err != nil {
				return apiError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "announced revision %d\n", res.Revision)
			return nil
		},
	}
}
