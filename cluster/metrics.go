package cluster

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgate/mxgate/cluster/vrrp"
)

// dropReasons lists every vrrp.DropReason so the dropped counter exposes all
// of them (at 0) from the start: dashboards and alerts can then use rate()
// on a series that exists before the first bad packet arrives.
var dropReasons = []vrrp.DropReason{
	vrrp.DropShort, vrrp.DropVersion, vrrp.DropType, vrrp.DropChecksum,
	vrrp.DropAddrCount, vrrp.DropInterval, vrrp.DropTTL, vrrp.DropVRID,
	vrrp.DropOwn, vrrp.DropSource, vrrp.DropFamily,
}

var stateNames = []vrrp.State{vrrp.Initialize, vrrp.Backup, vrrp.Master, vrrp.Fault}

type metrics struct {
	state       *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	sent        prometheus.Counter
	received    prometheus.Counter
	dropped     *prometheus.CounterVec
	vipHeld     prometheus.Gauge
	priority    prometheus.Gauge
	garpSent    prometheus.Counter
	// trackFailing is 1 per tracked check while it fails.
	trackFailing *prometheus.GaugeVec
}

// newMetrics builds the mxgate_vrrp_* collectors and registers them with reg
// when it is not nil (an unregistered set still counts, for Status).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mxgate_vrrp_state", Help: "1 for the current VRRP state (init, backup, master, fault), 0 for the others.",
		}, []string{"state"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgate_vrrp_transitions_total", Help: "VRRP state transitions, by the state entered.",
		}, []string{"to"}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxgate_vrrp_adverts_sent_total", Help: "VRRP adverts sent (one per destination in unicast mode).",
		}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxgate_vrrp_adverts_received_total", Help: "VRRP adverts received and accepted for our virtual router.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgate_vrrp_adverts_dropped_total", Help: "VRRP packets received on our interface and discarded, by reason.",
		}, []string{"reason"}),
		vipHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mxgate_vrrp_vip_held", Help: "1 while this node has the virtual IP on its interface.",
		}),
		priority: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mxgate_vrrp_priority", Help: "Advertised VRRP priority of this node: the configured one, lowered while tracked checks with a weight fail.",
		}),
		garpSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mxgate_vrrp_garp_sent_total", Help: "Gratuitous ARP packets sent for the virtual IP.",
		}),
		trackFailing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mxgate_vrrp_track_failing", Help: "1 while a tracked check (cluster.track) fails, by check.",
		}, []string{"check"}),
	}
	for _, r := range dropReasons {
		m.dropped.WithLabelValues(string(r))
	}
	for _, s := range stateNames {
		m.transitions.WithLabelValues(s.String())
	}
	m.setState(vrrp.Initialize)
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.state, m.transitions, m.sent, m.received, m.dropped, m.vipHeld, m.priority, m.garpSent, m.trackFailing} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register vrrp metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) setState(s vrrp.State) {
	for _, x := range stateNames {
		v := 0.0
		if x == s {
			v = 1
		}
		m.state.WithLabelValues(x.String()).Set(v)
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
