package main

// End-to-end tests of the real mxgate binary between real SMTP peers:
// swaks and smtp-source as clients, smtp-sink and Postfix as downstream.

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/testenv"
)

const (
	gtube = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
	eicar = `X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`
)

// mxgateBin is built once by TestMain for every test of this package.
var mxgateBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mxgate-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mxgateBin = filepath.Join(dir, "mxgate")
	if out, err := exec.Command("go", "build", "-o", mxgateBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build mxgate: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type gateway struct {
	SMTP, Admin string
	DataDir     string
	Proc        *testenv.Process
}

// startGateway runs `mxgate serve -c` with a configuration for downstream,
// on free loopback ports; extra is YAML appended under the given sections
// (a map section → lines).
func startGateway(t *testing.T, downstream string, extra map[string]string) *gateway {
	t.Helper()
	g := newGateway(t)
	g.serve(t, g.writeConfig(t, downstream, extra))
	return g
}

// newGateway picks free loopback ports and a data directory.
func newGateway(t *testing.T) *gateway {
	return &gateway{SMTP: testenv.FreeAddr(t), Admin: testenv.FreeAddr(t), DataDir: t.TempDir()}
}

// writeConfig writes g's node file for downstream and returns its path;
// extra is YAML appended under the given sections (section → lines: smtp,
// downstream, scanner, store).
func (g *gateway) writeConfig(t *testing.T, downstream string, extra map[string]string) string {
	t.Helper()
	sec := func(name string) string { return extra[name] }
	store := ""
	if s := sec("store"); s != "" {
		store = "store:\n" + s + "\n"
	}
	cfg := fmt.Sprintf(`node:
  id: gw1
  data_dir: %s
  log_level: debug
smtp:
  listen: ["%s"]
  hostname: mx.test
  accept_domains: [example.org]
%s
downstream:
  address: "%s"
  # Generous: a loaded CI machine can stall a local smtp-sink's greeting
  # for seconds, which must not turn into a 451 at MAIL in unrelated tests.
  timeout: 20s
%s
scanner:
  workers: 2
%s
%sadmin:
  listen: "%s"
`, g.DataDir, g.SMTP, sec("smtp"), downstream, sec("downstream"), sec("scanner"), store, g.Admin)
	path := filepath.Join(t.TempDir(), "mxgate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// serve runs `mxgate serve -c path` as g and waits for its ports.
func (g *gateway) serve(t *testing.T, path string) {
	t.Helper()
	g.Proc = testenv.Start(t, mxgateBin, "serve", "-c", path)
	testenv.WaitPort(t, g.SMTP, 20*time.Second)
	testenv.WaitPort(t, g.Admin, 20*time.Second)
}

// waitOpenConnections waits until the gateway counts n open SMTP connections.
func (g *gateway) waitOpenConnections(t *testing.T, n int) {
	t.Helper()
	want := fmt.Sprintf("mxgate_smtp_connections_open %d\n", n)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + g.Admin + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), want) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway never showed %q", strings.TrimSpace(want))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// health returns the admin /healthz status and body.
func (g *gateway) health(t *testing.T) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + g.Admin + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// cli runs a management command against the gateway's admin API.
func (g *gateway) cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args = append(args, "--admin", "http://"+g.Admin)
	return testenv.Run(ctx, mxgateBin, args...)
}

func (g *gateway) quarantine(t *testing.T) []map[string]any {
	t.Helper()
	out, err := g.cli(t, "quarantine", "list", "--json")
	if err != nil {
		t.Fatalf("quarantine list: %v\n%s", err, out)
	}
	var items []map[string]any
	if err := json.Unmarshal([]byte(out), &items); err != nil {
		t.Fatalf("quarantine list --json is not a JSON array: %v\n%s", err, out)
	}
	return items
}

// swaks sends one message; it returns swaks' transcript and exit code.
func swaks(t *testing.T, server string, args ...string) (string, int) {
	t.Helper()
	return swaksVia(t, nil, server, args...)
}

// swaksVia runs swaks through wrap (e.g. ip netns exec NS; none: directly).
func swaksVia(t *testing.T, wrap []string, server string, args ...string) (string, int) {
	t.Helper()
	bin := testenv.Need(t, "swaks")[0]
	host, port, _ := strings.Cut(server, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	all := append(append(append([]string{}, wrap...), bin, "--server", host, "--port", port, "--helo", "client.test", "--timeout", "30"), args...)
	out, err := exec.CommandContext(ctx, all[0], all[1:]...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("swaks: %v", err)
	}
	return string(out), code
}

// smtpSession is a raw client for exact reply checks.
type smtpSession struct {
	t *testing.T
	c *textproto.Conn
}

func dialSMTP(t *testing.T, addr string) (*smtpSession, int, string) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	s := &smtpSession{t: t, c: textproto.NewConn(nc)}
	t.Cleanup(func() { s.c.Close() })
	code, msg, _ := s.c.ReadResponse(0)
	return s, code, msg
}

func (s *smtpSession) cmd(format string, args ...any) (int, string) {
	s.t.Helper()
	if err := s.c.PrintfLine(format, args...); err != nil {
		s.t.Fatalf("send %q: %v", format, err)
	}
	code, msg, err := s.c.ReadResponse(0)
	if err != nil && code == 0 {
		s.t.Fatalf("reply to %q: %v", fmt.Sprintf(format, args...), err)
	}
	return code, msg
}

// raw writes bytes as they are (for smuggling shapes) and reads one reply.
func (s *smtpSession) raw(data string) (int, string) {
	s.t.Helper()
	if _, err := s.c.W.WriteString(data); err != nil {
		s.t.Fatal(err)
	}
	s.c.W.Flush()
	code, msg, err := s.c.ReadResponse(0)
	if err != nil && code == 0 {
		s.t.Fatalf("reply after raw data: %v", err)
	}
	return code, msg
}

func TestCleanMailDeliveredWithHeaders(t *testing.T) {
	sink := testenv.StartSink(t)
	g := startGateway(t, sink.Addr, nil)
	out, code := swaks(t, g.SMTP, "--from", "alice@sender.test", "--to", "bob@example.org",
		"--header", "Subject: hello", "--add-header", "X-Mxgate-Verdict: forged by the sender",
		"--body", "A perfectly ordinary message.")
	if code != 0 {
		t.Fatalf("swaks exit %d:\n%s", code, out)
	}
	msgs := sink.WaitMessages(t, 1, 10*time.Second)
	m := msgs[0]
	for h, want := range map[string]string{
		"X-Mxgate-Verdict": "deliver (clean)",
		"X-Mxgate-Node":    "gw1",
		"X-Rcpt-Args":      "<bob@example.org>",
		"Subject":          "hello",
	} {
		if got := testenv.Header(m, h); !strings.Contains(got, want) {
			t.Errorf("delivered %s = %q, want it to contain %q", h, got, want)
		}
	}
	if strings.Contains(m, "forged by the sender") {
		t.Errorf("a sender's own X-Mxgate-Verdict reached the downstream:\n%s", m)
	}
	if testenv.Header(m, "X-Mxgate-Score") == "" || !strings.Contains(m, "X-Mxgate-Symbols:") {
		t.Error("delivered message lacks X-Mxgate-Score or X-Mxgate-Symbols")
	}
	if code, body := g.health(t); code != http.StatusOK {
		t.Errorf("healthz = %d %q, want 200", code, body)
	}
	if !strings.Contains(m, "by mx.test (mxgate) with ESMTP id") {
		t.Errorf("no Received header of the gateway in:\n%s", m)
	}
	// The client's 250 names mxgate's queue id, the Received header's
	// (smtp-sink gives no id of its own).
	if id := regexp.MustCompile(`<-  250 2\.0\.0 Ok: queued as ([0-9A-F]{16})\n`).FindStringSubmatch(out); id == nil || !strings.Contains(m, "(mxgate) with ESMTP id "+id[1]) {
		t.Errorf("client did not get a reply naming mxgate's queue id of the message:\n%s", out)
	}
	// The message log is written in batches a moment after the reply.
	deadline := time.Now().Add(5 * time.Second)
	for {
		logOut, err := g.cli(t, "log", "--json")
		if err == nil && strings.Contains(logOut, `"deliver"`) && strings.Contains(logOut, "bob@example.org") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("message log has no delivered record (err %v):\n%s", err, logOut)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestGTUBEQuarantinedListedReleased(t *testing.T) {
	sink := testenv.StartSink(t)
	g := startGateway(t, sink.Addr, nil)
	quarantineGTUBE(t, g)
	it := g.quarantine(t)[0]
	if it["verdict"] != "spam" || it["sender"] != "spammer@sender.test" || it["subject"] != "cheap stuff" {
		t.Errorf("quarantined item = %v", it)
	}
	table, err := g.cli(t, "quarantine", "list")
	if err != nil || !strings.Contains(table, it["id"].(string)) || !strings.Contains(table, "spammer@sender.test") {
		t.Errorf("table listing lacks the item (err %v):\n%s", err, table)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(sink.Messages(t)); n != 0 {
		t.Fatalf("quarantined message reached the downstream (%d messages)", n)
	}
	out, err := g.cli(t, "quarantine", "release", it["id"].(string))
	if err != nil {
		t.Fatalf("release: %v\n%s", err, out)
	}
	m := sink.WaitMessages(t, 1, 10*time.Second)[0]
	if !strings.Contains(m, gtube) || testenv.Header(m, "X-Mxgate-Released") == "" || testenv.Header(m, "X-Rcpt-Args") != "<carol@example.org>" {
		t.Errorf("released message is not the original with a release mark:\n%s", m)
	}
	if items := g.quarantine(t); len(items) != 1 || items[0]["released"] == nil {
		t.Errorf("item not marked released: %v", items)
	}
}

func zipWith(t *testing.T, name, content string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(content))
	zw.Close()
	return b.Bytes()
}

func TestEICARQuarantined(t *testing.T) {
	sink := testenv.StartSink(t)
	g := startGateway(t, sink.Addr, nil)
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "invoice.zip")
	os.WriteFile(zipPath, zipWith(t, "eicar.com.txt", eicar), 0o644)
	cases := []struct {
		name string
		args []string
	}{
		{"body", []string{"--body", eicar}},
		{"zip attachment", []string{"--body", "see attachment", "--attach-type", "application/zip", "--attach", "@" + zipPath}},
	}
	for _, c := range cases {
		out, code := swaks(t, g.SMTP, append([]string{"--from", "v@sender.test", "--to", "dave@example.org", "--header", "Subject: " + c.name}, c.args...)...)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s", c.name, code, out)
		}
	}
	items := g.quarantine(t)
	if len(items) != len(cases) {
		t.Fatalf("quarantine has %d items, want %d: %v", len(items), len(cases), items)
	}
	for _, it := range items {
		if it["verdict"] != "virus" {
			t.Errorf("item %v: verdict %v, want virus", it["subject"], it["verdict"])
		}
	}
	out, err := g.cli(t, "quarantine", "list", "--verdict", "virus", "--json")
	if err != nil || strings.Count(out, `"id"`) != 2 {
		t.Errorf("--verdict virus filter (err %v):\n%s", err, out)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(sink.Messages(t)); n != 0 {
		t.Errorf("a virus reached the downstream (%d messages)", n)
	}
}

func TestListsBlockAndAllow(t *testing.T) {
	sink := testenv.StartSink(t)
	g := startGateway(t, sink.Addr, nil)
	for _, args := range [][]string{
		{"lists", "add", "block", "spammer@bad.test"},
		{"lists", "add", "block", ".worse.test"},
		{"lists", "add", "allow", "friend@partner.test"},
	} {
		if out, err := g.cli(t, args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	// The admin API reloads the node's lists at once.
	for _, from := range []string{"spammer@bad.test", "x@mail.worse.test"} {
		out, code := swaks(t, g.SMTP, "--from", from, "--to", "erin@example.org")
		if code != 24 || !strings.Contains(out, "<** 550 5.7.1") {
			t.Errorf("blocked sender %s: exit %d, want 550 5.7.1 at RCPT:\n%s", from, code, out)
		}
	}
	// Allow wins over the score: GTUBE from an allowed sender is delivered.
	out, code := swaks(t, g.SMTP, "--from", "friend@partner.test", "--to", "erin@example.org", "--body", gtube)
	if code != 0 {
		t.Fatalf("allowed sender: exit %d\n%s", code, out)
	}
	m := sink.WaitMessages(t, 1, 10*time.Second)[0]
	if !strings.Contains(testenv.Header(m, "X-Mxgate-Symbols"), "ALLOWLIST") {
		t.Errorf("allowed GTUBE message lacks the ALLOWLIST symbol:\n%s", m)
	}
	if len(g.quarantine(t)) != 0 {
		t.Error("allowed message was quarantined")
	}
	// Removing the entry restores the normal path.
	if out, err := g.cli(t, "lists", "remove", "block", "spammer@bad.test"); err != nil {
		t.Fatalf("remove: %v\n%s", err, out)
	}
	if out, code := swaks(t, g.SMTP, "--from", "spammer@bad.test", "--to", "erin@example.org"); code != 0 {
		t.Errorf("sender still blocked after remove: exit %d\n%s", code, out)
	}
}

func TestPerRecipientPolicySplitsTransaction(t *testing.T) {
	sink := testenv.StartSink(t)
	g := startGateway(t, sink.Addr, nil)
	if out, err := g.cli(t, "lists", "add", "allow", "news@list.test", "--rcpt", "frank@example.org"); err != nil {
		t.Fatalf("lists add: %v\n%s", err, out)
	}
	s, _, _ := dialSMTP(t, g.SMTP)
	s.cmd("EHLO client.test")
	if code, msg := s.cmd("MAIL FROM:<news@list.test>"); code != 250 {
		t.Fatalf("MAIL: %d %s", code, msg)
	}
	if code, msg := s.cmd("RCPT TO:<frank@example.org>"); code != 250 {
		t.Fatalf("first RCPT: %d %s", code, msg)
	}
	if code, msg := s.cmd("RCPT TO:<grace@example.org>"); code != 452 || !strings.HasPrefix(msg, "4.5.3") {
		t.Errorf("RCPT with another policy = %d %s, want 452 4.5.3", code, msg)
	}
}

func TestRelayDenied(t *testing.T) {
	sink := testenv.StartSink(t)
	g := startGateway(t, sink.Addr, nil)
	for _, rcpt := range []string{
		"<user@foreign.test>",
		"<user%foreign.test@example.org>",
		"<@example.org:user@foreign.test>",
		"<foreign.test!user@example.org>",
		`<"user@foreign.test"@example.org>`,
		`<"user%foreign.test"@example.org>`,
		"<user@[198.18.0.50]>",
		"<user@example.org.foreign.test>",
	} {
		s, _, _ := dialSMTP(t, g.SMTP)
		s.cmd("EHLO client.test")
		if code, msg := s.cmd("MAIL FROM:<a@sender.test>"); code != 250 {
			t.Fatalf("MAIL: %d %s", code, msg)
		}
		if code, msg := s.cmd("RCPT TO:%s", rcpt); code != 554 || !strings.HasPrefix(msg, "5.7.1") {
			t.Errorf("RCPT TO:%s = %d %s, want 554 5.7.1", rcpt, code, msg)
		}
	}
	// swaks too, as an administrator would test it.
	out, code := swaks(t, g.SMTP, "--from", "a@sender.test", "--to", "victim@foreign.test")
	if code != 24 || !strings.Contains(out, "<** 554 5.7.1") {
		t.Errorf("swaks to a foreign domain: exit %d\n%s", code, out)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(sink.Messages(t)); n != 0 {
		t.Errorf("%d messages reached the downstream through relay tricks", n)
	}
}

func TestTrustedNetworkMayRelay(t *testing.T) {
	sink := testenv.StartSink(t)
	g := startGateway(t, sink.Addr, map[string]string{"smtp": "  trusted_networks: [127.0.0.0/8]"})
	if out, code := swaks(t, g.SMTP, "--from", "a@example.org", "--to", "someone@foreign.test"); code != 0 {
		t.Fatalf("outbound from a trusted network: exit %d\n%s", code, out)
	}
	sink.WaitMessages(t, 1, 10*time.Second)
}

func TestOversizeRefused(t *testing.T) {
	sink := testenv.StartSink(t)
	g := startGateway(t, sink.Addr, map[string]string{"smtp": "  max_message_bytes: 10000"})
	out, code := swaks(t, g.SMTP, "--from", "a@sender.test", "--to", "h@example.org", "--body", strings.Repeat("0123456789abcdef\n", 2000))
	if code != 26 || !strings.Contains(out, "<** 552 5.3.4") {
		t.Errorf("oversize: exit %d, want 552 5.3.4 after DATA:\n%s", code, out)
	}
	// The SIZE parameter is refused at MAIL already.
	s, _, _ := dialSMTP(t, g.SMTP)
	s.cmd("EHLO client.test")
	if code, msg := s.cmd("MAIL FROM:<a@sender.test> SIZE=20000"); code != 552 {
		t.Errorf("MAIL SIZE=20000 = %d %s, want 552", code, msg)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(sink.Messages(t)); n != 0 {
		t.Errorf("oversize message reached the downstream")
	}
}

func TestDownstreamDownTempfailsAndKeepsNothing(t *testing.T) {
	dead := testenv.FreeAddr(t) // nothing listens there
	g := startGateway(t, dead, nil)
	for _, body := range []string{"clean", gtube} {
		out, code := swaks(t, g.SMTP, "--from", "a@sender.test", "--to", "i@example.org", "--body", body)
		if code == 0 || !strings.Contains(out, "<** 451 4.4.1") {
			t.Errorf("downstream down: exit %d, want 451 4.4.1:\n%s", code, out)
		}
	}
	if items := g.quarantine(t); len(items) != 0 {
		t.Errorf("quarantine has %d items while downstream was down", len(items))
	}
	if code, body := g.health(t); code != http.StatusServiceUnavailable || !strings.Contains(body, "downstream") {
		t.Errorf("healthz with the downstream down = %d %q, want 503 naming the downstream", code, body)
	}
}

func TestDownstreamTempfailAtDataPassesThrough(t *testing.T) {
	// smtp-sink answers the end of DATA with a 4xx.
	sink := testenv.StartSink(t, "-r", ".")
	g := startGateway(t, sink.Addr, nil)
	out, code := swaks(t, g.SMTP, "--from", "a@sender.test", "--to", "j@example.org")
	if code != 26 || !strings.Contains(out, "<** 45") {
		t.Errorf("downstream 4xx at end of DATA: exit %d\n%s", code, out)
	}
	if len(g.quarantine(t)) != 0 {
		t.Error("message kept although the client was told to retry")
	}
}

func TestDownstreamRefusesOneRecipient(t *testing.T) {
	sink := testenv.StartSink(t)
	pf := testenv.StartPostfix(t, "example.org", sink.Addr,
		"smtpd_recipient_restrictions = check_recipient_access inline:{ {nobody@example.org=550 5.1.1 No such user here} }, permit")
	g := startGateway(t, pf.Addr, nil)
	s, _, _ := dialSMTP(t, g.SMTP)
	s.cmd("EHLO client.test")
	if code, msg := s.cmd("MAIL FROM:<a@sender.test>"); code != 250 {
		t.Fatalf("MAIL: %d %s", code, msg)
	}
	// Postfix's own wording, passed through unchanged.
	const want = "5.1.1 <nobody@example.org>: Recipient address rejected: No such user here"
	if code, msg := s.cmd("RCPT TO:<nobody@example.org>"); code != 550 || msg != want {
		t.Errorf("refused recipient = %d %q, want the downstream's 550 %s", code, msg, want)
	}
	if code, msg := s.cmd("RCPT TO:<kim@example.org>"); code != 250 {
		t.Fatalf("good recipient = %d %s", code, msg)
	}
	if code, msg := s.cmd("DATA"); code != 354 {
		t.Fatalf("DATA = %d %s", code, msg)
	}
	if code, msg := s.raw("Subject: split\r\n\r\nfor kim only\r\n.\r\n"); code != 250 {
		t.Fatalf("end of data = %d %s", code, msg)
	}
	m := sink.WaitMessages(t, 1, 30*time.Second)[0]
	if got := testenv.Header(m, "X-Rcpt-Args"); !strings.HasPrefix(got, "<kim@example.org>") || strings.Count(m, "X-Rcpt-Args:") != 1 {
		t.Errorf("downstream delivered to %q, want only kim", got)
	}
}

func TestSmugglingNeverSplitsAMessage(t *testing.T) {
	sink := testenv.StartSink(t)
	g := startGateway(t, sink.Addr, nil)
	shapes := map[string]string{
		"bare LF dot LF":  "\n.\n",
		"bare CR dot CR":  "\r.\r",
		"CRLF dot LF":     "\r\n.\n",
		"LF dot CRLF":     "\n.\r\n",
		"CR dot CRLF":     "\r.\r\n",
		"CRLF dot CR LF ": "\r\n.\r \n",
	}
	for name, shape := range shapes {
		s, _, _ := dialSMTP(t, g.SMTP)
		s.cmd("EHLO client.test")
		s.cmd("MAIL FROM:<a@sender.test>")
		s.cmd("RCPT TO:<victim@example.org>")
		if code, _ := s.cmd("DATA"); code != 354 {
			t.Fatalf("%s: DATA refused", name)
		}
		body := "Subject: " + name + "\r\n\r\nfirst part" + shape +
			"MAIL FROM:<forged@evil.test>\r\nRCPT TO:<smuggled@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nsecond\r\n.\r\n"
		code, msg := s.raw(body)
		if code != 250 {
			t.Fatalf("%s: end of data = %d %s", name, code, msg)
		}
		s.cmd("QUIT")
	}
	msgs := sink.WaitMessages(t, len(shapes), 20*time.Second)
	time.Sleep(500 * time.Millisecond)
	msgs = sink.Messages(t)
	if len(msgs) != len(shapes) {
		t.Fatalf("downstream got %d messages for %d sent: a message was split", len(msgs), len(shapes))
	}
	for _, m := range msgs {
		if strings.Contains(testenv.Header(m, "X-Mail-Args"), "forged") || strings.Contains(m, "X-Rcpt-Args: <smuggled") {
			t.Errorf("smuggled transaction reached the downstream:\n%s", m)
		}
		// A dot after a bare CR or LF reaches the downstream as a stuffed
		// line of its own, bare CRs included (a server that takes CR for a
		// line end would otherwise see the end of the data): smtp-sink, which
		// drops bare CRs from its dump and un-stuffs dots, shows it as ".".
		// (After CRLF the dot is the client's own stuffing, which go-smtp
		// removes.)
		if name := testenv.Header(m, "Subject"); !strings.HasPrefix(name, "CRLF") && !strings.Contains(m, "\nfirst part\n.\n") {
			t.Errorf("%s: the dot did not arrive as a stuffed line of the body:\n%s", name, m)
		}
	}
}

func TestSMTPSourceLoad(t *testing.T) {
	src := testenv.Need(t, "smtp-source")[0]
	sink := testenv.StartSink(t)
	g := startGateway(t, sink.Addr, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := testenv.Run(ctx, src, "-s", "10", "-m", "300", "-l", "4096", "-N", "-M", "sender.test",
		"-f", "load@sender.test", "-t", "load@example.org", g.SMTP)
	if err != nil {
		t.Fatalf("smtp-source: %v\n%s", err, out)
	}
	if n := len(sink.WaitMessages(t, 300, 60*time.Second)); n != 300 {
		t.Errorf("sink got %d of 300", n)
	}
}

func TestConnectionLimitPerIP(t *testing.T) {
	sink := testenv.StartSink(t)
	g := startGateway(t, sink.Addr, map[string]string{"smtp": "  max_connections_per_ip: 2"})
	// startGateway's own probe connection holds a slot until the server has
	// seen it close.
	g.waitOpenConnections(t, 0)
	for i := 0; i < 2; i++ {
		if _, code, msg := dialSMTP(t, g.SMTP); code != 220 {
			t.Fatalf("connection %d: %d %s", i+1, code, msg)
		}
	}
	if _, code, msg := dialSMTP(t, g.SMTP); code != 421 || !strings.HasPrefix(msg, "4.7.0") {
		t.Errorf("third connection = %d %s, want 421 4.7.0", code, msg)
	}
}

func TestProxyProtocolFromTrustedBalancer(t *testing.T) {
	sink := testenv.StartSink(t)
	g := startGateway(t, sink.Addr, map[string]string{"smtp": "  proxy_protocol: true\n  proxy_trusted: [127.0.0.1/32]"})
	nc, err := net.DialTimeout("tcp", g.SMTP, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(nc, "PROXY TCP4 198.18.0.77 127.0.0.1 40000 25\r\n")
	c := textproto.NewConn(nc)
	if code, msg, _ := c.ReadResponse(220); code != 220 {
		t.Fatalf("greeting after PROXY = %d %s", code, msg)
	}
	for _, l := range []string{"EHLO lb.test", "MAIL FROM:<a@sender.test>", "RCPT TO:<p@example.org>", "DATA"} {
		c.PrintfLine("%s", l)
		if code, msg, err := c.ReadResponse(0); err != nil && code == 0 || code >= 400 {
			t.Fatalf("%s = %d %s %v", l, code, msg, err)
		}
	}
	c.PrintfLine("Subject: via lb\r\n\r\nhi\r\n.")
	if code, msg, _ := c.ReadResponse(250); code != 250 {
		t.Fatalf("end of data = %d %s", code, msg)
	}
	m := sink.WaitMessages(t, 1, 10*time.Second)[0]
	if !strings.Contains(m, "([198.18.0.77])") {
		t.Errorf("Received header does not name the client from the PROXY header:\n%s", m)
	}
	// A client that is not a trusted balancer cannot forge its address:
	// its PROXY line is just a bad command.
}

func TestBadConfigExitsWithClearError(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"smtp:\n  listen: [\"127.0.0.1:2525\"]\n  max_mesage_bytes: 10\n", "max_mesage_bytes"},
		{"smtp:\n  read_timeout: 5x\n", "read_timeout"},
		{"scanner:\n  thresholds: {quarantine: 20, reject: 10}\n", "thresholds"},
		{"scanner:\n  rules: [\"BAD_RULE hdr Subject =~ /x/ 1\"]\n", "rules"},
	}
	for _, c := range cases {
		path := filepath.Join(t.TempDir(), "bad.yaml")
		os.WriteFile(path, []byte("node:\n  data_dir: "+t.TempDir()+"\n"+c.yaml), 0o600)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := testenv.Run(ctx, mxgateBin, "serve", "-c", path)
		cancel()
		if err == nil {
			t.Errorf("config %q: serve exited 0", c.yaml)
			continue
		}
		if !strings.Contains(out, c.want) || strings.Count(strings.TrimSpace(out), "\n") > 3 {
			t.Errorf("config %q: error does not name %q clearly:\n%s", c.yaml, c.want, out)
		}
	}
}

func TestGracefulStopFinishesSession(t *testing.T) {
	sink := testenv.StartSink(t)
	g := startGateway(t, sink.Addr, nil)
	s, _, _ := dialSMTP(t, g.SMTP)
	s.cmd("EHLO client.test")
	s.cmd("MAIL FROM:<a@sender.test>")
	s.cmd("RCPT TO:<q@example.org>")
	g.Proc.Cmd.Process.Signal(os.Interrupt)
	time.Sleep(200 * time.Millisecond)
	if code, _ := s.cmd("DATA"); code != 354 {
		t.Fatalf("session in progress cut by a graceful stop")
	}
	if code, msg := s.raw("Subject: last\r\n\r\nlast one\r\n.\r\n"); code != 250 {
		t.Fatalf("end of data during drain = %d %s", code, msg)
	}
	s.cmd("QUIT")
	if !g.Proc.Wait(10 * time.Second) {
		t.Fatal("gateway did not exit after its last session")
	}
	sink.WaitMessages(t, 1, 5*time.Second)
	if _, err := net.DialTimeout("tcp", g.SMTP, time.Second); err == nil {
		t.Error("listener still open after stop")
	}
}
