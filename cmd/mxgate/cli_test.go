package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/quarantine"
	"github.com/mxgate/mxgate/store"
	"github.com/mxgate/mxgate/testenv"
)

const cliToken = "cli-test-token"

var cliRaw = []byte("From: spammer@bad.example\r\nTo: alice@example.org\r\nSubject: cheap\r\n\tfolded\r\nX-Evil: \x1b]0;pwned\x07\r\n\r\nthe body\r\n")

// adminServer runs an admin.Server over a real embedded store on
// 127.0.0.1:0 and returns its URL.
func adminServer(t *testing.T) (string, *store.Backend) {
	return adminServerWith(t, nil)
}

// adminServerWith is adminServer with more options (more may be nil).
func adminServerWith(t *testing.T, more func(*admin.Options)) (string, *store.Backend) {
	t.Helper()
	be, err := store.OpenEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	o := admin.Options{
		Token:      cliToken,
		Quarantine: be.Quarantine,
		Lists:      be.Lists,
		Log:        be.Log,
		Config:     be.Config,
		Reports:    be.Reports,
		Release: func(context.Context, quarantine.Item, []byte) (string, error) {
			return "250 2.0.0 Ok: queued", nil
		},
		NodeID: "n1",
	}
	if more != nil {
		more(&o)
	}
	url := serveAdmin(t, o)

	now := time.Now().UTC()
	for _, it := range []quarantine.Item{
		{ID: "Q1", Time: now.Add(-2 * time.Hour), Sender: "spammer@bad.example", Recipients: []string{"alice@example.org"}, Verdict: "spam", Score: 9.5, Symbols: []string{"GTUBE(9.50)"}, Subject: "cheap \x1b[31mred", Node: "n1"},
		{ID: "Q2", Time: now.Add(-30 * time.Minute), Sender: "", Recipients: []string{"bob@example.org", "carol@example.org"}, Verdict: "virus", Viruses: []string{"Eicar-Test-Signature"}, Node: "n2"},
		{ID: "Q3", Time: now.Add(-72 * time.Hour), Sender: "old@bad.example", Recipients: []string{"alice@example.org"}, Verdict: "spam", Score: 6.1},
	} {
		if err := be.Quarantine.Put(context.Background(), it, cliRaw); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []msglog.Record{
		{ID: "L1", Time: now.Add(-3 * time.Hour), Sender: "a@one.example", Recipients: []string{"alice@example.org"}, Action: "deliver", Verdict: "clean", Score: 0.5, Node: "n1"},
		{ID: "L2", Time: now.Add(-time.Hour), Sender: "b@two.example", Recipients: []string{"bob@example.org"}, Action: "reject", Verdict: "virus", Node: "n2"},
	} {
		if err := be.Log.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	return url, be
}

// serveAdmin runs an admin.Server with o on 127.0.0.1:0 until the test ends
// and returns its URL.
func serveAdmin(t *testing.T, o admin.Options) string {
	t.Helper()
	srv, err := admin.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + testenv.Serve(t, srv.Serve)
}

// run executes the real command tree in-process, as main does.
func run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runIn(t, "", args...)
}

// runIn is run with stdin as the command's standard input.
func runIn(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCmd()
	root.SetIn(strings.NewReader(stdin))
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

// mustRun runs a management command against url with the token.
func mustRun(t *testing.T, url string, args ...string) string {
	t.Helper()
	out, _, err := run(t, append(args, "--admin", url, "--token", cliToken)...)
	if err != nil {
		t.Fatalf("mxgate %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func TestQuarantineCommands(t *testing.T) {
	url, be := adminServer(t)

	out := mustRun(t, url, "quarantine", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "TIME") || !strings.Contains(lines[0], "VERDICT") {
		t.Fatalf("table:\n%s", out)
	}
	if !strings.Contains(lines[1], "Q2") || !strings.Contains(lines[1], "<>") || !strings.Contains(lines[1], "bob@example.org +1") || !strings.Contains(lines[2], "9.50") {
		t.Errorf("rows:\n%s", out)
	}

	out = mustRun(t, url, "quarantine", "list", "--rcpt", "alice@example.org", "--since", "24h", "--json")
	var items []quarantine.Item
	if err := json.Unmarshal([]byte(out), &items); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if len(items) != 1 || items[0].ID != "Q1" {
		t.Errorf("filtered: %+v", items)
	}
	out = mustRun(t, url, "quarantine", "list", "--verdict", "virus", "--json")
	if err := json.Unmarshal([]byte(out), &items); err != nil || len(items) != 1 || items[0].ID != "Q2" {
		t.Errorf("--verdict: %v %s", err, out)
	}
	out = mustRun(t, url, "quarantine", "list", "--sender", "nobody@x.example", "--json")
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("empty --json = %q, want []", out)
	}
	out = mustRun(t, url, "quarantine", "list", "--limit", "1")
	if strings.Count(out, "\n") != 2 {
		t.Errorf("--limit 1:\n%s", out)
	}

	out = mustRun(t, url, "quarantine", "show", "Q1")
	for _, want := range []string{"ID:", "Q1", "Verdict:", "spam", "GTUBE(9.50)", "Subject: cheap\n", "\tfolded\n", "X-Evil: ?]0;pwned?"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "the body") {
		t.Errorf("show printed the body:\n%s", out)
	}
	if strings.ContainsAny(out, "\x1b\x07\r") {
		t.Errorf("show passed control characters to the terminal: %q", out)
	}
	if out := mustRun(t, url, "quarantine", "show", "Q1", "--raw"); out != string(cliRaw) {
		t.Errorf("--raw = %q", out)
	}
	var it quarantine.Item
	if err := json.Unmarshal([]byte(mustRun(t, url, "quarantine", "show", "Q2", "--json")), &it); err != nil || it.Viruses[0] != "Eicar-Test-Signature" {
		t.Errorf("show --json: %+v %v", it, err)
	}

	out = mustRun(t, url, "quarantine", "release", "Q1")
	if out != "released Q1: 250 2.0.0 Ok: queued\n" {
		t.Errorf("release: %q", out)
	}
	// A second release is refused with one line naming the first: the
	// operator the CLI named, and when.
	first, err := be.Quarantine.Get(context.Background(), "Q1")
	if err != nil || len(first.Releases) != 1 {
		t.Fatalf("release not recorded: %+v, %v", first.Releases, err)
	}
	op := operator()
	if op == "" || !strings.HasPrefix(first.Releases[0].By, op+", admin API from 127.0.0.1:") {
		t.Errorf("release recorded as by %q, want the operator %q first", first.Releases[0].By, op)
	}
	_, _, err = run(t, "quarantine", "release", "Q1", "--admin", url, "--token", cliToken)
	for _, want := range []string{"release of Q1 refused: it was released already, by " + op + ", admin API from 127.0.0.1:",
		" at " + first.Released.UTC().Format(time.RFC3339) + "; use --force", "(HTTP 409)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("second release: err %v, want %q in it", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "\n") {
		t.Errorf("409 error is not one line: %q", err)
	}
	out = mustRun(t, url, "quarantine", "release", "Q1", "--force")
	if !strings.HasPrefix(out, "released Q1: 250 2.0.0 Ok: queued\nnote: forced; a second copy (released before by "+op+", admin API from 127.0.0.1:") {
		t.Errorf("forced release: %q", out)
	}
	out = mustRun(t, url, "quarantine", "show", "Q1")
	if !strings.Contains(out, "Released (forced):") || strings.Count(out, "Released") != 2 {
		t.Errorf("show after a forced release:\n%s", out)
	}

	if out := mustRun(t, url, "quarantine", "delete", "Q3"); out != "deleted Q3\n" {
		t.Errorf("delete: %q", out)
	}
	if _, err := be.Quarantine.Get(context.Background(), "Q3"); err == nil {
		t.Error("Q3 still in the store")
	}
	_, _, err = run(t, "quarantine", "show", "Q3", "--admin", url, "--token", cliToken)
	if err == nil || err.Error() != `no quarantined message with id "Q3" (HTTP 404)` {
		t.Errorf("show deleted: %v", err)
	}
}

func TestListsCommands(t *testing.T) {
	url, _ := adminServer(t)
	if out := mustRun(t, url, "lists", "add", "block", "@Spam.EXAMPLE", "--comment", "ticket 42"); out != "added block @spam.example (global)\n" {
		t.Errorf("add: %q", out)
	}
	if out := mustRun(t, url, "lists", "add", "allow", "192.0.2.0/24", "--rcpt", "alice@example.org"); out != "added allow 192.0.2.0/24 (for alice@example.org)\n" {
		t.Errorf("add per rcpt: %q", out)
	}
	out := mustRun(t, url, "lists", "show")
	if !strings.HasPrefix(out, "KIND") || !strings.Contains(out, "@spam.example") || !strings.Contains(out, "ticket 42") || !strings.Contains(out, "alice@example.org") {
		t.Errorf("show:\n%s", out)
	}
	var entries []lists.Entry
	if err := json.Unmarshal([]byte(mustRun(t, url, "lists", "show", "--json")), &entries); err != nil || len(entries) != 2 {
		t.Fatalf("show --json: %+v %v", entries, err)
	}
	if out := mustRun(t, url, "lists", "remove", "block", "@spam.example"); out != "removed block @spam.example (global)\n" {
		t.Errorf("remove: %q", out)
	}
	_, _, err := run(t, "lists", "remove", "block", "@spam.example", "--admin", url, "--token", cliToken)
	if err == nil || !strings.Contains(err.Error(), "(HTTP 404)") {
		t.Errorf("remove again: %v", err)
	}
	mustRun(t, url, "lists", "remove", "allow", "192.0.2.0/24", "--rcpt", "alice@example.org")
	if out := mustRun(t, url, "lists", "show", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("empty --json = %q", out)
	}
	// An allow entry that waives the attachment policy, and says so.
	if out := mustRun(t, url, "lists", "add", "allow", "billing@partner.example", "--skip-attachments"); out != "added allow billing@partner.example (global, attachment policy waived)\n" {
		t.Errorf("add --skip-attachments: %q", out)
	}
	if out := mustRun(t, url, "lists", "show"); !strings.Contains(out, "ATTACHMENTS") || !strings.Contains(out, "waived") {
		t.Errorf("show:\n%s", out)
	}
	entries = nil
	if err := json.Unmarshal([]byte(mustRun(t, url, "lists", "show", "--json")), &entries); err != nil || len(entries) != 1 || !entries[0].SkipAttachments {
		t.Errorf("show --json: %+v %v", entries, err)
	}
	if _, _, err := run(t, "lists", "add", "block", "@x.example", "--skip-attachments", "--admin", url, "--token", cliToken); err == nil || !strings.Contains(err.Error(), "allow entries only") {
		t.Errorf("block --skip-attachments: %v", err)
	}
}

func TestLogCommand(t *testing.T) {
	url, _ := adminServer(t)
	out := mustRun(t, url, "log")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "ACTION") || !strings.Contains(lines[1], "L2") || !strings.Contains(lines[2], "L1") {
		t.Errorf("log:\n%s", out)
	}
	var recs []msglog.Record
	if err := json.Unmarshal([]byte(mustRun(t, url, "log", "--action", "deliver", "--since", "24h", "--json")), &recs); err != nil || len(recs) != 1 || recs[0].ID != "L1" {
		t.Errorf("log --json: %+v %v", recs, err)
	}
	if err := json.Unmarshal([]byte(mustRun(t, url, "log", "--sender", "@TWO.example", "--json")), &recs); err != nil || len(recs) != 1 || recs[0].ID != "L2" {
		t.Errorf("log --sender: %+v %v", recs, err)
	}
	if err := json.Unmarshal([]byte(mustRun(t, url, "log", "--id", "L1", "--limit", "5", "--json")), &recs); err != nil || len(recs) != 1 {
		t.Errorf("log --id: %+v %v", recs, err)
	}
}

func TestEnvironment(t *testing.T) {
	url, _ := adminServer(t)
	t.Setenv("MXGATE_ADMIN", url)
	t.Setenv("MXGATE_TOKEN", cliToken)
	out, _, err := run(t, "log", "--json")
	if err != nil || !strings.HasPrefix(out, "[") {
		t.Fatalf("with env: %v %q", err, out)
	}
	// A flag beats the environment.
	_, _, err = run(t, "log", "--token", "wrong")
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "pass --token or set MXGATE_TOKEN") {
		t.Fatalf("wrong token: %v", err)
	}
}

func TestCommandErrors(t *testing.T) {
	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	t.Setenv("MXGATE_ADMIN", "")
	t.Setenv("MXGATE_TOKEN", "")

	tests := []struct {
		args []string
		want string
	}{
		{[]string{"quarantine", "list", "--admin", down}, "cannot reach the admin API at " + down + ": "},
		{[]string{"lists", "show", "--admin", down}, "cannot reach the admin API at " + down},
		{[]string{"log", "--admin", down}, "cannot reach the admin API at " + down},
		{[]string{"lists", "add", "deny", "@x.example", "--admin", down}, `invalid list kind "deny": want block or allow`},
		{[]string{"lists", "remove", "blocks", "@x.example"}, `invalid list kind "blocks"`},
		{[]string{"lists", "add", "block"}, "mxgate lists add takes 2 argument(s), got 1; usage: mxgate lists add block|allow VALUE"},
		{[]string{"lists", "remove", "block", "a", "b"}, "takes 2 argument(s), got 3"},
		{[]string{"quarantine", "show"}, "mxgate quarantine show takes 1 argument(s), got 0; usage: mxgate quarantine show ID"},
		{[]string{"quarantine", "release", "a", "b", "--admin", down}, "stopped at a (0 of 2 done, 0 failed): cannot reach the admin API"},
		{[]string{"quarantine", "delete"}, "mxgate quarantine delete takes one or more ids (- reads them from standard input); usage: mxgate quarantine delete ID..."},
		{[]string{"quarantine", "learn-spam"}, "takes one or more ids"},
		{[]string{"quarantine", "delete", "-", "-"}, "- (the ids on standard input) given twice"},
		{[]string{"quarantine", "delete", "-"}, "no ids on standard input"},
		{[]string{"quarantine", "list", "--day", "today", "--since", "1h"}, "if any flags in the group [day since] are set none of the others can be"},
		{[]string{"log", "--day", "today", "--until", "1h"}, "none of the others can be"},
		{[]string{"quarantine", "list", "extra"}, "mxgate quarantine list takes no arguments"},
		{[]string{"log", "extra"}, "takes no arguments"},
		{[]string{"quarantine", "purge"}, `unknown command "purge" for mxgate quarantine`},
		{[]string{"lists", "clear"}, `unknown command "clear" for mxgate lists`},
		{[]string{"quarantine", "list", "--admin", "gw.example"}, `--admin: "gw.example": want host:port`},
		{[]string{"quarantine", "show", "Q1", "--raw", "--json"}, "none of the others can be"},
		{[]string{"log", "--limit", "many"}, "invalid argument"},
	}
	for _, tt := range tests {
		_, _, err := run(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("mxgate %s: err %v, want %q", strings.Join(tt.args, " "), err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("mxgate %s: error is not one line: %q", strings.Join(tt.args, " "), err)
		}
	}
	// The server's validation message reaches the user.
	url, _ := adminServer(t)
	_, _, err = run(t, "quarantine", "list", "--since", "later", "--admin", url, "--token", cliToken)
	if err == nil || !strings.Contains(err.Error(), "since: want a duration like 90m, 24h or 7d") || !strings.Contains(err.Error(), "HTTP 400") {
		t.Errorf("bad --since: %v", err)
	}
	_, _, err = run(t, "lists", "add", "block", "example.com", "--admin", url, "--token", cliToken)
	if err == nil || !strings.Contains(err.Error(), "bare domain") {
		t.Errorf("bad value: %v", err)
	}
}

// Every management command documents itself with an example.
func TestHelp(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Example == "" {
			t.Errorf("%s has no example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	for _, c := range []*cobra.Command{newQuarantineCmd(), newListsCmd(), newLogCmd()} {
		walk(c)
	}
	out, _, err := run(t, "quarantine", "list", "--help")
	if err != nil || !strings.Contains(out, "--since") || !strings.Contains(out, "--admin") || !strings.Contains(out, "Examples:") {
		t.Errorf("help: %v\n%s", err, out)
	}
	if t.Setenv("MXGATE_TOKEN", "do-not-show"); true {
		out, _, _ := run(t, "lists", "--help")
		if strings.Contains(out, "do-not-show") {
			t.Error("--help shows the token from the environment")
		}
	}
}
