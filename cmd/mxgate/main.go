// Command mxgate is the whole product: the gateway node (serve) and the
// management commands that talk to the master's admin API.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "mxgate:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "mxgate",
		Short:         "Clustered SMTP security gateway",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newQuarantineCmd(), newListsCmd(), newLogCmd(), newClusterCmd(), newConfigCmd(), newReportCmd())
	return root
}
