package smtpfront

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgate/mxgate/scanner"
)

type metrics struct {
	messages     *prometheus.CounterVec
	messageBytes prometheus.Histogram
	// verdicts are the verdict label's values: the scanner's classes.
	verdicts         map[string]bool
	rcptRefused      *prometheus.CounterVec
	connRefused      *prometheus.CounterVec
	sessionsClosed   *prometheus.CounterVec
	downstreamErrors prometheus.Counter
	scanSeconds      prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, open func() float64) (*metrics, error) {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgate_smtp_messages_total",
			Help: "Messages by final action (deliver, quarantine, reject, tempfail, refused) and verdict class (clean, spam, virus, banned, unscannable, engine_failed, policy; none = not scanned, other = a class this node does not know).",
		}, []string{"action", "verdict"}),
		messageBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mxgate_smtp_message_bytes", Help: "Size of each message body received (DATA or BDAT complete), whatever became of it.",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 10), // 1 KiB to 256 MiB
		}),
		verdicts: map[string]bool{},
		rcptRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgate_smtp_rcpt_refused_total", Help: "Recipients refused at RCPT, by reason.",
		}, []string{"reason"}),
		connRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgate_smtp_connections_refused_total", Help: "Connections refused before the greeting, by reason.",
		}, []string{"reason"}),
		sessionsClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgate_smtp_sessions_closed_total", Help: "Sessions the server closed, by reason (error_limit, timeout).",
		}, []string{"reason"}),
		downstreamErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxgate_downstream_errors_total", Help: "Connection-level failures talking to the downstream server.",
		}),
		scanSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mxgate_scan_duration_seconds", Help: "Time from end of DATA to verdict.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
	}
	for _, c := range scanner.Classes() {
		m.verdicts[c] = true
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.messages, m.messageBytes, m.rcptRefused, m.connRefused, m.sessionsClosed, m.downstreamErrors, m.scanSeconds,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mxgate_smtp_connections_open", Help: "Open SMTP connections."}, open),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register smtp metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) refused(reason string) { m.connRefused.WithLabelValues(reason).Inc() }

// message counts a message's outcome; the verdict label stays within the
// scanner's classes, whatever a peer or an engine called it.
func (m *metrics) message(action, verdict string, size int64) {
	switch {
	case verdict == "":
		verdict = "none"
	case !m.verdicts[verdict]:
		verdict = "other"
	}
	m.messages.WithLabelValues(action, verdict).Inc()
	if size > 0 {
		m.messageBytes.Observe(float64(size))
	}
}
