package peer

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/mxgate/mxgate/scanner"
)

// The engines' headers cross nodes with the verdict; a verdict of an older
// peer, without them, still reads (and has none).
func TestWireVerdictExtraHeaders(t *testing.T) {
	v := scanner.Verdict{Action: scanner.ActionDeliver, Class: "engine_failed", Node: "n2",
		ExtraHeaders: []string{"X-Spam: Yes", "X-Mxgate-Engine-Failed: clamd (timeout)"}}
	b, err := json.Marshal(toWire(v))
	if err != nil {
		t.Fatal(err)
	}
	var w wireVerdict
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	got, err := fromWire(w)
	if err != nil || !slices.Equal(got.ExtraHeaders, v.ExtraHeaders) {
		t.Errorf("round trip: %q, %v", got.ExtraHeaders, err)
	}
	var old wireVerdict
	if err := json.Unmarshal([]byte(`{"action":"deliver","class":"clean","score":0,"symbols":[],"viruses":[],"reason":"","node":"n1"}`), &old); err != nil {
		t.Fatal(err)
	}
	if got, err := fromWire(old); err != nil || got.ExtraHeaders != nil {
		t.Errorf("older verdict: %q, %v", got.ExtraHeaders, err)
	}
}
