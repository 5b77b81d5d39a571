package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/cluster"
	"github.com/mxgate/mxgate/deliver"
	"github.com/mxgate/mxgate/digest"
	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/node"
	"github.com/mxgate/mxgate/quarantine"
	"github.com/mxgate/mxgate/store"
)

// jsonRun is a run of a command with --json added, and whether it prints
// an array (a list of things) or an object.
type jsonRun struct {
	args  []string
	array bool
}

// commandCase is how TestEveryCommand runs one management command against
// walkAdmin: args succeed, jsonRuns are the --json forms.
type commandCase struct {
	args     []string
	jsonRuns []jsonRun
}

// walkAdmin serves an admin API that every management command can
// succeed against: adminServer's quarantine and log, a cluster status, a
// configuration revision and a list entry.
func walkAdmin(t *testing.T) string {
	t.Helper()
	url, _ := adminServerWith(t, func(o *admin.Options) {
		st := node.ClusterView{Status: cluster.Status{Node: "n1", InstanceStatus: cluster.InstanceStatus{State: "master", Since: time.Now().UTC()}}, Mode: "active-active"}
		o.Cluster = func() any { return st }
		o.Scan = scanPool(t).Scan
		o.Learn = func(context.Context, bool, []byte) error { return nil }
		o.Status = func(context.Context) any { return node.StatusView{Node: "n1", Role: "master", Healthy: true} }
		o.Digest = walkDigest(t, o.Quarantine, "")
		o.Backup = func() (io.ReadCloser, int64, error) {
			snap := "bbolt snapshot stand-in"
			return io.NopCloser(strings.NewReader(snap)), int64(len(snap)), nil
		}
	})
	c, err := admin.NewClient(url, cliToken)
	if err != nil {
		t.Fatal(err)
	}
	s, err := readSettings(nil, writeTemp(t, "mode: active-passive\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetConfig(t.Context(), admin.ConfigRequest{Settings: s}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListAdd(t.Context(), admin.ListRequest{Kind: lists.Block, Value: "@seed.example"}); err != nil {
		t.Fatal(err)
	}
	return url
}

// walkDigest is a digest over q whose state is in a store of its own,
// sending to the downstream server down (the walk's sends find nothing
// new, so it needs none).
func walkDigest(t *testing.T, q quarantine.Store, down string) admin.Digest {
	t.Helper()
	be, err := store.OpenEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	if err := be.Digest.SetOptOut(t.Context(), "zed@example.org", true); err != nil {
		t.Fatal(err)
	}
	return &digest.Digester{Store: be.Digest, Quarantine: q, Node: "n1", Settings: func() digest.Settings {
		return digest.Settings{Enabled: true, URL: "http://mxgate.example.org", From: "postmaster@mx.test", Lifetime: 720 * time.Hour,
			Downstream: deliver.Options{Addr: down, Helo: "mx.test", Timeout: 10 * time.Second}}
	}}
}

func writeTemp(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "settings.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// downURL is an admin URL nobody listens on.
func downURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "http://" + ln.Addr().String()
}

// TestEveryCommand walks the whole command tree. Every command has --help;
// every management command has an example, takes --admin and --token from
// the flags or else from MXGATE_ADMIN and MXGATE_TOKEN, says what to do
// about a refused token; and every command with --json prints exactly one
// JSON document (an array for lists) and one newline. A command added to
// the tree without a case here fails the test.
func TestEveryCommand(t *testing.T) {
	settings := writeTemp(t, "mode: active-active\n")
	msg := writeTemp(t, "Subject: hello\r\n\r\nhello\r\n")
	cases := map[string]commandCase{
		"mxgate quarantine list":       {nil, []jsonRun{{nil, true}, {[]string{"--sender", "nobody@x.example"}, true}}},
		"mxgate quarantine show":       {[]string{"Q1"}, []jsonRun{{[]string{"Q2"}, false}}},
		"mxgate quarantine release":    {[]string{"Q1"}, nil},
		"mxgate quarantine delete":     {[]string{"Q3"}, nil},
		"mxgate quarantine learn-spam": {[]string{"Q1"}, nil},
		"mxgate lists show":            {nil, []jsonRun{{nil, true}}},
		"mxgate lists add":             {[]string{"block", "@new.example"}, nil},
		"mxgate lists remove":          {[]string{"block", "@seed.example"}, nil},
		"mxgate log":                   {nil, []jsonRun{{nil, true}, {[]string{"--id", "none"}, true}}},
		"mxgate cluster status":        {nil, []jsonRun{{nil, false}}},
		"mxgate config show":           {nil, []jsonRun{{nil, false}, {[]string{"--history"}, true}}},
		"mxgate config set":            {[]string{"-f", settings}, nil},
		"mxgate config diff":           {[]string{settings}, nil},
		"mxgate config push":           {nil, nil},
		"mxgate report":                {nil, []jsonRun{{nil, false}}},
		"mxgate scan":                  {[]string{msg}, []jsonRun{{[]string{msg}, false}}},
		"mxgate status":                {nil, []jsonRun{{nil, false}}},
		"mxgate backup":                {[]string{"-"}, nil},
		"mxgate digest send":           {[]string{"--rcpt", "nobody@example.org"}, []jsonRun{{[]string{"--rcpt", "zed@example.org"}, true}}},
		"mxgate digest optout":         {[]string{"alice@example.org"}, nil},
		"mxgate digest optin":          {[]string{"zed@example.org"}, nil},
		"mxgate digest optouts":        {nil, []jsonRun{{nil, true}}},
		"mxgate digest rotate-key":     {nil, nil},
	}
	down := downURL(t)
	// Runs that change nothing on the server share one.
	shared := walkAdmin(t)

	var all []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		all = append(all, c)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
	seen := map[string]bool{}
	for _, c := range all {
		path := c.CommandPath()
		argv := strings.Fields(path)[1:]
		t.Run(path+" --help", func(t *testing.T) {
			t.Setenv(envToken, "secret-from-env")
			out, _, err := run(t, append(slices.Clone(argv), "--help")...)
			if err != nil || !strings.Contains(out, "Usage:") || !strings.Contains(out, strings.TrimSpace(cmp.Or(c.Long, c.Short))) {
				t.Errorf("--help: %v\n%s", err, out)
			}
			if strings.Contains(out, "secret-from-env") {
				t.Error("--help shows the token from the environment")
			}
			if c.Flag("admin") != nil && (!strings.Contains(out, "--admin") || !strings.Contains(out, envAdmin) || !strings.Contains(out, envToken)) {
				t.Errorf("--help does not name --admin, %s and %s:\n%s", envAdmin, envToken, out)
			}
		})
		if c.HasSubCommands() || path == "mxgate serve" || path == "mxgate version" { // local, no admin API
			continue
		}
		cc, ok := cases[path]
		if !ok {
			t.Errorf("%s: no case in TestEveryCommand", path)
			continue
		}
		seen[path] = true
		t.Run(path, func(t *testing.T) {
			if c.Example == "" {
				t.Error("no example")
			}
			if c.Flag("admin") == nil || c.Flag("token") == nil {
				t.Fatal("no --admin or --token")
			}
			args := append(slices.Clone(argv), cc.args...)
			env := func(admin, token string) {
				t.Setenv(envAdmin, admin)
				t.Setenv(envToken, token)
			}

			env(walkAdmin(t), cliToken)
			if _, _, err := run(t, args...); err != nil {
				t.Errorf("with %s and %s: %v", envAdmin, envToken, err)
			}
			env(shared, "wrong")
			if _, _, err := run(t, args...); err == nil || !strings.Contains(err.Error(), "(HTTP 401); pass --token or set "+envToken) {
				t.Errorf("with a wrong %s: %v", envToken, err)
			}
			env(down, cliToken)
			if _, _, err := run(t, args...); err == nil || !strings.Contains(err.Error(), "cannot reach the admin API at "+down+": ") {
				t.Errorf("with %s=%s: %v", envAdmin, down, err)
			}
			env(down, "wrong")
			if _, _, err := run(t, append(args, "--admin", walkAdmin(t), "--token", cliToken)...); err != nil {
				t.Errorf("flags do not beat the environment: %v", err)
			}

			if (c.Flags().Lookup("json") != nil) != (len(cc.jsonRuns) > 0) {
				t.Fatalf("--json flag and JSON runs disagree: flag %v, %d runs", c.Flags().Lookup("json") != nil, len(cc.jsonRuns))
			}
			for _, jr := range cc.jsonRuns {
				env(walkAdmin(t), cliToken)
				args := append(append(slices.Clone(argv), jr.args...), "--json")
				out, _, err := run(t, args...)
				if err != nil {
					t.Errorf("%s: %v", strings.Join(args, " "), err)
					continue
				}
				if err := oneJSONDocument(out, jr.array); err != nil {
					t.Errorf("%s: %v:\n%s", strings.Join(args, " "), err, out)
				}
			}
		})
	}
	for path := range cases {
		if !seen[path] {
			t.Errorf("case %q names no command of the tree", path)
		}
	}
}

// oneJSONDocument checks that out is one JSON document (an array or an
// object) and one newline, nothing before or after.
func oneJSONDocument(out string, array bool) error {
	want := byte('{')
	if array {
		want = '['
	}
	if out == "" || out[0] != want {
		return errors.New("does not start with " + string(want))
	}
	if !strings.HasSuffix(out, "\n") || strings.HasSuffix(out, "\n\n") || strings.HasSuffix(out, " \n") {
		return errors.New("does not end with exactly one newline")
	}
	dec := json.NewDecoder(strings.NewReader(out))
	var v any
	if err := dec.Decode(&v); err != nil {
		return err
	}
	if err := dec.Decode(&v); err != io.EOF {
		return errors.New("more than one JSON document")
	}
	return nil
}

func TestOneJSONDocument(t *testing.T) {
	for _, tt := range []struct {
		out   string
		array bool
		ok    bool
	}{
		{"[]\n", true, true},
		{"{\n  \"a\": 1\n}\n", false, true},
		{"[]", true, false},
		{"[]\n\n", true, false},
		{"[]\n[]\n", true, false},
		{"null\n", true, false},
		{"{}\n", true, false},
		{"[\n", true, false},
	} {
		if err := oneJSONDocument(tt.out, tt.array); (err == nil) != tt.ok {
			t.Errorf("oneJSONDocument(%q, %v) = %v, want ok %v", tt.out, tt.array, err, tt.ok)
		}
	}
}

// Every failure reaches the user as one line "mxgate: …" on stderr and
// its exit status (sysexits.h); a success as status 0 and nothing on
// stderr.
func TestExecute(t *testing.T) {
	clearAdminEnv(t)
	down := downURL(t)
	url := walkAdmin(t)
	twoProblems := writeTemp(t, "mode: both\nscanner:\n  max_mime_depth: -1\n")
	for _, tt := range []struct {
		args   []string
		code   int
		stderr string // its start; "" = empty
	}{
		{[]string{"lists", "--help"}, 0, ""},
		{[]string{}, 0, ""},
		{[]string{"status", "--admin", url, "--token", cliToken}, 0, ""},
		{[]string{"bogus"}, exitUsage, "mxgate: unknown command \"bogus\" for mxgate; see mxgate --help\n"},
		{[]string{"quarantine", "bogus"}, exitUsage, "mxgate: unknown command \"bogus\" for mxgate quarantine"},
		{[]string{"status", "extra"}, exitUsage, "mxgate: mxgate status takes no arguments"},
		{[]string{"status", "--bogus"}, exitUsage, "mxgate: unknown flag: --bogus\n"},
		{[]string{"--bogus", "status"}, exitUsage, "mxgate: unknown flag: --bogus\n"},
		{[]string{"log", "--limit", "many"}, exitUsage, "mxgate: invalid argument \"many\" for \"--limit\""},
		{[]string{"quarantine", "show", "Q1", "--raw", "--json", "--admin", url}, exitUsage, "mxgate: if any flags in the group"},
		{[]string{"config", "set"}, exitUsage, "mxgate: mxgate config set needs KEY=VALUE arguments"},
		{[]string{"lists", "add", "deny", "@x.example"}, exitUsage, "mxgate: invalid list kind \"deny\""},
		{[]string{"lists", "add", "block", "@x.example", "--skip-attachments"}, exitUsage, "mxgate: --skip-attachments is for allow entries only\n"},
		{[]string{"config", "set", "no.such.key=1"}, exitUsage, "mxgate: "},
		{[]string{"report", "--day", "2026-13-45", "--admin", url, "--token", cliToken}, exitUsage, "mxgate: day: want YYYY-MM-DD, got \"2026-13-45\" (HTTP 400)\n"},
		{[]string{"status", "--admin", "gw.example"}, exitUsage, "mxgate: --admin: \"gw.example\": want host:port"},
		{[]string{"log", "--token", "a\nb"}, exitUsage, "mxgate: --token: holds a control character at byte 1 (the newline of a token file?)\n"},
		// clusterconf reports every problem of a file, one per line: the
		// user gets them all, on one line.
		{[]string{"config", "set", "-f", twoProblems}, exitDataErr, "mxgate: " + twoProblems + ": cluster config: scanner.max_mime_depth: must be positive, got -1; mode: \"both\" is not one of active-active, active-passive\n"},
		{[]string{"config", "set", "-f", "/nonexistent/settings.yaml"}, exitNoInput, "mxgate: read settings: open /nonexistent/settings.yaml: no such file or directory\n"},
		{[]string{"quarantine", "show", "NOPE", "--admin", url, "--token", cliToken}, exitNoInput, "mxgate: no quarantined message with id \"NOPE\" (HTTP 404)\n"},
		{[]string{"log", "--admin", down}, exitUnavailable, "mxgate: cannot reach the admin API at " + down + ": "},
		{[]string{"status", "--admin", url}, exitNoPerm, "mxgate: missing or wrong token (Authorization: Bearer TOKEN) (HTTP 401); pass --token or set MXGATE_TOKEN, or name the node file with -c\n"},
		{[]string{"status", "--admin", url, "--token", "wrong"}, exitNoPerm, "mxgate: missing or wrong token (Authorization: Bearer TOKEN) (HTTP 401); pass --token or set MXGATE_TOKEN (the token sent came from --token)\n"},
		{[]string{"quarantine", "release", "Q1", "--admin", url, "--token", cliToken}, exitOK, ""},
		{[]string{"quarantine", "release", "Q1", "--admin", url, "--token", cliToken}, exitFailure, "mxgate: release of Q1 refused: it was released already"},
		{[]string{"-c", "/nonexistent/mxgate.yaml", "status"}, exitConfig, "mxgate: -c: read config: open /nonexistent/mxgate.yaml: no such file or directory\n"},
	} {
		var out, errb bytes.Buffer
		code := execute(t.Context(), tt.args, &out, &errb)
		got := errb.String()
		if code != tt.code || !strings.HasPrefix(got, tt.stderr) || (tt.stderr == "") != (got == "") {
			t.Errorf("mxgate %q: status %d, stderr %q; want %d, %q", tt.args, code, got, tt.code, tt.stderr)
		}
		if strings.Count(got, "\n") > 1 {
			t.Errorf("mxgate %q: stderr is not one line: %q", tt.args, got)
		}
	}
}
