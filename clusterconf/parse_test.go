package clusterconf

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/scanner"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr []string // substrings of the error; none = success
		check   func(t *testing.T, s Settings)
	}{
		{
			name: "yaml",
			in: `scanner:
  thresholds: {quarantine: 4.5, reject: 12}
  virus_action: reject
  on_limit: tempfail
  rules:
    - VIAGRA header Subject =~ /v[i1]agra/i 3.5
  attachments:
    blocked_extensions: [".EXE", js]
    blocked_types: [Application/X-Msdownload]
    double_extensions: false
  max_mime_depth: 20
mode: active-passive
weights: {n1: 100, n2: 0}
`,
			check: func(t *testing.T, s Settings) {
				want := Defaults()
				want.Scanner.Thresholds.Quarantine, want.Scanner.Thresholds.Reject = 4.5, 12
				want.Scanner.VirusAction = "reject"
				want.Scanner.OnLimit = "tempfail"
				want.Scanner.Rules = []string{"VIAGRA header Subject =~ /v[i1]agra/i 3.5"}
				want.Scanner.Attachments.BlockedExtensions = []string{"exe", "js"}
				want.Scanner.Attachments.BlockedTypes = []string{"application/x-msdownload"}
				want.Scanner.Attachments.DoubleExtensions = false
				want.Scanner.MaxMIMEDepth = 20
				want.Mode = config.ModeActivePassive
				want.Weights = map[string]int{"n1": 100, "n2": 0}
				if !reflect.DeepEqual(s, want) {
					t.Errorf("got  %#v\nwant %#v", s, want)
				}
			},
		},
		{
			name: "reports",
			in:   "reports:\n  mail_to: [admin@corp.test, boss@corp.test]\n  mail_from: mxgate@corp.test\n",
			check: func(t *testing.T, s Settings) {
				want := config.Reports{MailTo: []string{"admin@corp.test", "boss@corp.test"}, MailFrom: "mxgate@corp.test"}
				if !reflect.DeepEqual(s.Reports, want) {
					t.Errorf("reports = %+v, want %+v", s.Reports, want)
				}
			},
		},
		{
			name:    "reports bad address",
			in:      "reports:\n  mail_to: [admin@corp.test, \"Boss <boss@corp.test>\"]\n",
			wantErr: []string{"reports.mail_to[1]", "not a mail address"},
		},
		{
			name: "json with tabs",
			in:   "{\n\t\"mode\": \"active-passive\",\n\t\"scanner\": {\n\t\t\"thresholds\": {\"quarantine\": 3, \"reject\": 9}\n\t}\n}",
			check: func(t *testing.T, s Settings) {
				if s.Mode != config.ModeActivePassive || s.Scanner.Thresholds.Reject != 9 {
					t.Errorf("got %+v", s)
				}
				// Absent keys keep their default.
				if s.Scanner.MaxMIMEParts != Defaults().Scanner.MaxMIMEParts || s.Scanner.VirusAction != "quarantine" {
					t.Errorf("defaults lost: %+v", s.Scanner)
				}
			},
		},
		{name: "partial keeps defaults", in: "mode: active-active\n", check: func(t *testing.T, s Settings) {
			if !reflect.DeepEqual(s, Defaults()) {
				t.Errorf("got %#v, want Defaults()", s)
			}
		}},
		{name: "empty", in: "# nothing\n", wantErr: []string{"empty document"}},
		{name: "not a mapping", in: "- a\n- b\n", wantErr: []string{"must be a mapping", "line 1"}},
		{name: "unknown top key", in: "mode: active-active\nworkers: 8\n", wantErr: []string{"workers: unknown key (line 2)"}},
		{name: "unknown nested key", in: "scanner:\n  thresholds:\n    spam: 3\n", wantErr: []string{"scanner.thresholds.spam: unknown key (line 3)"}},
		{name: "unknown json key", in: `{"scanner": {"clamd": "tcp://x:3310"}}`, wantErr: []string{"scanner.clamd: unknown key (line 1)"}},
		{name: "repeated key", in: "mode: active-active\nmode: active-passive\n", wantErr: []string{"mode: key repeated (lines 1 and 2)"}},
		{name: "wrong type", in: "scanner:\n  max_mime_depth: deep\n", wantErr: []string{`scanner.max_mime_depth: want an integer, got "deep" (line 2)`}},
		{name: "rules not a list", in: "scanner:\n  rules: X body /a/ 1\n", wantErr: []string{"scanner.rules: want a list of strings"}},
		{name: "weight not an integer", in: "weights:\n  n1: heavy\n", wantErr: []string{`weights.n1: want an integer, got "heavy" (line 2)`}},
		{name: "several problems at once", in: "foo: 1\nscanner:\n  bar: 2\n", wantErr: []string{"foo: unknown key (line 1)", "scanner.bar: unknown key (line 3)"}},
		{name: "invalid rule", in: "scanner:\n  rules: [\"bad rule\"]\n", wantErr: []string{"scanner.rules[0]:"}},
		{name: "invalid mode", in: "mode: both\n", wantErr: []string{`mode: "both" is not one of active-active, active-passive`}},
		{name: "negative weight", in: "weights: {n1: -1}\n", wantErr: []string{"weights.n1: must be 0 (drain) or more"}},
		{name: "bad thresholds", in: "scanner: {thresholds: {quarantine: 9, reject: 3}}\n", wantErr: []string{"scanner.thresholds: quarantine (9) must be below reject (3)"}},
		{name: "two documents", in: "mode: active-active\n---\nmode: active-passive\n", wantErr: []string{"only one YAML document"}},
		{name: "merge key", in: "scanner:\n  <<: {max_mime_depth: 3}\n", wantErr: []string{"scanner.<<: merge keys are not supported"}},
		{name: "alias", in: "scanner:\n  thresholds: &t {quarantine: 1, reject: 2}\n  attachments:\n    blocked_types: *t\n", wantErr: []string{"scanner.attachments.blocked_types: want a list of strings"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.in))
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				tt.check(t, s)
				return
			}
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", s)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestParseShowOutput: what `config show` prints (JSON or YAML of
// Settings) parses back to the same settings.
func TestParseShowOutput(t *testing.T) {
	s := Defaults()
	s.Scanner.Rules = []string{`LOTTERY body /you (have )?won/ims -0.5`}
	s.Weights = map[string]int{"n1": 100, "n-2.x": 0}
	js, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	ys, err := yaml.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"json": js, "yaml": ys} {
		got, err := Parse(data)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, data)
		}
		if !reflect.DeepEqual(got, s) {
			t.Errorf("%s: got %#v, want %#v", name, got, s)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(s *Settings)
		want   string // substring of the error; "" = valid
	}{
		{"defaults", func(s *Settings) {}, ""},
		{"active-passive", func(s *Settings) { s.Mode = config.ModeActivePassive }, ""},
		{"drain weight", func(s *Settings) { s.Weights = map[string]int{"n1": 0} }, ""},
		{"negative weight", func(s *Settings) { s.Weights = map[string]int{"n1": -5} }, "weights.n1"},
		{"bad node id", func(s *Settings) { s.Weights = map[string]int{"n 1": 5} }, "is not a node id"},
		{"empty mode", func(s *Settings) { s.Mode = "" }, "mode:"},
		{"NaN threshold", func(s *Settings) { s.Scanner.Thresholds.Reject = math.NaN() }, "scanner.thresholds.reject"},
		{"equal thresholds", func(s *Settings) { s.Scanner.Thresholds = scanner.Thresholds{Quarantine: 5, Reject: 5} }, "must be below reject"},
		{"virus action", func(s *Settings) { s.Scanner.VirusAction = "deliver" }, "scanner.virus_action"},
		{"on limit deliver", func(s *Settings) { s.Scanner.OnLimit = "deliver" }, `scanner.on_limit: "deliver" is not one of`},
		{"on limit reject", func(s *Settings) { s.Scanner.OnLimit = "reject" }, ""},
		{"bad rule", func(s *Settings) { s.Scanner.Rules = []string{"X body /(/ 1"} }, "scanner.rules[0]"},
		{"good rule", func(s *Settings) { s.Scanner.Rules = []string{"X body /a/ 1"} }, ""},
		// What a pool refuses must not become a revision that every node
		// then fails to apply.
		{"rule name twice", func(s *Settings) { s.Scanner.Rules = []string{"X body /a/ 1", "X body /b/ 1"} }, "scanner.rules[1]: name X is already used by rules[0]"},
		{"rule named like a built-in symbol", func(s *Settings) { s.Scanner.Rules = []string{"GTUBE body /a/ 1"} }, "scanner.rules[0]: name GTUBE is a built-in symbol"},
		{"extension never matched", func(s *Settings) { s.Scanner.Attachments.BlockedExtensions = []string{"tar.gz"} }, `scanner.attachments.blocked_extensions[0]: "tar.gz" is not an extension`},
		{"bad extension", func(s *Settings) { s.Scanner.Attachments.BlockedExtensions = []string{"a/b"} }, "blocked_extensions[0]"},
		{"bad type", func(s *Settings) { s.Scanner.Attachments.BlockedTypes = []string{"*/*"} }, "blocked_types[0]"},
		{"zero depth", func(s *Settings) { s.Scanner.MaxMIMEDepth = 0 }, "scanner.max_mime_depth"},
		{"zero parts", func(s *Settings) { s.Scanner.MaxMIMEParts = -1 }, "scanner.max_mime_parts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Defaults()
			tt.modify(&s)
			err := s.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.want != "" && err == nil:
				t.Error("Validate accepted it")
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// A revision stored before scanner.on_limit existed has none; it reads as
// the default, quarantine, never as something that could deliver.
func TestOnLimitMissingFromOldRevision(t *testing.T) {
	s := Defaults()
	s.Scanner.OnLimit = ""
	if err := s.Validate(); err == nil {
		t.Error("Validate accepted an empty on_limit")
	}
	s.normalize()
	if s.Scanner.OnLimit != "quarantine" {
		t.Errorf("normalised on_limit %q", s.Scanner.OnLimit)
	}
	if got := s.Apply(config.Default()).Scanner.OnLimit; got != "quarantine" {
		t.Errorf("applied on_limit %q", got)
	}
}

// Settings survive Apply and FromConfig: a node file built from a revision
// seeds the same revision. (Every policy setting is carried: Settings
// holds the scanner's Policy itself, the type config.Scanner embeds.)
func TestApplyFromConfigRoundTrip(t *testing.T) {
	s := Defaults()
	s.Scanner = scanner.Policy{
		Thresholds:  scanner.Thresholds{Quarantine: 3, Reject: 8},
		VirusAction: scanner.ActionReject,
		OnLimit:     scanner.ActionTempfail,
		Rules:       []string{"X body /a/ 1"},
		Attachments: scanner.Attachments{
			BlockedExtensions: []string{"iso"}, BlockedTypes: []string{"application/x-iso9660-image"},
			DoubleExtensions: false, ScanArchives: false,
		},
		MaxMIMEDepth: 3,
		MaxMIMEParts: 30,
	}
	s.Mode = config.ModeActivePassive
	if back := FromConfig(s.Apply(config.Default())); !reflect.DeepEqual(back, s) {
		t.Errorf("Apply then FromConfig:\n got %#v\nwant %#v", back, s)
	}
}
