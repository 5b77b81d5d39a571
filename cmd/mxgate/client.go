package main

// The admin API connection every management command shares: the
// --admin and --token flags, their environment defaults, the client and
// what an API error tells the user.

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/user"
	"strings"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/mxgate/mxgate/admin"
)

const (
	defaultAdminURL = "http://127.0.0.1:8025"
	envAdmin        = "MXGATE_ADMIN"
	envToken        = "MXGATE_TOKEN"
)

// adminFlags registers --admin and --token on a management command, for
// it and all its subcommands. The environment is read when the command
// runs, not here, so that --help never prints a token.
func adminFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.String("admin", defaultAdminURL, "admin API URL of the master (env "+envAdmin+")")
	f.String("token", "", "admin API bearer token (env "+envToken+")")
}

// withAdmin makes the RunE of a management command: run gets the client
// built from the flags and the environment, and an API error it returns
// comes back with what to do about it.
func withAdmin(run func(cmd *cobra.Command, args []string, c *admin.Client) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := adminClient(cmd)
		if err != nil {
			return err
		}
		return apiError(run(cmd, args, c))
	}
}

// adminClient builds the client of a command that has adminFlags, sending
// the operator's name along for the audit trail. An error names where the
// bad value came from and never contains the token.
func adminClient(cmd *cobra.Command) (*admin.Client, error) {
	t := resolveAdmin(cmd)
	if i := strings.IndexFunc(t.token, unicode.IsControl); i >= 0 {
		// A newline would end the header: Go refuses to send it and says
		// only that a header is invalid, which reads like a network fault.
		return nil, fmt.Errorf("%s holds a control character at byte %d (the newline of a token file?)", t.tokenFrom, i)
	}
	c, err := admin.NewClient(t.base, t.token)
	if err != nil {
		if t.baseFrom == envAdmin {
			return nil, fmt.Errorf("%s: %w", envAdmin, err)
		}
		return nil, err
	}
	c.Operator = operator()
	return c, nil
}

// adminTarget is where a management command sends its requests and with
// which token, and where each came from (the flag or the environment).
type adminTarget struct {
	base, token         string
	baseFrom, tokenFrom string
}

// resolveAdmin takes a flag given on the command line, else its
// environment variable when set and not empty, else the flag's default.
func resolveAdmin(cmd *cobra.Command) adminTarget {
	var t adminTarget
	t.base, t.baseFrom = flagOrEnv(cmd, "admin", envAdmin)
	t.token, t.tokenFrom = flagOrEnv(cmd, "token", envToken)
	return t
}

func flagOrEnv(cmd *cobra.Command, name, env string) (value, from string) {
	f := cmd.Flag(name)
	if f == nil {
		// A command without adminFlags: NewClient refuses the empty URL.
		return "", "--" + name
	}
	if !f.Changed {
		if v := os.Getenv(env); v != "" {
			return v, env
		}
	}
	return f.Value.String(), "--" + name
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
	if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
		return fmt.Errorf("%w; pass --token or set %s", err, envToken)
	}
	return err
}
