package main

import (
	"fmt"
	"io"
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
	var history bool
	var limit int
	cmd := &cobra.Command{
		Use:   "show [--json] [--history [--limit N]]",
		Short: "Print the current cluster configuration (YAML), or its history",
		Long: `Print the current revision as YAML that ` + "`mxgate config set -f`" + ` takes back,
headed by a comment naming the revision, when and by whom it was made. With
--history: one line per revision, newest first. --json prints the revision
(or the list of revisions) as JSON.`,
		Example: `  mxgate config show > cluster.yaml
  mxgate config show --history --limit 5`,
		Args: noArgs,
	}
	asJSON := jsonFlag(cmd, "the revision as one JSON object (with --history: one JSON array)")
	cmd.RunE = withAdmin(func(cmd *cobra.Command, _ []string, c *admin.Client) error {
		out := cmd.OutOrStdout()
		if history {
			revs, err := c.ConfigHistory(cmd.Context(), limit)
			if err != nil {
				return err
			}
			if *asJSON {
				return writeJSON(out, revs)
			}
			t := newTable(out, "REVISION", "TIME", "BY", "COMMENT")
			for _, r := range revs {
				t.row(fmt.Sprint(r.Number), when(r.Time), clean(r.By), clean(r.Comment))
			}
			return t.flush()
		}
		rev, err := c.Config(cmd.Context())
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(out, rev)
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
	})
	f := cmd.Flags()
	f.BoolVar(&history, "history", false, "list the revisions, newest first")
	f.IntVar(&limit, "limit", 0, "with --history: at most N revisions (default 20)")
	return cmd
}

func newConfigSetCmd() *cobra.Command {
	var file, comment string
	var expect int64
	var settings clusterconf.Settings
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
		// The file is checked before the client is made: its mistakes are
		// reported the same way whether the master answers or not.
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			s, err := readSettings(cmd.InOrStdin(), file)
			settings = s
			return err
		},
		RunE: withAdmin(func(cmd *cobra.Command, _ []string, c *admin.Client) error {
			rev, err := c.SetConfig(cmd.Context(), admin.ConfigRequest{Settings: settings, Comment: comment, Expect: expect})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stored revision %d\n", rev.Number)
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "settings file (YAML or JSON; - = standard input)")
	f.StringVar(&comment, "comment", "", "why, for the audit trail")
	f.Int64Var(&expect, "expect", 0, "refuse unless the current revision is REV")
	return cmd
}

// readSettings reads and checks the settings of config set from file, or
// from stdin when file is "-".
func readSettings(stdin io.Reader, file string) (clusterconf.Settings, error) {
	if file == "" {
		return clusterconf.Settings{}, fmt.Errorf("mxgate config set needs -f FILE (or -f - for standard input)")
	}
	var data []byte
	var err error
	if file == "-" {
		data, err = readAllLimited(stdin)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return clusterconf.Settings{}, fmt.Errorf("read settings: %w", err)
	}
	s, err := clusterconf.Parse(data)
	if err != nil {
		return clusterconf.Settings{}, fmt.Errorf("%s: %w", file, err)
	}
	if err := s.Validate(); err != nil {
		return clusterconf.Settings{}, fmt.Errorf("%s: %w", file, err)
	}
	return s, nil
}

// maxInput bounds what a command reads from standard input.
const maxInput = 1 << 20

func readAllLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxInput {
		return nil, fmt.Errorf("more than %d bytes", maxInput)
	}
	return b, nil
}

func newConfigPushCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "push",
		Short: "Announce the current revision to every node again",
		Long: `Nodes apply a new revision by themselves within a second; push re-announces
the current one by hand, e.g. after a node's clock or network hiccup.`,
		Example: "  mxgate config push",
		Args:    noArgs,
		RunE: withAdmin(func(cmd *cobra.Command, _ []string, c *admin.Client) error {
			res, err := c.PushConfig(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "announced revision %d\n", res.Revision)
			return nil
		}),
	}
}
