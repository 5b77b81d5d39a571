package deliver

import (
	"bufio"
	"bytes"
	"net/textproto"
	"testing"
)

// textprotoDot is the reference: what net/textproto's DotWriter sends
// for the body with every bare CR made a CRLF first (the DotWriter itself
// leaves a bare CR alone).
func textprotoDot(chunks [][]byte) []byte {
	var b bytes.Buffer
	w := textproto.NewWriter(bufio.NewWriter(&b))
	dw := w.DotWriter()
	dw.Write(bareCRToCRLF(bytes.Join(chunks, nil)))
	dw.Close()
	return b.Bytes()
}

func bareCRToCRLF(p []byte) []byte {
	var out []byte
	for i, c := range p {
		out = append(out, c)
		if c == '\r' && (i+1 == len(p) || p[i+1] != '\n') {
			out = append(out, '\n')
		}
	}
	return out
}

// checkWire asserts what a downstream must be able to rely on, whichever
// of CR, LF or CRLF it takes for a line end: only CRLF line ends, and no
// line that is a lone dot before the terminating one.
func checkWire(t *testing.T, in, out []byte) {
	t.Helper()
	for i, c := range out {
		if c == '\r' && (i+1 == len(out) || out[i+1] != '\n') {
			t.Fatalf("bare CR at %d of %q (input %q)", i, out, in)
		}
		if c == '\n' && (i == 0 || out[i-1] != '\r') {
			t.Fatalf("bare LF at %d of %q (input %q)", i, out, in)
		}
	}
	if !bytes.HasSuffix(out, []byte(".\r\n")) {
		t.Fatalf("%q does not end the data (input %q)", out, in)
	}
	lines := bytes.Split(out[:len(out)-len(".\r\n")], []byte("\r\n"))
	for i, l := range lines[:len(lines)-1] {
		if string(l) == "." {
			t.Fatalf("line %d is a lone dot in %q (input %q)", i, out, in)
		}
	}
}

// ours is the stuffer plus what Conn.Data sends after it.
func ours(chunks [][]byte) []byte {
	var b bytes.Buffer
	d := &dotStuffer{w: &b}
	for _, c := range chunks {
		d.Write(c)
	}
	b.Write(d.end())
	b.WriteString(".\r\n")
	return b.Bytes()
}

func TestDotStufferMatchesTextproto(t *testing.T) {
	cases := []string{
		"", "a", "a\r\n", "a\n", ".", ".\r\n", "..\r\n", "\r\n.\r\n", "\n.\n", "\r.\r", "\r\n.\n",
		"Subject: x\r\n\r\n.leading dot\r\nbody\r\n", "no end", "cr at end\r", "\r\r\n.", "x\r\r.\n.",
		"mixed\nlines\r\nand.\rdots\n..\n", "first\r.\rMAIL FROM:<x@y>\r\n", "\r\r\r", "a\r\r\n.\r\n",
	}
	for _, s := range cases {
		for split := 0; split <= len(s); split++ {
			chunks := [][]byte{[]byte(s[:split]), []byte(s[split:])}
			got := ours(chunks)
			if want := textprotoDot(chunks); !bytes.Equal(got, want) {
				t.Errorf("%q split at %d:\n got %q\nwant %q", s, split, got, want)
			}
			checkWire(t, []byte(s), got)
		}
	}
}

func FuzzDotStuffer(f *testing.F) {
	for _, s := range []string{"a\r\n.\r\n", "\n.\n", "\r.\r", "..", "", "x\r.\rMAIL FROM:<a@b>\r", "\r\r.\n"} {
		f.Add([]byte(s), 1)
	}
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		if split < 0 || split > len(data) {
			split = len(data) / 2
		}
		chunks := [][]byte{data[:split], data[split:]}
		got := ours(chunks)
		if want := textprotoDot(chunks); !bytes.Equal(got, want) {
			t.Fatalf("got %q want %q", got, want)
		}
		checkWire(t, data, got)
	})
}

func TestHoldTail(t *testing.T) {
	for _, chunks := range [][]string{
		{"abc"}, {"a", "b", "c", "d"}, {"ab", "cd"}, {"", "a", "", "bcdef"}, {"x"}, {"xy"}, {"abcdef", "g"},
	} {
		var out bytes.Buffer
		h := &holdTail{w: &out}
		all := ""
		for _, c := range chunks {
			h.Write([]byte(c))
			all += c
		}
		keep := min(2, len(all))
		if out.String() != all[:len(all)-keep] || string(h.tail[:h.n]) != all[len(all)-keep:] {
			t.Errorf("%q: passed %q, held %q", chunks, out.String(), h.tail[:h.n])
		}
	}
}
