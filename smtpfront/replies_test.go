package smtpfront

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/testenv"
)

// A delivered message's 250 names mxgate's queue id, the one in its
// Received header and log line, and the downstream's own where it gave one:
// smtp-sink says only "Ok", a real Postfix "Ok: queued as ID".
func TestDeliveredReplyNamesQueueIDs(t *testing.T) {
	tests := []struct {
		name    string
		postfix bool   // a real Postfix downstream (relaying to a sink)
		want    string // the DATA reply; (?P<id>) is mxgate's id
	}{
		{"smtp-sink downstream", false, `^250 2\.0\.0 Ok: queued as (?P<id>[0-9A-F]{16})$`},
		{"Postfix downstream", true, `^250 2\.0\.0 Ok: queued as (?P<id>[0-9A-F]{16}) \(downstream: queued as (?P<down>[0-9A-Za-z]+)\)$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mutate func(*Options)
			var pf *testenv.Postfix
			var last *testenv.Sink
			if tt.postfix {
				last = testenv.StartSink(t)
				pf = testenv.StartPostfix(t, "example.org", last.Addr)
				mutate = func(o *Options) { o.Downstream.Addr = pf.Addr }
			}
			f := startFront(t, nil, mutate)
			if last == nil {
				last = f.sink
			}
			got := dial(t, f.addr).send("Subject: ids\r\n\r\nhello")
			re := regexp.MustCompile(tt.want)
			m := re.FindStringSubmatch(got)
			if m == nil {
				t.Fatalf("DATA reply = %q, want %s", got, tt.want)
			}
			id := m[re.SubexpIndex("id")]
			msgs := last.WaitMessages(t, 1, 30*time.Second)
			if !strings.Contains(msgs[0], "(mxgate) with ESMTP id "+id) {
				t.Errorf("the reply's id %s is not the delivered message's:\n%s", id, msgs[0])
			}
			if pf != nil {
				down := m[re.SubexpIndex("down")]
				pf.WaitLog(t, down+": ", 30*time.Second)
			}
		})
	}
}

// A real Postfix in front: its log line for the hop to mxgate names
// mxgate's queue id, the one the delivered message carries.
func TestFrontPostfixLogsTheQueueID(t *testing.T) {
	f := startFront(t, nil, nil)
	pf := testenv.StartPostfix(t, "example.org", f.addr)
	if code, err := testenv.SendFrom(pf.Addr, "a@sender.test"); err != nil || code != 250 {
		t.Fatalf("sending through Postfix: %d %v", code, err)
	}
	msgs := f.sink.WaitMessages(t, 1, 60*time.Second)
	m := regexp.MustCompile(`\(mxgate\) with ESMTP id ([0-9A-F]{16})`).FindStringSubmatch(msgs[0])
	if m == nil {
		t.Fatalf("no mxgate Received header in:\n%s", msgs[0])
	}
	pf.WaitLog(t, "status=sent (250 2.0.0 Ok: queued as "+m[1]+")", 30*time.Second)
}

// The README gives the texts of the MAIL and RCPT successes: go-smtp's
// own, which mxgate cannot choose. Should a new go-smtp change them, this
// says the README must follow.
func TestEnvelopeRepliesAsDocumented(t *testing.T) {
	f := startFront(t, nil, nil)
	c := dial(t, f.addr)
	c.ehlo()
	for _, tt := range []struct{ cmd, want string }{
		{"MAIL FROM:<a@sender.test>", "250 2.0.0 Roger, accepting mail from <a@sender.test>"},
		{"RCPT TO:<b@example.org>", "250 2.0.0 I'll make sure <b@example.org> gets this"},
	} {
		if got := c.do(tt.cmd); got != tt.want {
			t.Errorf("%s: %q, want %q as the README says", tt.cmd, got, tt.want)
		}
	}
}
