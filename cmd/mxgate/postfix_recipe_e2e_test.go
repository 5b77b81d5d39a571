package main

// The Postfix recipes of contrib/postfix, tried end to end as documented:
// the recipe's own files (documentation addresses replaced by the lab's,
// data directory by a temporary one) run by a real Postfix and the real
// mxgate binary in network namespaces, where ports 25, 10024 and 10025 are
// the real ones. The lab:
//
//	198.18.0.250  client namespace: the Internet (a client outside, and
//	              the MX of outside.test: smtp-sink :25)
//	198.18.0.11   h1: the Postfix in front (one host: mxgate too)
//	198.18.0.12   two hosts: h2 runs mxgate
//	last node     the organisation's mail server (smtp-sink :25) and a
//	              client of the organisation's network
//
// The recipes say 10.0.0.0/24 for "your network"; the lab's is
// 198.18.0.0/28 (the nodes, not the Internet at .250).

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mxgate/mxgate/testenv"
)

// postfixLab is one recipe running in a lab.
type postfixLab struct {
	lab      *testenv.Lab
	pf       *testenv.Postfix
	front    string // the front Postfix's public smtpd
	gwNS     string // mxgate's namespace
	gwSMTP   string // mxgate's listener (from gwNS)
	gwConf   string // mxgate's node file as the recipe gives it
	gw       *testenv.Process
	mailNS   string // the mail server's namespace, a client of your network
	mailAddr string
	mailbox  *testenv.Sink // the organisation's mail server
	internet *testenv.Sink // the MX of outside.test
	afterQ   bool          // the hand-over to mxgate is after Postfix's queue
}

// Test-only additions to the recipes: the outside world has no DNS here,
// so "the Internet" is one MX for every domain Postfix does not relay;
// and a rule to quarantine by (score 7: from 6 quarantined, from 15
// refused).
const (
	recipeInternet = "default_transport = smtp:[198.18.0.250]:25\n"
	recipeRule     = "scanner:\n  rules:\n    - 'LOTTERY header Subject =~ /you have won/i 7'\n"
)

// recipeFile reads contrib/postfix/<dir>/<name> with the documentation
// addresses replaced; every 10.0.0.x must have a replacement.
func recipeFile(t *testing.T, dir, name string, r *strings.Replacer) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "contrib", "postfix", dir, name))
	if err != nil {
		t.Fatalf("the recipe's file: %v", err)
	}
	s := r.Replace(string(b))
	if i := strings.Index(s, "10.0.0."); i >= 0 {
		t.Fatalf("%s/%s: no lab address for %q", dir, name, s[i:min(len(s), i+12)])
	}
	return s
}

// startRecipe builds the lab for a recipe: nodes are the lab's node count,
// front the node running Postfix, gw the node running mxgate.
func startRecipe(t *testing.T, dir string, nodes, gwNode int, afterQ bool) *postfixLab {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.Need(t, "postfix", "smtp-sink", "swaks")
	lab := testenv.NewLab(t, nodes)
	l := &postfixLab{lab: lab, afterQ: afterQ,
		gwNS: lab.Node(gwNode), mailNS: lab.Node(nodes), mailAddr: lab.NodeAddr(nodes)}
	data := filepath.Join(t.TempDir(), "mxgate")
	// Longest first: 10.0.0.10 must not be read as 10.0.0.1 and a 0.
	r := strings.NewReplacer(
		"10.0.0.0/24", "198.18.0.0/28",
		"10.0.0.10", lab.NodeAddr(1),
		"10.0.0.25", l.mailAddr,
		"10.0.0.5", lab.NodeAddr(gwNode),
		"/var/lib/mxgate", data,
	)
	l.mailbox = lab.StartSink(t, l.mailNS, l.mailAddr+":25")
	l.internet = lab.StartSink(t, lab.Client(), lab.ClientAddr()+":25")

	l.gwConf = recipeFile(t, dir, "mxgate.yaml", r)
	m := regexp.MustCompile(`(?m)^\s+listen: \["([^"]+)"\]`).FindStringSubmatch(l.gwConf)
	if m == nil {
		t.Fatalf("%s/mxgate.yaml: no smtp.listen", dir)
	}
	l.gwSMTP = m[1]
	l.startGateway(t, l.gwConf)

	main := recipeFile(t, dir, "main.cf", r) + recipeInternet
	master := recipeFile(t, dir, "master.cf", r)
	if !strings.Contains(master, "smtp      inet") {
		// The recipe keeps the stock public service.
		master = "smtp      inet  n       -       n       -       -       smtpd\n" + master
	}
	l.pf = lab.StartPostfix(t, lab.Node(1), main, master)
	l.front = lab.NodeAddr(1) + ":25"
	lab.WaitListen(t, lab.Client(), l.front, 20*time.Second)
	return l
}

// startGateway (re)starts mxgate with the node file conf (plus the test's
// rule) and waits for its SMTP listener.
func (l *postfixLab) startGateway(t *testing.T, conf string) {
	t.Helper()
	if l.gw != nil {
		l.gw.Stop(syscall.SIGTERM, 20*time.Second)
	}
	path := filepath.Join(t.TempDir(), "mxgate.yaml")
	if err := os.WriteFile(path, []byte(conf+recipeRule), 0o600); err != nil {
		t.Fatal(err)
	}
	l.gw = l.lab.Start(t, l.gwNS, mxgateBin, "serve", "-c", path)
	l.lab.WaitListen(t, l.gwNS, l.gwSMTP, 20*time.Second)
	l.lab.WaitListen(t, l.gwNS, "127.0.0.1:8025", 20*time.Second)
}

// send runs swaks from namespace ns to server.
func (l *postfixLab) send(t *testing.T, ns, server string, args ...string) (string, int) {
	t.Helper()
	return swaksVia(t, []string{"ip", "netns", "exec", ns}, server, args...)
}

// cli runs a management command on mxgate's host.
func (l *postfixLab) cli(t *testing.T, args ...string) string {
	t.Helper()
	ctx := testenv.Context(t, 30*time.Second)
	out, err := l.lab.Exec(ctx, l.gwNS, mxgateBin, append(args, "--admin", "http://127.0.0.1:8025")...)
	if err != nil {
		t.Fatalf("mxgate %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// quarantined returns the quarantine's items by id.
func (l *postfixLab) quarantined(t *testing.T) map[string]map[string]any {
	t.Helper()
	var items []map[string]any
	out := l.cli(t, "quarantine", "list", "--json")
	if err := json.Unmarshal([]byte(out), &items); err != nil {
		t.Fatalf("quarantine list --json: %v\n%s", err, out)
	}
	byID := map[string]map[string]any{}
	for _, it := range items {
		byID[strings.ToUpper(it["id"].(string))] = it
	}
	return byID
}

// waitSubject waits for the message with this Subject at sink and returns it.
func waitSubject(t *testing.T, sink *testenv.Sink, subject string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, m := range sink.Messages(t) {
			if testenv.Header(m, "Subject") == subject {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message %q at %s after 30s", subject, sink.Addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasSubject(t *testing.T, sink *testenv.Sink, subject string) bool {
	for _, m := range sink.Messages(t) {
		if testenv.Header(m, "Subject") == subject {
			return true
		}
	}
	return false
}

// mxgateID is the queue id in mxgate's Received header of a delivered
// message: the proof that it went through mxgate.
var mxgateID = regexp.MustCompile(`by \S+ \(mxgate\) with ESMTP id (\w+)`)

// accepted checks how the sender learnt of mxgate's 250 for the message
// to rcpt: before the queue in the client's own transcript, after it in
// the front Postfix's log line for the hop to mxgate. It returns the id
// mxgate's reply named.
func (l *postfixLab) accepted(t *testing.T, transcript, rcpt string) string {
	t.Helper()
	re := regexp.MustCompile(`<-  250 2\.0\.0 Ok: queued as (\w+)`)
	where := transcript
	if l.afterQ {
		re = regexp.MustCompile(`to=<` + regexp.QuoteMeta(rcpt) + `>, relay=` + regexp.QuoteMeta(l.gwSMTP[:strings.LastIndexByte(l.gwSMTP, ':')]) +
			`\[[^]]+\]:\d+, .*status=sent \(250 2\.0\.0 Ok: queued as (\w+)`)
		where = l.pf.WaitLog(t, "to=<"+rcpt+">", 30*time.Second)
	}
	m := re.FindStringSubmatch(where)
	if m == nil {
		t.Fatalf("no 250 of mxgate for <%s> (want %s):\n%s", rcpt, re, where)
	}
	return m[1]
}

// sendAccepted sends a message that Postfix must take, and returns the id
// mxgate's 250 for it named.
func (l *postfixLab) sendAccepted(t *testing.T, ns, from, rcpt, subject string) string {
	t.Helper()
	out, code := l.send(t, ns, l.front, "--from", from, "--to", rcpt, "--header", "Subject: "+subject, "--body", "body of "+subject)
	if code != 0 {
		t.Fatalf("swaks exit %d:\n%s", code, out)
	}
	return l.accepted(t, out, rcpt)
}

// refused checks that the sender learnt of mxgate's refusal want for the
// message to rcpt: before the queue as the reply in its own session,
// after it as the front Postfix's bounce, logged with mxgate's reply.
func (l *postfixLab) refused(t *testing.T, transcript string, code int, rcpt, want string) {
	t.Helper()
	if !l.afterQ {
		if code == 0 || !strings.Contains(transcript, "<** "+want) {
			t.Errorf("<%s>: swaks exit %d, want Postfix passing on mxgate's %q:\n%s", rcpt, code, want, transcript)
		}
		return
	}
	if code != 0 {
		t.Errorf("<%s>: Postfix refused what it should have queued: exit %d\n%s", rcpt, code, transcript)
	}
	log := l.pf.WaitLog(t, "to=<"+rcpt+">", 30*time.Second)
	re := regexp.MustCompile(`to=<` + regexp.QuoteMeta(rcpt) + `>, relay=.*status=bounced \(host \S+ said: ` + regexp.QuoteMeta(want))
	if !re.MatchString(log) {
		t.Errorf("<%s>: the front Postfix's log has no bounce with mxgate's %q:\n%s", rcpt, want, log)
	}
}

// checkRecipe runs the same story through a recipe: inbound and outbound,
// with mxgate's verdicts reaching the sender, and the relay refusal an
// administrator meets when mxgate does not trust the front Postfix.
func checkRecipe(t *testing.T, l *postfixLab, frontAsSeen string, untrusted func(t *testing.T) (string, int, string)) {
	lab := l.lab
	t.Run("inbound clean message reaches the mail server through mxgate", func(t *testing.T) {
		id := l.sendAccepted(t, lab.Client(), "alice@outside.test", "bob@example.org", "inbound clean")
		m := waitSubject(t, l.mailbox, "inbound clean")
		got := mxgateID.FindStringSubmatch(m)
		if got == nil || got[1] != id {
			t.Errorf("the mail server's copy has no mxgate Received header with id %s:\n%s", id, m)
		}
		if !strings.Contains(m, "from mx1.example.org (["+frontAsSeen+"])") {
			t.Errorf("mxgate's Received header does not name the front Postfix %s:\n%s", frontAsSeen, m)
		}
	})
	t.Run("inbound spam is quarantined and the 250 names it", func(t *testing.T) {
		id := l.sendAccepted(t, lab.Client(), "lotto@outside.test", "carl@example.org", "you have won")
		it, ok := l.quarantined(t)[strings.ToUpper(id)]
		if !ok || it["subject"] != "you have won" {
			t.Errorf("250 named %s, which the quarantine does not hold as the message: %v", id, it)
		}
		time.Sleep(500 * time.Millisecond)
		if hasSubject(t, l.mailbox, "you have won") {
			t.Error("the quarantined message reached the mail server")
		}
	})
	t.Run("inbound from a blocked sender is refused with mxgate's reply", func(t *testing.T) {
		l.cli(t, "lists", "add", "block", "spammer@bad.test")
		out, code := l.send(t, lab.Client(), l.front, "--from", "spammer@bad.test", "--to", "dave@example.org",
			"--header", "Subject: blocked sender", "--body", "buy")
		l.refused(t, out, code, "dave@example.org", "550 5.7.1")
		if l.afterQ {
			// The bounce goes back to the (outside) sender, mxgate's words in it.
			if dsn := waitSubject(t, l.internet, "Undelivered Mail Returned to Sender"); !strings.Contains(dsn, "550 5.7.1") {
				t.Errorf("the bounce does not carry mxgate's reply:\n%s", dsn)
			}
		}
		time.Sleep(500 * time.Millisecond)
		if hasSubject(t, l.mailbox, "blocked sender") {
			t.Error("the blocked sender's message reached the mail server")
		}
	})
	t.Run("outbound from your network leaves through mxgate", func(t *testing.T) {
		id := l.sendAccepted(t, l.mailNS, "bob@example.org", "carol@outside.test", "outbound")
		m := waitSubject(t, l.internet, "outbound")
		if got := mxgateID.FindStringSubmatch(m); got == nil || got[1] != id {
			t.Errorf("the outside MX's copy has no mxgate Received header with id %s:\n%s", id, m)
		}
	})
	t.Run("outbound from outside is refused by Postfix", func(t *testing.T) {
		out, code := l.send(t, lab.Client(), l.front, "--from", "eve@outside.test", "--to", "victim@elsewhere.test",
			"--header", "Subject: open relay test")
		if code != 24 || !strings.Contains(out, "<** 554 5.7.1 <victim@elsewhere.test>: Relay access denied") {
			t.Errorf("relay from outside: exit %d, want Postfix's 554 5.7.1 at RCPT:\n%s", code, out)
		}
	})
	t.Run("an untrusted client relaying through mxgate is told why", func(t *testing.T) {
		out, code, ip := untrusted(t)
		want := "<** 554 5.7.1 Relay access denied: client [" + ip + "] is not in smtp.trusted_networks"
		if code != 24 || !strings.Contains(out, want) {
			t.Errorf("relay from %s straight to mxgate: exit %d, want %q:\n%s", ip, code, want, out)
		}
	})
	t.Run("without the trusted_networks line outbound fails, naming it", func(t *testing.T) {
		// The report: a node file without it (so without -c
		// loopback is no longer trusted) refuses the front Postfix.
		line := regexp.MustCompile(`(?m)^  trusted_networks: .*\n`)
		if !line.MatchString(l.gwConf) {
			t.Fatalf("the recipe's mxgate.yaml has no trusted_networks line:\n%s", l.gwConf)
		}
		l.startGateway(t, line.ReplaceAllString(l.gwConf, ""))
		out, code := l.send(t, l.mailNS, l.front, "--from", "bob@example.org", "--to", "frank@outside.test",
			"--header", "Subject: outbound untrusted", "--body", "hello Frank")
		l.refused(t, out, code, "frank@outside.test",
			"554 5.7.1 Relay access denied: client ["+frontAsSeen+"] is not in smtp.trusted_networks")
	})
}

// One host: Postfix's smtpd_proxy_filter passes every transaction through
// mxgate on 127.0.0.1:10024 before the queue; mxgate hands it back to the
// re-injection smtpd on 127.0.0.1:10025.
func TestPostfixOneHost(t *testing.T) {
	l := startRecipe(t, "one-host", 2, 1, false)
	checkRecipe(t, l, "127.0.0.1", func(t *testing.T) (string, int, string) {
		// Another process on the host, from an address not trusted.
		out, code := l.send(t, l.gwNS, l.gwSMTP, "--local-interface", "127.0.0.2", "--from", "x@example.org",
			"--to", "victim@elsewhere.test")
		return out, code, "127.0.0.2"
	})
}

// Two hosts: Postfix on host A hands every message from its queue to
// mxgate on host B (content_filter), which hands it back to host A's
// re-injection smtpd on port 10025.
func TestPostfixTwoHost(t *testing.T) {
	l := startRecipe(t, "two-host", 3, 2, true)
	checkRecipe(t, l, l.lab.NodeAddr(1), func(t *testing.T) (string, int, string) {
		// The mail server going straight to mxgate instead of through host A.
		out, code := l.send(t, l.mailNS, l.gwSMTP, "--from", "x@example.org", "--to", "victim@elsewhere.test")
		return out, code, l.mailAddr
	})
}
