package dnsbl

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/config/duration"
	"github.com/mxgate/mxgate/mailauth"
	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/testenv"
)

func newChecker(t *testing.T, d *testenv.DNS, zones ...scanner.DNSBLZone) *Checker {
	t.Helper()
	p := scanner.DefaultPolicy()
	p.DNSBL = scanner.DNSBLPolicy{Zones: zones, Timeout: duration.Duration{Duration: time.Second}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Policy: p.DNSBL, Resolver: mailauth.NewResolver(d.Addr)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestReverse(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":        "1.2.0.192",
		"::ffff:192.0.2.1": "1.2.0.192",
		"2001:db8::1":      "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2",
	} {
		if got := reverse(netip.MustParseAddr(in).Unmap()); got != want {
			t.Errorf("reverse(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestCheckIP(t *testing.T) {
	d := testenv.StartDNS(t)
	d.A("2.0.0.127.bl.test", "127.0.0.2")
	d.A("3.0.0.127.bl.test", "127.255.255.254")
	d.A("4.0.0.127.bl.test", "192.0.2.1")
	d.ServFail("5.0.0.127.bl.test")
	d.Hang("6.0.0.127.bl.test")
	d.A("7.0.0.127.bl.test", "127.0.0.4", "127.0.0.2")
	d.A("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test", "127.0.0.10")
	c := newChecker(t, d, scanner.DNSBLZone{Zone: "bl.test", Score: 3})
	tests := []struct {
		name, ip string
		listed   string // the answer; "" = not listed
		err      string // "" = no error
	}{
		{"listed", "127.0.0.2", "127.0.0.2", ""},
		{"not listed", "127.0.0.1", "", ""},
		{"blocked query is an error, not a listing", "127.0.0.3", "", "127.255.255.x"},
		{"answer outside 127/8 is an error", "127.0.0.4", "", "outside 127.0.0.0/8"},
		{"servfail", "127.0.0.5", "", "bl.test"},
		{"timeout", "127.0.0.6", "", "bl.test"},
		{"several codes: the lowest", "127.0.0.7", "127.0.0.2", ""},
		{"ipv6 nibbles", "2001:db8::1", "127.0.0.10", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls, err := c.CheckIP(context.Background(), netip.MustParseAddr(tt.ip))
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("err = %v, want %q", err, tt.err)
			}
			switch {
			case tt.listed == "" && len(ls) != 0:
				t.Errorf("listings = %+v, want none", ls)
			case tt.listed != "" && (len(ls) != 1 || ls[0].Answer.String() != tt.listed || ls[0].Zone != "bl.test" || ls[0].Score != 3):
				t.Errorf("listings = %+v, want %s in bl.test", ls, tt.listed)
			}
		})
	}
	if _, err := c.CheckIP(context.Background(), netip.MustParseAddr("127.0.0.3")); !errors.Is(err, ErrBlocked) {
		t.Errorf("blocked: err = %v, want ErrBlocked", err)
	}
}

// A second lookup is served from the cache, without a query; errors are
// never cached.
func TestCache(t *testing.T) {
	d := testenv.StartDNS(t)
	d.A("2.0.0.127.bl.test", "127.0.0.2")
	d.ServFail("5.0.0.127.bl.test")
	c := newChecker(t, d, scanner.DNSBLZone{Zone: "bl.test", Reject: true})
	for _, tt := range []struct {
		ip, name string
		queries  int // after two checks
	}{
		{"127.0.0.2", "2.0.0.127.bl.test", 1},
		{"127.0.0.1", "1.0.0.127.bl.test", 1}, // "not listed" is cached too
		{"127.0.0.5", "5.0.0.127.bl.test", 2},
	} {
		for range 2 {
			c.CheckIP(context.Background(), netip.MustParseAddr(tt.ip))
		}
		// A resolver may retry a SERVFAIL: count at least, not exactly.
		if got := d.Queries(tt.name); tt.queries == 1 && got != 1 || tt.queries > 1 && got < 2 {
			t.Errorf("%s: %d queries, want %d", tt.ip, got, tt.queries)
		}
	}
}

func TestCacheBounds(t *testing.T) {
	c := newCache(2, time.Minute)
	now := time.Now()
	c.now = func() time.Time { return now }
	a := netip.MustParseAddr("127.0.0.2")
	c.put("a", a)
	c.put("b", a)
	c.put("c", a)
	if len(c.m) != 2 {
		t.Errorf("%d entries, bound 2", len(c.m))
	}
	if _, ok := c.get("c"); !ok {
		t.Error("newest entry missing")
	}
	now = now.Add(time.Minute)
	if _, ok := c.get("c"); ok {
		t.Error("expired entry served")
	}
}

func TestCheckDomain(t *testing.T) {
	d := testenv.StartDNS(t)
	d.A("spam.example.dbl.test", "127.0.1.2")
	c := newChecker(t, d, scanner.DNSBLZone{Zone: "dbl.test", Type: "domain", Reject: true}, scanner.DNSBLZone{Zone: "bl.test"})
	if !c.HasDomainZones() {
		t.Error("HasDomainZones = false")
	}
	ls, err := c.CheckDomain(context.Background(), "Spam.Example.")
	if err != nil || len(ls) != 1 || !ls[0].Reject || ls[0].Zone != "dbl.test" {
		t.Errorf("listed domain: %+v, %v", ls, err)
	}
	if ls, err := c.CheckDomain(context.Background(), "ham.example"); err != nil || len(ls) != 0 {
		t.Errorf("clean domain: %+v, %v", ls, err)
	}
	if ls, err := c.CheckDomain(context.Background(), "bad domain;"); err != nil || len(ls) != 0 || d.Queries("bad domain;.dbl.test") != 0 {
		t.Errorf("invalid domain asked: %+v, %v", ls, err)
	}
	if got := (Listing{Zone: "zen.spamhaus.org", Score: 2, Answer: netip.MustParseAddr("127.0.0.2")}).Symbol("client").Name; got != "DNSBL_ZEN_SPAMHAUS_ORG" {
		t.Errorf("symbol = %s", got)
	}
}

// Whatever a DNS server answers, only 127.0.0.0/8 outside
// 127.255.255.0/24 is ever a listing.
func FuzzClassify(f *testing.F) {
	f.Add([]byte{127, 0, 0, 2}, []byte{127, 255, 255, 254})
	f.Add([]byte{192, 0, 2, 1}, []byte{})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var addrs []netip.Addr
		for _, raw := range [][]byte{a, b} {
			if x, ok := netip.AddrFromSlice(raw); ok {
				addrs = append(addrs, x)
			}
		}
		got, err := classify(addrs, nil)
		if err != nil && got.IsValid() {
			t.Fatal("a listing with an error")
		}
		if got.IsValid() && (!netip.MustParsePrefix("127.0.0.0/8").Contains(got) || netip.MustParsePrefix("127.255.255.0/24").Contains(got)) {
			t.Fatalf("listed with %s", got)
		}
	})
}
