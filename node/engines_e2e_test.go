package node

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/quarantine"
	"github.com/mxgate/mxgate/scanner"
	"github.com/mxgate/mxgate/testenv"
)

// engineLab is a node on a real Redis whose scanner asks a real clamd,
// rspamd and spamd, and checks SPF, DKIM and DMARC against the test's own
// DNS server, relaying to smtp-sink.
type engineLab struct {
	t      *testing.T
	node   *Node
	smtp   string
	admin  *admin.Client
	sink   *testenv.Sink
	clamd  *testenv.Clamd
	rspamd *testenv.Rspamd
	spamd  *testenv.Spamd
}

// clamdStreamMax is the test clamd's StreamMaxLength: small, so that a
// message over it is cheap to send.
const clamdStreamMax = 1 << 20

func newEngineLab(t *testing.T) *engineLab {
	t.Helper()
	dns := testenv.StartDNS(t)
	// sender.test publishes SPF for loopback and DMARC p=reject.
	dns.TXT("sender.test", "v=spf1 ip4:127.0.0.0/8 -all")
	dns.TXT("_dmarc.sender.test", "v=DMARC1; p=reject")
	l := &engineLab{t: t, sink: testenv.StartSink(t)}
	l.clamd = testenv.StartClamd(t, testenv.ClamdOptions{StreamMaxLength: clamdStreamMax})
	l.rspamd = testenv.StartRspamd(t, testenv.RspamdOptions{Nameserver: dns.Addr, Redis: testenv.StartRedis(t).Addr})
	l.spamd = testenv.StartSpamd(t)

	cfg := nodeConfig(t, l.sink.Addr, testenv.StartRedis(t).URL)
	cfg.Scanner.Clamd = l.clamd.TCP
	cfg.Scanner.Rspamd = l.rspamd.URL
	cfg.Scanner.RspamdController = l.rspamd.ControllerURL
	cfg.Scanner.Spamd = "tcp://" + l.spamd.Addr
	cfg.Scanner.DNS.Resolver = dns.Addr
	cfg.Scanner.Auth.Enabled = true
	// No limit of mxgate's own for clamd: clamd's StreamMaxLength decides.
	cfg.Scanner.Engines.Clamd.MaxSize = 0
	cfg.Scanner.Engines.Spamd.MaxSize = 64 << 10
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Context(t, time.Minute)
	n, err := Build(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	t.Cleanup(func() { n.Stop(context.Background()) })
	if err := n.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	l.node, l.smtp = n, n.SMTPAddrs()[0].String()
	if l.admin, err = admin.NewClient("http://"+n.AdminAddr().String(), ""); err != nil {
		t.Fatal(err)
	}
	return l
}

// reply is the server's answer to a whole transaction: the first refusal,
// or the reply to the end of data.
type reply struct {
	code int
	text string
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.code, r.text) }

// send runs one transaction from from to rcpts with msg, and returns the
// reply that ended it.
func (l *engineLab) send(from string, rcpts []string, msg string) reply {
	l.t.Helper()
	c, err := smtp.Dial(l.smtp)
	if err != nil {
		l.t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	asReply := func(err error) reply {
		var se *smtp.SMTPError
		if !errors.As(err, &se) {
			l.t.Fatalf("not an SMTP reply: %v", err)
		}
		return reply{se.Code, se.Message}
	}
	if err := c.Hello("client.test"); err != nil {
		return asReply(err)
	}
	if err := c.Mail(from, nil); err != nil {
		return asReply(err)
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			return asReply(err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return asReply(err)
	}
	io.WriteString(w, msg)
	resp, err := w.CloseWithResponse()
	if err != nil {
		return asReply(err)
	}
	c.Quit()
	return reply{250, resp.StatusText}
}

// message is a well-formed message (spamd and rspamd score missing
// headers) with extra header lines and body.
func message(from, subject, extra, body string) string {
	return "From: " + from + "\r\nTo: b@example.org\r\nSubject: " + subject + "\r\nDate: " + time.Now().UTC().Format(time.RFC1123Z) +
		"\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@sender.test>\r\nMIME-Version: 1.0\r\n" + extra +
		"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + body + "\r\n"
}

// delivered waits for the message whose Subject is subject at the sink.
func (l *engineLab) delivered(subject string) string {
	l.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, m := range l.sink.Messages(l.t) {
			if testenv.Header(m, "Subject") == subject {
				return m
			}
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("message %q not delivered", subject)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// quarantined is the quarantine item the reply "queued as ID" names.
func (l *engineLab) quarantined(r reply) quarantine.Item {
	l.t.Helper()
	_, id, ok := strings.Cut(r.text, "queued as ")
	if r.code != 250 || !ok {
		l.t.Fatalf("reply %s, want 250 … queued as ID", r)
	}
	it, err := l.admin.QuarantineGet(l.t.Context(), id)
	if err != nil {
		l.t.Fatalf("quarantine item %s: %v", id, err)
	}
	return it
}

// setEngines changes the cluster's engine settings through the admin API
// and waits until the node applies the revision.
func (l *engineLab) setEngines(change func(*scanner.Engines)) {
	l.t.Helper()
	ctx := l.t.Context()
	rev, err := l.admin.Config(ctx)
	if err != nil {
		l.t.Fatal(err)
	}
	change(&rev.Settings.Scanner.Engines)
	next, err := l.admin.SetConfig(ctx, admin.ConfigRequest{Settings: rev.Settings, Comment: l.t.Name()})
	if err != nil {
		l.t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); l.node.follower.Applied() < next.Number; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			l.t.Fatalf("revision %d not applied", next.Number)
		}
	}
}

// rspamdScanned is how many messages rspamd scanned (its controller's
// /stat); pings do not count.
func (l *engineLab) rspamdScanned() int {
	l.t.Helper()
	resp, err := http.Get(l.rspamd.ControllerURL + "/stat")
	if err != nil {
		l.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Scanned int `json:"scanned"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		l.t.Fatalf("rspamd /stat: %v", err)
	}
	return st.Scanned
}

func zipOf(t *testing.T, name string, content []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(content)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Every engine on one node, against the real daemons: what each finds
// decides, their symbols and headers reach the delivered message, a
// sender's DMARC policy refuses a forgery, one transaction is one scan
// whatever its recipients, and an engine that fails gets its on_error —
// never a clean verdict.
func TestNodeEngines(t *testing.T) {
	l := newEngineLab(t)
	ctx := t.Context()

	t.Run("clean", func(t *testing.T) {
		forged := "Authentication-Results: mx.test; dkim=pass header.d=sender.test (forged)\r\nAuthentication-Results: other.example; spf=pass\r\n"
		r := l.send("a@sender.test", []string{"b@example.org"}, message("a@sender.test", "clean one", forged, "Hello, the minutes of today's meeting are attached below.\r\nRegards"))
		if r.code != 250 {
			t.Fatalf("reply %s, want 250", r)
		}
		m := l.delivered("clean one")
		if v := testenv.Header(m, "X-Mxgate-Verdict"); v != "deliver (clean)" {
			t.Errorf("verdict %q:\n%s", v, m)
		}
		syms := strings.ReplaceAll(strings.ReplaceAll(headerBlock(m, "X-Mxgate-Symbols"), "\r\n\t", " "), "\n\t", " ")
		for _, want := range []string{"RSPAMD_", "SPF_PASS", "DMARC_PASS"} {
			if !strings.Contains(syms, want) {
				t.Errorf("symbols lack %s: %s", want, syms)
			}
		}
		ar := headerValues(m, "Authentication-Results")
		if len(ar) != 2 || !strings.HasPrefix(ar[0], "mx.test;") || !strings.Contains(ar[0], "spf=pass") || !strings.Contains(ar[0], "dmarc=pass") ||
			!strings.HasPrefix(ar[1], "other.example;") || strings.Contains(m, "(forged)") {
			t.Errorf("Authentication-Results %q: want ours, then the other's, and not the forged one", ar)
		}
	})

	t.Run("clamd finds its own signature in a zip", func(t *testing.T) {
		z := base64.StdEncoding.EncodeToString(zipOf(t, "notes.txt", l.clamd.Custom.Sample))
		body := "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/zip; name=notes.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n" + z + "\r\n--b--"
		msg := strings.Replace(message("a@sender.test", "custom sig", "", body), "Content-Type: text/plain; charset=us-ascii", "Content-Type: multipart/mixed; boundary=b", 1)
		it := l.quarantined(l.send("a@sender.test", []string{"b@example.org"}, msg))
		if it.Verdict != "virus" || len(it.Viruses) != 1 || it.Viruses[0] != l.clamd.Custom.Name {
			t.Errorf("quarantined as %s with viruses %v, want virus %s", it.Verdict, it.Viruses, l.clamd.Custom.Name)
		}
		if _, err := l.admin.QuarantineLearn(ctx, it.ID, true); err != nil {
			t.Errorf("learn-spam through Rspamd's controller: %v", err)
		}
	})

	t.Run("GTUBE is refused", func(t *testing.T) {
		r := l.send("a@sender.test", []string{"b@example.org"}, message("a@sender.test", "gtube", "", gtube))
		if r.code != 550 {
			t.Errorf("reply %s, want 550", r)
		}
	})

	t.Run("DMARC p=reject refuses a forged From", func(t *testing.T) {
		r := l.send("x@elsewhere.test", []string{"b@example.org"}, message("ceo@sender.test", "forged ceo", "", "Please pay the invoice today."))
		if r.code != 550 || !strings.Contains(r.text, "DMARC policy of sender.test") {
			t.Errorf("reply %s, want 550 naming sender.test's DMARC policy", r)
		}
	})

	t.Run("one transaction is one scan", func(t *testing.T) {
		rcpts := make([]string, 30)
		for i := range rcpts {
			rcpts[i] = fmt.Sprintf("u%d@example.org", i)
		}
		before := l.rspamdScanned()
		if r := l.send("a@sender.test", rcpts, message("a@sender.test", "to thirty", "", "One message for everyone.")); r.code != 250 {
			t.Fatalf("reply %s", r)
		}
		if n := l.rspamdScanned() - before; n != 1 {
			t.Errorf("rspamd scanned %d messages for one transaction to 30 recipients, want 1", n)
		}
	})

	t.Run("spamd skips a message over max_size and says so", func(t *testing.T) {
		big := strings.Repeat("A line of an ordinary long report, nothing to see here.\r\n", 1500) // 87 KB
		if r := l.send("a@sender.test", []string{"b@example.org"}, message("a@sender.test", "long report", "", big)); r.code != 250 {
			t.Fatalf("reply %s", r)
		}
		if m := l.delivered("long report"); !strings.Contains(headerBlock(m, "X-Mxgate-Symbols"), "SPAMD_SKIPPED_SIZE") {
			t.Errorf("no SPAMD_SKIPPED_SIZE:\n%s", headerBlock(m, "X-Mxgate-Symbols"))
		}
	})

	t.Run("over clamd's StreamMaxLength is not clean", func(t *testing.T) {
		huge := strings.Repeat(strings.Repeat("x", 76)+"\r\n", clamdStreamMax/78+1000)
		it := l.quarantined(l.send("a@sender.test", []string{"b@example.org"}, message("a@sender.test", "huge", "", huge)))
		if it.Verdict != "unscannable" {
			t.Errorf("quarantined as %s, want unscannable", it.Verdict)
		}
	})

	t.Run("the admin's scan shows every engine", func(t *testing.T) {
		res, err := l.admin.Scan(ctx, strings.NewReader(message("a@sender.test", "scan me", "", "hello")), admin.ScanQuery{From: "a@sender.test", Rcpts: []string{"b@example.org"}})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range res.Symbols {
			names = append(names, s.Name)
		}
		all := strings.Join(names, " ")
		for _, want := range []string{"RSPAMD_", "SPF_PASS"} {
			if !strings.Contains(all, want) {
				t.Errorf("scan symbols lack %s: %s", want, all)
			}
		}
	})

	// clamd goes down: each on_error in turn, never a clean verdict.
	l.clamd.Kill()
	t.Run("clamd down: tempfail", func(t *testing.T) {
		r := l.send("a@sender.test", []string{"b@example.org"}, message("a@sender.test", "while down 1", "", "hello"))
		if r.code != 451 || !strings.Contains(r.text, "Content scanner unavailable") {
			t.Errorf("reply %s, want 451 Content scanner unavailable", r)
		}
	})
	t.Run("clamd down: accept", func(t *testing.T) {
		l.setEngines(func(e *scanner.Engines) { e.Clamd.OnError = "accept" })
		if r := l.send("a@sender.test", []string{"b@example.org"}, message("a@sender.test", "while down 2", "", "hello")); r.code != 250 {
			t.Fatalf("reply %s", r)
		}
		m := l.delivered("while down 2")
		if v, f := testenv.Header(m, "X-Mxgate-Verdict"), testenv.Header(m, "X-Mxgate-Engine-Failed"); v != "deliver (engine_failed)" || f != "clamd (connect)" {
			t.Errorf("verdict %q, engine failed %q; want deliver (engine_failed), clamd (connect)", v, f)
		}
	})
	t.Run("clamd down: quarantine", func(t *testing.T) {
		l.setEngines(func(e *scanner.Engines) { e.Clamd.OnError = "quarantine" })
		it := l.quarantined(l.send("a@sender.test", []string{"b@example.org"}, message("a@sender.test", "while down 3", "", "hello")))
		if it.Verdict != "engine_failed" {
			t.Errorf("quarantined as %s, want engine_failed", it.Verdict)
		}
	})
	t.Run("health names the engine", func(t *testing.T) {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			resp, err := http.Get("http://" + l.node.AdminAddr().String() + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// on_error quarantine still makes the node unhealthy: only
			// accept does not.
			if resp.StatusCode == 503 && strings.Contains(string(b), "clamd") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("/healthz %d %q, want 503 naming clamd", resp.StatusCode, b)
			}
		}
	})
	t.Run("rspamd stopped too: the strictest on_error", func(t *testing.T) {
		l.rspamd.Stop()
		r := l.send("a@sender.test", []string{"b@example.org"}, message("a@sender.test", "while down 4", "", "hello"))
		if r.code != 451 {
			t.Errorf("reply %s, want 451 (rspamd's tempfail over clamd's quarantine)", r)
		}
	})
}

// headerBlock is a header field of msg with its folded lines, unfolded.
func headerBlock(msg, name string) string {
	return strings.Join(headerValues(msg, name), " ")
}

// headerValues are the values of every field name of msg's header, each
// unfolded.
func headerValues(msg, name string) []string {
	head, _, _ := strings.Cut(strings.ReplaceAll(msg, "\r\n", "\n"), "\n\n")
	var out []string
	cur := -1
	for _, line := range strings.Split(head, "\n") {
		switch {
		case (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) && cur >= 0:
			out[cur] += " " + strings.TrimSpace(line)
		case len(line) > len(name) && strings.EqualFold(line[:len(name)+1], name+":"):
			out = append(out, strings.TrimSpace(line[len(name)+1:]))
			cur = len(out) - 1
		default:
			cur = -1
		}
	}
	return out
}
