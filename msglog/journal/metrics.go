package journal

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Why a record was not kept (the reason label of mxgate_msglog_dropped_total).
const (
	// ReasonFull: the journal held its maximum while the store did not
	// take records.
	ReasonFull = "journal_full"
	// ReasonSlow: the disk took so long to sync that the records waiting
	// for it reached their memory bound.
	ReasonSlow = "journal_slow"
	// ReasonIOError: writing or syncing the journal failed.
	ReasonIOError = "io_error"
	// ReasonStopped: the record came after the journal was closed.
	ReasonStopped = "stopped"
	// ReasonInvalid: the record cannot be stored (no id, a time outside
	// 1970..2262), or a journal entry decoded to such a record.
	ReasonInvalid = "invalid"
	// ReasonTooLarge: even shortened, the record did not fit one entry.
	ReasonTooLarge = "too_large"
	// ReasonCorrupt: a damaged or torn region of a journal file was
	// skipped; counted once per region (the records in it are unknown).
	ReasonCorrupt = "corrupt"
)

var reasons = []string{ReasonFull, ReasonSlow, ReasonIOError, ReasonStopped, ReasonInvalid, ReasonTooLarge, ReasonCorrupt}

// Metrics are the journal's Prometheus series.
type Metrics struct {
	dropped     *prometheus.CounterVec
	storeErrors prometheus.Counter
	stored      prometheus.Counter
	replayed    prometheus.Counter
	trimmed     prometheus.Counter
	bytes       prometheus.Gauge
	sync        prometheus.Histogram
}

// NewMetrics creates the series and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgate_msglog_dropped_total",
			Help: "Message log records that could not be kept, by reason (journal_full, journal_slow, io_error, stopped, invalid, too_large; corrupt counts damaged journal regions skipped).",
		}, []string{"reason"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxgate_msglog_store_errors_total",
			Help: "Failed writes of a batch of message log records to the store; the records stay in the journal and are retried.",
		}),
		stored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxgate_msglog_stored_total",
			Help: "Message log records the store confirmed.",
		}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxgate_msglog_replayed_total",
			Help: "Message log records written to the store from a journal left by an earlier run.",
		}),
		trimmed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxgate_msglog_trimmed_total",
			Help: "Message log records shortened to fit one journal entry.",
		}),
		bytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mxgate_msglog_journal_bytes",
			Help: "Size of the message log journal on disk.",
		}),
		sync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mxgate_msglog_journal_sync_seconds",
			Help:    "Time of one fdatasync of the journal: a group's write and sync before its replies, or one background sync (store.log_journal_sync).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
	for _, r := range reasons {
		m.dropped.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.dropped, m.storeErrors, m.stored, m.replayed, m.trimmed, m.bytes, m.sync} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register message log metrics: %w", err)
		}
	}
	return m, nil
}
