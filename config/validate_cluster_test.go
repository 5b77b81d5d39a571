package config

import (
	"strings"
	"testing"
)

func TestPeerConnectionLimits(t *testing.T) {
	const base = "cluster: {enabled: true, vip: 10.0.0.1/24, secret: 0123456789abcdef, "
	tests := []keysCase{
		{"derived", "peer_max_connections: 0, peer_max_connections_per_ip: 0", ""},
		{"both set", "peer_max_connections: 512, peer_max_connections_per_ip: 128", ""},
		{"per IP only", "peer_max_connections_per_ip: 70000", "cluster.peer_max_connections_per_ip: must be 0 (derived) or 1 to 65536, got 70000"},
		{"total only", "peer_max_connections: 65536", ""},
		{"negative total", "peer_max_connections: -1", "cluster.peer_max_connections: must be 0 (derived) or 1 to 65536, got -1"},
		{"total over the bound", "peer_max_connections: 65537", "cluster.peer_max_connections: must be 0 (derived) or 1 to 65536, got 65537"},
		{"negative per IP", "peer_max_connections_per_ip: -5", "cluster.peer_max_connections_per_ip: must be 0 (derived) or 1 to 65536, got -5"},
		{"per IP above total", "peer_max_connections: 10, peer_max_connections_per_ip: 11", "cluster.peer_max_connections_per_ip: 11 is more than cluster.peer_max_connections (10)"},
	}
	parseCases(t, base, tests)
}

func TestClusterTrack(t *testing.T) {
	const base = "cluster: {enabled: true, vip: 10.0.0.1/24, secret: 0123456789abcdef, "
	tests := []keysCase{
		{"weight and fault items", "track: [{check: downstream, weight: -150}, {check: store, fault: true, interval: 2s, fall: 3, rise: 1}, {check: engines, weight: -254}, {check: interface, weight: -10}]", ""},
		{"unknown check", "track: [{check: disk, weight: -10}]", `cluster.track[0].check: "disk" is not one of downstream, store, engines, interface`},
		{"twice", "track: [{check: store, weight: -10}, {check: store, fault: true}]", `cluster.track[1].check: "store" is listed twice`},
		{"neither", "track: [{check: store}]", "cluster.track[0]: needs weight (-254 to -1) or fault: true"},
		{"both", "track: [{check: store, weight: -5, fault: true}]", "cluster.track[0]: weight and fault: true exclude each other"},
		{"positive weight", "track: [{check: store, weight: 5}]", "cluster.track[0].weight: must be -254 to -1"},
		{"weight too low", "track: [{check: store, weight: -255}]", "cluster.track[0].weight: must be -254 to -1"},
		{"interval too short", "track: [{check: downstream, weight: -5, interval: 10ms}]", "cluster.track[0].interval: must be 0 (default 1s) or 100ms to 1h"},
		{"fall", "track: [{check: downstream, weight: -5, fall: 101}]", "cluster.track[0].fall: must be 0 (default 2) or 1 to 100"},
		{"rise", "track: [{check: downstream, weight: -5, rise: -1}]", "cluster.track[0].rise: must be 0 (default 2) or 1 to 100"},
		{"interface timing", "track: [{check: interface, fault: true, interval: 2s}]", "cluster.track[0]: interval, fall and rise do not apply to the interface"},
	}
	parseCases(t, base, tests)
}

func TestClusterTracks(t *testing.T) {
	c, err := Parse([]byte("cluster: {enabled: true, vip: 10.0.0.1/24, secret: 0123456789abcdef, track: [{check: downstream, weight: -150}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Cluster.Tracks()
	if len(got) != 2 || got[0].Check != TrackDownstream || got[1] != (Track{Check: TrackInterface, Fault: true}) {
		t.Errorf("implicit interface: %+v", got)
	}
	if iv, fall, rise := got[0].Timing(); iv != DefaultTrackInterval || fall != DefaultTrackFall || rise != DefaultTrackRise {
		t.Errorf("defaults %v %d %d", iv, fall, rise)
	}
	// A listed interface replaces the implicit one; track_interface: false drops it.
	c.Cluster.Track = append(c.Cluster.Track, Track{Check: TrackInterface, Weight: -50})
	if got := c.Cluster.Tracks(); len(got) != 2 || got[1].Weight != -50 {
		t.Errorf("listed interface: %+v", got)
	}
	c.Cluster.Track, c.Cluster.TrackInterface = nil, false
	if got := c.Cluster.Tracks(); len(got) != 0 {
		t.Errorf("track_interface false: %+v", got)
	}
}

// keysCase is one set of cluster keys and the error Parse must give.
type keysCase struct {
	name string
	keys string
	want string // "" = accepted
}

// parseCases parses base + each case's keys + "}".
func parseCases(t *testing.T, base string, tests []keysCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(base + tt.keys + "}\n"))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Parse: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Parse: %v, want an error with %q", err, tt.want)
			}
		})
	}
}
