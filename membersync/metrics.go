package membersync

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// States of a member in mxgate_cluster_members: every member of the view
// is in exactly one, so the states sum to the cluster's size.
const (
	stateDispatching = "dispatching" // gets scans
	stateDraining    = "draining"    // weight 0
	stateUnhealthy   = "unhealthy"   // says it cannot scan
	stateStandby     = "standby"     // could scan, not used (active-passive, no peer address)
)

var states = []string{stateDispatching, stateDraining, stateUnhealthy, stateStandby}

// The node's mxgate_degraded gauge covers a membership store that cannot
// be read (Runner.Degraded), with the configuration store's.
type metrics struct {
	members     *prometheus.GaugeVec
	storeErrors prometheus.Counter
}

// newMetrics builds the collectors and registers them with reg when it is
// not nil.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mxgate_cluster_members", Help: "Cluster members in this node's last view, by state (dispatching, draining, unhealthy, standby).",
		}, []string{"state"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxgate_membership_store_errors_total", Help: "Membership heartbeats or reads that failed.",
		}),
	}
	for _, s := range states {
		m.members.WithLabelValues(s)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.members, m.storeErrors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register membership metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) set(counts map[string]int) {
	for _, s := range states {
		m.members.WithLabelValues(s).Set(float64(counts[s]))
	}
}
