package main

import (
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/testenv"
)

// digest send mails each recipient of the last day's quarantine one
// digest through the downstream, and a second run the same day none;
// opt-outs are listed and honoured.
func TestDigestCommands(t *testing.T) {
	sink := testenv.StartSink(t)
	url, _ := adminServerWith(t, func(o *admin.Options) { o.Digest = walkDigest(t, o.Quarantine, sink.Addr) })
	if out := mustRun(t, url, "digest", "optouts"); out != "zed@example.org\n" {
		t.Errorf("optouts: %q", out)
	}
	if out := mustRun(t, url, "digest", "optout", "Carol@Example.org"); out != "Carol@Example.org gets no digests\n" {
		t.Errorf("optout: %q", out)
	}
	out := mustRun(t, url, "digest", "send")
	for _, want := range []string{"alice@example.org  sent", "bob@example.org    sent", "carol@example.org  opted out"} {
		if !strings.Contains(out, want) {
			t.Errorf("send: no %q in\n%s", want, out)
		}
	}
	msgs := sink.WaitMessages(t, 2, 10*time.Second)
	if len(msgs) != 2 || len(testenv.MessagesTo(msgs, "alice@example.org")) != 1 || len(testenv.MessagesTo(msgs, "bob@example.org")) != 1 {
		t.Fatalf("sink got %d digests, want one for alice and one for bob", len(msgs))
	}
	out = mustRun(t, url, "digest", "send")
	if strings.Contains(out, " sent") || !strings.Contains(out, "alice@example.org  nothing new") {
		t.Errorf("second send the same day:\n%s", out)
	}
	if out := mustRun(t, url, "digest", "send", "--rcpt", "alice@example.org", "--json"); !strings.Contains(out, `"result": "nothing new"`) {
		t.Errorf("send --rcpt --json: %s", out)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(sink.Messages(t)); n != 2 {
		t.Errorf("after the second send the sink has %d messages, want 2", n)
	}
	if out := mustRun(t, url, "digest", "optin", "carol@example.org"); out != "carol@example.org gets digests again\n" {
		t.Errorf("optin: %q", out)
	}
	if out := mustRun(t, url, "digest", "rotate-key"); !strings.HasPrefix(out, "new signing key ") {
		t.Errorf("rotate-key: %q", out)
	}
	_, _, err := run(t, "digest", "optout", "not-an-address", "--admin", url, "--token", cliToken)
	if err == nil || !strings.Contains(err.Error(), "(HTTP 400)") {
		t.Errorf("optout of a non-address: %v", err)
	}
}
