package smtpfront

// The scanner's verdicts through the real front end: the real pool, the
// embedded store, smtp-sink downstream.

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/quarantine"
	"github.com/mxgate/mxgate/scanner"
)

const eicar = `X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`

// poolWith is a real scanner pool with the given on_limit ("" = the
// default).
func poolWith(t *testing.T, onLimit scanner.Action) *scanner.Pool {
	t.Helper()
	o := scanner.DefaultOptions()
	o.NodeID, o.Workers = "t1", 2
	if onLimit != "" {
		o.OnLimit = onLimit
	}
	pool, err := scanner.NewPool(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// overLimitBody has 501 empty parts, then EICAR in base64: past the part
// limit, where the scanner never looks.
func overLimitBody() string {
	var b strings.Builder
	b.WriteString("Subject: many parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n")
	for range 501 {
		b.WriteString("--b1\r\nContent-Type: text/plain\r\n\r\n\r\n")
	}
	b.WriteString("--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename=\"readme.txt\"\r\n\r\n" + base64.StdEncoding.EncodeToString([]byte(eicar)) + "\r\n--b1--")
	return b.String()
}

// hasSym finds a symbol in the "NAME(score)" form the store keeps.
func hasSym(syms []string, name string) bool {
	return slices.ContainsFunc(syms, func(s string) bool { return strings.HasPrefix(s, name+"(") })
}

// logRecord waits for the message log record of the transaction that got
// reply (the log is written in batches).
func logRecord(t *testing.T, f *front, reply string) msglog.Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs, err := f.store.Log.Search(context.Background(), msglog.Query{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if strings.HasPrefix(reply, r.Reply[:min(len(r.Reply), 9)]) {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message log record for %q in %+v", reply, recs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestOnLimitThroughTheFrontEnd(t *testing.T) {
	const why = "Message could not be scanned completely: more than 500 MIME parts"
	tests := []struct {
		onLimit    scanner.Action
		reply      string
		quarantine bool
	}{
		{scanner.ActionQuarantine, "250 2.0.0 Ok: queued as ", true},
		{scanner.ActionTempfail, "451 4.7.0 " + why, false},
		{scanner.ActionReject, "550 5.7.1 " + why, false},
	}
	for _, tc := range tests {
		t.Run(string(tc.onLimit), func(t *testing.T) {
			f := startFront(t, poolWith(t, tc.onLimit), nil)
			got := dial(t, f.addr).send(overLimitBody())
			if !strings.HasPrefix(got, tc.reply) {
				t.Fatalf("DATA reply = %q, want %q", got, tc.reply)
			}
			items, err := f.store.Quarantine.List(context.Background(), quarantine.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.quarantine && (len(items) != 1 || items[0].Verdict != "unscannable" || !hasSym(items[0].Symbols, "MIME_TOO_MANY_PARTS")):
				t.Errorf("quarantine holds %+v, want one unscannable item naming MIME_TOO_MANY_PARTS", items)
			case !tc.quarantine && len(items) != 0:
				t.Errorf("quarantine holds %d items after %q", len(items), got)
			}
			rec := logRecord(t, f, got)
			if rec.Action != string(tc.onLimit) || rec.Verdict != "unscannable" {
				t.Errorf("message log: action %s verdict %s, want %s unscannable", rec.Action, rec.Verdict, tc.onLimit)
			}
			time.Sleep(200 * time.Millisecond)
			if n := len(f.sink.Messages(t)); n != 0 {
				t.Errorf("downstream got %d messages", n)
			}
		})
	}
}

// exeBody carries invoice.pdf.exe.
const exeBody = "Subject: invoice\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
	"--b1\r\nContent-Type: text/plain\r\n\r\nPlease pay.\r\n" +
	"--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n" +
	"Content-Disposition: attachment; filename=\"invoice.pdf.exe\"\r\n\r\nTVo=\r\n--b1--"

// An allowlisted sender (MAIL FROM is easily forged) still has the
// attachment policy applied, unless the allow entry waives it.
func TestAllowlistKeepsAttachmentPolicy(t *testing.T) {
	ctx := context.Background()
	f := startFront(t, poolWith(t, ""), nil)
	allow := lists.Entry{Kind: lists.Allow, Value: "a@sender.test"}
	if _, _, err := f.lists.Add(ctx, allow); err != nil {
		t.Fatal(err)
	}
	if got := dial(t, f.addr).send(exeBody); !strings.HasPrefix(got, "250 2.0.0 Ok: queued as ") {
		t.Fatalf("allowlisted sender with invoice.pdf.exe: %q, want it quarantined", got)
	}
	items, err := f.store.Quarantine.List(ctx, quarantine.Filter{})
	if err != nil || len(items) != 1 || items[0].Verdict != "banned" || !hasSym(items[0].Symbols, "ALLOWLIST") {
		t.Fatalf("quarantine: %+v %v, want one banned item with ALLOWLIST", items, err)
	}

	// The same sender by an entry that says so: delivered.
	if err := f.lists.Remove(ctx, lists.Allow, allow.Value, ""); err != nil {
		t.Fatal(err)
	}
	allow.SkipAttachments = true
	if _, _, err := f.lists.Add(ctx, allow); err != nil {
		t.Fatal(err)
	}
	// Delivered and quarantined mail both get "250 … queued as ID": the
	// downstream's copy below tells which.
	if got := dial(t, f.addr).send(exeBody); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("allow entry with skip_attachments: %q, want delivered", got)
	}
	msgs := f.sink.WaitMessages(t, 1, 10*time.Second)
	if !strings.Contains(msgs[0], "X-Mxgate-Verdict: deliver (clean)") || !strings.Contains(msgs[0], "invoice.pdf.exe") {
		t.Errorf("downstream got:\n%s", msgs[0])
	}

	// Recipients whose entries differ in the option get their own
	// transaction.
	if _, _, err := f.lists.Add(ctx, lists.Entry{Kind: lists.Allow, Value: "a@sender.test", Rcpt: "c@example.org"}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, f.addr)
	c.ehlo()
	for _, step := range []struct{ cmd, want string }{
		{"MAIL FROM:<a@sender.test>", "250"},
		{"RCPT TO:<b@example.org>", "250"},
		{"RCPT TO:<c@example.org>", "452 4.5.3"},
	} {
		if got := c.do(step.cmd); !strings.HasPrefix(got, step.want) {
			t.Errorf("%s: %q, want %s", step.cmd, got, step.want)
		}
	}
}
