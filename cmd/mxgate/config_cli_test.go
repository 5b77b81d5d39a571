package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	if out := mustRun(t, url, "config", "set", "-f", good, "--comment", "tighter"); out != "stored revision 1\n" {
		t.Fatalf("set: %q", out)
	}
	out := mustRun(t, url, "config", "show")
	if !strings.HasPrefix(out, "# revision 1, ") || !strings.Contains(out, ": tighter\n") || !strings.Contains(out, "quarantine: 5") || !strings.Contains(out, "mode: active-passive") {
		t.Fatalf("show:\n%s", out)
	}
	// What show prints, set takes back.
	again := write("again.yaml", out)
	if out := mustRun(t, url, "config", "set", "-f", again); out != "stored revision 2\n" {
		t.Fatalf("set from show: %q", out)
	}
	var rev clusterconf.Revision
	if err := json.Unmarshal([]byte(mustRun(t, url, "config", "show", "--json")), &rev); err != nil || rev.Number != 2 || rev.Settings.Weights["n2"] != 0 || len(rev.Settings.Scanner.Rules) != 1 {
		t.Fatalf("show --json: %+v %v", rev, err)
	}
	hist := mustRun(t, url, "config", "show", "--history")
	if lines := strings.Split(strings.TrimSpace(hist), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[1], "2 ") || !strings.Contains(lines[2], "tighter") {
		t.Fatalf("history:\n%s", hist)
	}
	if out := mustRun(t, url, "config", "push"); out != "announced revision 2\n" {
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
		{"stale expect", "mode: active-active\n", "changed meanwhile (revision 1 is no longer current)", []string{"--expect", "1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"config", "set", "-f", write(tt.name+".yaml", tt.text), "--admin", url, "--token", cliToken}, tt.args...)
			if _, _, err := run(t, args...); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	if _, _, err := run(t, "config", "set", "--admin", url); err == nil || !strings.Contains(err.Error(), "needs -f FILE") {
		t.Errorf("set without -f: %v", err)
	}
	if got := mustRun(t, url, "config", "show", "--json"); !strings.Contains(got, `"revision": 2`) {
		t.Errorf("a refused change stored something:\n%s", got)
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
