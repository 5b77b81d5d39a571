package scanner

import (
	"io"
	"strings"
	"testing"
)

func TestStripOwnHeaders(t *testing.T) {
	long := strings.Repeat("x", 70<<10)
	cases := []struct{ in, want string }{
		{"Subject: a\r\n\r\nbody\r\n", "Subject: a\r\n\r\nbody\r\n"},
		{"X-Mxgate-Verdict: deliver (clean)\r\nSubject: a\r\n\r\nX-Mxgate-Verdict: in the body stays\r\n",
			"Subject: a\r\n\r\nX-Mxgate-Verdict: in the body stays\r\n"},
		{"Subject: a\r\nx-mxgate-symbols: A(1),\r\n\tB(2)\r\nFrom: b\r\n\r\nbody", "Subject: a\r\nFrom: b\r\n\r\nbody"},
		{"Subject: folded\r\n more\r\nX-MXGATE-SCORE: 0\n\nbare lf", "Subject: folded\r\n more\r\n\nbare lf"},
		{"X-Mxgate-Node: n\r\n", ""},
		{"X-Mxgate-Nodes-Are-Ours: x\r\nX-Mxgatekeeper: kept\r\n\r\n", "X-Mxgatekeeper: kept\r\n\r\n"},
		{"X-Long: " + long + "\r\nX-Mxgate-Score: 0\r\n\r\n", "X-Long: " + long + "\r\n\r\n"},
		{"X-Mxgate-Pad: " + long + "\r\n\tcont\r\nSubject: s\r\n\r\n", "Subject: s\r\n\r\n"},
		{"", ""},
	}
	for _, c := range cases {
		b, err := io.ReadAll(StripOwnHeaders(strings.NewReader(c.in)))
		if err != nil || string(b) != c.want {
			t.Errorf("StripOwnHeaders(%.60q) = %.60q, %v; want %.60q", c.in, b, err, c.want)
		}
	}
}
