package members

import (
	"encoding/json"
	"strings"
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

// A record from before the console's fields reads with none of them and
// its role from Master; a current one without them writes none of their
// keys, so the store's records stay as small as before.
func TestConsoleFieldsCompatible(t *testing.T) {
	for _, tc := range []struct {
		name, record, role string
	}{
		{"old master", `{"id":"n1","weight":1,"healthy":true,"master":true,"revision":3}`, "master"},
		{"old backup", `{"id":"n2","weight":1,"healthy":true,"master":false}`, "backup"},
		{"fault", `{"id":"n3","master":false,"routers":[{"vrid":51,"vip":"198.18.0.100/24","state":"fault","priority":0,"configured_priority":100}]}`, "fault"},
		{"routers win", `{"id":"n4","master":true,"routers":[{"vrid":51,"state":"backup"},{"vrid":52,"state":"master"}]}`, "backup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m Member
			if err := json.Unmarshal([]byte(tc.record), &m); err != nil {
				t.Fatal(err)
			}
			if got := m.Role(); got != tc.role {
				t.Errorf("Role = %q, want %q", got, tc.role)
			}
		})
	}
	b, err := json.Marshal(Member{ID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"sessions", "routers", "changes"} {
		if strings.Contains(string(b), `"`+k+`"`) {
			t.Errorf("a record without %s writes it: %s", k, b)
		}
	}
}
