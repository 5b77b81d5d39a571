package members

import (
	"encoding/json"
	"testing"
)

// A record written by a node older than Down reads as none down, and one
// with nothing down is written as before (no "down" key).
func TestDownCompatible(t *testing.T) {
	var m Member
	if err := json.Unmarshal([]byte(`{"id":"n1","peer_addr":"a:1","weight":1,"healthy":true,"busy":0,"workers":2,"master":false,"revision":3,"seen":"2026-01-01T00:00:00Z"}`), &m); err != nil {
		t.Fatal(err)
	}
	if !m.Healthy || m.Down != nil {
		t.Errorf("older record: %+v", m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]any
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	if _, ok := keys["down"]; ok {
		t.Errorf("written with a down key: %s", b)
	}
}
