package enginebench

import (
	"bytes"
	"net/mail"
	"testing"
)

// The benchmark's messages are what it claims: exactly messageSize bytes,
// well-formed, sendable over SMTP as they are (no line to dot-stuff), and
// each different from the others.
func TestBenchMessage(t *testing.T) {
	seen := map[string]bool{}
	for _, serial := range []int64{1, 2, 59, 60, 999999, 1e11} {
		msg := benchMessage(serial)
		if len(msg) != messageSize {
			t.Errorf("message %d: %d bytes, want %d", serial, len(msg), messageSize)
		}
		if seen[string(msg)] {
			t.Errorf("message %d: the same as an earlier one", serial)
		}
		seen[string(msg)] = true
		for i, line := range bytes.Split(msg, []byte("\r\n")) {
			if bytes.HasPrefix(line, []byte(".")) || len(line) > 998 || bytes.ContainsAny(line, "\r\n") {
				t.Errorf("message %d: line %d not sendable as is: %q", serial, i+1, line)
			}
		}
		if !bytes.HasSuffix(msg, []byte("\r\n")) {
			t.Errorf("message %d: no CRLF at the end", serial)
		}
		m, err := mail.ReadMessage(bytes.NewReader(msg))
		if err != nil {
			t.Fatalf("message %d: %v", serial, err)
		}
		for _, h := range []string{"From", "To", "Subject", "Date", "Message-Id"} {
			if m.Header.Get(h) == "" {
				t.Errorf("message %d: no %s", serial, h)
			}
		}
		if _, err := m.Header.Date(); err != nil {
			t.Errorf("message %d: date: %v", serial, err)
		}
	}
}
