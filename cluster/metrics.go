package cluster

import (
	"fmt"
	"strconv"

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

// metrics are the node's collectors. Everything of one virtual router is
// labelled by vrid; drops are the node's (a packet of a VRID we do not run
// has no instance).
type metrics struct {
	state       *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	sent        *prometheus.CounterVec
	received    *prometheus.CounterVec
	dropped     *prometheus.CounterVec
	vipHeld     *prometheus.GaugeVec
	priority    *prometheus.GaugeVec
	garpSent    *prometheus.CounterVec
	// trackFailing is 1 per tracked check while it fails: tracking is the
	// node's, so it has no vrid.
	trackFailing *prometheus.GaugeVec
}

// instMetrics are one virtual router's series.
type instMetrics struct {
	state       *prometheus.GaugeVec   // by state
	transitions *prometheus.CounterVec // by to
	sent        prometheus.Counter
	received    prometheus.Counter
	vipHeld     prometheus.Gauge
	priority    prometheus.Gauge
	garpSent    prometheus.Counter
}

// newMetrics builds the mxgate_vrrp_* collectors and registers them with reg
// when it is not nil (an unregistered set still counts, for Status).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mxgate_vrrp_state", Help: "1 for the current VRRP state (init, backup, master, fault), 0 for the others.",
		}, []string{"vrid", "state"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgate_vrrp_transitions_total", Help: "VRRP state transitions, by the state entered.",
		}, []string{"vrid", "to"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgate_vrrp_adverts_sent_total", Help: "VRRP adverts sent (one per destination in unicast mode).",
		}, []string{"vrid"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgate_vrrp_adverts_received_total", Help: "VRRP adverts received and accepted for our virtual router.",
		}, []string{"vrid"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgate_vrrp_adverts_dropped_total", Help: "VRRP packets received on our interface and discarded, by reason.",
		}, []string{"reason"}),
		vipHeld: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mxgate_vrrp_vip_held", Help: "1 while this node has the virtual IP on its interface.",
		}, []string{"vrid"}),
		priority: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mxgate_vrrp_priority", Help: "Advertised VRRP priority of this node: the configured one, lowered while tracked checks with a weight fail.",
		}, []string{"vrid"}),
		garpSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgate_vrrp_garp_sent_total", Help: "Gratuitous ARP packets sent for the virtual IP.",
		}, []string{"vrid"}),
		trackFailing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mxgate_vrrp_track_failing", Help: "1 while a tracked check (cluster.track) fails, by check.",
		}, []string{"check"}),
	}
	for _, r := range dropReasons {
		m.dropped.WithLabelValues(string(r))
	}
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

// instance returns the series of one virtual router, all present from the
// start (see dropReasons).
func (m *metrics) instance(vrid uint8) instMetrics {
	v := prometheus.Labels{"vrid": strconv.Itoa(int(vrid))}
	im := instMetrics{
		state:       m.state.MustCurryWith(v),
		transitions: m.transitions.MustCurryWith(v),
		sent:        m.sent.With(v),
		received:    m.received.With(v),
		vipHeld:     m.vipHeld.With(v),
		priority:    m.priority.With(v),
		garpSent:    m.garpSent.With(v),
	}
	for _, s := range stateNames {
		im.transitions.WithLabelValues(s.String())
	}
	im.setState(vrrp.Initialize)
	im.vipHeld.Set(0)
	return im
}

func (m instMetrics) setState(s vrrp.State) {
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
