package scanner

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mxgate/mxgate/config/duration"
)

func TestAuthAndDNSBLValidate(t *testing.T) {
	d := func(s time.Duration) duration.Duration { return duration.Duration{Duration: s} }
	tests := []struct {
		name string
		mod  func(p *Policy)
		want []string
	}{
		{"zero is valid", func(p *Policy) {}, nil},
		{"full", func(p *Policy) {
			p.Auth = AuthPolicy{Enabled: true, AuthservID: "mx.example.org", SPFTimeout: d(time.Second), OnReject: "quarantine", OnQuarantine: "none", Scores: map[string]float64{"SPF_FAIL": 3}}
			p.DNSBL = DNSBLPolicy{Zones: []DNSBLZone{{Zone: "zen.spamhaus.org", Reject: true}, {Zone: "dbl.spamhaus.org", Type: "domain", Score: 2}}, CacheSize: 10}
		}, nil},
		{"auth", func(p *Policy) {
			p.Auth = AuthPolicy{AuthservID: "mx example;", DKIMTimeout: d(-1), OnReject: "drop", OnQuarantine: "reject", Scores: map[string]float64{"NOPE": 1, "DKIM_FAIL": 5000}}
		}, []string{
			`auth.authserv_id: "mx example;" is not a host name (letters, digits, dots, hyphens; at most 255)`,
			"auth.dkim_timeout: must be 0 (default 5s) to 1m0s, got -1ns",
			`auth.on_reject: "drop" is not one of reject, quarantine, none`,
			`auth.on_quarantine: "reject" is not one of quarantine, none`,
			"auth.scores.DKIM_FAIL: must be -1000 to 1000, got 5000",
			"auth.scores.NOPE: not a sender authentication symbol (one of DKIM_FAIL, DKIM_NONE, DKIM_PASS, DKIM_PERMERROR, DKIM_TEMPERROR, DMARC_FAIL_NONE, DMARC_FAIL_QUARANTINE, DMARC_FAIL_REJECT, DMARC_NONE, DMARC_PASS, DMARC_PERMERROR, DMARC_TEMPERROR, SPF_FAIL, SPF_NEUTRAL, SPF_NONE, SPF_PASS, SPF_PERMERROR, SPF_SOFTFAIL, SPF_TEMPERROR)",
		}},
		{"dnsbl", func(p *Policy) {
			p.DNSBL = DNSBLPolicy{Zones: []DNSBLZone{{Zone: "localhost"}, {Zone: "bl.test", Type: "asn"}, {Zone: "bl.test"}, {Zone: "BL.test.", Type: "ip"}}, CacheTTL: d(48 * time.Hour), CacheSize: -1}
		}, []string{
			`dnsbl.zones[0].zone: "localhost" is not a DNS zone (e.g. zen.spamhaus.org)`,
			`dnsbl.zones[1].type: "asn" is not one of ip, domain`,
			"dnsbl.zones[3].zone: BL.test. is already zones[2]",
			"dnsbl.cache_ttl: must be 0 (default 5m0s) to 24h0m0s, got 48h0m0s",
			"dnsbl.cache_size: must be 0 (default 10000) to 1000000, got -1",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultPolicy()
			tt.mod(&p)
			var got []string
			for _, e := range Under("x", p.Validate()) {
				var se *SettingError
				if !errors.As(e, &se) {
					t.Fatalf("%v is not a SettingError", e)
				}
				got = append(got, se.Key[2:]+": "+se.Msg)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(got, want) {
				t.Errorf("got\n%q\nwant\n%q", got, want)
			}
		})
	}
	var l Local
	l.DNS.Resolver = "nowhere"
	if l.DNS.problems() == nil {
		t.Error("resolver without a port accepted")
	}
	l.DNS.Resolver = "127.0.0.1:53"
	if l.DNS.problems() != nil {
		t.Error("127.0.0.1:53 refused")
	}
}
