// Command mxgate is the whole product: the gateway node (serve) and the
// management commands that talk to the master's admin API.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(execute(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// execute runs the command tree with args and returns the exit status. A
// failure of any command ends the same way: one line "mxgate: …" on
// stderr and a status as sysexits.h names them (see exitStatus).
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	ran := markRuns(root)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "mxgate:", errorLine(err))
		return exitStatus(err, *ran)
	}
	return exitOK
}

// markRuns makes every command of the tree under c record that its own
// work (RunE) began: what fails before is a usage error.
func markRuns(c *cobra.Command) *bool {
	ran := new(bool)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if run := c.RunE; run != nil {
			c.RunE = func(cmd *cobra.Command, args []string) error {
				*ran = true
				return run(cmd, args)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(c)
	return ran
}

// errorLine makes err one line a terminal shows as it is: the problems of
// a joined error (every problem of a settings file, say) are separated by
// "; ", and control characters (from a server's message or a file's
// content) become '?'.
func errorLine(err error) string {
	var parts []string
	for l := range strings.Lines(err.Error()) {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return safe(strings.Join(parts, "; "), false)
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "mxgate",
		Short:         "Clustered SMTP security gateway",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionLine(),
		// groupRun refuses an unknown command as a usage error; cobra's
		// own refusal is an untyped error.
		Args: cobra.ArbitraryArgs,
		RunE: groupRun,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	configFlag(root)
	root.AddCommand(newServeCmd(), newQuarantineCmd(), newListsCmd(), newLogCmd(), newClusterCmd(), newConfigCmd(), newReportCmd(), newDigestCmd(), newScanCmd(), newBackupCmd(), newStatusCmd())
	root.AddCommand(newVersionCmd())
	return root
}
