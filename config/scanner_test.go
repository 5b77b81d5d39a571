package config

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mxgate/mxgate/scanner"
)

// scannerKeys are the keys under scanner: as the file and its JSON had
// them before the scanner owned their types; none may move or change
// (engines and rspamd_controller came with the outside engines).
var scannerKeys = []string{
	"attachments", "clamd", "engines", "max_mime_depth", "max_mime_parts", "on_limit", "queue", "rspamd",
	"rspamd_controller", "rules", "simulated_delay", "spamd", "thresholds", "timeout", "virus_action", "workers",
}

// The scanner section is the scanner's Policy and Local settings, inlined,
// and nothing else: a setting added to Scanner itself would reach neither
// the pool nor the cluster's revisions.
func TestScannerIsThePolicyAndTheLocalSettings(t *testing.T) {
	st := reflect.TypeFor[Scanner]()
	var got []reflect.Type
	for i := range st.NumField() {
		f := st.Field(i)
		if !f.Anonymous || f.Tag.Get("yaml") != ",inline" || f.Tag.Get("json") != "" {
			t.Errorf("Scanner.%s is not an inlined scanner type", f.Name)
		}
		got = append(got, f.Type)
	}
	if want := []reflect.Type{reflect.TypeFor[scanner.Policy](), reflect.TypeFor[scanner.Local]()}; !slices.Equal(got, want) {
		t.Errorf("Scanner embeds %v, want %v", got, want)
	}
}

// The keys under scanner: are flat, in YAML and JSON, as before.
func TestScannerKeys(t *testing.T) {
	y, err := yaml.Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]map[string]any
	if err := yaml.Unmarshal(y, &doc); err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	var jdoc map[string]map[string]any
	if err := json.Unmarshal(j, &jdoc); err != nil {
		t.Fatal(err)
	}
	for name, section := range map[string]map[string]any{"yaml": doc["scanner"], "json": jdoc["scanner"]} {
		var keys []string
		for k := range section {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, scannerKeys) {
			t.Errorf("%s keys under scanner: %v, want %v", name, keys, scannerKeys)
		}
	}
	var back Config
	if err := json.Unmarshal(j, &back); err != nil || !reflect.DeepEqual(back, Default()) {
		t.Errorf("Default does not round-trip through JSON: %v", err)
	}
}

// The inlined keys are checked like any other: an unknown one is named with
// its line, each kind of value is refused with its key, and the scanner's
// own checks (rules included) report under scanner.
func TestScannerParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"unknown key", "scanner:\n  workers: 2\n  wrkers: 4\n", []string{"scanner.wrkers: unknown key (line 3)"}},
		{"repeated across the inlined types", "scanner:\n  workers: 2\n  rules: []\n  workers: 3\n", []string{"scanner.workers: key repeated (lines 2 and 4)"}},
		{"local value", "scanner:\n  queue: many\n", []string{`scanner.queue: want an integer, got "many" (line 2)`}},
		{"local duration", "scanner:\n  simulated_delay: 5x\n", []string{`scanner.simulated_delay: invalid duration "5x" (line 2)`}},
		{"policy value", "scanner:\n  max_mime_parts: [1]\n", []string{"scanner.max_mime_parts: want an integer, got a list (line 2)"}},
		{"rule", "scanner:\n  rules: ['X hdr Subject =~ /x/ 1']\n", []string{`scanner.rules[0]: column 3: unknown kind "hdr"`}},
		{"both at once", "scanner: {workers: -1, max_mime_depth: 0}\n", []string{"scanner.workers: must be 0", "scanner.max_mime_depth: must be positive"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
