package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/members"
)

func liveIDs(t *testing.T, s members.Store) string {
	t.Helper()
	live, err := s.Live(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range live {
		ids = append(ids, m.ID)
	}
	return strings.Join(ids, ",")
}

func runMembers(t *testing.T, open func(t *testing.T) Env) {
	t.Run("HeartbeatLive", func(t *testing.T) {
		ctx := t.Context()
		s := open(t).Members
		live, err := s.Live(ctx)
		if err != nil || len(live) != 0 {
			t.Fatalf("Live on empty store = %v, %v; want none", live, err)
		}
		before := time.Now()
		for _, m := range []members.Member{
			{ID: "n2", PeerAddr: "198.18.0.12:8026", Weight: 50, Healthy: true, Busy: 1, Workers: 8, Revision: 3},
			{ID: "n1", PeerAddr: "198.18.0.11:8026", Weight: 100, Healthy: true, Workers: 8, Master: true, Revision: 3, Sessions: 12,
				Routers: []members.Router{{VRID: 51, VIP: "198.18.0.100/24", State: "master", Priority: 150, Configured: 200, Held: true}},
				Changes: []members.Change{{Time: before.Add(-time.Minute).UTC().Truncate(time.Millisecond), VRID: 51, From: "backup", To: "master", Reason: "preempt"}}},
			{ID: "n3", PeerAddr: "198.18.0.13:8026", Weight: 0, Workers: 4},
		} {
			if err := s.Heartbeat(ctx, m, 10*time.Second); err != nil {
				t.Fatalf("Heartbeat(%s): %v", m.ID, err)
			}
		}
		// A second heartbeat replaces the first.
		if err := s.Heartbeat(ctx, members.Member{ID: "n2", PeerAddr: "198.18.0.12:8026", Weight: 50, Healthy: true, Busy: 7, Workers: 8, Revision: 4}, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		live, err = s.Live(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range live {
			ids = append(ids, m.ID)
			if m.Seen.Before(before.Add(-time.Second)) || m.Seen.After(time.Now().Add(time.Second)) {
				t.Errorf("%s: Seen = %v, want about now", m.ID, m.Seen)
			}
		}
		if got := strings.Join(ids, ","); got != "n1,n2,n3" {
			t.Fatalf("Live ids = %s, want n1,n2,n3 (sorted)", got)
		}
		if n2 := live[1]; n2.Busy != 7 || n2.Revision != 4 || n2.PeerAddr != "198.18.0.12:8026" || !n2.Healthy || n2.Weight != 50 {
			t.Errorf("n2 = %+v, want the second heartbeat's fields", n2)
		}
		if n1 := live[0]; !n1.Master || n1.Weight != 100 || n1.Workers != 8 || n1.Sessions != 12 || n1.Role() != "master" ||
			len(n1.Routers) != 1 || n1.Routers[0] != (members.Router{VRID: 51, VIP: "198.18.0.100/24", State: "master", Priority: 150, Configured: 200, Held: true}) ||
			len(n1.Changes) != 1 || !n1.Changes[0].Time.Equal(before.Add(-time.Minute).Truncate(time.Millisecond)) || n1.Changes[0].Reason != "preempt" {
			t.Errorf("n1 = %+v", n1)
		}
	})

	// The engines a member has down travel with its heartbeat; a record
	// without them (an older node's) reads as none down.
	t.Run("EnginesDown", func(t *testing.T) {
		ctx := t.Context()
		s := open(t).Members
		for _, m := range []members.Member{
			{ID: "n1", Weight: 1, Down: []string{"clamd (connect)", "spamd (timeout)"}},
			{ID: "n2", Weight: 1, Healthy: true},
		} {
			if err := s.Heartbeat(ctx, m, 10*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		live, err := s.Live(ctx)
		if err != nil || len(live) != 2 {
			t.Fatalf("Live = %v, %v", live, err)
		}
		if n1 := live[0]; n1.Healthy || !slices.Equal(n1.Down, []string{"clamd (connect)", "spamd (timeout)"}) {
			t.Errorf("n1 = %+v", n1)
		}
		if n2 := live[1]; !n2.Healthy || n2.Down != nil {
			t.Errorf("n2 = %+v", n2)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		ctx := t.Context()
		s := open(t).Members
		const short = 300 * time.Millisecond
		if err := s.Heartbeat(ctx, members.Member{ID: "gone", Weight: 1}, short); err != nil {
			t.Fatal(err)
		}
		if err := s.Heartbeat(ctx, members.Member{ID: "stays", Weight: 1}, time.Minute); err != nil {
			t.Fatal(err)
		}
		if got := liveIDs(t, s); got != "gone,stays" {
			t.Fatalf("before the TTL: live = %s", got)
		}
		time.Sleep(short + 100*time.Millisecond)
		if got := liveIDs(t, s); got != "stays" {
			t.Fatalf("after the TTL: live = %s, want stays", got)
		}
		// A member that heartbeats again is back.
		if err := s.Heartbeat(ctx, members.Member{ID: "gone", Weight: 1}, short); err != nil {
			t.Fatal(err)
		}
		if got := liveIDs(t, s); got != "gone,stays" {
			t.Fatalf("after returning: live = %s", got)
		}
	})

	t.Run("HeartbeatInvalid", func(t *testing.T) {
		tests := []struct {
			name string
			m    members.Member
			ttl  time.Duration
		}{
			{"empty id", members.Member{}, time.Second},
			{"long id", members.Member{ID: strings.Repeat("x", 65)}, time.Second},
			{"space in id", members.Member{ID: "n 1"}, time.Second},
			{"zero ttl", members.Member{ID: "n1"}, 0},
			{"negative ttl", members.Member{ID: "n1"}, -time.Second},
		}
		s := open(t).Members
		for _, tt := range tests {
			if err := s.Heartbeat(t.Context(), tt.m, tt.ttl); err == nil {
				t.Errorf("%s: Heartbeat accepted it", tt.name)
			}
		}
		if got := liveIDs(t, s); got != "" {
			t.Errorf("live after refused heartbeats = %q", got)
		}
	})
}
