package smtpfront

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxgate/mxgate/config/duration"
	"github.com/mxgate/mxgate/dnsbl"
	"github.com/mxgate/mxgate/mailauth"
	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/testenv"
)

// DNSBLs at RCPT through real SMTP sessions against the test's own DNS
// server: the client is 127.0.0.1, so its query name is 1.0.0.127.<zone>.
func TestDNSBLAtRCPT(t *testing.T) {
	d := testenv.StartDNS(t)
	d.A("1.0.0.127.rej.test", "127.0.0.2")
	d.A("1.0.0.127.score.test", "127.0.0.3")
	d.A("1.0.0.127.blocked.test", "127.255.255.254")
	d.ServFail("1.0.0.127.down.test")
	d.Hang("1.0.0.127.hang.test")
	d.A("spam.example.dbl.test", "127.0.1.2")

	tests := []struct {
		name  string
		zones []scanner.DNSBLZone
		from  string
		rcpt  string   // the RCPT reply's start
		syms  []string // the scanned message's front symbols
	}{
		{"reject zone", []scanner.DNSBLZone{{Zone: "rej.test", Reject: true}}, "a@sender.test",
			"554 5.7.1 Service unavailable; client [127.0.0.1] blocked using rej.test", nil},
		{"scored zone", []scanner.DNSBLZone{{Zone: "score.test", Score: 4}}, "a@sender.test",
			"250", []string{"DNSBL_SCORE_TEST"}},
		{"not listed", []scanner.DNSBLZone{{Zone: "clean.test", Reject: true}}, "a@sender.test", "250", nil},
		{"blocked query never lists", []scanner.DNSBLZone{{Zone: "blocked.test", Reject: true}}, "a@sender.test",
			"250", []string{"DNSBL_ERROR"}},
		{"servfail never blocks", []scanner.DNSBLZone{{Zone: "down.test", Reject: true}}, "a@sender.test",
			"250", []string{"DNSBL_ERROR"}},
		{"timeout never blocks", []scanner.DNSBLZone{{Zone: "hang.test", Reject: true}, {Zone: "score.test", Score: 1}}, "a@sender.test",
			"250", []string{"DNSBL_ERROR", "DNSBL_SCORE_TEST"}},
		{"sender domain zone", []scanner.DNSBLZone{{Zone: "dbl.test", Type: "domain", Reject: true}}, "a@spam.example",
			"554 5.7.1 <a@spam.example>: Sender address rejected: blocked using dbl.test", nil},
		{"sender domain not listed", []scanner.DNSBLZone{{Zone: "dbl.test", Type: "domain", Reject: true}}, "a@ham.example", "250", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			w := workerFunc(func(ctx context.Context, m *scanner.Message) (scanner.Verdict, error) {
				mu.Lock()
				defer mu.Unlock()
				for _, s := range m.Symbols {
					got = append(got, s.Name)
				}
				return scanner.Verdict{Action: scanner.ActionDeliver, Class: "clean", Node: "t1"}, nil
			})
			c := newBL(t, d, tt.zones...)
			f := startFront(t, w, func(o *Options) { o.DNSBL = c })
			cl := dial(t, f.addr)
			cl.ehlo()
			if r := cl.do("MAIL FROM:<" + tt.from + ">"); !strings.HasPrefix(r, "250") {
				t.Fatalf("MAIL: %s", r)
			}
			if r := cl.do("RCPT TO:<b@example.org>"); !strings.HasPrefix(r, tt.rcpt) {
				t.Fatalf("RCPT = %q, want %q", r, tt.rcpt)
			}
			if !strings.HasPrefix(tt.rcpt, "250") {
				return
			}
			cl.do("DATA")
			if r := cl.do("Subject: x\r\n\r\nhello\r\n."); !strings.HasPrefix(r, "250") {
				t.Fatalf("DATA: %s", r)
			}
			mu.Lock()
			defer mu.Unlock()
			slices.Sort(got)
			if !slices.Equal(got, tt.syms) {
				t.Errorf("symbols = %v, want %v", got, tt.syms)
			}
		})
	}
}

// The client is asked about once per connection, and a second
// connection is served from the cache: the DNS server sees one query.
func TestDNSBLOncePerConnection(t *testing.T) {
	d := testenv.StartDNS(t)
	d.A("1.0.0.127.score.test", "127.0.0.3")
	c := newBL(t, d, scanner.DNSBLZone{Zone: "score.test", Score: 1})
	f := startFront(t, workerFunc(func(ctx context.Context, m *scanner.Message) (scanner.Verdict, error) {
		return scanner.Verdict{Action: scanner.ActionDeliver, Class: "clean", Node: "t1"}, nil
	}), func(o *Options) { o.DNSBL = c })
	for range 2 {
		cl := dial(t, f.addr)
		for range 2 {
			if r := cl.send("Subject: x\r\n\r\nhello\r\n"); !strings.HasPrefix(r, "250") {
				t.Fatalf("send: %s", r)
			}
			cl.do("RSET")
		}
	}
	if n := d.Queries("1.0.0.127.score.test"); n != 1 {
		t.Errorf("%d queries for the client, want 1", n)
	}
}

func newBL(t *testing.T, d *testenv.DNS, zones ...scanner.DNSBLZone) *dnsbl.Checker {
	t.Helper()
	c, err := dnsbl.New(dnsbl.Options{
		Policy:   scanner.DNSBLPolicy{Zones: zones, Timeout: duration.Duration{Duration: time.Second}},
		Resolver: mailauth.NewResolver(d.Addr),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
