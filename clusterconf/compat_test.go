package clusterconf

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/scanner"
)

// oldRevision is what testdata/revision-e4a341c.json holds: a revision as
// main e4a341c stored it in bbolt and Redis (json.Marshal of its Revision)
// and served it on GET /api/v1/config.
func oldRevision() Revision {
	return Revision{
		Number: 7,
		Settings: Settings{
			Scanner: scanner.Policy{
				Thresholds:  scanner.Thresholds{Quarantine: 4.5, Reject: 12},
				VirusAction: scanner.ActionReject,
				OnLimit:     scanner.ActionTempfail,
				Rules:       []string{"LOTTERY header Subject =~ /lottery/i 4"},
				Attachments: scanner.Attachments{
					BlockedExtensions: []string{"iso", "exe"},
					BlockedTypes:      []string{"application/x-iso9660-image"},
					DoubleExtensions:  false,
					ScanArchives:      true,
				},
				MaxMIMEDepth: 20,
				MaxMIMEParts: 800,
				// Keys added later read as their defaults.
				Engines: scanner.DefaultPolicy().Engines,
			},
			Mode:    config.ModeActivePassive,
			Weights: map[string]int{"n1": 100, "n2": 0},
		},
		Time:    time.Date(2026, 3, 14, 9, 26, 53, 589000000, time.UTC),
		By:      "admin@127.0.0.1 via n1",
		Comment: "block iso",
	}
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b, []byte("\n"))
}

// A revision stored by main e4a341c reads back whole, valid and usable by
// a pool, and the same revision is written with the same bytes: the field
// names of the stored JSON did not change with the one Policy type.
func TestRevisionWrittenByE4a341c(t *testing.T) {
	stored := readTestdata(t, "revision-e4a341c.json")
	var rev Revision
	if err := json.Unmarshal(stored, &rev); err != nil {
		t.Fatal(err)
	}
	if want := oldRevision(); !reflect.DeepEqual(rev, want) {
		t.Fatalf("decoded\n%#v\nwant\n%#v", rev, want)
	}
	if err := rev.Settings.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if p, err := scanner.NewPool(scanner.Options{NodeID: "n1", Policy: rev.Settings.Scanner, Local: scanner.DefaultLocal()}); err != nil {
		t.Errorf("a pool refuses the stored policy: %v", err)
	} else {
		p.Close()
	}
	again, err := json.Marshal(rev)
	if err != nil {
		t.Fatal(err)
	}
	if !sameBesidesNewerKeys(t, again, stored, json.Unmarshal) {
		t.Errorf("written as\n%s\nmain e4a341c wrote\n%s", again, stored)
	}
}

// What `mxgate config show` printed on main e4a341c, `config set` takes
// back, and show prints the same today.
func TestSettingsShownByE4a341c(t *testing.T) {
	shown := readTestdata(t, "settings-e4a341c.yaml")
	s, err := Parse(shown)
	if err != nil {
		t.Fatal(err)
	}
	if want := oldRevision().Settings; !reflect.DeepEqual(s, want) {
		t.Fatalf("parsed\n%#v\nwant\n%#v", s, want)
	}
	again, err := yaml.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !sameBesidesNewerKeys(t, again, shown, yaml.Unmarshal) {
		t.Errorf("shown as\n%s\nmain e4a341c showed\n%s", again, shown)
	}
}

// newerScannerKeys are the scanner keys added since e4a341c: written now,
// absent from what it wrote.
var newerScannerKeys = []string{"engines"}

// newerKeys are the settings added since e4a341c, beside the scanner's:
// shown by config show, left out of the stored JSON while unset.
var newerKeys = []string{"reports", "digest"}

// sameBesidesNewerKeys: got, without newerScannerKeys, says what old says.
func sameBesidesNewerKeys(t *testing.T, got, old []byte, unmarshal func([]byte, any) error) bool {
	t.Helper()
	var g, o map[string]any
	if err := unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	if err := unmarshal(old, &o); err != nil {
		t.Fatal(err)
	}
	sc := g
	if st, ok := g["settings"].(map[string]any); ok {
		sc = st
	}
	scanner, _ := sc["scanner"].(map[string]any)
	for _, k := range newerScannerKeys {
		if _, ok := scanner[k]; !ok {
			t.Errorf("scanner.%s not written", k)
		}
		delete(scanner, k)
	}
	for _, k := range newerKeys {
		delete(sc, k)
	}
	return reflect.DeepEqual(g, o)
}

// A revision stored before a key existed (here on_limit, added in
// ea3a852) reads that key as its default, never as a zero value the
// scanner refuses, so every node still applies it.
func TestRevisionWithoutANewerKey(t *testing.T) {
	var rev Revision
	if err := json.Unmarshal(readTestdata(t, "revision-before-on_limit.json"), &rev); err != nil {
		t.Fatal(err)
	}
	want := oldRevision()
	want.Settings.Scanner.OnLimit = scanner.ActionQuarantine
	if !reflect.DeepEqual(rev, want) {
		t.Fatalf("decoded\n%#v\nwant\n%#v", rev, want)
	}
	if err := rev.Settings.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// The admin API decodes PUT /api/v1/config strictly (unknown fields
// refused): settings as main e4a341c's clients sent them still decode.
func TestSettingsPutByE4a341c(t *testing.T) {
	var stored struct {
		Settings json.RawMessage `json:"settings"`
	}
	if err := json.Unmarshal(readTestdata(t, "revision-e4a341c.json"), &stored); err != nil {
		t.Fatal(err)
	}
	body := `{"settings": ` + string(stored.Settings) + `, "comment": "c", "expect": 7}`
	// Over the defaults, as the admin API decodes it: keys added since
	// read as their defaults.
	req := struct {
		Settings Settings `json:"settings"`
		Comment  string   `json:"comment"`
		Expect   int64    `json:"expect"`
	}{Settings: Defaults()}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		t.Fatal(err)
	}
	if want := oldRevision().Settings; !reflect.DeepEqual(req.Settings, want) {
		t.Errorf("decoded\n%#v\nwant\n%#v", req.Settings, want)
	}
}

// Defaults are what a node file without scanner or cluster keys seeds.
func TestDefaultsAreTheNodeFiles(t *testing.T) {
	if got, want := Defaults(), FromConfig(config.Default()); !reflect.DeepEqual(got, want) {
		t.Errorf("Defaults() = %#v\nFromConfig(config.Default()) = %#v", got, want)
	}
}

// A node file without reports or digest hashes as before the key existed, so the
// upgrade stores no new revision over one made with config set.
func TestSeedHashWithoutReports(t *testing.T) {
	s := oldRevision().Settings
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range newerKeys {
		if strings.Contains(string(data), `"`+key+`"`) {
			t.Errorf("settings without %s written with them: %s", key, data)
		}
	}
}
