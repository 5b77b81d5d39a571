package deliver

import (
	"bufio"
	"bytes"
	"net/textproto"
	"testing"
)

// textprotoDot is the reference: what net/textproto's DotWriter sends.
func textprotoDot(chunks [][]byte) []byte {
	var b bytes.Buffer
	w := textproto.NewWriter(bufio.NewWriter(&b))
	dw := w.DotWriter()
	for _, c := range chunks {
		dw.Write(c)
	}
	dw.Close()
	return b.Bytes()
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
		"mixed\nlines\r\nand.\rdots\n..\n",
	}
	for _, s := range cases {
		for split := 0; split <= len(s); split++ {
			chunks := [][]byte{[]byte(s[:split]), []byte(s[split:])}
			if got, want := ours(chunks), textprotoDot(chunks); !bytes.Equal(got, want) {
				t.Errorf("%q split at %d:\n got %q\nwant %q", s, split, got, want)
			}
		}
	}
}

func FuzzDotStuffer(f *testing.F) {
	for _, s := range []string{"a\r\n.\r\n", "\n.\n", "\r.\r", "..", ""} {
		f.Add([]byte(s), 1)
	}
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		if split < 0 || split > len(data) {
			split = len(data) / 2
		}
		chunks := [][]byte{data[:split], data[split:]}
		if got, want := ours(chunks), textprotoDot(chunks); !bytes.Equal(got, want) {
			t.Fatalf("got %q want %q", got, want)
		}
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
