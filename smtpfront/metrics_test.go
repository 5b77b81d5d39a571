package smtpfront

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mxgate/mxgate/testenv"
)

// The verdict label of mxgate_smtp_messages_total stays within the
// scanner's classes: a class a peer or an engine made up is "other", a
// message never scanned is "none"; sizes count only received bodies.
func TestMessageMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg, func() float64 { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []struct {
		action, verdict string
		size            int64
	}{
		{"deliver", "clean", 2000},
		{"deliver", "clean", 3000},
		{"quarantine", "spam", 5000},
		{"reject", "made-up-by-a-peer", 100},
		{"reject", "another-one", 100},
		{"refused", "", 0},
	} {
		m.message(msg.action, msg.verdict, msg.size)
	}
	for _, tt := range []struct {
		action, verdict string
		want            float64
	}{
		{"deliver", "clean", 2},
		{"quarantine", "spam", 1},
		{"reject", "other", 2},
		{"refused", "none", 1},
	} {
		if got := testutil.ToFloat64(m.messages.WithLabelValues(tt.action, tt.verdict)); got != tt.want {
			t.Errorf("messages{action=%q,verdict=%q} = %v, want %v", tt.action, tt.verdict, got, tt.want)
		}
	}
	if n := testutil.CollectAndCount(m.messages); n != 4 {
		t.Errorf("%d series of mxgate_smtp_messages_total, want 4 (no label a peer chose)", n)
	}
	if n := testenv.MetricValue(t, reg, "mxgate_smtp_message_bytes", "", ""); n != 5 {
		t.Errorf("mxgate_smtp_message_bytes counted %v bodies, want 5", n)
	}
}
