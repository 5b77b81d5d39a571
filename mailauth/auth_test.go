package mailauth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"

	"github.com/mxgate/mxgate/config/duration"
	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/spool"
	"github.com/mxgate/mxgate/testenv"
)

const (
	clientIP = "192.0.2.10"
	otherIP  = "198.51.100.7"
	// testTimeout is each check's bound in these tests: long enough for a
	// loaded machine, short for the cases that wait it out.
	testTimeout = 2 * time.Second
)

// world is the test's DNS: records for SPF, DKIM keys and DMARC policies.
type world struct {
	dns    *testenv.DNS
	rsaKey *rsa.PrivateKey
	edKey  ed25519.PrivateKey
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{dns: testenv.StartDNS(t)}
	var err error
	if w.rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if _, w.edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&w.rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	d := w.dns
	// SPF.
	d.TXT("pass.example", "v=spf1 ip4:"+clientIP+" -all")
	d.TXT("fail.example", "v=spf1 -all")
	d.TXT("soft.example", "v=spf1 ~all")
	d.A("none.example", "192.0.2.99")
	d.TXT("perm.example", "v=spf1 ip4:"+clientIP+" -all", "v=spf1 -all") // two records: RFC 7208 §4.5
	d.ServFail("temp.example")
	d.Hang("hang.example")
	d.TXT("helo.example", "v=spf1 ip4:"+clientIP+" -all")
	// example.org: the author domain of the DMARC cases; its mail goes
	// out through bounce.example.org, signed by mail.example.org.
	d.TXT("bounce.example.org", "v=spf1 ip4:"+clientIP+" -all")
	d.TXT("rsa._domainkey.mail.example.org", "v=DKIM1; k=rsa; p="+base64.StdEncoding.EncodeToString(der))
	d.TXT("ed._domainkey.example.org", "v=DKIM1; k=ed25519; p="+base64.StdEncoding.EncodeToString(w.edKey.Public().(ed25519.PublicKey)))
	d.TXT("rsa._domainkey.example.org", "v=DKIM1; k=rsa; p="+base64.StdEncoding.EncodeToString(der))
	d.ServFail("down._domainkey.example.org")
	d.TXT("_dmarc.example.org", "v=DMARC1; p=reject")
	d.TXT("_dmarc.strict.example", "v=DMARC1; p=reject; adkim=s; aspf=s")
	d.TXT("_dmarc.quar.example", "v=DMARC1; p=quarantine")
	d.TXT("_dmarc.sub.example", "v=DMARC1; p=none; sp=reject")
	d.TXT("_dmarc.own.sub.example", "v=DMARC1; p=quarantine")
	d.TXT("_dmarc.pct.example", "v=DMARC1; p=reject; pct=0")
	d.ServFail("_dmarc.dmarcdown.example")
	d.TXT("_dmarc.bad.example", "v=DMARC1; p=bogus")
	for _, dom := range []string{"strict.example", "quar.example", "sub.example", "pct.example", "dmarcdown.example", "bad.example", "own.sub.example", "x.sub.example"} {
		d.TXT("rsa._domainkey."+dom, "v=DKIM1; k=rsa; p="+base64.StdEncoding.EncodeToString(der))
		d.TXT("rsa._domainkey.mail."+dom, "v=DKIM1; k=rsa; p="+base64.StdEncoding.EncodeToString(der))
		d.TXT("bounce."+dom, "v=spf1 ip4:"+clientIP+" -all")
	}
	return w
}

func (w *world) checker(t *testing.T, p scanner.AuthPolicy) *Checker {
	t.Helper()
	if p.SPFTimeout.Duration == 0 {
		p.SPFTimeout = duration.Duration{Duration: testTimeout}
		p.DKIMTimeout = duration.Duration{Duration: testTimeout}
		p.DMARCTimeout = duration.Duration{Duration: testTimeout}
	}
	full := scanner.DefaultPolicy()
	full.Auth = p
	if err := full.Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Policy: p, Hostname: "mx.gateway.test", Resolver: NewResolver(w.dns.Addr)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// msg is a message with the given From, signed by each signer in turn.
type signer struct {
	domain, selector string
	key              crypto.Signer
}

func (w *world) rsa(domain string) signer { return signer{domain, "rsa", w.rsaKey} }

func message(t *testing.T, from string, signers ...signer) []byte {
	t.Helper()
	m := []byte("From: Alice <alice@" + from + ">\r\nTo: bob@gateway.test\r\nSubject: hello\r\n" +
		"Message-ID: <1@" + from + ">\r\n\r\nHello Bob.\r\n")
	for _, s := range signers {
		var b bytes.Buffer
		if err := dkim.Sign(&b, bytes.NewReader(m), &dkim.SignOptions{Domain: s.domain, Selector: s.selector, Signer: s.key}); err != nil {
			t.Fatal(err)
		}
		m = b.Bytes()
	}
	return m
}

func scan(t *testing.T, c *Checker, sender, helo, ip string, raw []byte) scanner.EngineResult {
	t.Helper()
	m := &scanner.Message{ID: "T1", Body: spool.FromBytes(raw), Env: scanner.Envelope{
		ClientIP: netip.MustParseAddr(ip), Helo: helo, Sender: sender, Recipients: []string{"bob@gateway.test"}}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := c.Scan(ctx, m)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if len(r.Headers) != 1 {
		t.Fatalf("headers = %q, want one Authentication-Results", r.Headers)
	}
	return r
}

func symbols(r scanner.EngineResult) []string {
	var out []string
	for _, s := range r.Symbols {
		out = append(out, s.Name)
	}
	return out
}

func TestSPF(t *testing.T) {
	w := newWorld(t)
	c := w.checker(t, scanner.AuthPolicy{})
	tests := []struct {
		name, sender, helo, ip string
		want, item             string
	}{
		{"pass", "u@pass.example", "client.test", clientIP, "SPF_PASS", "spf=pass smtp.mailfrom=u@pass.example"},
		{"fail", "u@fail.example", "client.test", clientIP, "SPF_FAIL", "spf=fail smtp.mailfrom=u@fail.example"},
		{"not the listed address", "u@pass.example", "client.test", otherIP, "SPF_FAIL", "spf=fail smtp.mailfrom=u@pass.example"},
		{"softfail", "u@soft.example", "client.test", clientIP, "SPF_SOFTFAIL", "spf=softfail smtp.mailfrom=u@soft.example"},
		{"none", "u@none.example", "client.test", clientIP, "SPF_NONE", "spf=none smtp.mailfrom=u@none.example"},
		{"no such domain", "u@nxdomain.example", "client.test", clientIP, "SPF_NONE", "spf=none smtp.mailfrom=u@nxdomain.example"},
		{"permerror", "u@perm.example", "client.test", clientIP, "SPF_PERMERROR", "spf=permerror smtp.mailfrom=u@perm.example"},
		{"temperror servfail", "u@temp.example", "client.test", clientIP, "SPF_TEMPERROR", "spf=temperror smtp.mailfrom=u@temp.example"},
		{"temperror timeout", "u@hang.example", "client.test", clientIP, "SPF_TEMPERROR", "spf=temperror smtp.mailfrom=u@hang.example"},
		{"null sender: HELO", "", "helo.example", clientIP, "SPF_PASS", "spf=pass smtp.helo=helo.example"},
		{"odd sender quoted", `"a b"@pass.example`, "client.test", clientIP, "SPF_PASS", `spf=pass smtp.mailfrom="\"a b\"@pass.example"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			r := scan(t, c, tt.sender, tt.helo, tt.ip, message(t, "unsigned.example"))
			if !slices.Contains(symbols(r), tt.want) {
				t.Errorf("symbols = %v, want %s", symbols(r), tt.want)
			}
			if !strings.Contains(r.Headers[0], "\t"+tt.item+";") {
				t.Errorf("header = %q, want item %q", r.Headers[0], tt.item)
			}
			if d := time.Since(start); d > testTimeout+5*time.Second {
				t.Errorf("took %s: the SPF timeout does not bound the check", d)
			}
		})
	}
}

func TestDKIM(t *testing.T) {
	w := newWorld(t)
	c := w.checker(t, scanner.AuthPolicy{})
	tampered := message(t, "example.org", w.rsa("example.org"))
	tampered = bytes.Replace(tampered, []byte("Hello Bob."), []byte("Hello Eve."), 1)
	tests := []struct {
		name  string
		raw   []byte
		want  string
		items []string
	}{
		{"rsa pass", message(t, "example.org", w.rsa("example.org")), "DKIM_PASS",
			[]string{"dkim=pass header.d=example.org header.s=rsa"}},
		{"ed25519 pass", message(t, "example.org", signer{"example.org", "ed", w.edKey}), "DKIM_PASS",
			[]string{"dkim=pass header.d=example.org header.s=ed"}},
		{"body changed", tampered, "DKIM_FAIL", []string{"dkim=fail header.d=example.org header.s=rsa"}},
		{"key lookup servfail", message(t, "example.org", signer{"example.org", "down", w.rsaKey}), "DKIM_TEMPERROR",
			[]string{"dkim=temperror header.d=example.org header.s=down"}},
		{"no key", message(t, "example.org", signer{"example.org", "gone", w.rsaKey}), "DKIM_PERMERROR",
			[]string{"dkim=permerror header.d=example.org header.s=gone"}},
		{"unsigned", message(t, "example.org"), "DKIM_NONE", []string{"dkim=none"}},
		{"one good of two", message(t, "example.org", signer{"example.org", "gone", w.rsaKey}, w.rsa("example.org")), "DKIM_PASS",
			[]string{"dkim=pass header.d=example.org header.s=rsa", "dkim=permerror header.d=example.org header.s=gone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := scan(t, c, "u@bounce.example.org", "client.test", clientIP, tt.raw)
			if got := symbols(r); !slices.Contains(got, tt.want) {
				t.Errorf("symbols = %v, want %s", got, tt.want)
			}
			for _, it := range tt.items {
				if !strings.Contains(r.Headers[0], "\t"+it+";") {
					t.Errorf("header = %q, want item %q", r.Headers[0], it)
				}
			}
		})
	}
}

func TestDMARC(t *testing.T) {
	w := newWorld(t)
	onReject := func(a string) scanner.AuthPolicy { return scanner.AuthPolicy{OnReject: a} }
	tests := []struct {
		name       string
		policy     scanner.AuthPolicy
		sender, ip string
		raw        []byte
		want       string
		action     scanner.Action
		item       string
	}{
		{"dkim aligned relaxed", scanner.AuthPolicy{}, "u@elsewhere.example", otherIP,
			message(t, "example.org", w.rsa("mail.example.org")), "DMARC_PASS", "", "dmarc=pass (p=reject) header.from=example.org"},
		{"spf aligned relaxed", scanner.AuthPolicy{}, "u@bounce.example.org", clientIP,
			message(t, "example.org"), "DMARC_PASS", "", "dmarc=pass (p=reject) header.from=example.org"},
		{"unaligned: p=reject", scanner.AuthPolicy{}, "u@pass.example", clientIP,
			message(t, "example.org", w.rsa("pass.example")), "DMARC_FAIL_REJECT", scanner.ActionReject, "dmarc=fail (p=reject) header.from=example.org"},
		{"spf pass not aligned, dkim fails", scanner.AuthPolicy{}, "u@pass.example", clientIP,
			message(t, "example.org", signer{"example.org", "gone", w.rsaKey}), "DMARC_FAIL_REJECT", scanner.ActionReject, "dmarc=fail"},
		{"strict: dkim subdomain unaligned", scanner.AuthPolicy{}, "u@elsewhere.example", otherIP,
			message(t, "strict.example", w.rsa("mail.strict.example")), "DMARC_FAIL_REJECT", scanner.ActionReject, "dmarc=fail (p=reject) header.from=strict.example"},
		{"strict: spf subdomain unaligned", scanner.AuthPolicy{}, "u@bounce.strict.example", clientIP,
			message(t, "strict.example"), "DMARC_FAIL_REJECT", scanner.ActionReject, "dmarc=fail"},
		{"strict: exact dkim domain", scanner.AuthPolicy{}, "u@elsewhere.example", otherIP,
			message(t, "strict.example", w.rsa("strict.example")), "DMARC_PASS", "", "dmarc=pass"},
		{"p=quarantine", scanner.AuthPolicy{}, "u@elsewhere.example", otherIP,
			message(t, "quar.example"), "DMARC_FAIL_QUARANTINE", scanner.ActionQuarantine, "dmarc=fail (p=quarantine) header.from=quar.example"},
		{"p=quarantine, on_quarantine none", scanner.AuthPolicy{OnQuarantine: "none"}, "u@elsewhere.example", otherIP,
			message(t, "quar.example"), "DMARC_FAIL_QUARANTINE", "", "dmarc=fail (p=quarantine)"},
		{"sp=reject on a subdomain", scanner.AuthPolicy{}, "u@elsewhere.example", otherIP,
			message(t, "x.sub.example"), "DMARC_FAIL_REJECT", scanner.ActionReject, "dmarc=fail (p=reject) header.from=x.sub.example"},
		{"p=none on the org domain itself", scanner.AuthPolicy{}, "u@elsewhere.example", otherIP,
			message(t, "sub.example"), "DMARC_FAIL_NONE", "", "dmarc=fail (p=none) header.from=sub.example"},
		{"a subdomain's own record wins over sp", scanner.AuthPolicy{}, "u@elsewhere.example", otherIP,
			message(t, "own.sub.example"), "DMARC_FAIL_QUARANTINE", scanner.ActionQuarantine, "dmarc=fail (p=quarantine)"},
		{"subdomain aligned relaxed passes", scanner.AuthPolicy{}, "u@elsewhere.example", otherIP,
			message(t, "x.sub.example", w.rsa("sub.example")), "DMARC_PASS", "", "dmarc=pass"},
		{"pct=0 applies the next milder policy", scanner.AuthPolicy{}, "u@elsewhere.example", otherIP,
			message(t, "pct.example"), "DMARC_FAIL_QUARANTINE", scanner.ActionQuarantine, "dmarc=fail (p=reject pct sampled out: quarantine)"},
		{"on_reject quarantine", onReject("quarantine"), "u@elsewhere.example", otherIP,
			message(t, "example.org"), "DMARC_FAIL_REJECT", scanner.ActionQuarantine, "dmarc=fail"},
		{"on_reject none", onReject("none"), "u@elsewhere.example", otherIP,
			message(t, "example.org"), "DMARC_FAIL_REJECT", "", "dmarc=fail"},
		{"no record", scanner.AuthPolicy{}, "u@elsewhere.example", otherIP,
			message(t, "unsigned.example"), "DMARC_NONE", "", "dmarc=none header.from=unsigned.example"},
		{"temperror", scanner.AuthPolicy{}, "u@elsewhere.example", otherIP,
			message(t, "dmarcdown.example"), "DMARC_TEMPERROR", "", "dmarc=temperror header.from=dmarcdown.example"},
		{"bad record", scanner.AuthPolicy{}, "u@elsewhere.example", otherIP,
			message(t, "bad.example"), "DMARC_PERMERROR", "", "dmarc=permerror header.from=bad.example"},
		{"two From domains", scanner.AuthPolicy{}, "u@elsewhere.example", otherIP,
			append([]byte("From: x@example.org\r\n"), message(t, "other.example")...), "DMARC_PERMERROR", "", "dmarc=permerror"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := w.checker(t, tt.policy)
			r := scan(t, c, tt.sender, "client.test", tt.ip, tt.raw)
			if got := symbols(r); !slices.Contains(got, tt.want) {
				t.Errorf("symbols = %v, want %s", got, tt.want)
			}
			if r.Action != tt.action {
				t.Errorf("action = %q, want %q", r.Action, tt.action)
			}
			if !strings.Contains(r.Headers[0], "\t"+tt.item) {
				t.Errorf("header = %q, want item %q", r.Headers[0], tt.item)
			}
		})
	}
}

// The whole header: our authserv-id, one item per line, scores from the
// table and its overrides, nothing from outside able to break a line.
func TestResultsHeader(t *testing.T) {
	w := newWorld(t)
	c := w.checker(t, scanner.AuthPolicy{AuthservID: "auth.gateway.test", Scores: map[string]float64{"DMARC_PASS": -2}})
	r := scan(t, c, "u@bounce.example.org", "client.test", clientIP, message(t, "example.org", w.rsa("mail.example.org")))
	want := "Authentication-Results: auth.gateway.test;\r\n" +
		"\tspf=pass smtp.mailfrom=u@bounce.example.org;\r\n" +
		"\tdkim=pass header.d=mail.example.org header.s=rsa;\r\n" +
		"\tdmarc=pass (p=reject) header.from=example.org"
	if r.Headers[0] != want {
		t.Errorf("header\n%q\nwant\n%q", r.Headers[0], want)
	}
	if id, ok := authservIDOf(strings.TrimPrefix(r.Headers[0], resultsField+":")); !ok || id != "auth.gateway.test" {
		t.Errorf("authserv-id read back as %q %v", id, ok)
	}
	wantSyms := map[string]float64{"SPF_PASS": -0.5, "DKIM_PASS": -0.5, "DMARC_PASS": -2}
	if len(r.Symbols) != len(wantSyms) {
		t.Errorf("symbols = %v", r.Symbols)
	}
	for _, s := range r.Symbols {
		if sc, ok := wantSyms[s.Name]; !ok || sc != s.Score {
			t.Errorf("symbol %s(%g), want %v", s.Name, s.Score, wantSyms)
		}
	}
	if r.Score != -3 {
		t.Errorf("score = %g, want -3", r.Score)
	}

	// A hostile HELO and signature tags stay inside their values.
	evil := message(t, "example.org", signer{"example.org", "gone", w.rsaKey})
	evil = bytes.Replace(evil, []byte("s=gone;"), []byte("s=go\"ne;x\r\n\tX-Evil: 1;"), 1)
	r = scan(t, c, "", "evil;\r\nX-Injected: 1", clientIP, evil)
	checkFolding(t, r.Headers[0])
	if !strings.Contains(r.Headers[0], `smtp.helo="evil;??X-Injected: 1"`) {
		t.Errorf("helo not quoted: %q", r.Headers[0])
	}
}

// Without a Body or with an ended context, Scan fails: nothing is read
// as a result.
func TestScanErrors(t *testing.T) {
	w := newWorld(t)
	c := w.checker(t, scanner.AuthPolicy{})
	if _, err := c.Scan(context.Background(), &scanner.Message{ID: "x"}); err == nil {
		t.Error("no body: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := &scanner.Message{ID: "x", Body: spool.FromBytes(message(t, "example.org")), Env: scanner.Envelope{ClientIP: netip.MustParseAddr(clientIP), Sender: "u@pass.example"}}
	if _, err := c.Scan(ctx, m); err == nil {
		t.Error("cancelled context: no error")
	}
	if _, err := New(Options{Hostname: "bad host"}); err == nil {
		t.Error("New accepted an invalid authserv-id")
	}
	big := append([]byte("X-Pad: "+strings.Repeat("a", maxHeaderBytes)+"\r\n"), message(t, "example.org")...)
	r := scan(t, c, "u@pass.example", "client.test", clientIP, big)
	if !slices.Contains(symbols(r), "DKIM_PERMERROR") {
		t.Errorf("header past the limit: symbols %v", symbols(r))
	}
}

func TestAligned(t *testing.T) {
	tests := []struct {
		a, from string
		strict  bool
		want    bool
	}{
		{"example.org", "example.org", true, true},
		{"Example.ORG.", "example.org", true, true},
		{"mail.example.org", "example.org", false, true},
		{"mail.example.org", "example.org", true, false},
		{"a.example.co.uk", "b.example.co.uk", false, true},
		{"example.co.uk", "other.co.uk", false, false},
		{"co.uk", "example.co.uk", false, false},
		{"", "example.org", false, false},
		{"example.org", "", false, false},
		{"x.s3.amazonaws.com", "y.s3.amazonaws.com", false, false}, // private suffixes count
	}
	for _, tt := range tests {
		var mode dmarc.AlignmentMode = dmarc.AlignmentRelaxed
		if tt.strict {
			mode = dmarc.AlignmentStrict
		}
		if got := aligned(tt.a, tt.from, mode); got != tt.want {
			t.Errorf("aligned(%q, %q, strict=%v) = %v, want %v", tt.a, tt.from, tt.strict, got, tt.want)
		}
	}
}

func TestFromDomain(t *testing.T) {
	tests := []struct {
		header string
		want   string
		ok     bool
	}{
		{"From: a@Example.ORG\r\n", "example.org", true},
		{"From: \"A, B\" <a@example.org>\r\n", "example.org", true},
		{"From: a@example.org, b@example.org\r\n", "example.org", true},
		{"From: a@example.org, b@other.example\r\n", "", false},
		{"From: a@example.org\r\nFrom: b@other.example\r\n", "", false},
		{"From: Broken <<a@example.org>\r\n", "example.org", true},
		{"From: =?utf-8?q?x?= <a@example.org>\r\n", "example.org", true},
		{"From:\r\n a@example.org\r\n", "example.org", true},
		{"To: a@example.org\r\n", "", false},
		{"From: nobody\r\n", "", false},
	}
	for _, tt := range tests {
		got, ok := fromDomain(fields([]byte(tt.header)))
		if got != tt.want || ok != tt.ok {
			t.Errorf("fromDomain(%q) = %q, %v; want %q, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}

// checkFolding: h is one field, its lines folded with CRLF TAB only.
func checkFolding(t *testing.T, h string) {
	t.Helper()
	for i, line := range strings.Split(h, "\r\n") {
		if strings.ContainsAny(line, "\r\n") || i == 0 && !strings.HasPrefix(line, resultsField+": ") || i > 0 && !strings.HasPrefix(line, "\t") {
			t.Errorf("line %q of %q starts a field of its own", line, h)
		}
	}
}
