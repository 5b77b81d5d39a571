package node

import "testing"

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
