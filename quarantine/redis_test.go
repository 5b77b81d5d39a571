package quarantine_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mxgate/mxgate/quarantine"
	"github.com/mxgate/mxgate/testenv"
)

// The behaviour both backends share is store/storetest's; these are the
// Redis backend's own: expiry by Redis, its leftovers, and retried writes.

func testCtx(t *testing.T) context.Context { return testenv.Context(t, time.Minute) }

// open connects to r, closing the client when the test ends.
func open(t *testing.T, r *testenv.Redis) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { c.Close() })
	return c
}

var qIndexes = []string{"{mxgate}:q:by_time", "{mxgate}:q:by_expires", "{mxgate}:q:by_rcpt", "{mxgate}:q:by_sender", "{mxgate}:q:by_verdict", "{mxgate}:q:by_digest"}

// TestQuarantineRedisTTL: the item and its message expire in Redis at the
// item's Expires (a backstop when no node runs Expire); Expire then still
// removes the index entries and counts the item.
func TestQuarantineRedisTTL(t *testing.T) {
	r := testenv.StartRedis(t)
	c := open(t, r)
	ctx := testCtx(t)
	q := quarantine.NewRedis(c)
	now := time.Now()
	item := func(id string, expires time.Time) quarantine.Item {
		return quarantine.Item{ID: id, Time: now, Sender: "a@x.example", Recipients: []string{"r@example.org"}, Verdict: "spam", Expires: expires,
			Digest: quarantine.MessageDigest("a@x.example", []string{"r@example.org"}, []byte(id))}
	}
	ttl := func(key string) time.Duration {
		t.Helper()
		d, err := c.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	// Expiry ahead: meta and message get a TTL, the index record none;
	// claiming and releasing keep the TTL.
	if err := q.Put(ctx, item("later", now.Add(time.Hour)), []byte("m")); err != nil {
		t.Fatal(err)
	}
	rel := quarantine.Release{Token: "t", By: "alice", At: now}
	if _, err := q.ClaimRelease(ctx, "later", rel); err != nil {
		t.Fatal(err)
	}
	rel.Done = now
	if err := q.FinishRelease(ctx, "later", rel, true); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"{mxgate}:q:meta:later", "{mxgate}:q:raw:later"} {
		if d := ttl(k); d <= 59*time.Minute || d > time.Hour {
			t.Errorf("PTTL %s = %s, want about 1h", k, d)
		}
	}
	if d := ttl("{mxgate}:q:idx:later"); d != -1 {
		t.Errorf("index record has TTL %s, want none", d)
	}
	// Expiry already past: no TTL (Redis would drop it at once); it stays
	// until Expire, as in the embedded backend.
	if err := q.Put(ctx, item("past", now.Add(-time.Hour)), []byte("m")); err != nil {
		t.Fatal(err)
	}
	if d := ttl("{mxgate}:q:meta:past"); d != -1 {
		t.Errorf("past expiry: PTTL %s, want none", d)
	}
	if _, err := q.Get(ctx, "past"); err != nil {
		t.Errorf("item with past expiry gone before Expire: %v", err)
	}

	// Redis drops a soon-expiring item by itself.
	if err := q.Put(ctx, item("soon", now.Add(300*time.Millisecond)), []byte("m")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := q.Get(ctx, "soon")
		if errors.Is(err, quarantine.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("item still there 5s after its expiry: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := q.Raw(ctx, "soon"); !errors.Is(err, quarantine.ErrNotFound) {
		t.Errorf("Raw after Redis expiry: %v, want ErrNotFound", err)
	}
	// Its digest entry is an orphan too: the same message is stored again
	// (then removed, to keep the counts below).
	again := item("again", time.Time{})
	again.Digest = item("soon", time.Time{}).Digest
	if err := q.Put(ctx, again, []byte("m")); err != nil {
		t.Errorf("Put of a message whose item Redis expired: %v", err)
	}
	if err := q.Delete(ctx, "again"); err != nil {
		t.Fatal(err)
	}
	// Its index entries are orphans now: listing skips them.
	got, err := q.List(ctx, quarantine.Filter{Rcpt: "r@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, it := range got {
		ids = append(ids, it.ID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"later", "past"}) {
		t.Errorf("List after Redis expiry = %v, want [later past]", ids)
	}

	// Expire removes "past" and what is left of "soon", and counts both.
	n, err := q.Expire(ctx, time.Now())
	if err != nil || n != 2 {
		t.Fatalf("Expire = %d, %v; want 2", n, err)
	}
	for _, k := range qIndexes {
		members, err := c.ZRange(ctx, k, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		// Only "later" is left: one member per index.
		if len(members) != 1 {
			t.Errorf("%s has %d members after Expire, want 1 (later's)", k, len(members))
		}
	}
	for _, id := range []string{"past", "soon"} {
		if n, _ := c.Exists(ctx, "{mxgate}:q:idx:"+id, "{mxgate}:q:meta:"+id, "{mxgate}:q:raw:"+id).Result(); n != 0 {
			t.Errorf("%s: %d keys left after Expire", id, n)
		}
	}
}

// TestQuarantineDeleteAfterRedisExpiry: deleting an item Redis already
// dropped says ErrNotFound but cleans its index entries up.
func TestQuarantineDeleteAfterRedisExpiry(t *testing.T) {
	r := testenv.StartRedis(t)
	c := open(t, r)
	ctx := testCtx(t)
	q := quarantine.NewRedis(c)
	now := time.Now()
	it := quarantine.Item{ID: "d", Time: now, Sender: "a@x.example", Recipients: []string{"r@example.org"}, Verdict: "spam", Expires: now.Add(time.Hour), Digest: "0123abcd"}
	if err := q.Put(ctx, it, []byte("m")); err != nil {
		t.Fatal(err)
	}
	c.Del(ctx, "{mxgate}:q:meta:d", "{mxgate}:q:raw:d") // as Redis's expiry does
	if err := q.Delete(ctx, "d"); !errors.Is(err, quarantine.ErrNotFound) {
		t.Errorf("Delete = %v, want ErrNotFound", err)
	}
	for _, k := range qIndexes {
		if n, _ := c.ZCard(ctx, k).Result(); n != 0 {
			t.Errorf("%s keeps %d members", k, n)
		}
	}
	if n, _ := c.Exists(ctx, "{mxgate}:q:idx:d").Result(); n != 0 {
		t.Error("index record left")
	}
}

// TestQuarantinePutRetry: a Put repeated with the same item and message
// (go-redis retrying after a lost reply) succeeds; another item or message
// under the id is ErrExists.
func TestQuarantinePutRetry(t *testing.T) {
	r := testenv.StartRedis(t)
	ctx := testCtx(t)
	q := quarantine.NewRedis(open(t, r))
	it := quarantine.Item{ID: "p", Time: time.Now(), Recipients: []string{"r@example.org"}, Verdict: "spam"}
	if err := q.Put(ctx, it, []byte("m")); err != nil {
		t.Fatal(err)
	}
	if err := q.Put(ctx, it, []byte("m")); err != nil {
		t.Errorf("repeated identical Put: %v", err)
	}
	if err := q.Put(ctx, it, []byte("other")); !errors.Is(err, quarantine.ErrExists) {
		t.Errorf("Put with another message: %v, want ErrExists", err)
	}
	it.Verdict = "virus"
	if err := q.Put(ctx, it, []byte("m")); !errors.Is(err, quarantine.ErrExists) {
		t.Errorf("Put with another item: %v, want ErrExists", err)
	}
	if got, err := q.List(ctx, quarantine.Filter{}); err != nil || len(got) != 1 {
		t.Errorf("List = %d items, %v; want 1", len(got), err)
	}
}
