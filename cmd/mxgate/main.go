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
// stderr and status 1.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "mxgate:", errorLine(err))
		return 1
	}
	return 0
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
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(newServeCmd(), newQuarantineCmd(), newListsCmd(), newLogCmd(), newClusterCmd(), newConfigCmd(), newReportCmd(), newScanCmd(), newBackupCmd())
	root.AddCommand(newVersionCmd())
	return root
}
