package clusterconf

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/scanner"
)

// Whatever `mxgate config set` takes is valid, makes a pool (no revision
// passes the cluster's check only to fail on every node), and comes back
// the same through what `config show` prints.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/settings-e4a341c.yaml", "testdata/revision-e4a341c.json"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("scanner: {rules: ['A body /x/ 1', 'A body /y/ 1'], attachments: {blocked_extensions: [tar.gz]}}\n"))
	f.Add([]byte(`{"scanner": {"thresholds": {"quarantine": 0, "reject": 1e3}, "on_limit": ""}, "weights": {"n1": 0}}`))
	f.Add([]byte("mode: active-passive\nscanner:\n  attachments: {blocked_types: [\"Image/*\"]}\n"))
	local := scanner.Local{Workers: 1, Timeout: config.Duration{Duration: scanner.MaxTimeout}}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Parse accepted invalid settings: %v", err)
		}
		p, err := scanner.NewPool(scanner.Options{Policy: s.Scanner, Local: local})
		if err != nil {
			t.Fatalf("Parse accepted a policy the scanner refuses: %v", err)
		}
		p.Close()
		shown, err := yaml.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(shown)
		if err != nil || !reflect.DeepEqual(back, s) {
			t.Fatalf("what show prints does not parse back: %v\n%s", err, shown)
		}
	})
}

// Whatever KEY=VALUE `mxgate config set` takes leaves a valid revision
// whose every other key is unchanged, and what the diff shows for it takes
// the patched value back (flow form).
func FuzzParsePatch(f *testing.F) {
	for _, s := range []string{"scanner.thresholds.quarantine=7", "mode=active-passive", "scanner.engines.clamd.on_error=accept",
		"scanner.rules=['A body /x/ 1']", "weights.n2=0", "scanner.thresholds={reject: 20}", "scanner.attachments.blocked_extensions=[ISO, exe]",
		"scanner.engines.spamd.timeout=3s", "quarantine=7", "mode=[a", "=", "mode=&a x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		p, err := ParsePatch(arg)
		if err != nil {
			return
		}
		if checkKey(p.Key) != nil {
			t.Fatalf("ParsePatch took unknown key %q", p.Key)
		}
		s, err := Defaults().With(p)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("With(%q) gave invalid settings: %v", arg, err)
		}
		changes, err := Diff(Defaults(), s)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range changes {
			if c.Key != p.Key && !strings.HasPrefix(c.Key, p.Key+".") {
				t.Fatalf("With(%q) changed %s", arg, c)
			}
			if c.New == "" {
				continue
			}
			q, err := ParsePatch(c.Key + "=" + c.New)
			if err != nil {
				t.Fatalf("the diff's %s does not parse back: %v", c, err)
			}
			back, err := Defaults().With(q)
			if err != nil {
				t.Fatalf("the diff's %s does not apply back: %v", c, err)
			}
			if again, _ := Diff(s, back); slices.ContainsFunc(again, func(d Change) bool { return d.Key == c.Key }) {
				t.Fatalf("the diff's %s applies back as %v", c, again)
			}
		}
	})
}
