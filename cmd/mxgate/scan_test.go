package main

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mxgate/mxgate/admin"
	"github.com/mxgate/mxgate/scanner"
)

// scanPool is a real scanner pool with the default policy, closed when
// the test ends.
func scanPool(t *testing.T) *scanner.Pool {
	t.Helper()
	opts := scanner.DefaultOptions()
	opts.NodeID = "n1"
	p, err := scanner.NewPool(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// mxgate scan prints the verdict and every symbol of a message read from
// a file or standard input, escaping what the message put in a detail.
func TestScanCommand(t *testing.T) {
	url, _ := adminServerWith(t, func(o *admin.Options) { o.Scan = scanPool(t).Scan })
	gtube := "Subject: t\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nXJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"a\x1b[31m.exe\"\r\n\r\nMZ\r\n--b--\r\n"
	for _, tt := range []struct {
		name  string
		args  []string
		stdin string
		want  []string
	}{
		{"file", []string{"scan", writeTemp(t, gtube)}, "", []string{"Action: quarantine (banned)", "GTUBE", "BANNED_EXTENSION", "a?[31m.exe"}},
		{"stdin", []string{"scan", "-", "--from", "a@x.example", "--ip", "192.0.2.7"}, "Subject: hi\r\n\r\nhi\r\n", []string{"Action: deliver (clean)", "Score: 0.00", "Symbols: 0"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runIn(t, tt.stdin, append(tt.args, "--admin", url, "--token", cliToken)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "\x1b") {
				t.Errorf("an escape from the message reached the terminal:\n%q", out)
			}
		})
	}
	if _, _, err := run(t, "scan", "--ip", "nope", "--admin", url, "--token", cliToken, writeTemp(t, "x")); err == nil || !strings.Contains(err.Error(), "--ip: not an IP address") {
		t.Errorf("a bad --ip: %v", err)
	}
	if _, _, err := run(t, "scan", "/nonexistent/msg.eml", "--admin", url, "--token", cliToken); err == nil || !strings.Contains(err.Error(), "read message:") {
		t.Errorf("a missing file: %v", err)
	}
}

// quarantine learn-spam and release --learn-ham reach the learning engine
// with the quarantined message; a node without one says what to set.
func TestLearnCommands(t *testing.T) {
	var got []bool
	url, _ := adminServerWith(t, func(o *admin.Options) {
		o.Learn = func(_ context.Context, spam bool, raw []byte) error {
			if !bytes.Equal(raw, cliRaw) {
				return errors.New("not the quarantined message")
			}
			got = append(got, spam)
			return nil
		}
	})
	if out := mustRun(t, url, "quarantine", "learn-spam", "Q1"); out != "learned Q1 as spam\n" {
		t.Errorf("learn-spam printed %q", out)
	}
	if out := mustRun(t, url, "quarantine", "release", "Q2", "--learn-ham"); !strings.Contains(out, "released Q2: ") || !strings.Contains(out, "learned as ham\n") {
		t.Errorf("release --learn-ham printed %q", out)
	}
	if !slices.Equal(got, []bool{true, false}) {
		t.Errorf("lessons (spam?) %v, want [true false]", got)
	}
	plain, _ := adminServer(t)
	if _, _, err := run(t, "quarantine", "learn-spam", "Q1", "--admin", plain, "--token", cliToken); err == nil || !strings.Contains(err.Error(), "set scanner.rspamd_controller (HTTP 501)") {
		t.Errorf("learn-spam on a node without a learning engine: %v", err)
	}
}
