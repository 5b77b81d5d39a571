package main

// The admin API connection every management command shares: where it is
// (--admin), the token (--token) and the certificate to trust (--cacert),
// from the command line, the environment or the node file, the client and
// what an API error tells the user.

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/user"
	"strconv"
	"strings"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/config"
)

const (
	defaultAdminURL = "http://127.0.0.1:8025"
	// defaultNodeFile is read, like Postfix's main.cf, when it exists and
	// neither -c nor MXGATE_CONFIG names another.
	defaultNodeFile = "/etc/mxgate/mxgate.yaml"
	envAdmin        = "MXGATE_ADMIN"
	envToken        = "MXGATE_TOKEN"
	envCACert       = "MXGATE_CACERT"
	envConfig       = "MXGATE_CONFIG"
)

// adminHelp ends the help of a management command group: where its
// commands find the admin API.
const adminHelp = `Commands reach the admin API at --admin (host:port or URL; env ` + envAdmin + `)
with --token (env ` + envToken + `), or take both from the node file: -c FILE, else
` + envConfig + `, else ` + defaultNodeFile + ` when it exists. Default: ` + defaultAdminURL + `.`

// configFlag registers the root's -c FILE, the node file a management
// command takes its admin address, token and certificate from. serve has
// its own -c (the file it runs), which shadows this one, so that
// `mxgate -c FILE serve` and `mxgate serve -c FILE` are the same.
func configFlag(root *cobra.Command) {
	root.PersistentFlags().StringP("config", "c", "", "node file to take the admin API's address, token and certificate from (env "+envConfig+"; default "+defaultNodeFile+" when it exists)")
}

// adminFlags registers --admin, --token and --cacert on a management
// command, for it and all its subcommands. The environment is read when
// the command runs, not here, so that --help never prints a token.
func adminFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.String("admin", "", "admin API of the node: host:port or URL (env "+envAdmin+"; else the node file's admin.listen; default "+defaultAdminURL+")")
	f.String("token", "", "admin API bearer token (env "+envToken+"; else the node file's admin.token)")
	f.String("cacert", "", "PEM certificate to trust for https: a CA's or the node's own (env "+envCACert+"); makes host:port https")
}

// withAdmin makes the RunE of a management command: run gets the client
// built from the settings, and the error it returns comes back with what
// to do about it and its exit status (see classify).
func withAdmin(run func(cmd *cobra.Command, args []string, c *admin.Client) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		t, err := resolveAdmin(cmd)
		if err != nil {
			return err
		}
		c, err := adminClient(t)
		if err != nil {
			return err
		}
		return classify(t.explain(run(cmd, args, c)))
	}
}

// adminClient builds the client for t, sending the operator's name along
// for the audit trail. An error names where the bad value came from and
// never contains the token.
func adminClient(t adminTarget) (*admin.Client, error) {
	if i := strings.IndexFunc(t.token.value, unicode.IsControl); i >= 0 {
		// A newline would end the header: Go refuses to send it and says
		// only that a header is invalid, which reads like a network fault.
		return nil, t.token.fail(fmt.Errorf("holds a control character at byte %d (the newline of a token file?)", i))
	}
	c, err := admin.NewClient(t.base.value, t.token.value)
	if err != nil {
		return nil, t.base.fail(err)
	}
	if t.cacert.value != "" {
		pem, err := os.ReadFile(t.cacert.value)
		if err != nil {
			return nil, t.cacert.fail(fmt.Errorf("read certificate: %w", err))
		}
		if err := c.Trust(pem); err != nil {
			return nil, t.cacert.fail(fmt.Errorf("%s: %w", t.cacert.value, err))
		}
	}
	c.Operator = operator()
	return c, nil
}

// setting is one resolved value and where it came from: "--admin",
// "MXGATE_ADMIN", "admin.token of FILE", or "" for the built-in default.
type setting struct {
	value, from string
	// file: from the node file, whose mistakes are configuration errors.
	file bool
}

func (s setting) set() bool { return s.from != "" }

// fail names where a bad value came from, with its exit status: a
// mistake on the command line or in the environment is a usage error,
// one in the node file a configuration error.
func (s setting) fail(err error) error {
	if s.from != "" {
		err = fmt.Errorf("%s: %w", s.from, err)
	}
	if s.file {
		return withCode(exitConfig, err)
	}
	return usageError(err)
}

// adminTarget is where a management command sends its requests, with
// which token, trusting which certificate, and where each came from.
type adminTarget struct {
	// base is the admin API's URL (host:port made a URL).
	base, token, cacert setting
	// unreadable names a default node file that exists but could not be
	// read, for the hint of a refused token.
	unreadable string
}

// resolveAdmin takes each setting from the first source that has it:
//
//  1. its flag (--admin, --token, --cacert), even when given empty;
//  2. the node file given with -c (-c "" for none);
//  3. its environment variable (MXGATE_ADMIN, MXGATE_TOKEN,
//     MXGATE_CACERT), when not empty;
//  4. without -c, the node file MXGATE_CONFIG names, else /etc/mxgate/mxgate.yaml
//     when it exists and this user may read it (its token only with its
//     address);
//  5. the built-in default: http://127.0.0.1:8025, no token.
//
// The command line beats the environment, and what is given beats a file
// found by default. From a node file: admin.listen (a wildcard address is
// reached on loopback), admin.token; the certificate only with the
// address of the same file. A host:port address becomes an http URL, or
// https when a certificate is to be trusted.
func resolveAdmin(cmd *cobra.Command) (adminTarget, error) {
	var t adminTarget
	var addr setting
	addr, t.token, t.cacert = flagSetting(cmd, "admin"), flagSetting(cmd, "token"), flagSetting(cmd, "cacert")
	take := func(n nodeSettings) {
		if !addr.set() {
			addr = n.addr
			if !t.cacert.set() {
				t.cacert = n.cacert
			}
		}
		if !t.token.set() && n.token.value != "" {
			t.token = n.token
		}
	}
	// -c names the node file instead of MXGATE_CONFIG and the default;
	// -c "" names none.
	nodeFileGiven := false
	if f := cmd.Flag("config"); f != nil && f.Changed {
		nodeFileGiven = true
		if f.Value.String() != "" {
			n, err := readNodeFile(f.Value.String(), "-c")
			if err != nil {
				return t, err
			}
			take(n)
		}
	}
	for _, s := range []struct {
		dst *setting
		env string
	}{{&addr, envAdmin}, {&t.token, envToken}, {&t.cacert, envCACert}} {
		if v := os.Getenv(s.env); !s.dst.set() && v != "" {
			*s.dst = setting{value: v, from: s.env}
		}
	}
	path, from := os.Getenv(envConfig), envConfig
	if path == "" {
		// A file found by default gives its token only to its own node:
		// a token is not sent to whatever --admin names unless asked to.
		path, from = defaultNodeFile, ""
	}
	if !nodeFileGiven && (!addr.set() || !t.token.set() && from != "") {
		n, err := readNodeFile(path, from)
		switch {
		case from == "" && errors.Is(err, fs.ErrNotExist):
		case from == "" && errors.Is(err, fs.ErrPermission):
			t.unreadable = path
		case err != nil:
			return t, err
		default:
			take(n)
		}
	}
	if !addr.set() {
		addr.value = defaultAdminURL
	}
	base, err := adminURL(addr.value, t.cacert.value != "")
	if err != nil {
		return t, addr.fail(err)
	}
	t.base = setting{value: base, from: addr.from, file: addr.file}
	return t, nil
}

// flagSetting is a flag given on the command line; an unknown flag (a
// command without adminFlags) is not set.
func flagSetting(cmd *cobra.Command, name string) setting {
	if f := cmd.Flag(name); f != nil && f.Changed {
		return setting{value: f.Value.String(), from: "--" + name}
	}
	return setting{}
}

// nodeSettings are what a management command takes from a node file.
type nodeSettings struct {
	addr, token, cacert setting
}

// readNodeFile reads the admin settings of the node file at path, which
// came from (-c FILE, MXGATE_CONFIG; "" = the default path). The whole
// file is checked as `mxgate serve` checks it: a node would not run with
// a file that fails.
func readNodeFile(path, from string) (nodeSettings, error) {
	var n nodeSettings
	cfg, err := config.Load(path)
	if err != nil {
		if from == "" {
			from = "the default node file (name another with -c or " + envConfig + ")"
		}
		return n, withCode(exitConfig, fmt.Errorf("%s: %w", from, err))
	}
	if cfg.Admin.Listen == "" {
		return n, withCode(exitConfig, fmt.Errorf("%s: admin.listen is empty: the node serves no admin API", path))
	}
	key := func(k string) string { return k + " of " + path }
	n.addr = setting{value: cfg.Admin.Listen, from: key("admin.listen"), file: true}
	n.token = setting{value: cfg.Admin.Token, from: key("admin.token"), file: true}
	if cfg.Admin.TLS.Enabled() {
		// The node's own certificate (chain): trusted as itself, so a
		// self-signed one works on loopback too.
		n.cacert = setting{value: cfg.Admin.TLS.Cert, from: key("admin.tls.cert"), file: true}
	}
	return n, nil
}

// adminURL makes a URL of an admin address given as a URL or as host:port
// (the form of admin.listen): http, or https when tls. A wildcard host is
// reached on loopback, as a node listening there answers there too.
func adminURL(v string, tls bool) (string, error) {
	if strings.Contains(v, "://") {
		return v, nil // NewClient checks it
	}
	host, port, err := net.SplitHostPort(v)
	if err == nil {
		// Digits only: Atoi takes "+1", which no URL parser does.
		var n int
		if n, err = strconv.Atoi(port); err == nil && (n < 1 || n > 65535 || strings.ContainsFunc(port, func(r rune) bool { return r < '0' || r > '9' })) {
			err = errors.New("bad port")
		}
	}
	if a, perr := netip.ParseAddr(host); err == nil && (perr == nil && a.Zone() != "" || perr != nil && !hostName(host)) {
		err = errors.New("bad host")
	}
	if err != nil {
		return "", fmt.Errorf("%q: want host:port (127.0.0.1:8025, [::1]:8025) or a URL (https://gw.example:8025)", v)
	}
	if a, err := netip.ParseAddr(host); host == "" || err == nil && a.Unmap().IsUnspecified() {
		host = "127.0.0.1"
		if err == nil && a.Unmap().Is6() {
			host = "::1"
		}
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// hostName: empty (a wildcard) or letters, digits, '-', '.' and '_', as
// a host name in admin.listen may be.
func hostName(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_')
	})
}

// explain adds what to do about a refused token: which one was sent, or
// where one can come from.
func (t adminTarget) explain(err error) error {
	var ae *admin.Error
	if !errors.As(err, &ae) {
		return err
	}
	switch {
	case ae.Status == http.StatusUnauthorized && t.token.value != "":
		return fmt.Errorf("%w; pass --token or set %s (the token sent came from %s)", err, envToken, t.token.from)
	case ae.Status == http.StatusUnauthorized && t.unreadable != "":
		return fmt.Errorf("%w; pass --token or set %s (%s holds admin.token but is not readable for you)", err, envToken, t.unreadable)
	case ae.Status == http.StatusUnauthorized:
		return fmt.Errorf("%w; pass --token or set %s, or name the node file with -c", err, envToken)
	case ae.Status == http.StatusBadRequest && isHTTPToHTTPS(ae):
		return fmt.Errorf("%w; the admin API is served over TLS: use an https:// URL, or --cacert", err)
	}
	return err
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
