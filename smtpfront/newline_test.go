package smtpfront

import (
	"bytes"
	"strings"
	"testing"
)

// Every string of up to 7 bytes over CR, LF, '.' and 'a', in every split
// into two writes: bare CRs become CRLF, nothing else changes.
func TestCRLFWriter(t *testing.T) {
	alphabet := []byte("\r\n.a")
	var walk func(prefix []byte)
	walk = func(prefix []byte) {
		want := bareCRToCRLF(prefix)
		for split := 0; split <= len(prefix); split++ {
			var out bytes.Buffer
			w := &crlfWriter{w: &out}
			for _, part := range [][]byte{prefix[:split], prefix[split:]} {
				if n, err := w.Write(part); n != len(part) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", part, n, err)
				}
			}
			w.finish()
			if out.String() != want {
				t.Fatalf("%q split at %d: got %q, want %q", prefix, split, out.String(), want)
			}
		}
		if len(prefix) == 7 {
			return
		}
		for _, c := range alphabet {
			walk(append(prefix[:len(prefix):len(prefix)], c))
		}
	}
	walk(nil)
}

func bareCRToCRLF(p []byte) string {
	var b strings.Builder
	for i, c := range p {
		b.WriteByte(c)
		if c == '\r' && (i+1 == len(p) || p[i+1] != '\n') {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func TestRefusedListIsBounded(t *testing.T) {
	var l refusedList
	if !l.empty() || l.String() != "" {
		t.Fatal("a new list is not empty")
	}
	for i := range 1000 {
		l.add(strings.Repeat("r", 200+i))
	}
	s := l.String()
	if len(s) > refusedMaxBytes+200 || !strings.HasSuffix(s, "more") {
		t.Errorf("1000 entries kept as %d bytes ending %q", len(s), s[max(0, len(s)-20):])
	}
	l = refusedList{}
	l.add("<a@example.org> 554 " + strings.Repeat("é", 600))
	if s := l.String(); len(s) > refusedMaxEntry+len("…") || !strings.HasSuffix(s, "é…") {
		t.Errorf("long entry kept as %d bytes: %q", len(s), s[len(s)-10:])
	}
}
