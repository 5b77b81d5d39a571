package spamd

import (
	"bytes"
	"errors"
	"math"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/mxgate/mxgate/engines"
)

var ruleName = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// FuzzReply: whatever spamd (or something in its place) sends, the parser
// returns a bounded, well-formed reply or an error of the protocol or the
// engine, and the mapped symbols add up to the score.
func FuzzReply(f *testing.F) {
	for _, s := range []string{
		okReply("True ; 12.3 / 5.0", sampleReport),
		okReply("False ; -0.5 / 5.0", ""),
		okReply("True ; 1000.0 / 5.0", "---- ---------------------- ---------------\n1000 GTUBE   BODY: Generic Test\n"),
		"SPAMD/1.0 76 Bad header line: x\r\n",
		"SPAMD/1.5 0 PONG\r\n",
		"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1 / 5\r\n\r\n",
		"SPAMD/1.1 0 EX_OK\r\nContent-length: 5\r\nSpam: True ; 1 / 5\r\n\r\nab",
		"",
		"\x00\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pongErr := readPong(bytes.NewReader(b))
		if pongErr != nil && !errors.Is(pongErr, engines.ErrProtocol) && !errors.Is(pongErr, engines.ErrEngine) {
			t.Fatalf("ping: error of another kind: %v", pongErr)
		}
		rep, err := readReply(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, engines.ErrProtocol) && !errors.Is(err, engines.ErrEngine) {
				t.Fatalf("error of another kind: %v", err)
			}
			return
		}
		if !finite(rep.Score) || !finite(rep.Threshold) {
			t.Fatalf("score %v / %v", rep.Score, rep.Threshold)
		}
		if len(rep.Rules) > maxRules {
			t.Fatalf("%d rules", len(rep.Rules))
		}
		for _, r := range rep.Rules {
			if !ruleName.MatchString(r.Name) || !finite(r.Score) {
				t.Fatalf("rule %+v", r)
			}
			d := r.Description
			if len(d) > maxDescription+len("…") || !utf8.ValidString(d) ||
				strings.ContainsFunc(d, func(r rune) bool { return unicode.IsControl(r) }) {
				t.Fatalf("description %q", d)
			}
		}
		res := rep.result()
		var sum, slack float64
		for _, s := range res.Symbols {
			sum += s.Score
			slack += tableRounding(s.Score)
		}
		tolerance := slack + 1e-9*max(math.Abs(rep.Score), math.Abs(sum), 1)
		if math.Abs(sum-rep.Score) > tolerance {
			t.Fatalf("symbols add up to %v, score %v", sum, rep.Score)
		}
	})
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
