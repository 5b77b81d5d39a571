package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"

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

` + adminHelp,
		Example: `  mxgate config show > cluster.yaml
  $EDITOR cluster.yaml
  mxgate config diff cluster.yaml
  mxgate config set -f cluster.yaml --comment "raise the spam threshold"
  mxgate config set scanner.thresholds.quarantine=7
  mxgate config show --history`,
		RunE: groupRun,
	}
	adminFlags(cmd)
	cmd.AddCommand(newConfigShowCmd(), newConfigSetCmd(), newConfigDiffCmd(), newConfigPushCmd())
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
--history: one line per revision, newest first: when, by whom, the keys it
changed against the revision before, and the comment. --json prints the revision
(or the list of revisions) as JSON.`,
		Example: `  mxgate config show > cluster.yaml
  mxgate config show --history --limit 5`,
		Args: noArgs,
	}
	asJSON := jsonFlag(cmd, "the revision as one JSON object (with --history: one JSON array)")
	cmd.RunE = withAdmin(func(cmd *cobra.Command, _ []string, c *admin.Client) error {
		out := cmd.OutOrStdout()
		if history {
			return configHistory(cmd, c, limit, *asJSON)
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

// configHistory prints the audit trail: each revision with the keys it
// changed, found by comparing it with the one before (one more is fetched
// for the oldest shown).
func configHistory(cmd *cobra.Command, c *admin.Client, limit int, asJSON bool) error {
	if limit < 0 || limit > maxHistory {
		return fmt.Errorf("--limit: want 1 to %d, got %d", maxHistory, limit)
	}
	out := cmd.OutOrStdout()
	n := cmp.Or(limit, 20)
	revs, err := c.ConfigHistory(cmd.Context(), min(n+1, maxHistory))
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(out, revs[:min(n, len(revs))])
	}
	steps, err := clusterconf.HistoryChanges(revs)
	if err != nil {
		return err
	}
	t := newTable(out, "REVISION", "TIME", "BY", "CHANGED", "COMMENT")
	for i, r := range revs[:min(n, len(revs))] {
		changed := "(first revision)"
		if i+1 < len(revs) {
			keys := make([]string, 0, len(steps[i]))
			for _, ch := range steps[i] {
				keys = append(keys, ch.Key)
			}
			changed = cmp.Or(strings.Join(keys, ","), "(nothing)")
		} else if r.Number > 1 {
			changed = "?"
		}
		t.row(fmt.Sprint(r.Number), when(r.Time), clean(r.By), clean(changed), clean(r.Comment))
	}
	return t.flush()
}

// maxHistory is the most revisions the admin API gives at once.
const maxHistory = 1000

func newConfigSetCmd() *cobra.Command {
	var file, comment string
	var expect int64
	var replace bool
	var settings clusterconf.Settings
	var document []byte
	var patches []clusterconf.Patch
	cmd := &cobra.Command{
		Use:   "set KEY=VALUE... | set -f FILE [--replace]",
		Short: "Change cluster-wide settings: single keys, or the whole document",
		Long: `With KEY=VALUE arguments (as ` + "`postconf -e`" + `), change those keys of the current
revision and keep every other: keys are dotted as in the YAML that
` + "`mxgate config show`" + ` prints, values are YAML (a number, a word, 'quoted text', a
list [a, b]). An unknown key is refused with the keys closest to it, a bad
value with its key.

With -f FILE (the YAML that ` + "`mxgate config show`" + ` prints; "-" reads standard
input), FILE is the whole configuration: a key it leaves out takes its
default. When that would drop or change a key FILE does not mention, the
change is refused with the difference; --replace stores it all the same.
` + "`mxgate config diff FILE`" + ` previews it.

Either way the difference is printed, and the change is stored against the
revision it was made from: when someone else changed the settings meanwhile
it is refused (HTTP 409), not lost. --expect REV demands that revision.
Nothing is stored when nothing changes.`,
		Example: `  mxgate config set scanner.thresholds.quarantine=7 --comment "more in quarantine"
  mxgate config set mode=active-passive
  mxgate config set scanner.engines.clamd.on_error=accept
  mxgate config set "scanner.rules=['LOTTERY header Subject =~ /lottery/i 4']"
  mxgate config set -f cluster.yaml --comment "block .iso attachments"
  mxgate config set -f defaults-only.yaml --replace`,
		// The keys or the file are checked before the client is made:
		// their mistakes are reported the same way whether the master
		// answers or not.
		PreRunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case file != "" && len(args) > 0:
				return usageError(fmt.Errorf("mxgate config set takes KEY=VALUE arguments or -f FILE, not both"))
			case file == "" && len(args) == 0:
				return usageError(fmt.Errorf("mxgate config set needs KEY=VALUE arguments, or -f FILE (-f - for standard input)"))
			case replace && file == "":
				return usageError(fmt.Errorf("--replace is for -f FILE: KEY=VALUE changes only the keys given"))
			}
			if file != "" {
				var err error
				settings, document, err = readDocument(cmd.InOrStdin(), file)
				return err
			}
			for _, a := range args {
				p, err := clusterconf.ParsePatch(a)
				if err != nil {
					return usageError(err)
				}
				patches = append(patches, p)
			}
			return nil
		},
		RunE: withAdmin(func(cmd *cobra.Command, _ []string, c *admin.Client) error {
			cur, err := currentConfig(cmd, c)
			if err != nil {
				return err
			}
			next := settings
			if file == "" {
				if next, err = cur.Settings.With(patches...); err != nil {
					return err
				}
			}
			changes, err := clusterconf.Diff(cur.Settings, next)
			if err != nil {
				return err
			}
			if file != "" && !replace && cur.Number > 0 {
				mentioned, err := clusterconf.Mentioned(document)
				if err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
				if un := clusterconf.Unmentioned(changes, mentioned); len(un) > 0 {
					return fmt.Errorf("%s would drop or change %d key(s) it does not mention (against revision %d):\n%s"+
						"refused: add --replace to store %s as the whole configuration, or change single keys with `mxgate config set KEY=VALUE`",
						file, len(un), cur.Number, changeLines(un), file)
				}
			}
			out := cmd.OutOrStdout()
			if len(changes) == 0 {
				fmt.Fprintf(out, "no change; revision %d stays\n", cur.Number)
				return nil
			}
			fmt.Fprint(out, changeLines(changes))
			if expect == 0 {
				expect = cur.Number
			}
			rev, err := c.SetConfig(cmd.Context(), admin.ConfigRequest{Settings: next, Comment: comment, Expect: expect})
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "stored revision %d\n", rev.Number)
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "the whole configuration from a file (YAML or JSON; - = standard input)")
	f.BoolVar(&replace, "replace", false, "with -f: store FILE even where it drops or changes keys it does not mention")
	f.StringVar(&comment, "comment", "", "why, for the audit trail")
	f.Int64Var(&expect, "expect", 0, "refuse unless the current revision is REV")
	return cmd
}

func newConfigDiffCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "diff FILE",
		Short: "Show what `config set -f FILE` would change",
		Long: `Compare the settings of FILE ("-" = standard input) with the current revision
and print, key by key, what storing FILE would change (old -> new), marking
the keys FILE does not mention: those ` + "`config set -f`" + ` refuses to change
without --replace. Nothing is stored.`,
		Example: `  mxgate config show > cluster.yaml
  $EDITOR cluster.yaml
  mxgate config diff cluster.yaml`,
		Args: exactArgs(1),
		RunE: withAdmin(func(cmd *cobra.Command, args []string, c *admin.Client) error {
			next, document, err := readDocument(cmd.InOrStdin(), args[0])
			if err != nil {
				return err
			}
			cur, err := currentConfig(cmd, c)
			if err != nil {
				return err
			}
			changes, err := clusterconf.Diff(cur.Settings, next)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(changes) == 0 {
				fmt.Fprintf(out, "no change against revision %d\n", cur.Number)
				return nil
			}
			mentioned, err := clusterconf.Mentioned(document)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			un := clusterconf.Unmentioned(changes, mentioned)
			for _, ch := range changes {
				mark := " "
				if cur.Number > 0 && slices.Contains(un, ch) {
					mark = "!"
				}
				fmt.Fprintf(out, "%s %s\n", mark, clean(ch.String()))
			}
			if cur.Number > 0 && len(un) > 0 {
				fmt.Fprintf(out, "! = not in %s: `mxgate config set -f` needs --replace to change it\n", args[0])
			}
			return nil
		}),
	}
}

// currentConfig is the revision a change is made against; before the
// first one, the defaults as revision 0.
func currentConfig(cmd *cobra.Command, c *admin.Client) (clusterconf.Revision, error) {
	cur, err := c.Config(cmd.Context())
	var ae *admin.Error
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound && strings.Contains(ae.Message, "stored yet") {
		return clusterconf.Revision{Settings: clusterconf.Defaults()}, nil
	}
	return cur, err
}

// changeLines writes one change a line, indented.
func changeLines(changes []clusterconf.Change) string {
	var b strings.Builder
	for _, ch := range changes {
		fmt.Fprintf(&b, "  %s\n", clean(ch.String()))
	}
	return b.String()
}

// readSettings reads and checks the settings of config set from file, or
// from stdin when file is "-".
func readSettings(stdin io.Reader, file string) (clusterconf.Settings, error) {
	s, _, err := readDocument(stdin, file)
	return s, err
}

// readDocument is readSettings that also returns the document read.
func readDocument(stdin io.Reader, file string) (clusterconf.Settings, []byte, error) {
	var data []byte
	var err error
	if file == "-" {
		data, err = readAllLimited(stdin)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return clusterconf.Settings{}, nil, withCode(exitNoInput, fmt.Errorf("read settings: %w", err))
	}
	s, err := clusterconf.Parse(data)
	if err != nil {
		return clusterconf.Settings{}, nil, withCode(exitDataErr, fmt.Errorf("%s: %w", file, err))
	}
	if err := s.Validate(); err != nil {
		return clusterconf.Settings{}, nil, withCode(exitDataErr, fmt.Errorf("%s: %w", file, err))
	}
	return s, data, nil
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
