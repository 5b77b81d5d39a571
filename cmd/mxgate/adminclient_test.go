package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/mxgate/mxgate/admin"
)

// adminCmd is a management command with the shared flags, parsed from args.
func adminCmd(t *testing.T, args ...string) *cobra.Command {
	t.Helper()
	cmd := &cobra.Command{Use: "x"}
	adminFlags(cmd)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	return cmd
}

func TestResolveAdmin(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want adminTarget
	}{
		{"defaults", nil, nil,
			adminTarget{base: defaultAdminURL, baseFrom: "--admin", tokenFrom: "--token"}},
		{"environment", nil, map[string]string{envAdmin: "http://198.18.0.1:8025", envToken: "t-env"},
			adminTarget{base: "http://198.18.0.1:8025", token: "t-env", baseFrom: envAdmin, tokenFrom: envToken}},
		{"flags beat the environment", []string{"--admin", "http://127.0.0.2:1", "--token", "t-flag"}, map[string]string{envAdmin: "http://198.18.0.1:8025", envToken: "t-env"},
			adminTarget{base: "http://127.0.0.2:1", token: "t-flag", baseFrom: "--admin", tokenFrom: "--token"}},
		{"one from each", []string{"--token", "t-flag"}, map[string]string{envAdmin: "http://198.18.0.1:8025", envToken: "t-env"},
			adminTarget{base: "http://198.18.0.1:8025", token: "t-flag", baseFrom: envAdmin, tokenFrom: "--token"}},
		{"an empty variable is unset", nil, map[string]string{envAdmin: "", envToken: ""},
			adminTarget{base: defaultAdminURL, baseFrom: "--admin", tokenFrom: "--token"}},
		{"an empty flag is given, and beats the environment", []string{"--token="}, map[string]string{envToken: "t-env"},
			adminTarget{base: defaultAdminURL, baseFrom: "--admin", tokenFrom: "--token"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(envAdmin, "")
			t.Setenv(envToken, "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			if got := resolveAdmin(adminCmd(t, tt.args...)); got != tt.want {
				t.Errorf("resolveAdmin = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestAdminClientErrors(t *testing.T) {
	const secret = "s3cret"
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want string // "" = no error
	}{
		{"good", []string{"--admin", "https://gw.example:8025/"}, nil, ""},
		{"bad URL in the flag", []string{"--admin", "127.0.0.1:8025"}, nil, `admin URL "127.0.0.1:8025": want http://host:port or https://host:port`},
		{"bad URL in the environment says so", nil, map[string]string{envAdmin: "gw:8025"}, envAdmin + `: admin URL "gw:8025": want http://host:port`},
		{"newline in the token flag", []string{"--token", secret + "\n"}, nil, "--token holds a control character at byte 6"},
		{"newline in the token variable", nil, map[string]string{envToken: secret + "\r\n"}, envToken + " holds a control character at byte 6"},
		{"escape in the token", nil, map[string]string{envToken: "\x1b" + secret}, envToken + " holds a control character at byte 0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(envAdmin, "")
			t.Setenv(envToken, "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := adminClient(adminCmd(t, tt.args...))
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
		})
	}
}

func TestAPIError(t *testing.T) {
	other := fmt.Errorf("cannot reach the admin API at http://x: refused")
	for _, tt := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{&admin.Error{Status: 401, Message: "missing or wrong token"}, "missing or wrong token (HTTP 401); pass --token or set MXGATE_TOKEN"},
		{fmt.Errorf("list: %w", &admin.Error{Status: 401, Message: "m"}), "list: m (HTTP 401); pass --token or set MXGATE_TOKEN"},
		{&admin.Error{Status: 403, Message: "forbidden"}, "forbidden (HTTP 403)"},
		{&admin.Error{Status: 404, Message: `no quarantined message with id "Q3"`}, `no quarantined message with id "Q3" (HTTP 404)`},
		{other, other.Error()},
	} {
		got := apiError(tt.err)
		if (got == nil) != (tt.want == "") || got != nil && got.Error() != tt.want {
			t.Errorf("apiError(%v) = %v, want %q", tt.err, got, tt.want)
		}
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
