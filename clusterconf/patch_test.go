package clusterconf

import (
	"strings"
	"testing"
)

// base is a revision with a rule, a weight and raised thresholds: what a
// patch of other keys must leave alone.
func base(t *testing.T) Settings {
	t.Helper()
	s, err := Parse([]byte("scanner:\n  thresholds: {quarantine: 5, reject: 12}\n  rules: ['LOTTERY header Subject =~ /lottery/i 4']\nmode: active-passive\nweights: {n2: 0}\n"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// patched is b with the KEY=VALUE args applied.
func patched(t *testing.T, b Settings, args ...string) Settings {
	t.Helper()
	var ps []Patch
	for _, a := range args {
		p, err := ParsePatch(a)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	s, err := b.With(ps...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWithKeepsOtherKeys(t *testing.T) {
	for _, tt := range []struct {
		name  string
		args  []string
		check func(Settings) bool
		diff  []string
	}{
		{"threshold only keeps rules", []string{"scanner.thresholds.quarantine=7"},
			func(s Settings) bool {
				return s.Scanner.Thresholds.Quarantine == 7 && s.Scanner.Thresholds.Reject == 12 && len(s.Scanner.Rules) == 1 && s.Mode == "active-passive" && s.Weights["n2"] == 0 && len(s.Weights) == 1
			}, []string{"scanner.thresholds.quarantine: 5 -> 7"}},
		{"mode", []string{"mode=active-active"},
			func(s Settings) bool { return s.Mode == "active-active" && len(s.Scanner.Rules) == 1 }, []string{"mode: active-passive -> active-active"}},
		{"engine on_error", []string{"scanner.engines.clamd.on_error=accept"},
			func(s Settings) bool {
				return s.Scanner.Engines.Clamd.OnError == "accept" && s.Scanner.Thresholds.Quarantine == 5
			}, []string{"scanner.engines.clamd.on_error: tempfail -> accept"}},
		{"list as flow", []string{"scanner.rules=['A body /x/ 1', 'B body /y/ 2']"},
			func(s Settings) bool { return len(s.Scanner.Rules) == 2 && s.Scanner.Rules[1] == "B body /y/ 2" }, []string{"scanner.rules: [LOTTERY header Subject =~ /lottery/i 4] -> [A body /x/ 1, B body /y/ 2]"}},
		{"empty list", []string{"scanner.rules=[]"},
			func(s Settings) bool { return len(s.Scanner.Rules) == 0 }, []string{"scanner.rules: [LOTTERY header Subject =~ /lottery/i 4] -> []"}},
		{"a weight added", []string{"weights.n3=50"},
			func(s Settings) bool { return s.Weights["n3"] == 50 && s.Weights["n2"] == 0 }, []string{"weights.n3: (none) -> 50"}},
		{"a map given whole replaces it", []string{"weights={n3: 5}"},
			func(s Settings) bool { return len(s.Weights) == 1 && s.Weights["n3"] == 5 }, []string{"weights.n2: 0 -> (none)", "weights.n3: (none) -> 5"}},
		{"an empty map empties it", []string{"weights={}"},
			func(s Settings) bool { return len(s.Weights) == 0 }, []string{"weights.n2: 0 -> (none)"}},
		{"a section as flow", []string{"scanner.thresholds={reject: 20}"},
			func(s Settings) bool {
				return s.Scanner.Thresholds.Reject == 20 && s.Scanner.Thresholds.Quarantine == 5
			}, []string{"scanner.thresholds.reject: 12 -> 20"}},
		{"two in order", []string{"scanner.thresholds.quarantine=8", "scanner.thresholds.quarantine=9"},
			func(s Settings) bool { return s.Scanner.Thresholds.Quarantine == 9 }, []string{"scanner.thresholds.quarantine: 5 -> 9"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := base(t)
			s := patched(t, b, tt.args...)
			if !tt.check(s) {
				t.Errorf("got %+v", s)
			}
			changes, err := Diff(b, s)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range changes {
				got = append(got, c.String())
			}
			if strings.Join(got, "\n") != strings.Join(tt.diff, "\n") {
				t.Errorf("diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.diff, "\n"))
			}
			if len(base(t).Scanner.Rules) != 1 {
				t.Error("With changed its receiver")
			}
		})
	}
}

func TestPatchRefused(t *testing.T) {
	for _, tt := range []struct{ arg, want string }{
		{"scanner.thresholds.quarantin=7", "scanner.thresholds.quarantin: unknown key; did you mean scanner.thresholds.quarantine"},
		{"scanner.treshold.quarantine=7", "did you mean scanner.thresholds.quarantine"},
		{"quarantine=7", "quarantine: unknown key; did you mean scanner.thresholds.quarantine"},
		{"scanner.engines.clamd.nonsense_entirely_here=1", "did you mean scanner.engines.clamd."},
		{"scanner.thresholds.quarantine=seven", "scanner.thresholds.quarantine"},
		{"scanner.thresholds.quarantine=[1]", "scanner.thresholds.quarantine"},
		{"mode=both", "mode: \"both\" is not one of"},
		{"scanner.rules=['BAD header Subject =~ /x/ four']", "rule"},
		{"scanner.engines.clamd.timeout=fast", "scanner.engines.clamd.timeout"},
		{"scanner.thresholds.quarantine=", "no value"},
		{"mode", "want KEY=VALUE"},
		{"=1", "empty key"},
		{"mode=[a", "not one YAML value"},
		{"mode=a\n---\nb", "more than one YAML value"},
		{"weights.bad id=1", "unknown key"},
		{"scanner.thresholds.quarantine.x=1", "unknown key"},
	} {
		t.Run(tt.arg, func(t *testing.T) {
			p, err := ParsePatch(tt.arg)
			if err == nil {
				_, err = base(t).With(p)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "(line") {
				t.Errorf("a line number of a document the user never saw: %v", err)
			}
		})
	}
}

func TestUnmentioned(t *testing.T) {
	// The case: a file with only scanner.thresholds.
	doc := []byte("scanner:\n  thresholds: {quarantine: 7, reject: 12}\n")
	next, err := Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	changes, err := Diff(base(t), next)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Mentioned(doc)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, c := range Unmentioned(changes, m) {
		keys = append(keys, c.Key)
	}
	if got := strings.Join(keys, " "); got != "scanner.rules mode weights.n2" {
		t.Errorf("unmentioned changes: %q", got)
	}
}

// The report mail keys are set like any other, and checked.
func TestPatchReports(t *testing.T) {
	p, err := ParsePatch("reports.mail_to=[admin@corp.test, boss@corp.test]")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Defaults().With(p)
	if err != nil || len(s.Reports.MailTo) != 2 || s.Reports.MailTo[1] != "boss@corp.test" {
		t.Fatalf("With = %+v, %v", s.Reports, err)
	}
	p, err = ParsePatch("reports.mail_to=[nobody]")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Defaults().With(p); err == nil || !strings.Contains(err.Error(), "reports.mail_to[0]") {
		t.Errorf("With a bad address = %v", err)
	}
}

func TestHistoryChanges(t *testing.T) {
	b := base(t)
	with := func(args ...string) Settings { return patched(t, b, args...) }
	r1 := Revision{Number: 1, Settings: b}
	r2 := Revision{Number: 2, Settings: with("scanner.thresholds.quarantine=7")}
	r3 := Revision{Number: 3, Settings: with("scanner.thresholds.quarantine=7", "mode=active-active")}
	r4 := Revision{Number: 4, Settings: r3.Settings}
	for _, tt := range []struct {
		name string
		revs []Revision
		want [][]string // per revision; nil = nothing to compare with
	}{
		{"none", nil, [][]string{}},
		{"one", []Revision{r1}, [][]string{nil}},
		{"newest first", []Revision{r4, r3, r2, r1}, [][]string{{}, {"mode: active-passive -> active-active"}, {"scanner.thresholds.quarantine: 5 -> 7"}, nil}},
		{"a gap compares with the one listed", []Revision{r3, r1}, [][]string{{"scanner.thresholds.quarantine: 5 -> 7", "mode: active-passive -> active-active"}, nil}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := HistoryChanges(tt.revs)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d entries, want %d", len(got), len(tt.want))
			}
			for i, changes := range got {
				var lines []string
				for _, c := range changes {
					lines = append(lines, c.String())
				}
				if strings.Join(lines, "|") != strings.Join(tt.want[i], "|") || (changes == nil) != (tt.want[i] == nil) {
					t.Errorf("revision %d: %q (nil %v), want %q (nil %v)", tt.revs[i].Number, lines, changes == nil, tt.want[i], tt.want[i] == nil)
				}
			}
		})
	}
}
