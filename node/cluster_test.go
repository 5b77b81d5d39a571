package node

import (
	"slices"
	"testing"

	"github.com/mxgate/mxgate/config"
)

func TestAdvertisedPeerAddr(t *testing.T) {
	for _, tt := range []struct{ listen, source, want string }{
		{"0.0.0.0:8026", "198.18.0.11", "198.18.0.11:8026"},
		{":8026", "198.18.0.11", "198.18.0.11:8026"},
		{"[::]:8026", "198.18.0.11", "198.18.0.11:8026"},
		{"198.18.0.12:8026", "198.18.0.11", "198.18.0.12:8026"},
		{"peer.lab.test:8026", "198.18.0.11", "peer.lab.test:8026"},
		{"0.0.0.0:8026", "", "0.0.0.0:8026"},
	} {
		if got := advertisedPeerAddr(tt.listen, tt.source); got != tt.want {
			t.Errorf("advertisedPeerAddr(%q, %q) = %q, want %q", tt.listen, tt.source, got, tt.want)
		}
	}
}

// An smtp.listen address on one VIP stands for that port on every VIP;
// wildcards and other addresses are left as they are.
func TestSMTPListen(t *testing.T) {
	two := []config.Instance{{VRID: 51, VIP: "198.18.0.100/24"}, {VRID: 52, VIP: "198.18.0.101/24"}}
	for _, tt := range []struct {
		name      string
		enabled   bool
		vip       string
		instances []config.Instance
		listen    []string
		want      []string
	}{
		{"no cluster", false, "", two, []string{"198.18.0.100:25"}, []string{"198.18.0.100:25"}},
		{"one VIP", true, "198.18.0.100/24", nil, []string{"198.18.0.100:25", "198.18.0.11:25"}, []string{"198.18.0.100:25", "198.18.0.11:25"}},
		{"first VIP named", true, "", two, []string{"198.18.0.100:25", "198.18.0.11:25"}, []string{"198.18.0.100:25", "198.18.0.11:25", "198.18.0.101:25"}},
		{"second VIP named, two ports", true, "", two, []string{"198.18.0.101:25", "198.18.0.101:587"},
			[]string{"198.18.0.101:25", "198.18.0.101:587", "198.18.0.100:25", "198.18.0.100:587"}},
		{"both named", true, "", two, []string{"198.18.0.101:25", "198.18.0.100:25"}, []string{"198.18.0.101:25", "198.18.0.100:25"}},
		{"wildcard", true, "", two, []string{"0.0.0.0:25"}, []string{"0.0.0.0:25"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Cluster.Enabled, cfg.Cluster.VIP, cfg.Cluster.Instances = tt.enabled, tt.vip, tt.instances
			cfg.SMTP.Listen = tt.listen
			if got := smtpListen(cfg); !slices.Equal(got, tt.want) {
				t.Errorf("smtpListen = %q, want %q", got, tt.want)
			}
		})
	}
}
