package main

// Releases against the real binary and a real downstream: a quarantined
// message goes downstream once however many releases race for it, and a
// second copy only on purpose (issue 8, point 5).

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/testenv"
)

// quarantineGTUBE sends one GTUBE message through g and returns the id of
// the quarantined item.
func quarantineGTUBE(t *testing.T, g *gateway) string {
	t.Helper()
	return quarantineGTUBETo(t, g, "carol@example.org")
}

// quarantineGTUBETo is quarantineGTUBE to rcpts (swaks' --to: comma
// separated).
func quarantineGTUBETo(t *testing.T, g *gateway, rcpts string) string {
	t.Helper()
	out, code := swaks(t, g.SMTP, "--from", "spammer@sender.test", "--to", rcpts,
		"--header", "Subject: cheap stuff", "--body", "Buy now\n"+gtube+"\n")
	if code != 0 || !strings.Contains(out, "<-  250 ") {
		t.Fatalf("GTUBE message not accepted (exit %d):\n%s", code, out)
	}
	items := g.quarantine(t)
	if len(items) != 1 {
		t.Fatalf("quarantine has %d items, want 1: %v", len(items), items)
	}
	return items[0]["id"].(string)
}

// stampRE finds the time a refusal names.
var stampRE = regexp.MustCompile(` at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)

type releaseAnswer struct {
	operator string
	code     int
	body     string
}

func TestConcurrentReleasesDeliverOnce(t *testing.T) {
	sink := testenv.StartSink(t)
	g := startGateway(t, sink.Addr, nil)
	id := quarantineGTUBE(t, g)

	// Five operators release it at the same moment.
	const n = 5
	answers := make(chan releaseAnswer, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		op := fmt.Sprintf("op%d@desk%d", i, i)
		wg.Go(func() {
			req, err := http.NewRequest("POST", "http://"+g.Admin+"/api/v1/quarantine/"+id+"/release", nil)
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set(admin.OperatorHeader, op)
			<-start
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("release by %s: %v", op, err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			answers <- releaseAnswer{op, resp.StatusCode, string(b)}
		})
	}
	close(start)
	wg.Wait()
	close(answers)
	var winner string
	var conflicts []releaseAnswer
	for a := range answers {
		switch a.code {
		case http.StatusOK:
			if winner != "" {
				t.Errorf("a second release succeeded: %s and %s", winner, a.operator)
			}
			winner = a.operator
		case http.StatusConflict:
			conflicts = append(conflicts, a)
		default:
			t.Errorf("release by %s: %d %s", a.operator, a.code, a.body)
		}
	}
	if winner == "" || len(conflicts) != n-1 {
		t.Fatalf("one release must win and %d get 409; winner %q, %d conflicts", n-1, winner, len(conflicts))
	}
	// Every refusal names the first: its operator, and when.
	for _, c := range conflicts {
		var eb struct{ Error string }
		if err := json.Unmarshal([]byte(c.body), &eb); err != nil {
			t.Fatalf("409 for %s is not a JSON error: %s", c.operator, c.body)
		}
		if !strings.Contains(eb.Error, "release of "+id+" refused") || !strings.Contains(eb.Error, winner+", admin API from 127.0.0.1:") ||
			!stampRE.MatchString(eb.Error) || !strings.Contains(eb.Error, "--force") {
			t.Errorf("409 for %s does not name the first release by %s: %s", c.operator, winner, eb.Error)
		}
	}
	// Every answer is in, and the winner's came after the downstream's
	// 250: what is at the sink now is all there will be.
	if msgs := sink.WaitMessages(t, 1, 10*time.Second); len(msgs) != 1 {
		t.Fatalf("%d copies downstream after %d concurrent releases, want 1", len(msgs), n)
	}

	// Without --force the CLI refuses, in one line naming the first.
	out, err := g.cli(t, "quarantine", "release", id)
	if err == nil || !strings.Contains(out, "it was released already, by "+winner) || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("release without --force: err %v, output %q", err, out)
	}
	// --force: a second copy, said so, logged and recorded as forced.
	out, err = g.cli(t, "quarantine", "release", id, "--force")
	if err != nil || !strings.Contains(out, "released "+id) || !strings.Contains(out, "note: forced; a second copy (released before by "+winner) {
		t.Fatalf("release --force: %v\n%s", err, out)
	}
	if msgs := sink.WaitMessages(t, 2, 10*time.Second); len(msgs) != 2 {
		t.Errorf("%d copies downstream after --force, want 2", len(msgs))
	}
	logs := g.Proc.Text()
	if !strings.Contains(logs, `msg="quarantine release forced: a second copy" id=`+id) || !strings.Contains(logs, "forced=true") {
		t.Errorf("no log line saying the release was forced:\n%s", logs)
	}
	out, err = g.cli(t, "quarantine", "show", id)
	if err != nil || !strings.Contains(out, "Released (forced):") || !strings.Contains(out, "Released:") {
		t.Errorf("show does not record the forced release (err %v):\n%s", err, out)
	}
}

// TestReleaseOutcomeUnknownKeepsClaim: a downstream that takes the whole
// message and hangs up without answering may have delivered it, so the
// claim stays: a plain release is refused saying why, and only --force
// tries again.
func TestReleaseOutcomeUnknownKeepsClaim(t *testing.T) {
	sink := testenv.StartSink(t, "-q", ".")
	g := startGateway(t, sink.Addr, nil)
	id := quarantineGTUBE(t, g)

	out, err := g.cli(t, "quarantine", "release", id)
	if err == nil || !strings.Contains(out, "the downstream's answer to the message was lost") || !strings.Contains(out, "release stays claimed") || !strings.Contains(out, "HTTP 502") {
		t.Fatalf("release to a downstream that hangs up after the data: err %v\n%s", err, out)
	}
	out, err = g.cli(t, "quarantine", "release", id)
	if err == nil || !strings.Contains(out, "claimed it for release at") || !strings.Contains(out, "has not finished") || !strings.Contains(out, "HTTP 409") {
		t.Errorf("release after the unknown outcome: err %v\n%s", err, out)
	}
	out, err = g.cli(t, "quarantine", "show", id)
	if err != nil || !strings.Contains(out, "Release:") || !strings.Contains(out, "not finished") {
		t.Errorf("show does not tell the open claim (err %v):\n%s", err, out)
	}
	// --force goes ahead (and meets the same downstream).
	out, err = g.cli(t, "quarantine", "release", id, "--force")
	if err == nil || !strings.Contains(out, "HTTP 502") {
		t.Errorf("forced release: err %v\n%s", err, out)
	}
	if logs := g.Proc.Text(); !strings.Contains(logs, `msg="quarantine release forced: a second copy" id=`+id) {
		t.Errorf("no log line saying the release was forced:\n%s", logs)
	}
}
