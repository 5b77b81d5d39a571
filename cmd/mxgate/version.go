package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set by `make build` (-ldflags "-X main.version=…", from git
// describe); a plain go build says dev.
var version = "dev"

// commit is set by `make build` too, and wins: the build's own VCS stamp
// is missing where GOFLAGS holds -buildvcs=false, or the source is not a
// git tree.
var commit = ""

// versionLine says which mxgate this is, as `postconf mail_version` or
// `keepalived --version` do: version, the commit it was built from (and
// whether the tree had changes) and the Go that built it.
func versionLine() string {
	rev := commit
	modified := ""
	goVersion := runtime.Version()
	if info, ok := debug.ReadBuildInfo(); ok {
		goVersion = info.GoVersion
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.modified":
				if s.Value == "true" {
					modified = " (modified)"
				}
			}
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	return fmt.Sprintf("mxgate %s, commit %s%s, %s", version, rev, modified, goVersion)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version, the commit and the Go version of this binary",
		Example: "  mxgate version\n  mxgate --version",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), versionLine())
			return err
		},
	}
}
