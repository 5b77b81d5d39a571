package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/console/sessions"
)

func runSessions(t *testing.T, open func(t *testing.T) Env) {
	t.Run("RevokeSeenByEveryNode", func(t *testing.T) {
		ctx := t.Context()
		env := open(t)
		other := env.Node(t)
		until := time.Now().Add(time.Hour)
		if ok, err := env.Sessions.Revoked(ctx, "S1"); err != nil || ok {
			t.Fatalf("Revoked(S1) on an empty store = %v, %v; want false", ok, err)
		}
		if err := env.Sessions.Revoke(ctx, "S1", until); err != nil {
			t.Fatal(err)
		}
		// Again, from another node (a copy of the cookie logged out
		// there too): fine.
		if err := other.Sessions.Revoke(ctx, "S1", until); err != nil {
			t.Fatalf("second Revoke: %v", err)
		}
		long := strings.Repeat("x", sessions.MaxID)
		if err := env.Sessions.Revoke(ctx, long, until); err != nil {
			t.Fatalf("Revoke of a %d-byte id: %v", len(long), err)
		}
		tests := []struct {
			id   string
			want bool
		}{
			{"S1", true},
			{long, true},
			{"S2", false},
			{"S", false},
			{"S1x", false},
			{"s1", false},
		}
		for _, tt := range tests {
			for name, s := range map[string]sessions.Store{"this node": env.Sessions, "another node": other.Sessions} {
				if got, err := s.Revoked(ctx, tt.id); err != nil || got != tt.want {
					t.Errorf("Revoked(%.10s) on %s = %v, %v; want %v", tt.id, name, got, err, tt.want)
				}
			}
		}
	})

	t.Run("BadIDs", func(t *testing.T) {
		ctx := t.Context()
		env := open(t)
		until := time.Now().Add(time.Hour)
		for _, id := range []string{"", strings.Repeat("x", sessions.MaxID+1)} {
			if err := env.Sessions.Revoke(ctx, id, until); err == nil {
				t.Errorf("Revoke of a %d-byte id: no error", len(id))
			}
			if _, err := env.Sessions.Revoked(ctx, id); err == nil {
				t.Errorf("Revoked of a %d-byte id: no error", len(id))
			}
		}
	})

	t.Run("ExpiresWithTheSession", func(t *testing.T) {
		ctx := t.Context()
		env := open(t)
		other := env.Node(t)
		now := time.Now()
		// Already past: nothing to keep.
		if err := env.Sessions.Revoke(ctx, "old", now.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if ok, err := other.Sessions.Revoked(ctx, "old"); err != nil || ok {
			t.Errorf("Revoked(old) with until past = %v, %v; want false", ok, err)
		}
		if err := env.Sessions.Revoke(ctx, "soon", now.Add(700*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if err := env.Sessions.Revoke(ctx, "later", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if ok, err := other.Sessions.Revoked(ctx, "soon"); err != nil || !ok {
			t.Fatalf("Revoked(soon) before its time = %v, %v; want true", ok, err)
		}
		time.Sleep(time.Until(now.Add(time.Second)))
		for _, tt := range []struct {
			id   string
			want bool
		}{{"soon", false}, {"later", true}} {
			if ok, err := other.Sessions.Revoked(ctx, tt.id); err != nil || ok != tt.want {
				t.Errorf("Revoked(%s) a second later = %v, %v; want %v", tt.id, ok, err, tt.want)
			}
		}
		// A write prunes the past ones and keeps the live ones.
		if err := env.Sessions.Revoke(ctx, "next", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if ok, err := env.Sessions.Revoked(ctx, "later"); err != nil || !ok {
			t.Errorf("Revoked(later) after a prune = %v, %v; want true", ok, err)
		}
	})
}
