package scanner

import "testing"

// The front end's symbols count toward the thresholds like a check's.
func TestFrontSymbols(t *testing.T) {
	for _, tt := range []struct {
		score  float64
		action Action
	}{{3, ActionDeliver}, {7, ActionQuarantine}, {20, ActionReject}} {
		m := newMsg(textMsg("hello"))
		m.Symbols = []Symbol{{Name: "DNSBL_BL_TEST", Score: tt.score, Detail: "client listed"}}
		v := scanWith(t, DefaultOptions(), m)
		if !hasSymbol(v, "DNSBL_BL_TEST") || v.Score != tt.score || v.Action != tt.action {
			t.Errorf("score %g: %s", tt.score, describe(v))
		}
	}
}
