package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/spf13/cobra"

	"github.com/mxgate/mxgate/admin"
)

// adminCmd is a management command under a root with -c, with the shared
// flags, parsed from args.
func adminCmd(t *testing.T, args ...string) *cobra.Command {
	t.Helper()
	root := &cobra.Command{Use: "mxgate"}
	configFlag(root)
	cmd := &cobra.Command{Use: "x"}
	adminFlags(cmd)
	root.AddCommand(cmd)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// clearAdminEnv unsets every variable of the admin connection for the
// test; MXGATE_CONFIG names an empty file, so the default node file of
// the host running the test is never read.
func clearAdminEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{envAdmin, envToken, envCACert} {
		t.Setenv(k, "")
	}
	t.Setenv(envConfig, os.DevNull)
}

// nodeFile writes a node file with the admin section given and returns
// its path.
func nodeFile(t *testing.T, admin string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mxgate.yaml")
	if err := os.WriteFile(p, []byte("node:\n  id: t1\nadmin:\n"+admin), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolveAdmin(t *testing.T) {
	fileA := nodeFile(t, "  listen: 127.0.0.7:9001\n  token: t-file-a\n")
	fileB := nodeFile(t, "  listen: 0.0.0.0:9002\n  token: t-file-b\n")
	wild6 := nodeFile(t, "  listen: '[::]:9003'\n  token: t6\n")
	type want struct{ base, baseFrom, token, tokenFrom string }
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want want
	}{
		{"defaults: an empty node file", nil, nil,
			want{"http://127.0.0.1:8025", "admin.listen of " + os.DevNull, "", ""}},
		{"no node file at all", []string{"-c", ""}, nil,
			want{defaultAdminURL, "", "", ""}},
		{"environment", nil, map[string]string{envAdmin: "http://198.18.0.1:8025", envToken: "t-env"},
			want{"http://198.18.0.1:8025", envAdmin, "t-env", envToken}},
		{"host:port in the environment", nil, map[string]string{envAdmin: "198.18.0.1:8025"},
			want{"http://198.18.0.1:8025", envAdmin, "", ""}},
		{"[::1]:port in the flag", []string{"--admin", "[::1]:8025"}, nil,
			want{"http://[::1]:8025", "--admin", "", ""}},
		{"host:port with a certificate is https", []string{"--admin", "gw.example:8025", "--cacert", "/x.pem"}, nil,
			want{"https://gw.example:8025", "--admin", "", ""}},
		{"flags beat the environment", []string{"--admin", "http://127.0.0.2:1", "--token", "t-flag"}, map[string]string{envAdmin: "http://198.18.0.1:8025", envToken: "t-env"},
			want{"http://127.0.0.2:1", "--admin", "t-flag", "--token"}},
		{"one from each", []string{"--token", "t-flag"}, map[string]string{envAdmin: "http://198.18.0.1:8025", envToken: "t-env"},
			want{"http://198.18.0.1:8025", envAdmin, "t-flag", "--token"}},
		{"an empty variable is unset (and no default node file here)", nil, map[string]string{envAdmin: "", envToken: "", envConfig: ""},
			want{defaultAdminURL, "", "", ""}},
		{"an empty flag is given, and beats the environment", []string{"--token="}, map[string]string{envToken: "t-env"},
			want{"http://127.0.0.1:8025", "admin.listen of " + os.DevNull, "", "--token"}},
		{"-c: address and token from the node file", []string{"-c", fileA}, nil,
			want{"http://127.0.0.7:9001", "admin.listen of " + fileA, "t-file-a", "admin.token of " + fileA}},
		{"-c beats the environment", []string{"-c", fileA}, map[string]string{envAdmin: "198.18.0.1:8025", envToken: "t-env"},
			want{"http://127.0.0.7:9001", "admin.listen of " + fileA, "t-file-a", "admin.token of " + fileA}},
		{"flags beat -c", []string{"-c", fileA, "--admin", "198.18.0.9:8025"}, nil,
			want{"http://198.18.0.9:8025", "--admin", "t-file-a", "admin.token of " + fileA}},
		{"-c beats MXGATE_CONFIG", []string{"-c", fileA}, map[string]string{envConfig: fileB},
			want{"http://127.0.0.7:9001", "admin.listen of " + fileA, "t-file-a", "admin.token of " + fileA}},
		{"MXGATE_CONFIG; a wildcard listen is reached on loopback", nil, map[string]string{envConfig: fileB},
			want{"http://127.0.0.1:9002", "admin.listen of " + fileB, "t-file-b", "admin.token of " + fileB}},
		{"the environment beats MXGATE_CONFIG", nil, map[string]string{envConfig: fileB, envAdmin: "198.18.0.1:8025"},
			want{"http://198.18.0.1:8025", envAdmin, "t-file-b", "admin.token of " + fileB}},
		{"an IPv6 wildcard is reached on ::1", []string{"-c", wild6}, nil,
			want{"http://[::1]:9003", "admin.listen of " + wild6, "t6", "admin.token of " + wild6}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clearAdminEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			if v, ok := tt.env[envConfig]; ok && v == "" {
				if _, err := os.Stat(defaultNodeFile); err == nil {
					t.Skipf("%s exists on this host", defaultNodeFile)
				}
			}
			got, err := resolveAdmin(adminCmd(t, tt.args...))
			if err != nil {
				t.Fatalf("resolveAdmin: %v", err)
			}
			if g := (want{got.base.value, got.base.from, got.token.value, got.token.from}); g != tt.want {
				t.Errorf("resolveAdmin = %+v, want %+v", g, tt.want)
			}
		})
	}
}

func TestAdminURL(t *testing.T) {
	for _, tt := range []struct {
		in   string
		tls  bool
		want string // "" = an error
	}{
		{"127.0.0.1:8025", false, "http://127.0.0.1:8025"},
		{"127.0.0.1:8025", true, "https://127.0.0.1:8025"},
		{"[::1]:8025", false, "http://[::1]:8025"},
		{"gw.example:8025", false, "http://gw.example:8025"},
		{"0.0.0.0:8025", false, "http://127.0.0.1:8025"},
		{"[::]:8025", false, "http://[::1]:8025"},
		{":8025", false, "http://127.0.0.1:8025"},
		{"[::ffff:0.0.0.0]:8025", false, "http://127.0.0.1:8025"},
		{"https://gw.example:8025/", false, "https://gw.example:8025/"},
		{"http://x", true, "http://x"}, // a URL is taken as it is
		{"gw.example", false, ""},
		{"gw.example:", false, ""},
		{"gw.example:http", false, ""},
		{"gw.example:0", false, ""},
		{"gw.example:65536", false, ""},
		{"::1:8025", false, ""},
		{"gw:8025/", false, ""},
		{"[ ]:1", false, ""},
		{"g/w:1", false, ""},
		{"[fe80::1%eth0]:8025", false, ""},
	} {
		got, err := adminURL(tt.in, tt.tls)
		if tt.want == "" {
			if err == nil || !strings.Contains(err.Error(), "want host:port (127.0.0.1:8025, [::1]:8025) or a URL") {
				t.Errorf("adminURL(%q) = %q, %v; want an error", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("adminURL(%q, %v) = %q, %v; want %q", tt.in, tt.tls, got, err, tt.want)
		}
	}
}

// Every bad setting is refused naming where it came from, with exit
// status 64 (the command line, the environment) or 78 (the node file), and
// never shows the token.
func TestAdminSettingErrors(t *testing.T) {
	const secret = "s3cret"
	bad := nodeFile(t, "  listen: 127.0.0.1:8025\n  tokn: x\n")
	off := nodeFile(t, "  listen: ''\n")
	nlToken := nodeFile(t, "  listen: 127.0.0.1:8025\n  token: \""+secret+"\\n\"\n")
	notPEM := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(notPEM, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want string // "" = no error
		code int
	}{
		{"good URL", []string{"--admin", "https://gw.example:8025/"}, nil, "", 0},
		{"good host:port", []string{"--admin", "127.0.0.1:8025"}, nil, "", 0},
		{"bad address in the flag", []string{"--admin", "gw.example"}, nil, `--admin: "gw.example": want host:port`, exitUsage},
		{"bad address in the environment says so", nil, map[string]string{envAdmin: "gw:http"}, envAdmin + `: "gw:http": want host:port`, exitUsage},
		{"bad scheme", []string{"--admin", "ftp://gw:8025"}, nil, `--admin: admin URL "ftp://gw:8025": want http://host:port or https://host:port`, exitUsage},
		{"newline in the token flag", []string{"--token", secret + "\n"}, nil, "--token: holds a control character at byte 6", exitUsage},
		{"newline in the token variable", nil, map[string]string{envToken: secret + "\r\n"}, envToken + ": holds a control character at byte 6", exitUsage},
		{"escape in the token", nil, map[string]string{envToken: "\x1b" + secret}, envToken + ": holds a control character at byte 0", exitUsage},
		{"newline in the node file's token", []string{"-c", nlToken}, nil, "admin.token of " + nlToken + ": holds a control character at byte 6", exitConfig},
		{"missing node file", []string{"-c", "/nonexistent/mxgate.yaml"}, nil, "-c: read config: open /nonexistent/mxgate.yaml: no such file", exitConfig},
		{"missing MXGATE_CONFIG file", nil, map[string]string{envConfig: "/nonexistent/m.yaml"}, envConfig + ": read config: open /nonexistent/m.yaml", exitConfig},
		{"bad node file: its key and line", []string{"-c", bad}, nil, "-c: config " + bad + ": admin.tokn: unknown key (line 5)", exitConfig},
		{"node without an admin API", []string{"-c", off}, nil, off + ": admin.listen is empty: the node serves no admin API", exitConfig},
		{"missing certificate", []string{"--cacert", "/nonexistent/ca.pem"}, nil, "--cacert: read certificate: open /nonexistent/ca.pem", exitUsage},
		{"no certificate in the file", nil, map[string]string{envCACert: notPEM}, envCACert + ": " + notPEM + ": no PEM certificate in it", exitUsage},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clearAdminEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var c *admin.Client
			tg, err := resolveAdmin(adminCmd(t, tt.args...))
			if err == nil {
				c, err = adminClient(tg)
			}
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("adminClient: %v", err)
			case tt.want == "":
				if c.Operator != operator() {
					t.Errorf("operator = %q, want %q", c.Operator, operator())
				}
			case err == nil || !strings.HasPrefix(err.Error(), tt.want):
				t.Errorf("adminClient: %v, want %q", err, tt.want)
			case strings.Contains(err.Error(), secret):
				t.Errorf("the error shows the token: %v", err)
			}
			if err != nil {
				if got := exitStatus(err, true); got != tt.code {
					t.Errorf("exit status %d, want %d", got, tt.code)
				}
			}
		})
	}
}

func TestExplain(t *testing.T) {
	other := fmt.Errorf("cannot reach the admin API at http://x: refused")
	flagToken := adminTarget{token: setting{value: "t", from: "--token"}}
	fileToken := adminTarget{token: setting{value: "t", from: "admin.token of /etc/mxgate/mxgate.yaml", file: true}}
	for _, tt := range []struct {
		t    adminTarget
		err  error
		want string
	}{
		{adminTarget{}, nil, ""},
		{adminTarget{}, &admin.Error{Status: 401, Message: "missing or wrong token"}, "missing or wrong token (HTTP 401); pass --token or set MXGATE_TOKEN, or name the node file with -c"},
		{flagToken, fmt.Errorf("list: %w", &admin.Error{Status: 401, Message: "m"}), "list: m (HTTP 401); pass --token or set MXGATE_TOKEN (the token sent came from --token)"},
		{fileToken, &admin.Error{Status: 401, Message: "m"}, "m (HTTP 401); pass --token or set MXGATE_TOKEN (the token sent came from admin.token of /etc/mxgate/mxgate.yaml)"},
		{adminTarget{unreadable: "/etc/mxgate/mxgate.yaml"}, &admin.Error{Status: 401, Message: "m"}, "m (HTTP 401); pass --token or set MXGATE_TOKEN (/etc/mxgate/mxgate.yaml holds admin.token but is not readable for you)"},
		{adminTarget{}, &admin.Error{Status: 400, Message: "Client sent an HTTP request to an HTTPS server."}, "Client sent an HTTP request to an HTTPS server. (HTTP 400); the admin API is served over TLS: use an https:// URL, or --cacert"},
		{flagToken, &admin.Error{Status: 403, Message: "forbidden"}, "forbidden (HTTP 403)"},
		{adminTarget{}, &admin.Error{Status: 404, Message: `no quarantined message with id "Q3"`}, `no quarantined message with id "Q3" (HTTP 404)`},
		{adminTarget{}, other, other.Error()},
	} {
		got := tt.t.explain(tt.err)
		if (got == nil) != (tt.want == "") || got != nil && got.Error() != tt.want {
			t.Errorf("explain(%v) = %v, want %q", tt.err, got, tt.want)
		}
	}
}

// The exit status of every kind of failure, mapped in one place.
func TestExitStatus(t *testing.T) {
	api := func(status int) error { return fmt.Errorf("do: %w", &admin.Error{Status: status, Message: "m"}) }
	reach := func(err error) error { return fmt.Errorf("cannot reach the admin API at http://x: %w", err) }
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tt := range []struct {
		name string
		err  error
		ran  bool
		want int
	}{
		{"success", nil, true, exitOK},
		{"before the command ran (cobra's own refusals)", errors.New(`if any flags in the group [raw json] are set none of the others can be`), false, exitUsage},
		{"a plain failure of a command", errors.New("boom"), true, exitFailure},
		{"usage error", usageError(errors.New("takes 1 argument(s)")), true, exitUsage},
		{"400: a value refused", api(400), true, exitUsage},
		{"http to an https port", &admin.Error{Status: 400, Message: "Client sent an HTTP request to an HTTPS server."}, true, exitProtocol},
		{"401", api(401), true, exitNoPerm},
		{"403", api(403), true, exitNoPerm},
		{"404", api(404), true, exitNoInput},
		{"409: conflict", api(409), true, exitFailure},
		{"413", api(413), true, exitDataErr},
		{"429", api(429), true, exitTempFail},
		{"500", api(500), true, exitSoftware},
		{"501: not on this node", api(501), true, exitUnavailable},
		{"502", api(502), true, exitUnavailable},
		{"503", api(503), true, exitTempFail},
		{"connection refused", reach(refused), true, exitUnavailable},
		{"DNS", reach(&net.DNSError{Err: "no such host", Name: "gw", IsNotFound: true}), true, exitUnavailable},
		{"timeout", reach(context.DeadlineExceeded), true, exitUnavailable},
		{"client timeout", reach(&url.Error{Op: "Get", URL: "http://x", Err: os.ErrDeadlineExceeded}), true, exitUnavailable},
		{"untrusted certificate", reach(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), true, exitProtocol},
		{"pinned certificate expired", reach(x509.CertificateInvalidError{Reason: x509.Expired}), true, exitProtocol},
		{"wrong name", reach(x509.HostnameError{Host: "gw"}), true, exitProtocol},
		{"https to a plain port", reach(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), true, exitProtocol},
		{"plain answer to https", reach(errors.New("http: server gave HTTP response to HTTPS client")), true, exitProtocol},
		{"input file missing", fmt.Errorf("read message: %w", &fs.PathError{Op: "open", Path: "m.eml", Err: fs.ErrNotExist}), true, exitNoInput},
		{"a status given closer to the cause is kept", withCode(exitConfig, api(404)), true, exitConfig},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err
			if tt.ran {
				err = classify(err)
			}
			if got := exitStatus(err, tt.ran); got != tt.want {
				t.Errorf("exit status %d, want %d (%v)", got, tt.want, err)
			}
			if tt.err != nil && err.Error() != tt.err.Error() {
				t.Errorf("classify changed the message: %q", err)
			}
		})
	}
}

func TestErrorLine(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("plain"), "plain"},
		{fmt.Errorf("f.yaml: %w", fmt.Errorf("a: bad\nb: worse")), "f.yaml: a: bad; b: worse"},
		{fmt.Errorf("trailing\n"), "trailing"},
		{fmt.Errorf("crlf\r\nsecond\n\n third "), "crlf; second; third"},
		{fmt.Errorf("server says \x1b]0;pwned\x07 \u202eok"), "server says ?]0;pwned? ?ok"},
	} {
		if got := errorLine(tt.err); got != tt.want {
			t.Errorf("errorLine(%q) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func FuzzAdminURL(f *testing.F) {
	for _, s := range []string{"127.0.0.1:8025", "[::1]:8025", "0.0.0.0:8025", "[::]:8025", ":8025", "gw.example:8025", "https://gw:8025", "gw", "[::ffff:0.0.0.0]:1"} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, v string, tls bool) {
		u, err := adminURL(v, tls)
		if err != nil || strings.Contains(v, "://") {
			return
		}
		// host:port made a URL: one the client takes, for the same port,
		// never the wildcard address.
		if _, err := admin.NewClient(u, ""); err != nil {
			t.Fatalf("adminURL(%q) = %q, which NewClient refuses: %v", v, u, err)
		}
		p, err := url.Parse(u)
		if err != nil {
			t.Fatalf("adminURL(%q) = %q: %v", v, u, err)
		}
		_, port, _ := net.SplitHostPort(v)
		if p.Port() != port || p.Hostname() == "" || p.Hostname() == "0.0.0.0" || p.Hostname() == "::" {
			t.Fatalf("adminURL(%q) = %q", v, u)
		}
		if want := map[bool]string{false: "http", true: "https"}[tls]; p.Scheme != want {
			t.Fatalf("adminURL(%q, %v) = %q", v, tls, u)
		}
	})
}
