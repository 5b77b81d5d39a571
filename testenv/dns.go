package testenv

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// DNS is an authoritative DNS server for tests on a free loopback port,
// UDP and TCP on the same port, answering from the records the test sets:
// a name without records is NXDOMAIN, a name with records of other types
// is an empty NOERROR answer (NODATA), a name marked ServFail gets
// SERVFAIL and a name marked Hang is never answered (a lost reply, for
// timeouts). It counts the queries per name, so a test can tell a cached
// answer from a fresh one. It stops at the test's cleanup.
//
// The system resolver here does not point at loopback: code under test
// must be given Addr as its resolver (a net.Resolver whose Dial always
// goes there).
type DNS struct {
	// Addr is host:port of the server, for UDP and TCP alike.
	Addr string

	mu       sync.Mutex
	rrs      map[string][]dns.RR // by canonical name
	servfail map[string]bool
	hang     map[string]bool
	queries  map[string]int
}

// StartDNS starts a DNS server on 127.0.0.1 with no records.
func StartDNS(t testing.TB) *DNS {
	t.Helper()
	d := &DNS{
		rrs:      map[string][]dns.RR{},
		servfail: map[string]bool{},
		hang:     map[string]bool{},
		queries:  map[string]int{},
	}
	pc, ln := listenUDPAndTCP(t)
	d.Addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(d.serve)
	servers := []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}}
	for _, s := range servers {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		done := make(chan error, 1)
		go func() { done <- s.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-done:
			t.Fatalf("dns server: %v", err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s.ShutdownContext(ctx)
			<-done
		})
	}
	return d
}

// listenUDPAndTCP binds UDP and TCP on one free loopback port (a
// resolver falls back to TCP on the same address when a reply is
// truncated).
func listenUDPAndTCP(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("dns server: listen udp: %v", err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close()
		lastErr = err
	}
	t.Fatalf("dns server: no port free for both udp and tcp: %v", lastErr)
	return nil, nil
}

func canonical(name string) string { return dns.CanonicalName(name) }

// Add adds records in zone file syntax ("example.org. 300 IN TXT \"v=spf1 -all\"",
// "mx.example.org. IN A 192.0.2.1").
func (d *DNS) Add(t testing.TB, records ...string) {
	t.Helper()
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil || rr == nil {
			t.Fatalf("dns record %q: %v", s, err)
		}
		d.addRR(rr)
	}
}

func (d *DNS) addRR(rr dns.RR) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name := canonical(rr.Header().Name)
	d.rrs[name] = append(d.rrs[name], rr)
}

// TXT adds one TXT record per value; a value longer than 255 bytes (a
// DKIM key) is split into strings of 255, which a resolver joins again.
func (d *DNS) TXT(name string, values ...string) {
	for _, v := range values {
		var parts []string
		for len(v) > 255 {
			parts, v = append(parts, v[:255]), v[255:]
		}
		parts = append(parts, v)
		d.addRR(&dns.TXT{Hdr: rrHeader(name, dns.TypeTXT), Txt: parts})
	}
}

// A adds A or AAAA records, by the address's family.
func (d *DNS) A(name string, addrs ...string) {
	for _, s := range addrs {
		a := netip.MustParseAddr(s)
		if a.Is4() {
			d.addRR(&dns.A{Hdr: rrHeader(name, dns.TypeA), A: a.AsSlice()})
		} else {
			d.addRR(&dns.AAAA{Hdr: rrHeader(name, dns.TypeAAAA), AAAA: a.AsSlice()})
		}
	}
}

// MX adds an MX record.
func (d *DNS) MX(name string, pref uint16, host string) {
	d.addRR(&dns.MX{Hdr: rrHeader(name, dns.TypeMX), Preference: pref, Mx: dns.Fqdn(host)})
}

func rrHeader(name string, typ uint16) dns.RR_Header {
	return dns.RR_Header{Name: dns.Fqdn(name), Rrtype: typ, Class: dns.ClassINET, Ttl: 60}
}

// ServFail makes every query for name answer SERVFAIL.
func (d *DNS) ServFail(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.servfail[canonical(name)] = true
}

// Hang makes every query for name go unanswered.
func (d *DNS) Hang(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hang[canonical(name)] = true
}

// Queries is how many queries for name (any type) the server received.
func (d *DNS) Queries(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queries[canonical(name)]
}

// Resolver is a resolver that asks only this server, for code under test
// that takes a *net.Resolver.
func (d *DNS) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, network, d.Addr)
	}}
}

func (d *DNS) serve(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := canonical(q.Name)
	d.mu.Lock()
	d.queries[name]++
	hang, servfail := d.hang[name], d.servfail[name]
	all, found := d.rrs[name]
	var answer []dns.RR
	for _, rr := range all {
		if rr.Header().Rrtype == q.Qtype || q.Qtype == dns.TypeANY {
			answer = append(answer, dns.Copy(rr))
		}
	}
	d.mu.Unlock()

	m := new(dns.Msg)
	switch {
	case hang:
		return
	case servfail:
		m.SetRcode(req, dns.RcodeServerFailure)
	case !found && !hasRecordsBelow(d, name):
		m.SetRcode(req, dns.RcodeNameError)
	default:
		m.SetReply(req)
		m.Authoritative = true
		for _, rr := range answer {
			rr.Header().Name = q.Name // as asked, case included
			m.Answer = append(m.Answer, rr)
		}
	}
	w.WriteMsg(m)
}

// hasRecordsBelow: a name with records under it exists (an empty
// non-terminal), so it is NODATA, not NXDOMAIN (RFC 8020).
func hasRecordsBelow(d *DNS, name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for n := range d.rrs {
		if strings.HasSuffix(n, "."+name) {
			return true
		}
	}
	return false
}
