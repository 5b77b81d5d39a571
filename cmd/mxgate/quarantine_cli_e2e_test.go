package main

// The quarantine CLI against the real binary, a real gateway and a real
// downstream (issue 11, point 7): a message to two recipients released to
// one, then the other, each once; the ids in lower case and on stdin; the
// message log telling the whole story with who did what.

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mxgate/mxgate/testenv"
)

func TestQuarantineReleasePerRecipientE2E(t *testing.T) {
	sink := testenv.StartSink(t)
	g := startGateway(t, sink.Addr, nil)
	id := quarantineGTUBETo(t, g, "carol@example.org,dave@example.org")
	lower := strings.ToLower(id)
	if lower == id {
		t.Fatalf("id %q has no letters to change the case of", id)
	}

	out, err := g.cli(t, "quarantine", "list", "--rcpt", "@example.org")
	if err != nil || !strings.Contains(out, "SUBJECT") || !strings.Contains(out, "cheap stuff") || !strings.Contains(out, id) {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, err = g.cli(t, "quarantine", "release", lower, "--rcpt", "DAVE@example.org")
	if err != nil || !strings.HasPrefix(out, "released "+id+" to dave@example.org: ") {
		t.Fatalf("release to dave: %v\n%s", err, out)
	}
	msgs := sink.WaitMessages(t, 1, 10*time.Second)
	if rc := testenv.Header(msgs[0], "X-Rcpt-Args"); len(msgs) != 1 || rc != "<dave@example.org>" || strings.Count(msgs[0], "X-Rcpt-Args:") != 1 {
		t.Fatalf("downstream got %d messages, the first to %q", len(msgs), rc)
	}
	out, err = g.cli(t, "quarantine", "release", id, "--rcpt", "dave@example.org")
	if err == nil || !strings.Contains(out, "released to dave@example.org already") {
		t.Errorf("second release to dave: %v\n%s", err, out)
	}
	// The rest, by id on stdin, with an id that is not there: carol gets
	// hers, the missing one fails on its own line, the status is not 0.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mxgateBin, "quarantine", "release", "-", "--rcpt", "carol@example.org", "--admin", "http://"+g.Admin)
	cmd.Stdin = strings.NewReader(lower + "\n1A2372C4E0B5F3A9\n")
	b, err := cmd.CombinedOutput()
	out = string(b)
	if err == nil || !strings.Contains(out, "released "+id+" to carol@example.org: ") || !strings.Contains(out, `mxgate: 1A2372C4E0B5F3A9: no quarantined message with id "1A2372C4E0B5F3A9" (HTTP 404)`) ||
		!strings.Contains(out, "1 of 2 failed") {
		t.Errorf("release from stdin: %v\n%s", err, out)
	}
	msgs = sink.WaitMessages(t, 2, 10*time.Second)
	if len(msgs) != 2 || strings.Count(msgs[0]+msgs[1], "X-Rcpt-Args: <carol@example.org>") != 1 {
		t.Errorf("downstream got %d messages:\n%s", len(msgs), strings.Join(msgs, "\n---\n"))
	}
	out, err = g.cli(t, "quarantine", "list")
	if err != nil || strings.Contains(out, "of 2)") || strings.Contains(out, "  -  ") {
		t.Errorf("list after both releases: %v\n%s", err, out)
	}
	if _, err := g.cli(t, "quarantine", "delete", lower); err != nil {
		t.Fatal(err)
	}

	// The log: received and quarantined, released twice, deleted; the
	// operator's records say who.
	out, err = g.cli(t, "log", "--id", lower, "--json")
	var recs []struct {
		Action     string
		Recipients []string
		By         string
	}
	if err != nil || json.Unmarshal([]byte(out), &recs) != nil {
		t.Fatalf("log --id: %v\n%s", err, out)
	}
	var actions []string
	for _, r := range recs {
		actions = append(actions, r.Action+":"+strings.Join(r.Recipients, ","))
		if r.Action != "quarantine" && !strings.Contains(r.By, "admin API from 127.0.0.1:") {
			t.Errorf("%s record names no actor: %q", r.Action, r.By)
		}
	}
	want := "delete:carol@example.org,dave@example.org release:carol@example.org release:dave@example.org quarantine:carol@example.org,dave@example.org"
	if strings.Join(actions, " ") != want {
		t.Errorf("log of %s = %v, want %s", id, actions, want)
	}
	out, err = g.cli(t, "log", "--action", "release", "--rcpt", "@example.org")
	if err != nil || strings.Count(out, "release") != 2 {
		t.Errorf("log --action release: %v\n%s", err, out)
	}
	out, err = g.cli(t, "log", "--action", "release", "--rcpt", "@example.net")
	if err != nil || out != "no log records match\n" {
		t.Errorf("log of nothing: %v %q", err, out)
	}
}
