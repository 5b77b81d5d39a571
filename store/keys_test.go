package store_test

import (
	"encoding/binary"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mxgate/mxgate/clusterconf"
	mxdigest "github.com/mxgate/mxgate/digest"
	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/members"
	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/quarantine"
	"github.com/mxgate/mxgate/report"
	"github.com/mxgate/mxgate/testenv"
)

// timeKey is the 8-byte big-endian unix-nanosecond time and the id, written
// out here rather than taken from kv, so that this test pins the format.
func timeKey(t time.Time, id string) string {
	return string(binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano()))) + id
}

// TestRedisKeys pins every Redis key name, type and index format, and what
// the pub/sub channels carry: a running cluster's data must still be read
// after an upgrade, and nodes of two versions talk through the channels
// during one. It writes through every store of the backend and then
// expects exactly these keys, nothing else.
func TestRedisKeys(t *testing.T) {
	r := testenv.StartRedis(t)
	b := openRedis(t, r.URL)
	c := dial(t, r.URL)
	ctx := testCtx(t)

	channels := []string{"{mxgate}:lists:changed", "{mxgate}:config:changed"}
	ps := c.Subscribe(ctx, channels...)
	defer ps.Close()
	for range channels {
		if _, err := ps.ReceiveTimeout(ctx, 5*time.Second); err != nil {
			t.Fatalf("subscribe: %v", err)
		}
	}

	when := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	expires := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	digest := quarantine.MessageDigest("a@x.example", []string{"r@example.org"}, []byte("raw"))
	it := quarantine.Item{ID: "Q1", Time: when, Sender: "A@x.example", Recipients: []string{"r@example.org"}, Verdict: "Spam", Expires: expires, Digest: digest}
	if err := b.Quarantine.Put(ctx, it, []byte("raw")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Lists.Add(ctx, lists.Entry{Kind: lists.Block, Value: "@evil.example", Rcpt: "R@example.org"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Log.Append(ctx, msglog.Record{ID: "L1", Time: when, Action: "deliver"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Config.Put(ctx, clusterconf.Defaults(), "test", "", 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Config.Announce(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Reports.Create(ctx, report.Report{Day: "2026-03-14", Node: "n1"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Members.Heartbeat(ctx, members.Member{ID: "n1"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.PeerNonces.Claim(ctx, "0123abcd", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Digest.InitKey(ctx, mxdigest.Key{ID: "0a0b0c0d", Secret: []byte("s"), Created: when}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Digest.Claim(ctx, "r@example.org", "2026-03-14", mxdigest.Sending{Token: "t"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Digest.SetOptOut(ctx, "o@example.org", true); err != nil {
		t.Fatal(err)
	}
	if err := b.Digest.SetCovered(ctx, "r@example.org", when); err != nil {
		t.Fatal(err)
	}
	if err := b.Digest.Dismiss(ctx, "r@example.org", "Q1", expires); err != nil {
		t.Fatal(err)
	}

	if err := b.Sessions.Revoke(ctx, "S1", expires); err != nil {
		t.Fatal(err)
	}

	tk := timeKey(when, "Q1")
	keys := []struct {
		key, typ string
		members  []string // of a sorted set, in order; fields of a hash
		value    string   // of a string ("" = not checked)
	}{
		{key: "{mxgate}:q:meta:Q1", typ: "string"},
		{key: "{mxgate}:q:raw:Q1", typ: "string", value: "raw"},
		{key: "{mxgate}:q:idx:Q1", typ: "string"},
		{key: "{mxgate}:q:by_time", typ: "zset", members: []string{tk}},
		{key: "{mxgate}:q:by_expires", typ: "zset", members: []string{timeKey(expires, "Q1")}},
		{key: "{mxgate}:q:by_rcpt", typ: "zset", members: []string{"\x0dr@example.org" + tk}},
		{key: "{mxgate}:q:by_sender", typ: "zset", members: []string{"\x0ba@x.example" + tk}},
		{key: "{mxgate}:q:by_verdict", typ: "zset", members: []string{"\x04spam" + tk}},
		{key: "{mxgate}:q:by_digest", typ: "zset", members: []string{"\x40" + digest + tk}},
		{key: "{mxgate}:lists:entries", typ: "hash", members: []string{"block\x00r@example.org\x00@evil.example"}},
		{key: "{mxgate}:log:records", typ: "zset", members: []string{timeKey(when, "L1")}},
		{key: "{mxgate}:log:data", typ: "hash", members: []string{timeKey(when, "L1")}},
		{key: "{mxgate}:log:by_id", typ: "zset", members: []string{"\x02L1" + timeKey(when, "L1")}},
		{key: "{mxgate}:config:revision", typ: "string", value: "1"},
		{key: "{mxgate}:config:current", typ: "string"},
		{key: "{mxgate}:config:history", typ: "list"},
		{key: "{mxgate}:report:2026-03-14", typ: "string"},
		{key: "{mxgate}:reports", typ: "zset", members: []string{"2026-03-14"}},
		{key: "{mxgate}:members", typ: "zset", members: []string{"n1"}},
		{key: "{mxgate}:members:m:n1", typ: "string"},
		{key: "{mxgate}:peer:nonce:0123abcd", typ: "string"},
		{key: "{mxgate}:digest:keys", typ: "hash", members: []string{"0a0b0c0d"}},
		{key: "{mxgate}:digest:sending:2026-03-14:r@example.org", typ: "string"},
		{key: "{mxgate}:digest:optout", typ: "set"},
		{key: "{mxgate}:digest:covered", typ: "hash", members: []string{"r@example.org"}},
		{key: "{mxgate}:digest:dismissed:r@example.org", typ: "zset", members: []string{"Q1"}},
		{key: "{mxgate}:console:revoked:S1", typ: "string", value: "1"},
	}
	var want []string
	for _, k := range keys {
		want = append(want, k.key)
		typ, err := c.Type(ctx, k.key).Result()
		if err != nil || typ != k.typ {
			t.Errorf("%s: type %q, %v; want %s", k.key, typ, err, k.typ)
			continue
		}
		var got []string
		switch k.typ {
		case "zset":
			got, err = c.ZRange(ctx, k.key, 0, -1).Result()
		case "hash":
			got, err = c.HKeys(ctx, k.key).Result()
		case "string":
			if k.value != "" {
				v, err := c.Get(ctx, k.key).Result()
				if err != nil || v != k.value {
					t.Errorf("%s = %q, %v; want %q", k.key, v, err, k.value)
				}
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		if k.members != nil && !slices.Equal(got, k.members) {
			t.Errorf("%s holds %q, want %q", k.key, got, k.members)
		}
	}
	got, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("keys in Redis:\n %q\nwant\n %q", got, want)
	}
	for _, k := range got {
		if !strings.HasPrefix(k, "{mxgate}:") {
			t.Errorf("key %q lacks the {mxgate}: prefix", k)
		}
	}

	// A revoked session goes when the session does (PXAT, not a TTL
	// that a slow write would stretch).
	if at, err := c.PExpireTime(ctx, "{mxgate}:console:revoked:S1").Result(); err != nil || at < time.Duration(expires.UnixMilli())*time.Millisecond || at > time.Duration(expires.UnixMilli()+1)*time.Millisecond {
		t.Errorf("{mxgate}:console:revoked:S1 expires at %v, %v; want %v (unix ms)", at, err, expires.UnixMilli())
	}

	// The index record names each index key with its member: Delete and
	// Expire remove what it says.
	var idx []struct {
		K string `json:"k"`
		M []byte `json:"m"`
	}
	data, err := c.Get(ctx, "{mxgate}:q:idx:Q1").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		t.Fatalf("index record %s: %v", data, err)
	}
	var idxKeys []string
	for _, e := range idx {
		idxKeys = append(idxKeys, e.K+" "+string(e.M))
	}
	wantIdx := []string{
		"{mxgate}:q:by_time " + tk, "{mxgate}:q:by_expires " + timeKey(expires, "Q1"),
		"{mxgate}:q:by_rcpt \x0dr@example.org" + tk, "{mxgate}:q:by_sender \x0ba@x.example" + tk,
		"{mxgate}:q:by_verdict \x04spam" + tk, "{mxgate}:q:by_digest \x40" + digest + tk,
	}
	if !slices.Equal(idxKeys, wantIdx) {
		t.Errorf("index record = %q\nwant %q", idxKeys, wantIdx)
	}

	// What the channels carried, in order: the list change, the new
	// revision's number, the announced number.
	wantMsgs := []string{"{mxgate}:lists:changed add", "{mxgate}:config:changed 1", "{mxgate}:config:changed 7"}
	for _, w := range wantMsgs {
		msg, err := ps.ReceiveTimeout(ctx, 5*time.Second)
		if err != nil {
			t.Fatalf("waiting for %q: %v", w, err)
		}
		m, ok := msg.(*redis.Message)
		if !ok {
			t.Fatalf("got %T, want the message %q", msg, w)
		}
		if got := m.Channel + " " + m.Payload; got != w {
			t.Errorf("message %q, want %q", got, w)
		}
	}
}
