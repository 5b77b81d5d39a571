package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/mxgate/mxgate/node"
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
	v, modified := buildVersion()
	mod := ""
	if modified {
		mod = " (modified)"
	}
	return fmt.Sprintf("mxgate %s, commit %s%s, %s", v.Version, v.Commit, mod, v.GoVersion)
}

// buildVersion is this binary's version, commit and Go version (what
// versionLine prints and mxgate_build_info labels), and whether the tree
// it was built from had changes.
func buildVersion() (v node.Version, modified bool) {
	v = node.Version{Version: version, Commit: commit, GoVersion: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		v.GoVersion = info.GoVersion
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if v.Commit == "" {
					v.Commit = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	return v, modified
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version, the commit and the Go version of this binary",
		Example: "  mxgate version\n  mxgate --version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), versionLine())
			return err
		},
	}
}
