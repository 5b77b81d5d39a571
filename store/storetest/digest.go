package storetest

import (
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/mxgate/mxgate/digest"
)

func runDigestStore(t *testing.T, open func(t *testing.T) Env) {
	t.Run("KeyringInitOnceAndRotate", func(t *testing.T) {
		ctx := t.Context()
		env := open(t)
		other := env.Node(t)
		if keys, err := env.Digest.Keys(ctx); err != nil || len(keys) != 0 {
			t.Fatalf("Keys on an empty store = %v, %v", keys, err)
		}
		// Two nodes starting together: one first key, the same for both.
		now := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
		var wg sync.WaitGroup
		got := make([][]digest.Key, 8)
		for i := range got {
			s := env.Digest
			if i%2 == 1 {
				s = other.Digest
			}
			wg.Go(func() {
				k := digest.Key{ID: "0000000" + string(rune('0'+i)), Secret: []byte("secret-secret-secret-secret-32by"), Created: now}
				keys, err := s.InitKey(ctx, k)
				if err != nil {
					t.Error(err)
				}
				got[i] = keys
			})
		}
		wg.Wait()
		for i := range got {
			if len(got[i]) != 1 || !reflect.DeepEqual(got[i], got[0]) {
				t.Fatalf("InitKey %d saw %+v, InitKey 0 saw %+v; want one key, the same", i, got[i], got[0])
			}
		}
		first := got[0][0]
		k2 := digest.Key{ID: "aaaaaaaa", Secret: []byte("another-secret-another-secret-32"), Created: now.Add(time.Hour)}
		if err := env.Digest.AddKey(ctx, k2, nil); err != nil {
			t.Fatal(err)
		}
		k3 := digest.Key{ID: "bbbbbbbb", Secret: []byte("third-secret-third-secret-third-"), Created: now.Add(2 * time.Hour)}
		if err := other.Digest.AddKey(ctx, k3, []string{first.ID, "bbbbbbbb"}); err != nil {
			t.Fatal(err)
		}
		keys, err := env.Digest.Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		keys = digest.NewestFirst(keys)
		if len(keys) != 2 || keys[0].ID != k3.ID || keys[1].ID != k2.ID || string(keys[1].Secret) != string(k2.Secret) || !keys[1].Created.Equal(k2.Created) {
			t.Errorf("keys after two rotations dropping the first = %+v; want k3, k2", keys)
		}
		// A key exists: InitKey adds nothing.
		if keys, err := env.Digest.InitKey(ctx, digest.Key{ID: "cccccccc", Secret: []byte("x"), Created: now}); err != nil || len(keys) != 2 {
			t.Errorf("InitKey with keys stored = %d keys, %v; want the 2 stored", len(keys), err)
		}
	})

	t.Run("ClaimOncePerRecipientAndDay", func(t *testing.T) {
		ctx := t.Context()
		env := open(t)
		other := env.Node(t)
		now := time.Date(2026, 3, 14, 6, 0, 0, 0, time.UTC)
		const rcpt, day = "alice@example.org", "2026-03-14"
		// Two masters at once: exactly one claim wins.
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		var won digest.Sending
		for i := range 8 {
			s := env.Digest
			if i%2 == 1 {
				s = other.Digest
			}
			wg.Go(func() {
				c := digest.Sending{Token: "t" + string(rune('0'+i)), Node: "n", Claimed: now, Items: i}
				_, claimed, err := s.Claim(ctx, rcpt, day, c)
				if err != nil {
					t.Error(err)
				}
				if claimed {
					mu.Lock()
					wins++
					won = c
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d concurrent claims won, want 1", wins)
		}
		cur, claimed, err := env.Digest.Claim(ctx, rcpt, day, digest.Sending{Token: "late", Claimed: now})
		if err != nil || claimed || cur.Token != won.Token {
			t.Fatalf("late claim = %+v, %v, %v; want the winner %s", cur, claimed, err, won.Token)
		}
		// Another recipient, another day: claims of their own.
		for _, k := range [][2]string{{"bob@example.org", day}, {rcpt, "2026-03-15"}} {
			if _, claimed, err := env.Digest.Claim(ctx, k[0], k[1], digest.Sending{Token: "x", Claimed: now}); err != nil || !claimed {
				t.Errorf("claim %v = %v, %v; want claimed", k, claimed, err)
			}
		}
		// Another's token finishes nothing; the winner gives back.
		if err := env.Digest.Finish(ctx, rcpt, day, digest.Sending{Token: "late", Claimed: now, Sent: now}, true); err != nil {
			t.Fatal(err)
		}
		if cur, _, _ := env.Digest.Claim(ctx, rcpt, day, digest.Sending{Token: "y", Claimed: now}); !cur.Sent.IsZero() {
			t.Fatalf("a stranger's Finish recorded a send: %+v", cur)
		}
		if err := other.Digest.Finish(ctx, rcpt, day, won, false); err != nil {
			t.Fatal(err)
		}
		again := digest.Sending{Token: "again", Node: "n2", Claimed: now, Items: 3}
		if _, claimed, err := env.Digest.Claim(ctx, rcpt, day, again); err != nil || !claimed {
			t.Fatalf("claim after give-back = %v, %v; want claimed", claimed, err)
		}
		again.Sent = now.Add(time.Second)
		if err := env.Digest.Finish(ctx, rcpt, day, again, true); err != nil {
			t.Fatal(err)
		}
		cur, claimed, err = other.Digest.Claim(ctx, rcpt, day, digest.Sending{Token: "z", Claimed: now})
		if err != nil || claimed || cur.Token != "again" || !cur.Sent.Equal(again.Sent) || cur.Items != 3 {
			t.Fatalf("claim after the send = %+v, %v, %v; want the sent one", cur, claimed, err)
		}
		if _, _, err := env.Digest.Claim(ctx, "Alice@Example.org", day, again); err == nil {
			t.Error("a recipient not lower-cased was claimed")
		}
		if _, _, err := env.Digest.Claim(ctx, rcpt, "14.3.2026", again); err == nil {
			t.Error("a bad day was claimed")
		}
	})

	t.Run("OptOutsCoverageDismissals", func(t *testing.T) {
		ctx := t.Context()
		env := open(t)
		s, other := env.Digest, env.Node(t).Digest
		for _, r := range []string{"zed@example.org", "alice@example.org"} {
			if err := s.SetOptOut(ctx, r, true); err != nil {
				t.Fatal(err)
			}
		}
		if err := other.SetOptOut(ctx, "zed@example.org", true); err != nil { // again: no repeat
			t.Fatal(err)
		}
		if out, err := other.OptOuts(ctx); err != nil || !reflect.DeepEqual(out, []string{"alice@example.org", "zed@example.org"}) {
			t.Fatalf("OptOuts = %v, %v", out, err)
		}
		if err := other.SetOptOut(ctx, "zed@example.org", false); err != nil {
			t.Fatal(err)
		}
		for r, want := range map[string]bool{"zed@example.org": false, "alice@example.org": true, "bob@example.org": false} {
			if out, err := s.OptedOut(ctx, r); err != nil || out != want {
				t.Errorf("OptedOut(%s) = %v, %v; want %v", r, out, err, want)
			}
		}

		const rcpt = "alice@example.org"
		if c, err := s.Covered(ctx, rcpt); err != nil || !c.IsZero() {
			t.Fatalf("Covered before any digest = %v, %v", c, err)
		}
		t1 := time.Date(2026, 3, 14, 5, 59, 1, 123456789, time.UTC)
		if err := s.SetCovered(ctx, rcpt, t1); err != nil {
			t.Fatal(err)
		}
		if err := other.SetCovered(ctx, rcpt, t1.Add(-time.Hour)); err != nil { // never back
			t.Fatal(err)
		}
		if c, err := other.Covered(ctx, rcpt); err != nil || !c.Equal(t1) {
			t.Fatalf("Covered = %v, %v; want %v", c, err, t1)
		}

		now := time.Now().Truncate(time.Second)
		if err := s.Dismiss(ctx, rcpt, "Q1", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.Dismiss(ctx, rcpt, "Q2", now.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.Dismiss(ctx, "bob@example.org", "Q3", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if d, err := other.Dismissed(ctx, rcpt, now); err != nil || !reflect.DeepEqual(d, map[string]bool{"Q1": true, "Q2": true}) {
			t.Errorf("Dismissed(alice) = %v, %v; want Q1, Q2", d, err)
		}
		if d, err := other.Dismissed(ctx, rcpt, now.Add(90*time.Minute)); err != nil || !reflect.DeepEqual(d, map[string]bool{"Q2": true}) {
			t.Errorf("Dismissed(alice) after Q1's expiry = %v, %v; want Q2", d, err)
		}
		if d, err := other.Dismissed(ctx, "carol@example.org", now); err != nil || len(d) != 0 {
			t.Errorf("Dismissed(carol) = %v, %v; want none", d, err)
		}
	})
}
