package smtpfront

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/lists"
	"github.com/mxgate/mxgate/msglog"
	"github.com/mxgate/mxgate/testenv"
)

// Refused transactions are findable by recipient: the record and the log
// line carry every refused recipient with its reply and, for a list block,
// the entry; a block reply names the entry; an allowed message's record
// names the allow entry.
func TestRefusedTransactionsAreLogged(t *testing.T) {
	logs := &testenv.SyncBuffer{}
	f := startFront(t, nil, func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
		o.MaxMessageBytes = 64 << 10
	})
	ctx := context.Background()
	for _, e := range []lists.Entry{
		{Kind: lists.Block, Value: "@spam.example", Rcpt: "@example.org", Comment: "ticket 42"},
		{Kind: lists.Block, Value: "@spam.example"},
		{Kind: lists.Allow, Value: "@friend.test", Comment: "partner"},
	} {
		if _, _, err := f.lists.Add(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	blockText := "550 5.7.1 Sender blocked by list entry block @spam.example (rcpt-specific for @example.org)"
	blockEntry := &msglog.ListEntry{Kind: "block", Value: "@spam.example", Rcpt: "@example.org", Comment: "ticket 42"}
	relayText := "554 5.7.1 Relay access denied: client [127.0.0.1] is not in smtp.trusted_networks and the recipient's domain is not in smtp.accept_domains"
	type refusal struct{ rcpt, reply string }
	tests := []struct {
		name    string
		from    string
		rcpts   map[string]string // RCPT → the reply's start
		body    string            // "" = RSET instead of DATA
		action  string
		to      []string
		refused []refusal
		list    *msglog.ListEntry // of the record
	}{
		{
			name: "every recipient refused", from: "x@spam.example",
			rcpts:  map[string]string{"bob@example.org": blockText, "carol@foreign.test": relayText},
			action: "refused", refused: []refusal{{"bob@example.org", blockText}, {"carol@foreign.test", relayText}},
		},
		{
			name: "delivered, one refused", from: "a@friend.test",
			rcpts: map[string]string{"alice@example.org": "250", "dave@foreign.test": relayText},
			body:  "Subject: hi\r\n\r\nhello", action: "deliver", to: []string{"alice@example.org"},
			refused: []refusal{{"dave@foreign.test", relayText}},
			list:    &msglog.ListEntry{Kind: "allow", Value: "@friend.test", Comment: "partner"},
		},
		{
			name: "refused at DATA, one refused at RCPT", from: "b@sender.test",
			rcpts: map[string]string{"erin@example.org": "250", "frank@foreign.test": relayText},
			body:  "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 70)+"\r\n", 2000), action: "reject", to: []string{"erin@example.org"},
			refused: []refusal{{"frank@foreign.test", relayText}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, f.addr)
			c.ehlo()
			if r := c.do("MAIL FROM:<" + tc.from + ">"); !strings.HasPrefix(r, "250") {
				t.Fatalf("MAIL = %q", r)
			}
			// Accepted recipients first: the order of the transaction.
			for _, want := range []bool{true, false} {
				for rcpt, reply := range tc.rcpts {
					if (reply == "250") != want {
						continue
					}
					if got := c.do("RCPT TO:<" + rcpt + ">"); !strings.HasPrefix(got, reply) {
						t.Errorf("RCPT %s = %q, want %q", rcpt, got, reply)
					}
				}
			}
			if tc.body == "" {
				c.do("RSET")
			} else {
				if r := c.do("DATA"); !strings.HasPrefix(r, "354") {
					t.Fatalf("DATA = %q", r)
				}
				c.do(tc.body + "\r\n.")
			}
			c.do("QUIT")

			// Found by each recipient, the refused ones too.
			for rcpt := range tc.rcpts {
				rec := waitRecord(t, f.store.Log, msglog.Query{Rcpt: rcpt, Sender: tc.from})
				if rec.Action != tc.action || strings.Join(rec.Recipients, ",") != strings.Join(tc.to, ",") || !sameEntry(rec.List, tc.list) {
					t.Errorf("record for %s: action %q, to %v, list %+v; want %q, %v, %+v", rcpt, rec.Action, rec.Recipients, rec.List, tc.action, tc.to, tc.list)
				}
				if len(rec.Refused) != len(tc.refused) {
					t.Fatalf("record for %s: refused %+v, want %v", rcpt, rec.Refused, tc.refused)
				}
				for _, want := range tc.refused {
					var got *msglog.Refusal
					for i := range rec.Refused {
						if rec.Refused[i].Rcpt == want.rcpt {
							got = &rec.Refused[i]
						}
					}
					if got == nil || got.Reply != want.reply {
						t.Errorf("refusal of %s: %+v, want reply %q", want.rcpt, got, want.reply)
						continue
					}
					wantList := (*msglog.ListEntry)(nil)
					if want.reply == blockText {
						wantList = blockEntry
					}
					if !sameEntry(got.List, wantList) {
						t.Errorf("refusal of %s names entry %+v, want %+v", want.rcpt, got.List, wantList)
					}
				}
			}

			// The log line of the transaction lists the refused recipients.
			line := messageLine(t, logs.String(), tc.from)
			refused, _ := line["refused"].([]any)
			if len(refused) != len(tc.refused) {
				t.Fatalf("log line refused = %v, want %d entries\n%v", line["refused"], len(tc.refused), line)
			}
			for _, want := range tc.refused {
				found := false
				for _, r := range refused {
					found = found || r == "<"+want.rcpt+"> "+want.reply
				}
				if !found {
					t.Errorf("log line refused = %v, lacks <%s> %s", refused, want.rcpt, want.reply)
				}
			}
			if tc.list != nil && line["list"] != tc.list.String() {
				t.Errorf("log line list = %v, want %q", line["list"], tc.list.String())
			}
			if _, ok := line["duration"]; !ok {
				t.Errorf("log line without duration: %v", line)
			}
		})
	}
}

func sameEntry(a, b *msglog.ListEntry) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// waitRecord waits for the one record q finds.
func waitRecord(t *testing.T, l msglog.Store, q msglog.Query) msglog.Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs, err := l.Search(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 1 {
			return recs[0]
		}
		if len(recs) > 1 || time.Now().After(deadline) {
			t.Fatalf("query %+v found %d records, want 1: %+v", q, len(recs), recs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// messageLine is the "message" log line of sender's transaction.
func messageLine(t *testing.T, logs, sender string) map[string]any {
	t.Helper()
	for l := range strings.Lines(logs) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, l)
		}
		if m["msg"] == "message" && m["from"] == sender {
			return m
		}
	}
	t.Fatalf("no message line from %s in\n%s", sender, logs)
	return nil
}
