package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/quarantine"
)

// runAs runs a management command against url with the token and stdin,
// returning the output, the error and the exit status main would give.
func runAs(t *testing.T, url, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runIn(t, stdin, append(args, "--admin", url, "--token", cliToken)...)
}

// The quarantine commands as a Postfix administrator uses them: ids in
// any case, several at once or from stdin, one line per outcome, and a
// failure that does not stop the rest.
func TestQuarantineSeveralIDs(t *testing.T) {
	url, be := adminServer(t)
	ctx := context.Background()
	for _, id := range []string{"1A2372C4E0B5F3A9", "1A2372C5117D20C4", "1A2372C5117D20C5"} {
		it := quarantine.Item{ID: id, Time: time.Now().Add(-time.Minute), Sender: "s@spam.example", Recipients: []string{"alice@example.org"}, Verdict: "spam"}
		if err := be.Quarantine.Put(ctx, it, cliRaw); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name      string
		stdin     string
		args      []string
		stdout    string // exactly
		stderr    string // in it
		err       string // in it; "" = success
		remaining []string
	}{
		{"show in lower case", "", []string{"quarantine", "show", "1a2372c4e0b5f3a9", "--json"}, "", "", "", nil},
		{"release two, one missing", "", []string{"quarantine", "release", "1a2372c4e0b5f3a9", "NOPE", "q1"},
			"released 1A2372C4E0B5F3A9: 250 2.0.0 Ok: queued\nreleased Q1: 250 2.0.0 Ok: queued\n",
			"mxgate: NOPE: no quarantined message with id \"NOPE\" (HTTP 404)\n",
			"1 of 3 failed, the first: no quarantined message with id \"NOPE\" (HTTP 404)", nil},
		{"delete from stdin", "# the spam run\n1a2372c5117d20c4\n\n  1A2372C5117D20C5  \nNOPE\n", []string{"quarantine", "delete", "-"},
			"deleted 1a2372c5117d20c4\ndeleted 1A2372C5117D20C5\n", "mxgate: NOPE: no quarantined message", "1 of 3 failed",
			[]string{"1A2372C4E0B5F3A9", "Q2", "Q1", "Q3"}},
		{"delete one missing is a plain failure", "", []string{"quarantine", "delete", "1A2372C5117D20C4"}, "", "", "no quarantined message with id \"1A2372C5117D20C4\" (HTTP 404)", nil},
		{"ids and stdin", "Q3\n", []string{"quarantine", "delete", "q2", "-"}, "deleted q2\ndeleted Q3\n", "", "", []string{"1A2372C4E0B5F3A9", "Q1"}},
	}
	for _, tt := range tests {
		stdout, stderr, err := runAs(t, url, tt.stdin, tt.args...)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: err %v, want %q", tt.name, err, tt.err)
		}
		if tt.stdout != "" && stdout != tt.stdout {
			t.Errorf("%s: stdout %q, want %q", tt.name, stdout, tt.stdout)
		}
		if !strings.Contains(stderr, tt.stderr) {
			t.Errorf("%s: stderr %q lacks %q", tt.name, stderr, tt.stderr)
		}
		if tt.remaining != nil {
			items, err := be.Quarantine.List(ctx, quarantine.Filter{})
			var got []string
			for _, it := range items {
				got = append(got, it.ID)
			}
			if err != nil || strings.Join(got, ",") != strings.Join(tt.remaining, ",") {
				t.Errorf("%s: left %v, want %v (%v)", tt.name, got, tt.remaining, err)
			}
		}
	}
	// The exit status of a partial failure is not 0.
	if code := execute(ctx, []string{"quarantine", "delete", "NOPE1", "NOPE2", "--admin", url, "--token", cliToken}, &strings.Builder{}, &strings.Builder{}); code == 0 {
		t.Error("a failed delete exited 0")
	}
}

// Release to one recipient of Q2 (bob and carol), then the other; the
// list shows how far it went, and the log who did it.
func TestQuarantineReleaseOneRecipient(t *testing.T) {
	var sent [][]string
	url, _ := adminServerWith(t, func(o *admin.Options) {
		o.Release = func(_ context.Context, it quarantine.Item, _ []byte) (string, error) {
			sent = append(sent, it.Recipients)
			return "250 2.0.0 Ok: queued as 4XyZ", nil
		}
	})
	steps := []struct {
		args   []string
		stdout string
		err    string
	}{
		{[]string{"release", "Q2", "--rcpt", "Carol@Example.org"}, "released Q2 to carol@example.org: 250 2.0.0 Ok: queued as 4XyZ\n", ""},
		{[]string{"release", "Q2", "--rcpt", "carol@example.org"}, "", "release of Q2 refused: it was released to carol@example.org already, by " + operator() + ", admin API from 127.0.0.1:"},
		{[]string{"release", "Q2"}, "", "release the others with --rcpt (API: rcpt=) bob@example.org, or use --force"},
		{[]string{"release", "Q2", "--rcpt", "eve@example.org"}, "", `rcpt: "eve@example.org": not a recipient of the quarantined message (recipients: bob@example.org, carol@example.org) (HTTP 400)`},
		{[]string{"release", "Q2", "--rcpt", "bob@example.org"}, "released Q2 to bob@example.org: 250 2.0.0 Ok: queued as 4XyZ\n", ""},
	}
	for i, s := range steps {
		if i == 4 {
			out := mustRun(t, url, "quarantine", "list", "--rcpt", "bob@example.org")
			if !regexp.MustCompile(`Q2 .* \d\d:\d\d:\d\d \(1 of 2\)`).MatchString(out) {
				t.Errorf("list after a partial release:\n%s", out)
			}
			if out := mustRun(t, url, "quarantine", "show", "Q2"); !strings.Contains(out, "Not released to:  bob@example.org") {
				t.Errorf("show after a partial release:\n%s", out)
			}
		}
		stdout, _, err := runAs(t, url, "", append([]string{"quarantine"}, s.args...)...)
		if s.err == "" && (err != nil || stdout != s.stdout) {
			t.Errorf("%v: %q, %v; want %q", s.args, stdout, err, s.stdout)
		}
		if s.err != "" && (err == nil || !strings.Contains(err.Error(), s.err)) {
			t.Errorf("%v: err %v, want %q", s.args, err, s.err)
		}
	}
	if out := mustRun(t, url, "quarantine", "show", "q2"); !regexp.MustCompile(`Released: +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d to carol@example.org by `).MatchString(out) ||
		!strings.Contains(out, "to bob@example.org by") || strings.Contains(out, "Not released to") {
		t.Errorf("show after both releases:\n%s", out)
	}
	if len(sent) != 2 || strings.Join(sent[0], ",") != "carol@example.org" || strings.Join(sent[1], ",") != "bob@example.org" {
		t.Errorf("delivered to %v", sent)
	}
	out := mustRun(t, url, "quarantine", "list", "--rcpt", "bob@example.org")
	if strings.Contains(out, "of 2)") || !regexp.MustCompile(`Q2 .*virus .* 0 +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +-\n`).MatchString(out) {
		t.Errorf("list after both releases:\n%s", out)
	}
	var recs []msglog.Record
	if err := json.Unmarshal([]byte(mustRun(t, url, "log", "--id", "q2", "--action", "release", "--json")), &recs); err != nil || len(recs) != 2 {
		t.Fatalf("log of the releases: %v %+v", err, recs)
	}
	if r := recs[0]; strings.Join(r.Recipients, ",") != "bob@example.org" || !strings.HasPrefix(r.By, operator()+", admin API from 127.0.0.1:") || r.Downstream != "250 2.0.0 Ok: queued as 4XyZ" {
		t.Errorf("log record of the last release: %+v", r)
	}
	mustRun(t, url, "quarantine", "delete", "q3")
	out = mustRun(t, url, "log", "--action", "delete")
	if !strings.Contains(out, "BY") || !regexp.MustCompile(`Q3 +old@bad.example +alice@example.org +delete +spam +6.10 +n1 +`+regexp.QuoteMeta(operator())+`, admin API`).MatchString(out) {
		t.Errorf("log of the delete:\n%s", out)
	}
}

// --rcpt and --sender match alike in quarantine list and log; the time
// forms; an empty answer says so.
func TestFiltersAlike(t *testing.T) {
	url, be := adminServer(t)
	if err := be.Log.Append(context.Background(), msglog.Record{ID: "L3", Time: time.Now().Add(-10 * time.Minute), Sender: "x@mx.bad.example", Recipients: []string{"dave@sub.example.org"}, Action: "reject", Node: "n1"}); err != nil {
		t.Fatal(err)
	}
	if err := be.Quarantine.Put(context.Background(), quarantine.Item{ID: "Q4", Time: time.Now().Add(-10 * time.Minute), Sender: "x@mx.bad.example", Recipients: []string{"dave@sub.example.org"}, Verdict: "spam", Subject: strings.Repeat("long subject ", 10), Size: 123456}, cliRaw); err != nil {
		t.Fatal(err)
	}
	ids := func(cmd string, args ...string) string {
		t.Helper()
		out := mustRun(t, url, append([]string{cmd}, append(args, "--json")...)...)
		var got []struct{ ID string }
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%s %v: %v\n%s", cmd, args, err, out)
		}
		var s []string
		for _, g := range got {
			s = append(s, g.ID)
		}
		return strings.Join(s, ",")
	}
	yesterday := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	tests := []struct {
		args            []string
		quarantine, log string
	}{
		{[]string{"--rcpt", "ALICE@example.org"}, "Q1,Q3", "L1"},
		{[]string{"--rcpt", "@example.org"}, "Q2,Q1,Q3", "L2,L1"},
		{[]string{"--rcpt", ".example.org"}, "Q4,Q2,Q1,Q3", "L3,L2,L1"},
		{[]string{"--rcpt", "@sub.example.org"}, "Q4", "L3"},
		{[]string{"--rcpt", "@ample.org"}, "", ""},
		{[]string{"--sender", "@bad.example"}, "Q1,Q3", ""},
		{[]string{"--sender", ".bad.example"}, "Q4,Q1,Q3", "L3"},
		{[]string{"--sender", "SPAMMER@bad.example"}, "Q1", ""},
		{[]string{"--since", "1d"}, "Q4,Q2,Q1", "L3,L2,L1"},
		{[]string{"--since", "20m"}, "Q4", "L3"},
		{[]string{"--since", "4d", "--until", "2d"}, "Q3", ""},
		{[]string{"--until", "2026-01-01"}, "", ""},
		{[]string{"--since", yesterday, "--rcpt", "@example.org"}, "Q2,Q1", "L2,L1"},
		{[]string{"--day", time.Now().UTC().AddDate(0, 0, -3).Format(time.DateOnly)}, "Q3", ""},
		{[]string{"--day", "tomorrow"}, "error", "error"},
		{[]string{"--rcpt", "alice"}, "error", "error"},
		{[]string{"--sender", "bad.example"}, "error", "error"},
	}
	for _, tt := range tests {
		for _, c := range []struct{ cmd, want string }{{"quarantine", tt.quarantine}, {"log", tt.log}} {
			args := append([]string{}, tt.args...)
			if c.cmd == "quarantine" {
				args = append([]string{"list"}, args...)
			}
			if c.want == "error" {
				_, _, err := runAs(t, url, "", append([]string{c.cmd}, args...)...)
				if err == nil || !strings.Contains(err.Error(), "HTTP 400") || !strings.Contains(err.Error(), "want") && !strings.Contains(err.Error(), "write @") && !strings.Contains(err.Error(), "accepted forms") {
					t.Errorf("%s %v: err %v, want a 400 naming the forms", c.cmd, args, err)
				}
				continue
			}
			if got := ids(c.cmd, args...); got != c.want {
				t.Errorf("%s %v = %q, want %q", c.cmd, args, got, c.want)
			}
		}
	}
	// Empty results say so, except as JSON.
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"quarantine", "list", "--rcpt", "nobody@example.org"}, "no quarantined messages match\n"},
		{[]string{"log", "--rcpt", "nobody@example.org"}, "no log records match\n"},
		{[]string{"quarantine", "list", "--rcpt", "nobody@example.org", "--json"}, "[]\n"},
		{[]string{"log", "--rcpt", "nobody@example.org", "--json"}, "[]\n"},
	} {
		if out := mustRun(t, url, tt.args...); out != tt.want {
			t.Errorf("%v: %q, want %q", tt.args, out, tt.want)
		}
	}
	// The list shows SUBJECT (shortened) and SIZE.
	out := mustRun(t, url, "quarantine", "list", "--rcpt", "@sub.example.org")
	if !strings.Contains(out, "SUBJECT") || !strings.Contains(out, "SIZE") || !strings.Contains(out, "RELEASED") ||
		!strings.Contains(out, " 120.6K ") || !strings.Contains(out, "long subject long subject long subject long subje…") {
		t.Errorf("list:\n%s", out)
	}
}
