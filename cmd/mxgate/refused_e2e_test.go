package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/testenv"
)

// A transaction refused at RCPT by a block entry: the reply names the
// entry, and mxgate log --rcpt finds the transaction by the refused
// recipient, with the entry (value, scope, comment) in the record.
func TestRefusedTransactionFoundByRecipient(t *testing.T) {
	sink := testenv.StartSink(t)
	g := startGateway(t, sink.Addr, nil)
	if out, err := g.cli(t, "lists", "add", "block", "@bad.test", "--rcpt", "@example.org", "--comment", "ticket 42"); err != nil {
		t.Fatalf("lists add: %v\n%s", err, out)
	}
	out, code := swaks(t, g.SMTP, "--from", "spammer@bad.test", "--to", "erin@example.org")
	const reply = "550 5.7.1 Sender blocked by list entry block @bad.test (rcpt-specific for @example.org)"
	if code != 24 || !strings.Contains(out, "<** "+reply) {
		t.Errorf("blocked sender: exit %d, want %s at RCPT:\n%s", code, reply, out)
	}

	// The journal ships records to the store in batches.
	var recs []msglog.Record
	for deadline := time.Now().Add(10 * time.Second); len(recs) == 0; time.Sleep(100 * time.Millisecond) {
		js, err := g.cli(t, "log", "--rcpt", "erin@example.org", "--json")
		if err == nil {
			err = json.Unmarshal([]byte(js), &recs)
		}
		if err != nil || len(recs) > 1 || len(recs) == 0 && time.Now().After(deadline) {
			t.Fatalf("log --rcpt erin@example.org --json: %v\n%s", err, js)
		}
	}
	r := recs[0]
	want := msglog.ListEntry{Kind: "block", Value: "@bad.test", Rcpt: "@example.org", Comment: "ticket 42"}
	if r.Action != "refused" || len(r.Refused) != 1 || r.Refused[0].Rcpt != "erin@example.org" || r.Refused[0].Reply != reply ||
		r.Refused[0].List == nil || *r.Refused[0].List != want {
		t.Errorf("record %+v, want action refused, erin refused by %+v", r, want)
	}
	table, err := g.cli(t, "log", "--rcpt", "erin@example.org")
	if err != nil || !strings.Contains(table, "erin@example.org") || !strings.Contains(table, "refused") {
		t.Errorf("log --rcpt table: %v\n%s", err, table)
	}
}
