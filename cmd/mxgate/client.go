package main

// Shared plumbing of the management commands (quarantine, lists, log):
// admin API flags, the client, argument checks and output helpers.

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/mxgate/mxgate/admin"
)

const defaultAdminURL = "http://127.0.0.1:8025"

// adminFlags registers --admin and --token on a top-level management
// command, for it and all its subcommands. The environment is read when the
// command runs, not here, so that --help never prints a token.
func adminFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.String("admin", defaultAdminURL, "admin API URL of the master (env MXGATE_ADMIN)")
	f.String("token", "", "admin API bearer token (env MXGATE_TOKEN)")
}

// adminClient builds the client from the flags, then the environment,
// then the default.
func adminClient(cmd *cobra.Command) (*admin.Client, error) {
	fl := cmd.Flags()
	base, _ := fl.GetString("admin")
	if env := os.Getenv("MXGATE_ADMIN"); env != "" && !fl.Changed("admin") {
		base = env
	}
	token, _ := fl.GetString("token")
	if env := os.Getenv("MXGATE_TOKEN"); env != "" && !fl.Changed("token") {
		token = env
	}
	c, err := admin.NewClient(base, token)
	if err != nil {
		return nil, err
	}
	c.Operator = operator()
	return c, nil
}

// operator names the person running the command for the audit trail of
// changes and releases: the login name and this host.
func operator() string {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = cmp.Or(os.Getenv("USER"), os.Getenv("LOGNAME"))
	}
	host, _ := os.Hostname()
	return admin.OperatorName(name, host)
}

// apiError adds what to do about an authentication failure.
func apiError(err error) error {
	var ae *admin.Error
	if errors.As(err, &ae) && ae.Status == 401 {
		return fmt.Errorf("%w; pass --token or set MXGATE_TOKEN", err)
	}
	return err
}

// exactArgs is cobra.ExactArgs with the usage line in the error, since
// main prints only the error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %d argument(s), got %d; usage: %s", cmd.CommandPath(), n, len(args), cmd.UseLine())
		}
		return nil
	}
}

// noArgs refuses stray arguments (a forgotten flag name, usually).
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%s takes no arguments, got %q; usage: %s", cmd.CommandPath(), args, cmd.UseLine())
	}
	return nil
}

// groupRun makes a command that only groups subcommands refuse an unknown
// one instead of printing help and exiting 0.
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	return fmt.Errorf("unknown command %q for %s; see %s --help", args[0], cmd.CommandPath(), cmd.CommandPath())
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// clean makes a value safe for a terminal and for a table cell: addresses
// and subjects come from strangers, and an escape sequence in them must not
// reach the operator's terminal.
func clean(s string) string {
	if s == "" {
		return "-"
	}
	return safe(s, false)
}

// safe replaces control and format characters (bidi overrides too) and
// invalid UTF-8 with '?'; keepTab keeps tabs (folded header lines).
func safe(s string, keepTab bool) string {
	return strings.Map(func(r rune) rune {
		if keepTab && r == '\t' {
			return r
		}
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return '?'
		}
		return r
	}, s)
}

func sender(s string) string {
	if s == "" {
		return "<>"
	}
	return clean(s)
}

// rcpts shows the first recipient and how many more there are.
func rcpts(r []string) string {
	switch len(r) {
	case 0:
		return "-"
	case 1:
		return clean(r[0])
	}
	return fmt.Sprintf("%s +%d", clean(r[0]), len(r)-1)
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
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
