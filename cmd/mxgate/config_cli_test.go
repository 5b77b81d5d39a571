package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/clusterconf"
	"github.com/mxgate/mxgate/report"
)

func TestConfigCommands(t *testing.T) {
	url, _ := adminServer(t)
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	if _, _, err := run(t, "config", "show", "--admin", url, "--token", cliToken); err == nil || !strings.Contains(err.Error(), "no cluster configuration stored yet (HTTP 404)") {
		t.Fatalf("show before any revision: %v", err)
	}
	good := write("good.yaml", "scanner:\n  thresholds: {quarantine: 5, reject: 12}\n  rules: ['LOTTERY header Subject =~ /lottery/i 4']\nmode: active-passive\nweights: {n2: 0}\n")
	out := mustRun(t, url, "config", "set", "-f", good, "--comment", "tighter")
	if !strings.Contains(out, "  scanner.thresholds.quarantine: 6 -> 5\n") || !strings.Contains(out, "  mode: active-active -> active-passive\n") || !strings.HasSuffix(out, "stored revision 1\n") {
		t.Fatalf("set:\n%s", out)
	}
	out = mustRun(t, url, "config", "show")
	if !strings.HasPrefix(out, "# revision 1, ") || !strings.Contains(out, ": tighter\n") || !strings.Contains(out, "quarantine: 5") || !strings.Contains(out, "mode: active-passive") {
		t.Fatalf("show:\n%s", out)
	}
	// What show prints, set takes back, and it changes nothing.
	again := write("again.yaml", out)
	if out := mustRun(t, url, "config", "set", "-f", again); out != "no change; revision 1 stays\n" {
		t.Fatalf("set from show: %q", out)
	}

	// The case by KEY=VALUE: the threshold changes, the rules, the
	// mode and the weight stay.
	if out := mustRun(t, url, "config", "set", "scanner.thresholds.quarantine=7", "scanner.engines.clamd.on_error=accept", "--comment", "thresholds"); out != "  scanner.thresholds.quarantine: 5 -> 7\n  scanner.engines.clamd.on_error: tempfail -> accept\nstored revision 2\n" {
		t.Fatalf("set KEY=VALUE: %q", out)
	}
	rev := showJSON(t, url)
	if s := rev.Settings; rev.Number != 2 || s.Scanner.Thresholds.Quarantine != 7 || s.Scanner.Thresholds.Reject != 12 || len(s.Scanner.Rules) != 1 || s.Mode != "active-passive" || len(s.Weights) != 1 || s.Scanner.Engines.Clamd.OnError != "accept" {
		t.Fatalf("after set KEY=VALUE: %+v", rev)
	}

	// The case by file: a document with only the thresholds would
	// empty the rules, reset the mode and drop the weight. Refused, with
	// what it would change; config diff shows the same; --replace stores it.
	partial := write("partial.yaml", "scanner:\n  thresholds: {quarantine: 7, reject: 12}\n  engines: {clamd: {on_error: accept}}\n")
	_, _, err := run(t, "config", "set", "-f", partial, "--admin", url, "--token", cliToken)
	for _, want := range []string{"would drop or change 3 key(s) it does not mention (against revision 2)", "  scanner.rules: [LOTTERY header Subject =~ /lottery/i 4] -> []\n", "  mode: active-passive -> active-active\n", "  weights.n2: 0 -> (none)\n", "add --replace"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("partial file without --replace: %v\nwant %q", err, want)
		}
	}
	if rev := showJSON(t, url); rev.Number != 2 {
		t.Fatalf("a refused replacement stored revision %d", rev.Number)
	}
	if out := mustRun(t, url, "config", "diff", partial); out != "! scanner.rules: [LOTTERY header Subject =~ /lottery/i 4] -> []\n! mode: active-passive -> active-active\n! weights.n2: 0 -> (none)\n! = not in "+partial+": `mxgate config set -f` needs --replace to change it\n" {
		t.Errorf("config diff:\n%s", out)
	}
	if out := mustRun(t, url, "config", "diff", again); out != "  scanner.thresholds.quarantine: 7 -> 5\n  scanner.engines.clamd.on_error: accept -> tempfail\n" {
		t.Errorf("config diff of the first revision's document:\n%s", out)
	}
	if out := mustRun(t, url, "config", "set", "-f", partial, "--replace", "--comment", "defaults again"); !strings.HasPrefix(out, "  scanner.rules: ") || !strings.HasSuffix(out, "stored revision 3\n") {
		t.Fatalf("set --replace:\n%s", out)
	}
	if rev := showJSON(t, url); rev.Number != 3 || len(rev.Settings.Scanner.Rules) != 0 || rev.Settings.Mode != "active-active" {
		t.Fatalf("after --replace: %+v", rev)
	}
	if out := mustRun(t, url, "config", "diff", partial); out != "no change against revision 3\n" {
		t.Errorf("config diff, nothing to change: %q", out)
	}

	hist := mustRun(t, url, "config", "show", "--history")
	lines := strings.Split(strings.TrimSpace(hist), "\n")
	for i, want := range [][]string{
		{"REVISION", "TIME", "BY", "CHANGED", "COMMENT"},
		{"3 ", "admin API from 127.0.0.1:", " scanner.rules,mode,weights.n2 ", "defaults again"},
		{"2 ", " scanner.thresholds.quarantine,scanner.engines.clamd.on_error ", "thresholds"},
		{"1 ", " (first revision) ", "tighter"},
	} {
		for _, w := range want {
			if len(lines) != 4 || !strings.Contains(lines[i], w) {
				t.Errorf("history line %d lacks %q:\n%s", i, w, hist)
			}
		}
	}
	// The oldest line shown still names its keys: one more revision is
	// read to compare with.
	if out := mustRun(t, url, "config", "show", "--history", "--limit", "1"); !strings.Contains(out, " scanner.rules,mode,weights.n2 ") || strings.Count(out, "\n") != 2 {
		t.Errorf("history --limit 1:\n%s", out)
	}
	if out := mustRun(t, url, "config", "push"); out != "announced revision 3\n" {
		t.Fatalf("push: %q", out)
	}

	for _, tt := range []struct {
		name, text, want string
		args             []string
	}{
		{"unknown key", "scanner:\n  thresholds: {quarantine: 5}\n  rulez: []\n", "scanner.rulez: unknown key (line 3)", nil},
		{"bad value", "mode: both\n", `mode`, nil},
		{"bad rule", "scanner: {rules: ['BAD header Subject =~ /x/ four']}\n", "rule", nil},
		{"empty", "# nothing\n", "empty document", nil},
		{"unknown KEY", "", "scanner.thresholds.quarantin: unknown key; did you mean scanner.thresholds.quarantine", []string{"scanner.thresholds.quarantin=3"}},
		{"bad VALUE", "", "scanner.thresholds.reject: ", []string{"mode=active-passive", "scanner.thresholds.reject=lots"}},
		{"invalid VALUE", "", `mode: "both" is not one of`, []string{"mode=both"}},
		{"no VALUE", "", "scanner.rules: no value", []string{"scanner.rules="}},
		{"both", "mode: active-active\n", "not both", []string{"mode=active-active"}},
		{"replace without file", "", "--replace is for -f FILE", []string{"mode=active-passive", "--replace"}},
		{"stale expect", "", "changed meanwhile (revision 1 is no longer current)", []string{"mode=active-passive", "--expect", "1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"config", "set", "--admin", url, "--token", cliToken}, tt.args...)
			if tt.text != "" {
				args = append(args, "-f", write(tt.name+".yaml", tt.text))
			}
			if _, _, err := run(t, args...); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			} else if strings.Contains(err.Error(), "(line") && tt.text == "" {
				t.Errorf("a KEY=VALUE error names a line: %v", err)
			}
		})
	}
	if _, _, err := run(t, "config", "set", "--admin", url); err == nil || !strings.Contains(err.Error(), "needs KEY=VALUE arguments, or -f FILE") {
		t.Errorf("set without arguments: %v", err)
	}
	if rev := showJSON(t, url); rev.Number != 3 {
		t.Errorf("a refused change stored revision %d", rev.Number)
	}
}

func showJSON(t *testing.T, url string) clusterconf.Revision {
	t.Helper()
	var rev clusterconf.Revision
	if err := json.Unmarshal([]byte(mustRun(t, url, "config", "show", "--json")), &rev); err != nil {
		t.Fatal(err)
	}
	return rev
}

// A change made against a revision that someone else replaced meanwhile
// is refused, not stored over theirs: between the CLI's read and its
// write, a proxy in front of the real admin server lets another
// administrator change the mode first.
func TestConfigSetConcurrent(t *testing.T) {
	url, _ := adminServer(t)
	mustRun(t, url, "config", "set", "scanner.thresholds.quarantine=5")
	other, err := admin.NewClient(url, cliToken)
	if err != nil {
		t.Fatal(err)
	}
	target, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var once sync.Once
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Path == "/api/v1/config" {
			once.Do(func() {
				cur, err := other.Config(r.Context())
				if err == nil {
					cur.Settings.Mode = "active-passive"
					_, err = other.SetConfig(r.Context(), admin.ConfigRequest{Settings: cur.Settings, Expect: cur.Number, Comment: "the other admin"})
				}
				if err != nil {
					t.Errorf("the concurrent change: %v", err)
				}
			})
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	_, _, err = run(t, "config", "set", "scanner.thresholds.quarantine=9", "--admin", front.URL, "--token", cliToken)
	if err == nil || !strings.Contains(err.Error(), "changed meanwhile (revision 1 is no longer current)") || !strings.Contains(err.Error(), "(HTTP 409)") {
		t.Fatalf("set against a replaced revision: %v", err)
	}
	if rev := showJSON(t, url); rev.Number != 2 || rev.Settings.Mode != "active-passive" || rev.Settings.Scanner.Thresholds.Quarantine != 5 {
		t.Fatalf("after the conflict: %+v", rev)
	}
	// Done again, it is made against the other's revision and keeps it.
	mustRun(t, front.URL, "config", "set", "scanner.thresholds.quarantine=9")
	if rev := showJSON(t, url); rev.Number != 3 || rev.Settings.Mode != "active-passive" || rev.Settings.Scanner.Thresholds.Quarantine != 9 {
		t.Fatalf("after the retry: %+v", rev)
	}
}

func TestReportCommand(t *testing.T) {
	url, be := adminServer(t)
	// adminServer logged L1 3 h and L2 1 h ago; the day they are in is
	// not stored, so it is built on request.
	today := time.Now().UTC().Format(time.DateOnly)
	var res struct {
		report.Report
		Stored bool `json:"stored"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, url, "report", "--day", today, "--json")), &res); err != nil {
		t.Fatal(err)
	}
	if res.Stored || res.Day != today || res.Total == 0 || res.Node != "n1" {
		t.Fatalf("built report: %+v", res)
	}

	stored := report.Report{Day: "2026-01-02", Generated: time.Date(2026, 1, 3, 0, 5, 0, 0, time.UTC), Node: "n2", Total: 3,
		ByAction: map[string]int{"deliver": 2, "reject": 1}, ByVerdict: map[string]int{"clean": 2, "virus": 1},
		ByNode: map[string]int{"n1": 1, "n2": 2}, Viruses: []report.Count{{Key: "Eicar-Test-Signature", N: 1}}}
	if created, err := be.Reports.Create(t.Context(), stored); err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	out := mustRun(t, url, "report", "--day", "2026-01-02")
	for _, want := range []string{"Report for 2026-01-02 (stored, written by n2", "Messages: 3", "By action:\n  2  deliver\n  1  reject", "Viruses:\n  1  Eicar-Test-Signature", "Top senders of rejected and quarantined mail:\n  (none)"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	for _, tt := range []struct{ day, want string }{
		{"2026-13-01", "day: want YYYY-MM-DD"},
		{"2999-01-01", "is in the future"},
	} {
		if _, _, err := run(t, "report", "--day", tt.day, "--admin", url, "--token", cliToken); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("--day %s: %v", tt.day, err)
		}
	}
}
