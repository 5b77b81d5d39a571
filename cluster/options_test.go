package cluster

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// New rejects bad options before touching anything. Rows that get past the
// early checks use "lo" of the current namespace (read-only: New changes
// nothing on the interface).
func TestNewValidation(t *testing.T) {
	ok := Options{Interface: "lo", VRID: 51, VIP: netip.MustParsePrefix("127.0.0.200/8"), Priority: 100,
		Interval: time.Second, Source: netip.MustParseAddr("127.0.0.1")}
	tests := []struct {
		name string
		mod  func(*Options)
		want string // substring of the error; "" = success
	}{
		{"valid", func(o *Options) {}, ""},
		{"no interface", func(o *Options) { o.Interface = "" }, "interface is required"},
		{"no VIP", func(o *Options) { o.VIP = netip.Prefix{} }, "IPv4 prefix"},
		{"IPv6 VIP", func(o *Options) { o.VIP = netip.MustParsePrefix("2001:db8::1/64") }, "IPv4 prefix"},
		{"IPv6 source", func(o *Options) { o.Source = netip.MustParseAddr("2001:db8::2") }, "not IPv4"},
		{"source is VIP", func(o *Options) { o.Source = o.VIP.Addr() }, "must not be the VIP"},
		{"IPv6 peer", func(o *Options) { o.UnicastPeers = []netip.Addr{netip.MustParseAddr("::1")} }, "not IPv4"},
		{"checksum mode", func(o *Options) { o.Checksum = 9 }, "checksum mode"},
		{"negative garp", func(o *Options) { o.GARPRepeat = -1 }, "negative"},
		{"unknown interface", func(o *Options) { o.Interface = "mxt-nonexistent" }, "mxt-nonexistent"},
		{"priority 0", func(o *Options) { o.Priority = 0 }, "cluster:"},
		{"interval too short", func(o *Options) { o.Interval = time.Millisecond }, "cluster:"},
		{"VRID 0", func(o *Options) { o.VRID = 0 }, "cluster:"},
		{"two instances", func(o *Options) {
			o.Instances = []Instance{{VRID: 51, VIP: o.VIP, Priority: 100, Interval: time.Second}, {VRID: 52, VIP: netip.MustParsePrefix("127.0.0.201/8"), Priority: 200, Interval: time.Second}}
		}, ""},
		{"VRID twice", func(o *Options) {
			o.Instances = []Instance{{VRID: 51, VIP: o.VIP, Priority: 100, Interval: time.Second}, {VRID: 51, VIP: netip.MustParsePrefix("127.0.0.201/8"), Priority: 200, Interval: time.Second}}
		}, "VRID 51 configured twice"},
		{"VIP twice", func(o *Options) {
			o.Instances = []Instance{{VRID: 51, VIP: o.VIP, Priority: 100, Interval: time.Second}, {VRID: 52, VIP: netip.MustParsePrefix("127.0.0.200/24"), Priority: 200, Interval: time.Second}}
		}, "VIP 127.0.0.200 configured twice"},
		{"too many instances", func(o *Options) {
			for i := range MaxInstances + 1 {
				o.Instances = append(o.Instances, Instance{VRID: uint8(i + 1), VIP: netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 0, 1, byte(i)}), 8), Priority: 100, Interval: time.Second})
			}
		}, "at most 16"},
		{"source is a second VIP", func(o *Options) {
			o.Instances = []Instance{{VRID: 51, VIP: o.VIP, Priority: 100, Interval: time.Second}, {VRID: 52, VIP: netip.MustParsePrefix("127.0.0.1/8"), Priority: 200, Interval: time.Second}}
		}, "must not be the VIP"},
		{"instance priority 0", func(o *Options) {
			o.Instances = []Instance{{VRID: 51, VIP: o.VIP, Priority: 0, Interval: time.Second}}
		}, "VRID 51"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.mod(&o)
			n, err := New(o)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				n.h.Close()
				if n.opt.GARPRepeat != defaultGARPRepeat || n.opt.NodeID == "" || n.opt.Logger == nil {
					t.Errorf("defaults not applied: %+v", n.opt)
				}
				if s := n.Status(); s.State != "init" || s.Source != "127.0.0.1" || s.Mode != "multicast" {
					t.Errorf("status before Run: %+v", s)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
