package lists

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseValue(t *testing.T) {
	tests := []struct {
		in, want string
		errHas   string // substring of the error when want is ""
	}{
		{in: "user@example.org", want: "user@example.org"},
		{in: "User.Name@Example.ORG", want: "User.Name@example.org"},
		{in: "user+tag@example.org.", want: "user+tag@example.org"},
		{in: "user@xn--bcher-kva.example", want: "user@xn--bcher-kva.example"},
		{in: "üser@example.org", want: "üser@example.org"},
		{in: "a/b@example.org", want: "a/b@example.org"},
		{in: "@Example.org", want: "@example.org"},
		{in: "@localhost", want: "@localhost"},
		{in: "@_dmarc-x.example.org", want: "@_dmarc-x.example.org"},
		{in: ".Example.org", want: ".example.org"},
		{in: ".org", want: ".org"},
		{in: "192.0.2.1", want: "192.0.2.1"},
		{in: "::ffff:192.0.2.1", want: "192.0.2.1"},
		{in: "2001:DB8::1", want: "2001:db8::1"},
		{in: "192.0.2.77/24", want: "192.0.2.0/24"},
		{in: "192.0.2.1/32", want: "192.0.2.1"},
		{in: "0.0.0.0/0", want: "0.0.0.0/0"},
		{in: "::ffff:192.0.2.0/120", want: "192.0.2.0/24"},
		{in: "2001:db8:1::/32", want: "2001:db8::/32"},
		{in: "", errHas: "empty"},
		{in: "@", errHas: "empty domain"},
		{in: ".", errHas: "empty domain"},
		{in: " ", errHas: "whitespace"},
		{in: " user@example.org", errHas: "whitespace"},
		{in: "user@example.org\n", errHas: "whitespace"},
		{in: "a\x00@example.org", errHas: "control"},
		{in: "\xff@example.org", errHas: "UTF-8"},
		{in: "example.org", errHas: "bare domain"},
		{in: "user@", errHas: "empty domain"},
		{in: "@user@example.org", errHas: "invalid character"},
		{in: "a@b@example.org", errHas: "more than one @"},
		{in: "<a@example.org>", errHas: "without angle brackets: a@example.org"},
		{in: "<>", errHas: "null sender"},
		{in: "*@x.com", errHas: "wildcards are not supported: use @x.com for the domain or .x.com for it and its subdomains"},
		{in: "**@x.com", errHas: "use @x.com for the domain"},
		{in: "*.x.com", errHas: "use @x.com for the domain or .x.com"},
		{in: "@*.x.com", errHas: "use @x.com for the domain or .x.com"},
		{in: "user*@x.com", errHas: "wildcards are not supported; accepted forms"},
		{in: "user@*.x.com", errHas: "wildcards are not supported; accepted forms"},
		{in: "*", errHas: "wildcards are not supported; accepted forms"},
		{in: "*@", errHas: "wildcards are not supported; accepted forms"},
		{in: "192.0.2.*", errHas: "use the network 192.0.2.0/24"},
		{in: "10.*.*.*", errHas: "use the network 10.0.0.0/8"},
		{in: "10.*.2.*", errHas: "wildcards are not supported; accepted forms"},
		{in: "*.0.2.1", errHas: "wildcards are not supported; accepted forms"},
		{in: "a@exa mple.org", errHas: "whitespace"},
		{in: "a@-example.org", errHas: "starting or ending"},
		{in: "a@example..org", errHas: "empty label"},
		{in: "..example.org", errHas: "empty label"},
		{in: "@bücher.example", errHas: "xn--"},
		{in: "a@[192.0.2.1]", errHas: "invalid character"},
		{in: "@192.0.2.1", errHas: "numeric"},
		{in: "@" + strings.Repeat("a", 64) + ".org", errHas: "longer than 63"},
		{in: strings.Repeat("a", 65) + "@example.org", errHas: "longer than 64"},
		{in: "192.0.2.0/33", errHas: "CIDR"},
		{in: "192.0.2.256", errHas: "not valid"},
		{in: "fe80::1%eth0", errHas: "zone"},
		{in: "fe80::1%eth0/64", errHas: "CIDR"},
	}
	for _, tc := range tests {
		got, err := ParseValue(tc.in)
		if tc.want != "" {
			if err != nil || got != tc.want {
				t.Errorf("ParseValue(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("ParseValue(%q) = %q, want an error", tc.in, got)
			continue
		}
		if !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("ParseValue(%q) error %q, want it to mention %q", tc.in, err, tc.errHas)
		}
	}
}

func TestParseRcptWildcardHint(t *testing.T) {
	_, err := ParseRcpt("*@example.org")
	if err == nil || !strings.Contains(err.Error(), "wildcards are not supported: use @example.org for every recipient in the domain") {
		t.Errorf("ParseRcpt(*@example.org) = %v, want the @example.org hint", err)
	}
}

func TestParseValueErrorNamesForms(t *testing.T) {
	_, err := ParseValue("@")
	if err == nil || !strings.Contains(err.Error(), "accepted forms") || !strings.Contains(err.Error(), ".example.org") {
		t.Errorf("error %v does not say what is accepted", err)
	}
}

func TestParseRcpt(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"", "", true},
		{"Bob@Example.ORG", "Bob@example.org", true},
		{"@Example.org", "@example.org", true},
		{".example.org", "", false},
		{"example.org", "", false},
		{"192.0.2.1", "", false},
		{"@", "", false},
		{"a b@example.org", "", false},
		{"*@example.org", "", false},
	}
	for _, tc := range tests {
		got, err := ParseRcpt(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseRcpt(%q) = %q, %v; want %q (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func FuzzParseValue(f *testing.F) {
	for _, s := range []string{
		"user@example.org", "@Example.org", ".example.org.", "192.0.2.1", "::ffff:10.0.0.1",
		"10.1.2.3/8", "2001:db8::/32", "::ffff:1.2.3.4/120", "example.org", "@", "a@b@c", "fe80::1%eth0",
		"ü@x.org", "\xff", "", "*@x.com", "*.x.com", "@*.x.com", "192.0.2.*", "<a@x.org>", "<>", "user@", "*",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := ParseValue(in)
		if err == nil {
			again, err := ParseValue(out)
			if err != nil || again != out {
				t.Fatalf("ParseValue(%q) = %q, but ParseValue(%q) = %q, %v", in, out, out, again, err)
			}
			// A value that parses must compile into a Set that matches it.
			if s := Compile([]Entry{{Kind: Block, Value: out}}); s.Len() != 1 {
				t.Fatalf("Compile of valid value %q gave Len %d", out, s.Len())
			}
		}
		if r, err := ParseRcpt(in); err == nil {
			if again, err := ParseRcpt(r); err != nil || again != r {
				t.Fatalf("ParseRcpt(%q) = %q, but ParseRcpt(%q) = %q, %v", in, r, r, again, err)
			}
		}
	})
}

func TestMatch(t *testing.T) {
	e := func(k Kind, v, rcpt string) Entry { return Entry{Kind: k, Value: v, Rcpt: rcpt} }
	set := Compile([]Entry{
		// global
		e(Block, "@spam.example", ""),
		e(Allow, "boss@spam.example", ""),
		e(Block, ".bad.example", ""),
		e(Block, "198.51.100.0/24", ""),
		e(Allow, "198.51.100.7", ""),
		e(Block, "2001:db8::/32", ""),
		e(Block, "Mixed.Case@Sender.Example", ""),
		// recipient domain example.org
		e(Allow, "@spam.example", "@example.org"),
		e(Block, "friend@ok.example", "@example.org"),
		// one recipient
		e(Block, "@spam.example", "strict@example.org"),
		e(Block, "friend@ok.example", "Bob@Example.org"),
		e(Allow, "friend@ok.example", "bob@example.org"),
		e(Block, "203.0.113.5", "carol@example.org"),
		// invalid entries are skipped, not fatal
		e(Block, "not valid", ""),
		e("maybe", "x@y.example", ""),
	})
	v4 := netip.MustParseAddr
	none := netip.Addr{}
	tests := []struct {
		name   string
		sender string
		client netip.Addr
		rcpt   string
		want   Kind
	}{
		{"no entry", "x@clean.example", v4("192.0.2.1"), "r@other.example", ""},
		{"global domain block", "x@spam.example", none, "r@other.example", Block},
		{"global domain any case", "X@SPAM.Example", none, "r@other.example", Block},
		{"@domain is not subdomains", "x@sub.spam.example", none, "r@other.example", ""},
		{"global allow beats global block", "boss@spam.example", none, "r@other.example", Allow},
		{"address match ignores case", "BOSS@spam.example", none, "r@other.example", Allow},
		{"local part case-insensitive too", "mixed.case@sender.example", none, "r@other.example", Block},
		{".domain matches the domain", "x@bad.example", none, "r@other.example", Block},
		{".domain matches deep subdomains", "x@a.b.bad.example", none, "r@other.example", Block},
		{".domain is not a suffix match", "x@notbad.example", none, "r@other.example", ""},
		{"trailing dot in sender domain", "x@bad.example.", none, "r@other.example", Block},
		{"CIDR block", "x@clean.example", v4("198.51.100.9"), "r@other.example", Block},
		{"IP allow beats CIDR block", "x@clean.example", v4("198.51.100.7"), "r@other.example", Allow},
		{"IP allow beats domain block", "x@spam.example", v4("198.51.100.7"), "r@other.example", Allow},
		{"IPv4-mapped client", "", v4("::ffff:198.51.100.9"), "r@other.example", Block},
		{"IPv6 CIDR", "", v4("2001:db8:1::1"), "r@other.example", Block},
		{"null sender, no IP", "", none, "r@other.example", ""},
		{"rcpt domain allow overrides global block", "x@spam.example", none, "alice@example.org", Allow},
		{"rcpt domain applies in any case", "x@spam.example", none, "Alice@EXAMPLE.ORG", Allow},
		{"rcpt domain block", "friend@ok.example", none, "alice@example.org", Block},
		{"exact rcpt overrides rcpt domain", "x@spam.example", none, "strict@example.org", Block},
		{"exact rcpt: allow beats block", "friend@ok.example", none, "bob@example.org", Allow},
		{"exact rcpt falls through to domain level", "x@spam.example", none, "bob@example.org", Allow},
		{"exact rcpt level falls through to global", "x@bad.example", none, "strict@example.org", Block},
		{"rcpt IP entry", "x@clean.example", v4("203.0.113.5"), "carol@example.org", Block},
		{"rcpt IP entry only for that rcpt", "x@clean.example", v4("203.0.113.5"), "dave@example.org", ""},
		{"no rcpt: global only", "x@spam.example", none, "", Block},
		{"rcpt without domain", "x@spam.example", none, "postmaster", Block},
	}
	for _, tc := range tests {
		if got := set.Match(tc.sender, tc.client, tc.rcpt); got != tc.want {
			t.Errorf("%s: Match(%q, %v, %q) = %q, want %q", tc.name, tc.sender, tc.client, tc.rcpt, got, tc.want)
		}
	}
	if set.Len() != 13 {
		t.Errorf("Len = %d, want 13 (invalid entries skipped)", set.Len())
	}
	var nilSet *Set
	if nilSet.Match("x@spam.example", none, "") != "" || nilSet.Len() != 0 {
		t.Error("nil Set matched")
	}
}

// The entry Policy names is the most specific one of the deciding level
// and kind, so that a reply and the log point at the line to edit.
func TestPolicyNamesTheEntry(t *testing.T) {
	set := Compile([]Entry{
		{Kind: Block, Value: ".example", Comment: "tld"},
		{Kind: Block, Value: ".spam.example"},
		{Kind: Block, Value: "@mail.spam.example", Comment: "ticket 42"},
		{Kind: Block, Value: "bad@mail.spam.example"},
		{Kind: Block, Value: "198.18.0.0/16"},
		{Kind: Block, Value: "198.18.0.0/24"},
		{Kind: Block, Value: "198.18.0.9"},
		{Kind: Allow, Value: "@spam.example", Rcpt: "@example.org", Comment: "they want it"},
		{Kind: Block, Value: "@spam.example", Rcpt: "@example.org"},
	})
	v4 := netip.MustParseAddr
	none := netip.Addr{}
	tests := []struct {
		name, sender string
		client       netip.Addr
		rcpt         string
		want         Entry
	}{
		{"address before domain", "bad@mail.spam.example", none, "r@other.test", Entry{Kind: Block, Value: "bad@mail.spam.example"}},
		{"domain before parent", "x@mail.spam.example", none, "r@other.test", Entry{Kind: Block, Value: "@mail.spam.example", Comment: "ticket 42"}},
		{"nearest parent domain", "x@a.spam.example", none, "r@other.test", Entry{Kind: Block, Value: ".spam.example"}},
		{"farther parent", "x@other.example", none, "r@other.test", Entry{Kind: Block, Value: ".example", Comment: "tld"}},
		{"address before IP", "x@clean.test", v4("198.18.0.9"), "r@other.test", Entry{Kind: Block, Value: "198.18.0.9"}},
		{"narrowest network", "x@clean.test", v4("198.18.0.10"), "r@other.test", Entry{Kind: Block, Value: "198.18.0.0/24"}},
		{"wider network", "x@clean.test", v4("198.18.1.10"), "r@other.test", Entry{Kind: Block, Value: "198.18.0.0/16"}},
		{"allow of the recipient's level", "x@spam.example", none, "r@example.org", Entry{Kind: Allow, Value: "@spam.example", Rcpt: "@example.org", Comment: "they want it"}},
		{"nothing", "x@clean.test", none, "r@other.test", Entry{}},
	}
	for _, tc := range tests {
		if got := set.Policy(tc.sender, tc.client, tc.rcpt).Entry; got != tc.want {
			t.Errorf("%s: Policy(%q, %v, %q).Entry = %+v, want %+v", tc.name, tc.sender, tc.client, tc.rcpt, got, tc.want)
		}
	}
}

// An allow entry waives the attachment policy only when it says so, and
// the entry that decides at the most specific level is the one that says.
func TestPolicySkipAttachments(t *testing.T) {
	set := Compile([]Entry{
		{Kind: Allow, Value: "billing@partner.example", SkipAttachments: true},
		{Kind: Allow, Value: "@partner.example"},
		{Kind: Allow, Value: "10.1.0.0/16", SkipAttachments: true},
		{Kind: Block, Value: "@partner.example", Rcpt: "strict@example.org"},
		{Kind: Allow, Value: "billing@partner.example", Rcpt: "@example.net"},
		{Kind: Block, Value: "evil@partner.example", SkipAttachments: true}, // invalid: skipped
	})
	none := netip.Addr{}
	internal := netip.MustParseAddr("10.1.2.3")
	tests := []struct {
		name   string
		sender string
		client netip.Addr
		rcpt   string
		want   Kind
		skip   bool
		entry  string // the deciding entry's value and recipient
	}{
		{"allow with skip", "billing@partner.example", none, "r@example.org", Allow, true, "billing@partner.example"},
		{"allow without skip", "sales@partner.example", none, "r@example.org", Allow, false, "@partner.example"},
		{"any matching allow entry of the level waives", "sales@partner.example", internal, "r@example.org", Allow, true, "10.1.0.0/16"},
		{"network allow with skip", "", internal, "r@example.org", Allow, true, "10.1.0.0/16"},
		{"recipient block decides", "billing@partner.example", none, "strict@example.org", Block, false, "@partner.example for strict@example.org"},
		{"recipient-domain allow without skip decides", "billing@partner.example", none, "r@example.net", Allow, false, "billing@partner.example for @example.net"},
		{"no entry", "x@else.example", none, "r@example.org", "", false, ""},
		{"block entry with skip is not compiled", "evil@partner.example", none, "r@example.org", Allow, false, "@partner.example"},
	}
	for _, tc := range tests {
		got := set.Policy(tc.sender, tc.client, tc.rcpt)
		entry := got.Entry.Value
		if got.Entry.Rcpt != "" {
			entry += " for " + got.Entry.Rcpt
		}
		if got.Kind != tc.want || got.SkipAttachments != tc.skip || entry != tc.entry || got.Entry.Kind != tc.want {
			t.Errorf("%s: Policy = %+v, want %q skip %v by entry %q", tc.name, got, tc.want, tc.skip, tc.entry)
		}
		if got := set.Match(tc.sender, tc.client, tc.rcpt); got != tc.want {
			t.Errorf("%s: Match = %q, want %q", tc.name, got, tc.want)
		}
	}
	if _, err := Normalize(Entry{Kind: Block, Value: "a@b.example", SkipAttachments: true}); err == nil || !strings.Contains(err.Error(), "allow entries only") {
		t.Errorf("block entry with skip_attachments: %v", err)
	}
}

func BenchmarkMatch(b *testing.B) {
	var entries []Entry
	for i := range 2000 {
		entries = append(entries,
			Entry{Kind: Block, Value: "user" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + "@d" + string(rune('a'+i%26)) + ".example"},
			Entry{Kind: Block, Value: "@dom" + string(rune('a'+i%26)) + strings.Repeat("y", i%11) + ".example", Rcpt: "r@example.org"},
		)
	}
	for i := range 50 {
		entries = append(entries, Entry{Kind: Block, Value: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16).String()})
	}
	s := Compile(entries)
	client := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		s.Match("Sender@Mail.Sub.Example.com", client, "r@example.org")
	}
}

// flakyStore fails All when told to; the rest is a minimal in-memory store.
type flakyStore struct {
	mu      sync.Mutex // guards entries against a Cache.Run's reloads
	entries []Entry
	fail    bool
	changes chan struct{} // what Changes returns (nil: never signals)
	reads   atomic.Int64  // calls of All
}

func (s *flakyStore) set(es []Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = es
}

func (s *flakyStore) Add(_ context.Context, e Entry) (Entry, bool, error) {
	s.entries = append(s.entries, e)
	return e, true, nil
}
func (s *flakyStore) Remove(context.Context, Kind, string, string) error { return ErrNotFound }
func (s *flakyStore) Changes(context.Context) <-chan struct{}            { return s.changes }
func (s *flakyStore) All(context.Context) ([]Entry, error) {
	s.reads.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return nil, errors.New("store down")
	}
	return s.entries, nil
}

func TestCacheKeepsLastGoodSnapshot(t *testing.T) {
	ctx := context.Background()
	st := &flakyStore{entries: []Entry{{Kind: Block, Value: "@evil.example"}}}
	c := NewCache(st)
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	st.fail = true
	if err := c.Reload(ctx); err == nil {
		t.Fatal("Reload with the store down returned nil")
	}
	if c.Set().Match("x@evil.example", netip.Addr{}, "") != Block {
		t.Error("failed reload dropped the last good snapshot")
	}
	// A write that succeeds while reloads fail is not reported as failed.
	if _, _, err := c.Add(ctx, Entry{Kind: Allow, Value: "x@evil.example"}); err != nil {
		t.Errorf("Add with reload failing: %v", err)
	}
	if err := c.Remove(ctx, Block, "a@b.example", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove did not pass the store's error through: %v", err)
	}
}

func TestCacheRunStopsWithContext(t *testing.T) {
	c := NewCache(&flakyStore{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		c.Run(ctx, time.Millisecond)
		close(done)
	}()
	cancel()
	<-done // hangs (and the test times out) if Run ignores ctx
}
