package config

import (
	"strings"
	"testing"
)

func TestPeerConnectionLimits(t *testing.T) {
	const base = "cluster: {enabled: true, vip: 10.0.0.1/24, secret: 0123456789abcdef, "
	tests := []struct {
		name string
		keys string
		want string // "" = accepted
	}{
		{"derived", "peer_max_connections: 0, peer_max_connections_per_ip: 0", ""},
		{"both set", "peer_max_connections: 512, peer_max_connections_per_ip: 128", ""},
		{"per IP only", "peer_max_connections_per_ip: 70000", "cluster.peer_max_connections_per_ip: must be 0 (derived) or 1 to 65536, got 70000"},
		{"total only", "peer_max_connections: 65536", ""},
		{"negative total", "peer_max_connections: -1", "cluster.peer_max_connections: must be 0 (derived) or 1 to 65536, got -1"},
		{"total over the bound", "peer_max_connections: 65537", "cluster.peer_max_connections: must be 0 (derived) or 1 to 65536, got 65537"},
		{"negative per IP", "peer_max_connections_per_ip: -5", "cluster.peer_max_connections_per_ip: must be 0 (derived) or 1 to 65536, got -5"},
		{"per IP above total", "peer_max_connections: 10, peer_max_connections_per_ip: 11", "cluster.peer_max_connections_per_ip: 11 is more than cluster.peer_max_connections (10)"},
	}
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
