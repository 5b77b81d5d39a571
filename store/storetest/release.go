package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxgate/mxgate/quarantine"
)

// claim is a release claim by who, taken at minute 20.
func claim(token, who string) quarantine.Release {
	return quarantine.Release{Token: token, By: who, Node: "n1", At: at(20)}
}

func done(r quarantine.Release, when time.Time) quarantine.Release {
	r.Done = when
	return r
}

func forced(r quarantine.Release) quarantine.Release {
	r.Forced = true
	return r
}

// runRelease holds the backends to the release claim: one release at a
// time, a re-release only when forced, a failed delivery gives the claim
// back, and an interrupted one keeps it.
func runRelease(t *testing.T, open func(t *testing.T) Env) {
	ctx := context.Background()
	get := func(t *testing.T, q quarantine.Store, id string) quarantine.Item {
		t.Helper()
		it, err := q.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return it
	}
	put := func(t *testing.T, q quarantine.Store, id string) quarantine.Item {
		t.Helper()
		it := qItem(id, 1, "a@x.example", []string{"r@example.org"}, "spam")
		mustPut(t, q, it, []byte("message "+id))
		return it
	}
	conflict := func(t *testing.T, q quarantine.Store, id string, r quarantine.Release) quarantine.Item {
		t.Helper()
		cur, err := q.ClaimRelease(ctx, id, r)
		if !errors.Is(err, quarantine.ErrReleaseConflict) {
			t.Fatalf("ClaimRelease(%s) by %s: %v, want ErrReleaseConflict", id, r.By, err)
		}
		return cur
	}

	t.Run("ReleaseClaim", func(t *testing.T) {
		q := open(t).Quarantine
		it := put(t, q, "c")
		first := claim("t1", "alice")
		before, err := q.ClaimRelease(ctx, "c", first)
		if err != nil {
			t.Fatal(err)
		}
		sameItem(t, before, it) // the item as it was before the claim
		want := it
		want.Claim = &first
		sameItem(t, get(t, q, "c"), want)

		// Anyone else meanwhile: a conflict naming the first.
		cur := conflict(t, q, "c", claim("t2", "bob"))
		if cur.Claim == nil || cur.Claim.By != "alice" || cur.Claim.Token != "t1" || !cur.Claim.At.Equal(first.At) {
			t.Errorf("conflict names claim %+v, want alice's", cur.Claim)
		}
		sameItem(t, get(t, q, "c"), want)

		// Released: the claim becomes the first entry of the history.
		if err := q.FinishRelease(ctx, "c", done(first, at(21)), true); err != nil {
			t.Fatal(err)
		}
		want.Claim, want.Released, want.Releases = nil, at(21), []quarantine.Release{done(first, at(21))}
		want.ReleasedRcpts = []string{"r@example.org"}
		sameItem(t, get(t, q, "c"), want)

		// Released already: a conflict naming the release.
		cur = conflict(t, q, "c", claim("t3", "bob"))
		if last, ok := cur.LastRelease(); !ok || last.By != "alice" || !last.Done.Equal(at(21)) || cur.Claim != nil {
			t.Errorf("conflict after the release: claim %+v, history %+v", cur.Claim, cur.Releases)
		}

		// Forced: claimed, marked forced, and recorded as such.
		again := forced(claim("t4", "bob"))
		if _, err := q.ClaimRelease(ctx, "c", again); err != nil {
			t.Fatalf("forced claim: %v", err)
		}
		if c := get(t, q, "c").Claim; c == nil || c.Token != "t4" || !c.Forced {
			t.Errorf("forced claim stored as %+v", c)
		}
		if err := q.FinishRelease(ctx, "c", done(again, at(22)), true); err != nil {
			t.Fatal(err)
		}
		want.Released, want.Releases = at(22), append(want.Releases, done(again, at(22)))
		sameItem(t, get(t, q, "c"), want)
		if raw, err := q.Raw(ctx, "c"); err != nil || string(raw) != "message c" {
			t.Errorf("Raw after releases = %q, %v", raw, err)
		}
		if list := mustList(t, q, quarantine.Filter{Rcpt: "r@example.org", Verdict: "spam"}); !slices.Equal(list, []string{"c"}) {
			t.Errorf("released item listed as %v", list)
		}
	})

	t.Run("ReleasePerRecipient", func(t *testing.T) {
		// Released to one recipient, then another: each once, unforced;
		// a recipient released before, or a release to all after a
		// partial one, needs force.
		q := open(t).Quarantine
		it := qItem("p", 1, "a@x.example", []string{"Bob@example.org", "carol@example.org", "dave@example.org"}, "spam")
		mustPut(t, q, it, []byte("message p"))
		rc := func(token, who string, rcpts ...string) quarantine.Release {
			r := claim(token, who)
			r.Rcpts = rcpts
			return r
		}
		release := func(t *testing.T, r quarantine.Release) {
			t.Helper()
			if _, err := q.ClaimRelease(ctx, "p", r); err != nil {
				t.Fatalf("claim %s for %v: %v", r.Token, r.Rcpts, err)
			}
			if err := q.FinishRelease(ctx, "p", done(r, at(30)), true); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := q.ClaimRelease(ctx, "p", rc("t0", "alice", "eve@example.org")); !errors.Is(err, quarantine.ErrNotRecipient) {
			t.Errorf("claim for a stranger: %v, want ErrNotRecipient", err)
		}
		release(t, rc("t1", "alice", "BOB@EXAMPLE.ORG", "bob@example.org"))
		got := get(t, q, "p")
		if !slices.Equal(got.ReleasedRcpts, []string{"Bob@example.org"}) || !slices.Equal(got.Releases[0].Rcpts, []string{"Bob@example.org"}) {
			t.Errorf("after bob: released to %v, release %+v", got.ReleasedRcpts, got.Releases)
		}
		if !slices.Equal(got.Unreleased(), []string{"carol@example.org", "dave@example.org"}) {
			t.Errorf("unreleased = %v", got.Unreleased())
		}
		for _, tc := range []struct {
			name  string
			rcpts []string
		}{{"bob again", []string{"bob@example.org"}}, {"bob and carol", []string{"carol@example.org", "bob@example.org"}}, {"everybody", nil}} {
			cur := conflict(t, q, "p", rc("tx", "mallory", tc.rcpts...))
			if last, ok := cur.LastReleaseTo([]string{"bob@example.org"}); !ok || last.By != "alice" {
				t.Errorf("%s: conflict names %+v, want alice's release", tc.name, last)
			}
		}
		release(t, rc("t2", "bob", "carol@example.org"))
		// An open claim for dave: a forced release must deliver to dave
		// too, or dave's unfinished release would be lost.
		if _, err := q.ClaimRelease(ctx, "p", rc("t3", "carl", "dave@example.org")); err != nil {
			t.Fatal(err)
		}
		conflict(t, q, "p", forced(rc("t4", "dora", "bob@example.org")))
		if _, err := q.ClaimRelease(ctx, "p", forced(rc("t5", "dora", "dave@example.org", "bob@example.org"))); err != nil {
			t.Fatalf("forced claim covering the open one: %v", err)
		}
		if err := q.FinishRelease(ctx, "p", done(rc("t5", "dora", "dave@example.org", "bob@example.org"), at(31)), true); err != nil {
			t.Fatal(err)
		}
		got = get(t, q, "p")
		if got.Claim != nil || len(got.Releases) != 3 || !got.Releases[2].Forced || len(got.Unreleased()) != 0 ||
			!slices.Equal(got.ReleasedRcpts, []string{"Bob@example.org", "carol@example.org", "dave@example.org"}) {
			t.Errorf("after all: claim %+v, releases %+v, released to %v", got.Claim, got.Releases, got.ReleasedRcpts)
		}
		// Naming every recipient is a release to all.
		it2 := qItem("p2", 1, "a@x.example", []string{"x@example.org", "y@example.org"}, "spam")
		mustPut(t, q, it2, nil)
		if _, err := q.ClaimRelease(ctx, "p2", rc("t6", "alice", "y@example.org", "X@example.org")); err != nil {
			t.Fatal(err)
		}
		if c := get(t, q, "p2").Claim; c == nil || c.Rcpts != nil {
			t.Errorf("claim naming everyone = %+v, want one for all (no Rcpts)", c)
		}
	})

	t.Run("ReleaseLegacyReleasedToAll", func(t *testing.T) {
		// An item released before recipients were tracked counts as
		// released to every recipient.
		q := open(t).Quarantine
		it := qItem("old", 1, "a@x.example", []string{"x@example.org", "y@example.org"}, "spam")
		it.Released = at(10)
		mustPut(t, q, it, nil)
		r := claim("t1", "alice")
		r.Rcpts = []string{"y@example.org"}
		conflict(t, q, "old", r)
		if _, err := q.ClaimRelease(ctx, "old", forced(r)); err != nil {
			t.Fatal(err)
		}
		if err := q.FinishRelease(ctx, "old", done(forced(r), at(30)), true); err != nil {
			t.Fatal(err)
		}
		if got := get(t, q, "old"); !slices.Equal(got.ReleasedRcpts, []string{"x@example.org", "y@example.org"}) {
			t.Errorf("released to %v, want both", got.ReleasedRcpts)
		}
	})

	t.Run("ReleaseFailedGivesClaimBack", func(t *testing.T) {
		q := open(t).Quarantine
		it := put(t, q, "f")
		r := claim("t1", "alice")
		if _, err := q.ClaimRelease(ctx, "f", r); err != nil {
			t.Fatal(err)
		}
		if err := q.FinishRelease(ctx, "f", r, false); err != nil {
			t.Fatalf("give back: %v", err)
		}
		sameItem(t, get(t, q, "f"), it)
		// A retry by anyone works, unforced.
		if _, err := q.ClaimRelease(ctx, "f", claim("t2", "bob")); err != nil {
			t.Fatalf("claim after a failed delivery: %v", err)
		}
		if c := get(t, q, "f").Claim; c == nil || c.Token != "t2" || c.Forced {
			t.Errorf("claim after the give-back = %+v, want bob's, not forced", c)
		}
	})

	t.Run("ReleaseInterrupted", func(t *testing.T) {
		// The first claimant died between claim and delivery: its claim
		// stays, and only a forced release overrides it. What the first
		// one reports later must not undo the second claim.
		q := open(t).Quarantine
		put(t, q, "i")
		dead := claim("t1", "alice")
		if _, err := q.ClaimRelease(ctx, "i", dead); err != nil {
			t.Fatal(err)
		}
		conflict(t, q, "i", claim("t2", "bob"))
		second := forced(claim("t3", "bob"))
		before, err := q.ClaimRelease(ctx, "i", second)
		if err != nil {
			t.Fatalf("forced claim over an interrupted one: %v", err)
		}
		if before.Claim == nil || before.Claim.Token != "t1" {
			t.Errorf("forced claim returned %+v, want the item with alice's claim", before.Claim)
		}
		if err := q.FinishRelease(ctx, "i", dead, false); err != nil {
			t.Fatal(err)
		}
		if c := get(t, q, "i").Claim; c == nil || c.Token != "t3" || !c.Forced {
			t.Fatalf("a stale give-back changed the claim to %+v", c)
		}
		// The late first delivery happened after all: it is recorded,
		// the open claim stays.
		if err := q.FinishRelease(ctx, "i", done(dead, at(25)), true); err != nil {
			t.Fatal(err)
		}
		got := get(t, q, "i")
		if got.Claim == nil || got.Claim.Token != "t3" || len(got.Releases) != 1 || got.Releases[0].Token != "t1" || !got.Released.Equal(at(25)) {
			t.Errorf("after the late delivery: claim %+v, releases %+v", got.Claim, got.Releases)
		}
		if err := q.FinishRelease(ctx, "i", done(second, at(26)), true); err != nil {
			t.Fatal(err)
		}
		got = get(t, q, "i")
		if got.Claim != nil || len(got.Releases) != 2 || !got.Releases[1].Forced || !got.Released.Equal(at(26)) {
			t.Errorf("after the forced delivery: claim %+v, releases %+v", got.Claim, got.Releases)
		}
	})

	t.Run("ReleaseForceOnFreshItem", func(t *testing.T) {
		// --force on an item nobody released overrides nothing.
		q := open(t).Quarantine
		put(t, q, "n")
		if _, err := q.ClaimRelease(ctx, "n", forced(claim("t1", "alice"))); err != nil {
			t.Fatal(err)
		}
		if c := get(t, q, "n").Claim; c == nil || c.Forced {
			t.Errorf("claim = %+v, want one not marked forced", c)
		}
	})

	t.Run("ReleaseInvalid", func(t *testing.T) {
		q := open(t).Quarantine
		it := put(t, q, "v")
		bad := map[string]quarantine.Release{
			"no token":       claim("", "alice"),
			"long token":     claim(strings.Repeat("t", 65), "alice"),
			"long actor":     claim("t", strings.Repeat("a", 2000)),
			"no claim time":  {Token: "t", By: "alice"},
			"no finish time": claim("t", "alice"),
		}
		for name, r := range bad {
			if name == "no finish time" {
				if _, err := q.ClaimRelease(ctx, "v", r); err != nil {
					t.Fatal(err)
				}
				if err := q.FinishRelease(ctx, "v", r, true); err == nil {
					t.Error("FinishRelease(delivered) without Done succeeded")
				}
				if err := q.FinishRelease(ctx, "v", r, false); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if _, err := q.ClaimRelease(ctx, "v", r); err == nil || errors.Is(err, quarantine.ErrReleaseConflict) {
				t.Errorf("ClaimRelease with %s: %v, want a validation error", name, err)
			}
		}
		sameItem(t, get(t, q, "v"), it)
	})

	t.Run("ReleaseHistoryBounded", func(t *testing.T) {
		q := open(t).Quarantine
		put(t, q, "h")
		n := quarantine.MaxReleaseHistory + 5
		for i := range n {
			r := forced(claim(fmt.Sprintf("t%d", i), "alice"))
			if _, err := q.ClaimRelease(ctx, "h", r); err != nil {
				t.Fatal(err)
			}
			if err := q.FinishRelease(ctx, "h", done(r, at(30+i)), true); err != nil {
				t.Fatal(err)
			}
		}
		got := get(t, q, "h")
		if len(got.Releases) != quarantine.MaxReleaseHistory {
			t.Fatalf("%d releases kept, want %d", len(got.Releases), quarantine.MaxReleaseHistory)
		}
		if last := got.Releases[len(got.Releases)-1]; last.Token != fmt.Sprintf("t%d", n-1) || !got.Released.Equal(at(30+n-1)) {
			t.Errorf("latest release %+v (released %v), want t%d", last, got.Released, n-1)
		}
		if got.Releases[0].Token != "t5" {
			t.Errorf("oldest kept release %s, want t5 (the oldest go first)", got.Releases[0].Token)
		}
	})

	t.Run("ConcurrentClaims", func(t *testing.T) {
		// N claims at once: exactly one wins, and every other one is
		// told who won.
		q := open(t).Quarantine
		put(t, q, "cc")
		const n = 16
		var wg sync.WaitGroup
		type result struct {
			token string
			cur   quarantine.Item
			err   error
		}
		results := make(chan result, n)
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				tok := fmt.Sprintf("t%02d", i)
				cur, err := q.ClaimRelease(ctx, "cc", claim(tok, "op"+tok))
				results <- result{tok, cur, err}
			})
		}
		close(start)
		wg.Wait()
		close(results)
		var winners []string
		var losers []result
		for r := range results {
			switch {
			case r.err == nil:
				winners = append(winners, r.token)
			case errors.Is(r.err, quarantine.ErrReleaseConflict):
				losers = append(losers, r)
			default:
				t.Errorf("claim %s: %v", r.token, r.err)
			}
		}
		if len(winners) != 1 {
			t.Fatalf("%d claims won (%v), want exactly 1", len(winners), winners)
		}
		if len(losers) != n-1 {
			t.Errorf("%d conflicts, want %d", len(losers), n-1)
		}
		for _, l := range losers {
			if l.cur.Claim == nil || l.cur.Claim.Token != winners[0] || l.cur.Claim.By != "op"+winners[0] {
				t.Errorf("claim %s was told %+v, want the winner %s", l.token, l.cur.Claim, winners[0])
			}
		}
		if c := get(t, q, "cc").Claim; c == nil || c.Token != winners[0] {
			t.Errorf("stored claim %+v, want the winner %s", c, winners[0])
		}
	})
}

// runDigest holds the backends to Put's deduplication: one item per
// message and envelope, whatever id the retransmission got.
func runDigest(t *testing.T, open func(t *testing.T) Env) {
	ctx := context.Background()
	withDigest := func(id string, minute int, raw string) quarantine.Item {
		it := qItem(id, minute, "a@x.example", []string{"r@example.org", "s@example.org"}, "spam")
		it.Digest = quarantine.MessageDigest(it.Sender, it.Recipients, []byte(raw))
		return it
	}
	heldAs := func(t *testing.T, err error) string {
		t.Helper()
		var de *quarantine.DuplicateError
		if !errors.As(err, &de) || !errors.Is(err, quarantine.ErrDuplicate) {
			t.Fatalf("Put of the same message: %v, want a DuplicateError", err)
		}
		return de.ID
	}

	t.Run("PutSameMessage", func(t *testing.T) {
		q := open(t).Quarantine
		first := withDigest("first", 1, "the message")
		mustPut(t, q, first, []byte("the message"))
		// The same Put again (a retry after a lost reply) succeeds.
		if err := q.Put(ctx, first, []byte("the message")); err != nil {
			t.Errorf("repeated Put: %v", err)
		}
		// The client's retransmission under a new id names the first.
		if id := heldAs(t, q.Put(ctx, withDigest("second", 2, "the message"), []byte("the message"))); id != "first" {
			t.Errorf("held as %q, want first", id)
		}
		if _, err := q.Get(ctx, "second"); !errors.Is(err, quarantine.ErrNotFound) {
			t.Errorf("the duplicate was stored (Get: %v)", err)
		}
		if got := mustList(t, q, quarantine.Filter{}); !slices.Equal(got, []string{"first"}) {
			t.Errorf("List = %v, want [first]", got)
		}
		// Another message, another envelope: stored.
		other := withDigest("other", 3, "another message")
		mustPut(t, q, other, []byte("another message"))
		env := qItem("env", 4, "b@x.example", []string{"r@example.org", "s@example.org"}, "spam")
		env.Digest = quarantine.MessageDigest(env.Sender, env.Recipients, []byte("the message"))
		mustPut(t, q, env, []byte("the message"))
		// Recipients in another order are the same envelope.
		re := withDigest("reordered", 5, "the message")
		re.Digest = quarantine.MessageDigest(re.Sender, []string{"s@example.org", "r@example.org"}, []byte("the message"))
		if id := heldAs(t, q.Put(ctx, re, []byte("the message"))); id != "first" {
			t.Errorf("reordered recipients held as %q, want first", id)
		}
		// Once the first is deleted, the message is stored again.
		if err := q.Delete(ctx, "first"); err != nil {
			t.Fatal(err)
		}
		mustPut(t, q, withDigest("third", 6, "the message"), []byte("the message"))
		if got := mustList(t, q, quarantine.Filter{}); !slices.Equal(got, []string{"third", "env", "other"}) {
			t.Errorf("List = %v, want [third env other]", got)
		}
		// An id in use for another item stays ErrExists.
		if err := q.Put(ctx, withDigest("third", 6, "changed"), []byte("changed")); !errors.Is(err, quarantine.ErrExists) {
			t.Errorf("Put of another message under a used id: %v, want ErrExists", err)
		}
	})

	t.Run("PutWithoutDigest", func(t *testing.T) {
		// Without a digest nothing is deduplicated (and nothing else
		// changes).
		q := open(t).Quarantine
		for _, id := range []string{"a", "b"} {
			mustPut(t, q, qItem(id, 1, "a@x.example", []string{"r@example.org"}, "spam"), []byte("same"))
		}
		if got := mustList(t, q, quarantine.Filter{}); len(got) != 2 {
			t.Errorf("List = %v, want both items", got)
		}
		it := qItem("a", 1, "a@x.example", []string{"r@example.org"}, "spam")
		if err := q.Put(ctx, it, []byte("same")); err != nil {
			t.Errorf("repeated identical Put: %v", err)
		}
		if err := q.Put(ctx, it, []byte("other")); !errors.Is(err, quarantine.ErrExists) {
			t.Errorf("Put with another message: %v, want ErrExists", err)
		}
		it.Verdict = "virus"
		if err := q.Put(ctx, it, []byte("same")); !errors.Is(err, quarantine.ErrExists) {
			t.Errorf("Put with another item: %v, want ErrExists", err)
		}
	})

	t.Run("PutDigestExpires", func(t *testing.T) {
		q := open(t).Quarantine
		it := withDigest("old", 1, "m")
		it.Expires = at(10)
		mustPut(t, q, it, []byte("m"))
		if n, err := q.Expire(ctx, at(10)); err != nil || n != 1 {
			t.Fatalf("Expire = %d, %v", n, err)
		}
		mustPut(t, q, withDigest("new", 20, "m"), []byte("m"))
	})

	t.Run("PutInvalidDigest", func(t *testing.T) {
		q := open(t).Quarantine
		for name, d := range map[string]string{
			"too long":   strings.Repeat("f", 129),
			"not hex":    "0123xyz",
			"upper case": "ABCDEF",
			"0xff byte":  "ab\xff",
		} {
			it := qItem("d", 1, "a@x.example", nil, "spam")
			it.Digest = d
			if err := q.Put(ctx, it, nil); err == nil {
				t.Errorf("Put with a digest %s succeeded", name)
			}
		}
		if _, err := q.Get(ctx, "d"); !errors.Is(err, quarantine.ErrNotFound) {
			t.Errorf("an invalid Put stored the item (Get: %v)", err)
		}
	})

	t.Run("ConcurrentPutsOfOneMessage", func(t *testing.T) {
		// Retransmissions racing each other: exactly one item.
		q := open(t).Quarantine
		const n = 12
		var wg sync.WaitGroup
		errs := make([]error, n)
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				errs[i] = q.Put(ctx, withDigest(fmt.Sprintf("p%02d", i), i, "raced"), []byte("raced"))
			})
		}
		close(start)
		wg.Wait()
		var stored []string
		for i, err := range errs {
			if err == nil {
				stored = append(stored, fmt.Sprintf("p%02d", i))
			}
		}
		if len(stored) != 1 {
			t.Fatalf("%d Puts stored the message (%v), want 1; errors %v", len(stored), stored, errs)
		}
		for i, err := range errs {
			if err != nil {
				if id := heldAs(t, err); id != stored[0] {
					t.Errorf("Put %d: held as %q, want %q", i, id, stored[0])
				}
			}
		}
		if got := mustList(t, q, quarantine.Filter{}); !slices.Equal(got, stored) {
			t.Errorf("List = %v, want %v", got, stored)
		}
	})
}
