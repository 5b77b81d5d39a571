package config

import (
	"strings"
	"testing"
	"time"
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

func TestClusterInstances(t *testing.T) {
	const base = "cluster:\n  enabled: true\n  secret: 0123456789abcdef\n"
	tests := []struct {
		name string
		keys string
		want string // "" = accepted
	}{
		{"single keys alone", "  vip: 198.18.0.100/24\n", ""},
		{"mirrored pair", "  instances:\n    - {vrid: 51, vip: 198.18.0.100/24, priority: 200}\n    - {vrid: 52, vip: 198.18.0.101/24, priority: 100}\n", ""},
		{"every item key", "  instances:\n    - {vrid: 51, vip: 198.18.0.100/24, priority: 200, advert_interval: 100ms, preempt: false, preempt_delay: 2s, start_state: backup}\n", ""},
		{"vip next to instances", "  vip: 198.18.0.100/24\n  instances:\n    - {vrid: 52, vip: 198.18.0.101/24}\n",
			"cluster.vip: must be empty with cluster.instances: give each VIP in its item (line 4)"},
		{"VRID twice", "  instances:\n    - {vrid: 51, vip: 198.18.0.100/24}\n    - {vrid: 51, vip: 198.18.0.101/24}\n",
			"cluster.instances[1].vrid: 51 is also cluster.instances[0]'s (line 6)"},
		{"VIP twice", "  instances:\n    - {vrid: 51, vip: 198.18.0.100/24}\n    - {vrid: 52, vip: 198.18.0.100/25}\n",
			"cluster.instances[1].vip: 198.18.0.100 is also cluster.instances[0]'s (line 6)"},
		{"VRID missing", "  instances:\n    - {vip: 198.18.0.100/24}\n", "cluster.instances[0].vrid: must be 1-255, got 0"},
		{"VIP missing", "  instances:\n    - {vrid: 51}\n", "cluster.instances[0].vip: required"},
		{"IPv6 pair", "  peer_listen: \"[fd00:198:18::11]:8026\"\n  source: \"fe80::1\"\n  instances:\n    - {vrid: 51, vip: \"fd00:198:18::100/64\"}\n    - {vrid: 52, vip: \"fd00:198:18::101/64\"}\n", ""},
		{"IPv6 VIP needs its own peer_listen", "  instances:\n    - {vrid: 51, vip: \"2001:db8::1/64\"}\n", "cluster.peer_listen: \"0.0.0.0:8026\": with an IPv6 VIP"},
		{"mixed families", "  peer_listen: \"198.18.0.11:8026\"\n  instances:\n    - {vrid: 51, vip: \"2001:db8::1/64\"}\n    - {vrid: 52, vip: 198.18.0.101/24}\n", "cluster.instances[1].vip: 198.18.0.101 is not of cluster.instances[0]'s family"},
		{"bad VIP", "  instances:\n    - {vrid: 51, vip: mail}\n", "cluster.instances[0].vip: \"mail\" is not address/prefix"},
		{"priority 256", "  instances:\n    - {vrid: 51, vip: 198.18.0.100/24, priority: 256}\n", "cluster.instances[0].priority: must be 1-254"},
		{"interval off the centisecond", "  instances:\n    - {vrid: 51, vip: 198.18.0.100/24, advert_interval: 15ms}\n", "cluster.instances[0].advert_interval: must be a whole number of centiseconds"},
		{"preempt delay too long", "  instances:\n    - {vrid: 51, vip: 198.18.0.100/24, preempt_delay: 2h}\n", "cluster.instances[0].preempt_delay: must be 0 to 1h"},
		{"start state", "  instances:\n    - {vrid: 51, vip: 198.18.0.100/24, start_state: primary}\n", "cluster.instances[0].start_state: \"primary\" is not one of master, backup"},
		{"unknown item key", "  instances:\n    - {vrid: 51, vip: 198.18.0.100/24, weight: 3}\n", "weight"},
		{"more than 16", "  instances:\n" + strings.Repeat("    - {vrid: 1, vip: 198.18.0.100/24}\n", 17), "cluster.instances: at most 16 virtual routers, got 17"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(base + tt.keys))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Parse: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Parse: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// The items take the cluster's keys for what they leave out; the single
// keys alone are one virtual router.
func TestVirtualRouters(t *testing.T) {
	c, err := Parse([]byte(`cluster:
  enabled: true
  secret: 0123456789abcdef
  priority: 150
  advert_interval: 200ms
  preempt: false
  preempt_delay: 3s
  instances:
    - {vrid: 51, vip: 198.18.0.100/24, priority: 200, preempt: true}
    - {vrid: 52, vip: 198.18.0.101/24, advert_interval: 1s, preempt_delay: 0s}
`))
	if err != nil {
		t.Fatal(err)
	}
	vr := c.Cluster.VirtualRouters()
	if len(vr) != 2 {
		t.Fatalf("%d virtual routers, want 2", len(vr))
	}
	a, b := vr[0], vr[1]
	if a.VRID != 51 || a.VIP != "198.18.0.100/24" || a.Priority != 200 || a.AdvertInterval.Duration != 200*time.Millisecond || !*a.Preempt || a.PreemptDelay.Duration != 3*time.Second {
		t.Errorf("first: %+v preempt %v delay %s", a, *a.Preempt, a.PreemptDelay.Duration)
	}
	if b.VRID != 52 || b.Priority != 150 || b.AdvertInterval.Duration != time.Second || *b.Preempt || b.PreemptDelay.Duration != 0 {
		t.Errorf("second: %+v preempt %v delay %s", b, *b.Preempt, b.PreemptDelay.Duration)
	}
	if c.Cluster.Instances[1].Preempt != nil {
		t.Error("VirtualRouters changed the configuration it read")
	}

	one := Default().Cluster
	one.VIP = "198.18.0.100/24"
	vr = one.VirtualRouters()
	if len(vr) != 1 || vr[0].VRID != 51 || vr[0].VIP != one.VIP || vr[0].Priority != 100 || !*vr[0].Preempt {
		t.Errorf("single keys: %+v", vr)
	}
}

// start_state is keepalived's state; like keepalived, nopreempt and
// preempt_delay go only with a node that starts as backup.
func TestStartState(t *testing.T) {
	const base = "cluster: {enabled: true, vip: 10.0.0.1/24, secret: 0123456789abcdef"
	tests := []struct {
		name string
		keys string
		want string // "" = accepted
	}{
		{"default backup", "", ""},
		{"master", ", start_state: master", ""},
		{"backup without preempt (nopreempt)", ", start_state: backup, preempt: false", ""},
		{"backup with a delay", ", start_state: backup, preempt_delay: 30s", ""},
		{"owner as backup", ", start_state: backup, priority: 255", ""},
		{"unknown", ", start_state: MASTER", `cluster.start_state: "MASTER" is not one of master, backup`},
		{"empty", `, start_state: ""`, `cluster.start_state: "" is not one of master, backup`},
		{"master without preempt", ", start_state: master, preempt: false", "cluster.preempt: false (never take the VIP from a live master, keepalived's nopreempt) contradicts start_state master"},
		{"master with a delay", ", start_state: master, preempt_delay: 5s", "cluster.preempt_delay: applies only to start_state backup"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(base + tt.keys + "}\n"))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Parse: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Parse: %v, want an error with %q", err, tt.want)
			case tt.want == "" && tt.keys == "" && c.Cluster.StartState != StartStateBackup:
				t.Errorf("default start_state %q, want backup (what nodes did before the key)", c.Cluster.StartState)
			}
		})
	}
}

// An item's start_state goes with its own preempt keys or the cluster's.
func TestInstanceStartState(t *testing.T) {
	const base = "cluster:\n  enabled: true\n  secret: 0123456789abcdef\n"
	tests := []struct {
		name string
		keys string
		want string // "" = accepted
	}{
		{"item master", "  instances:\n    - {vrid: 51, vip: 198.18.0.100/24, start_state: master}\n", ""},
		{"item master, cluster nopreempt", "  preempt: false\n  instances:\n    - {vrid: 51, vip: 198.18.0.100/24, start_state: master}\n",
			"cluster.instances[0].preempt: false (never take the VIP from a live master"},
		{"item master overriding nopreempt", "  preempt: false\n  instances:\n    - {vrid: 51, vip: 198.18.0.100/24, start_state: master, preempt: true}\n", ""},
		{"cluster master, item nopreempt", "  start_state: master\n  instances:\n    - {vrid: 51, vip: 198.18.0.100/24, preempt: false}\n",
			"cluster.instances[0].preempt: false (never take the VIP from a live master"},
		{"cluster master, item backup with nopreempt", "  start_state: master\n  instances:\n    - {vrid: 51, vip: 198.18.0.100/24, start_state: backup, preempt: false}\n", ""},
		{"item master with a delay", "  instances:\n    - {vrid: 51, vip: 198.18.0.100/24, start_state: master, preempt_delay: 1s}\n",
			"cluster.instances[0].preempt_delay: applies only to start_state backup"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(base + tt.keys))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Parse: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Parse: %v, want an error with %q", err, tt.want)
			case tt.want == "":
				// The item's start state, or the cluster's when it gives none.
				want := c.Cluster.StartState
				if s := c.Cluster.Instances[0].StartState; s != "" {
					want = s
				}
				if got := c.Cluster.VirtualRouters()[0].StartState; got != want {
					t.Errorf("virtual router's start_state %q, want %q", got, want)
				}
			}
		})
	}
}
