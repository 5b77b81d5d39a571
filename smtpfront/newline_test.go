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
	if !l.empty() || l.String() != "" || l.refusals() != nil {
		t.Fatal("a new list is not empty")
	}
	for i := range 1000 {
		l.add(strings.Repeat("r", 200+i)+"@example.org", errBlocked, nil)
	}
	s := l.String()
	if len(s) > refusedMaxBytes+200 || !strings.HasSuffix(s, "more") {
		t.Errorf("1000 entries kept as %d bytes ending %q", len(s), s[max(0, len(s)-20):])
	}
	if fs := l.refusals(); len(fs) > refusedKeep+1 || fs[len(fs)-1].Rcpt != "" || !strings.HasSuffix(fs[len(fs)-1].Reply, "more") {
		t.Errorf("refusals for the record: %d, last %+v", len(fs), fs[len(fs)-1])
	}
	l = refusedList{}
	l.add("a@example.org", reply(554, errBlocked.EnhancedCode, strings.Repeat("é", 600)), nil)
	fs := l.refusals()
	if len(fs) != 1 || fs[0].Rcpt != "a@example.org" || len(fs[0].Reply) > refusedMaxEntry || !strings.HasSuffix(fs[0].Reply, "é…") || !strings.HasPrefix(fs[0].Reply, "554 5.7.1 é") {
		t.Errorf("long entry kept as %+v", fs)
	}
}
