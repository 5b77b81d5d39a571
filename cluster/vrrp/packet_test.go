package vrrp

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	vecSrc = netip.MustParseAddr("192.0.2.1")
	vecVIP = netip.MustParseAddr("192.0.2.10")
	vecAdv = Advert{VRID: 51, Priority: 200, Interval: time.Second, Addrs: []netip.Addr{vecVIP}}

	v6Src   = netip.MustParseAddr("fe80::1")
	v6Group = netip.MustParseAddr("ff02::12")
)

// rfc1071 is a deliberately naive second implementation (byte slice concatenation, one
// fold at the end) so the codec's checksum is not only checked against itself.
func rfc1071(parts ...[]byte) uint16 {
	b := bytes.Join(parts, nil)
	if len(b)%2 == 1 {
		b = append(b, 0)
	}
	var s uint32
	for i := 0; i < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// pseudoHeader is the byte layout from research/vrrp.md §1.4: IPv4 src,dst,0,112,len(16);
// IPv6 RFC 8200 §8.1 src,dst,len(32),0,0,0,112.
func pseudoHeader(src, dst netip.Addr, n int) []byte {
	p := append(src.AsSlice(), dst.AsSlice()...)
	if src.Is4() {
		return append(p, 0, Protocol, byte(n>>8), byte(n))
	}
	return append(p, byte(n>>24), byte(n>>16), byte(n>>8), byte(n), 0, 0, 0, Protocol)
}

// reseal recomputes the checksum of a hand-edited packet.
func reseal(b []byte, src, dst netip.Addr, pseudo bool) []byte {
	b = bytes.Clone(b)
	b[6], b[7] = 0, 0
	var ph []byte
	if pseudo {
		ph = pseudoHeader(src, dst, len(b))
	}
	binary.BigEndian.PutUint16(b[6:], rfc1071(ph, b))
	return b
}

func TestMarshalTestVectors(t *testing.T) {
	// research/vrrp.md §1.3: src 192.0.2.1 → 224.0.0.18, VRID 51, prio 200, 100 cs, VIP 192.0.2.10.
	for _, tc := range []struct {
		name string
		mode ChecksumMode
		want []byte
	}{
		{"pseudo-header (keepalived default)", ChecksumPseudoHeader, []byte{0x31, 0x33, 0xc8, 0x01, 0x00, 0x64, 0xa1, 0xcb, 0xc0, 0x00, 0x02, 0x0a}},
		{"message-only (RFC 9568)", ChecksumMessageOnly, []byte{0x31, 0x33, 0xc8, 0x01, 0x00, 0x64, 0x44, 0x5c, 0xc0, 0x00, 0x02, 0x0a}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := vecAdv.Marshal(vecSrc, Group, tc.mode)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("Marshal = % x, want % x", got, tc.want)
			}
			a, why := Parse(got, vecSrc, Group)
			if why != "" {
				t.Fatalf("Parse dropped its own vector: %s", why)
			}
			if !reflect.DeepEqual(a, vecAdv) {
				t.Fatalf("Parse = %+v, want %+v", a, vecAdv)
			}
		})
	}
}

func TestChecksumMatchesIndependentImplementation(t *testing.T) {
	u1 := netip.MustParseAddr("198.18.0.11")
	u2 := netip.MustParseAddr("198.18.0.12")
	for _, tc := range []struct {
		name     string
		a        Advert
		src, dst netip.Addr
		mode     ChecksumMode
		pseudo   bool
	}{
		{"v4 multicast pseudo", vecAdv, vecSrc, Group, ChecksumPseudoHeader, true},
		{"v4 multicast message", vecAdv, vecSrc, Group, ChecksumMessageOnly, false},
		// Unicast: the pseudo-header carries the peer, not 224.0.0.18 (keepalived issue 642).
		{"v4 unicast pseudo", Advert{VRID: 7, Priority: 100, Interval: 40950 * time.Millisecond, Addrs: []netip.Addr{vecVIP, u2}}, u1, u2, ChecksumPseudoHeader, true},
		{"v6 pseudo", Advert{VRID: 9, Priority: 1, Interval: 10 * time.Millisecond, Addrs: []netip.Addr{v6Src, netip.MustParseAddr("2001:db8::1")}}, v6Src, v6Group, ChecksumPseudoHeader, true},
		// IPv6 keeps its pseudo-header under RFC 9568: the mode only changes IPv4.
		{"v6 message mode still pseudo", Advert{VRID: 9, Priority: 1, Interval: 20 * time.Millisecond, Addrs: []netip.Addr{v6Src}}, v6Src, v6Group, ChecksumMessageOnly, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.a.Marshal(tc.src, tc.dst, tc.mode)
			if err != nil {
				t.Fatal(err)
			}
			if want := reseal(b, tc.src, tc.dst, tc.pseudo); !bytes.Equal(b, want) {
				t.Fatalf("checksum % x, independent % x", b[6:8], want[6:8])
			}
			got, why := Parse(b, tc.src, tc.dst)
			if why != "" || !reflect.DeepEqual(got, tc.a) {
				t.Fatalf("Parse = %+v, %q; want %+v", got, why, tc.a)
			}
		})
	}
}

func TestMarshalInterval(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		cs   uint16
		fail string
	}{
		{d: 10 * time.Millisecond, cs: 1},
		{d: time.Second, cs: 100},
		{d: 40950 * time.Millisecond, cs: 4095},
		{d: 0, fail: "outside"},
		{d: -time.Second, fail: "outside"},
		{d: 9 * time.Millisecond, fail: "outside"},
		{d: 40960 * time.Millisecond, fail: "outside"},
		{d: 15 * time.Millisecond, fail: "multiple of 10ms"},
		{d: time.Second + time.Nanosecond, fail: "multiple of 10ms"},
	} {
		a := vecAdv
		a.Interval = tc.d
		b, err := a.Marshal(vecSrc, Group, ChecksumPseudoHeader)
		if tc.fail != "" {
			if err == nil || !strings.Contains(err.Error(), tc.fail) {
				t.Errorf("%v: err = %v, want %q", tc.d, err, tc.fail)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tc.d, err)
			continue
		}
		if got := binary.BigEndian.Uint16(b[4:]); got != tc.cs {
			t.Errorf("%v: wire %d cs, want %d", tc.d, got, tc.cs)
		}
	}
}

func TestMarshalErrors(t *testing.T) {
	many := make([]netip.Addr, 256)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
	}
	for _, tc := range []struct {
		name     string
		addrs    []netip.Addr
		src, dst netip.Addr
		mode     ChecksumMode
		want     string
	}{
		{"no addresses", nil, vecSrc, Group, ChecksumPseudoHeader, "0 addresses"},
		{"256 addresses", many, vecSrc, Group, ChecksumPseudoHeader, "256 addresses"},
		{"mixed families", []netip.Addr{vecVIP, v6Src}, vecSrc, Group, ChecksumPseudoHeader, "mixed"},
		{"invalid address", []netip.Addr{vecVIP, {}}, vecSrc, Group, ChecksumPseudoHeader, "invalid"},
		{"zero address", []netip.Addr{{}}, vecSrc, Group, ChecksumPseudoHeader, "invalid"},
		{"pseudo without src", []netip.Addr{vecVIP}, netip.Addr{}, Group, ChecksumPseudoHeader, "pseudo-header"},
		{"pseudo v6 src for v4 addrs", []netip.Addr{vecVIP}, v6Src, Group, ChecksumPseudoHeader, "pseudo-header"},
		{"v6 needs pseudo even in message mode", []netip.Addr{v6Src}, netip.Addr{}, netip.Addr{}, ChecksumMessageOnly, "pseudo-header"},
		{"unknown mode", []netip.Addr{vecVIP}, vecSrc, Group, ChecksumMode(7), "checksum mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := vecAdv
			a.Addrs = tc.addrs
			_, err := a.Marshal(tc.src, tc.dst, tc.mode)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	// Message-only IPv4 does not need the IP addresses at all.
	if _, err := vecAdv.Marshal(netip.Addr{}, netip.Addr{}, ChecksumMessageOnly); err != nil {
		t.Fatalf("message-only without src/dst: %v", err)
	}
}

func TestParseLenient(t *testing.T) {
	good, err := vecAdv.Marshal(vecSrc, Group, ChecksumPseudoHeader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		b        []byte
		src, dst netip.Addr
	}{
		// keepalived checksums the whole IP payload and accepts it when longer than needed.
		{"trailing bytes pseudo", reseal(append(bytes.Clone(good), 0xde, 0xad, 0xbe), vecSrc, Group, true), vecSrc, Group},
		{"trailing bytes message", reseal(append(bytes.Clone(good), 0, 0, 0, 0), vecSrc, Group, false), vecSrc, Group},
		// RFC 5798 §5.2.6: the reserved bits are ignored on receipt.
		{"reserved nibble set", reseal(func() []byte { b := bytes.Clone(good); b[4] |= 0xa0; return b }(), vecSrc, Group, true), vecSrc, Group},
		// Raw IPv4 sockets may hand over 16-byte forms of IPv4 addresses.
		{"4in6 src and dst", good, netip.AddrFrom16(vecSrc.As16()), netip.AddrFrom16(Group.As16())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, why := Parse(tc.b, tc.src, tc.dst)
			if why != "" || !reflect.DeepEqual(a, vecAdv) {
				t.Fatalf("Parse = %+v, %q; want %+v", a, why, vecAdv)
			}
		})
	}
}

// IPv6 adverts (RFC 5798 §5.1.2, §5.2.8): the RFC 8200 pseudo-header is the only
// checksum; a message-only sum, valid for IPv4 under RFC 9568, is corruption here.
func TestParseIPv6(t *testing.T) {
	src := netip.MustParseAddr("fe80::6d:6cff:fe00:2")
	adv := Advert{VRID: 51, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr("fd00:198:18::100")}}
	good, err := adv.Marshal(src, v6Group, ChecksumMessageOnly) // mode ignored for IPv6
	if err != nil {
		t.Fatal(err)
	}
	if len(good) != 8+16 {
		t.Fatalf("advert is %d bytes, want 24", len(good))
	}
	for _, tc := range []struct {
		name string
		b    []byte
		src  netip.Addr
		want DropReason
	}{
		{"pseudo-header", good, src, ""},
		{"trailing bytes", reseal(append(bytes.Clone(good), 1, 2), src, v6Group, true), src, ""},
		{"message-only checksum", reseal(good, src, v6Group, false), src, DropChecksum},
		// The source is in the pseudo-header: another sender's bytes do not verify.
		{"other source", good, netip.MustParseAddr("fe80::1"), DropChecksum},
		{"short for one IPv6 address", reseal(good[:20], src, v6Group, true), src, DropShort},
		{"IPv4 destination", good, src, DropFamily},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := v6Group
			if tc.want == DropFamily {
				dst = Group
			}
			a, why := Parse(tc.b, tc.src, dst)
			if why != tc.want {
				t.Fatalf("Parse = %+v, %q; want %q", a, why, tc.want)
			}
			if why == "" && !reflect.DeepEqual(a, adv) {
				t.Fatalf("Parse = %+v, want %+v", a, adv)
			}
		})
	}
}

func TestParseNeverAliasesInput(t *testing.T) {
	b, _ := vecAdv.Marshal(vecSrc, Group, ChecksumPseudoHeader)
	a, _ := Parse(b, vecSrc, Group)
	for i := range b {
		b[i] = 0
	}
	if a.Addrs[0] != vecVIP {
		t.Fatal("Parse result changed with the receive buffer")
	}
}

// allDropReasons must list every DropReason constant; TestAcceptDropReasons fails if one
// of them has no row, so a new reason cannot ship untested.
var allDropReasons = []DropReason{
	DropShort, DropVersion, DropType, DropChecksum, DropAddrCount, DropInterval,
	DropTTL, DropVRID, DropOwn, DropSource, DropFamily,
}

func TestAcceptDropReasons(t *testing.T) {
	peer := netip.MustParseAddr("198.18.0.12")
	self := netip.MustParseAddr("198.18.0.11")
	vip := netip.MustParseAddr("198.18.0.100")
	adv := Advert{VRID: 51, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{vip}}
	good, err := adv.Marshal(peer, Group, ChecksumPseudoHeader)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(b []byte) []byte) []byte {
		return reseal(f(bytes.Clone(good)), peer, Group, true)
	}
	multicast := Filter{VRID: 51, Own: []netip.Addr{self, vip}}
	unicast := Filter{VRID: 51, Own: []netip.Addr{self, vip}, Allowed: []netip.Addr{netip.MustParseAddr("198.18.0.13")}}

	rows := []struct {
		name string
		f    Filter
		r    Received
		want DropReason
	}{
		{"accepted pseudo-header", multicast, Received{good, peer, Group, 255}, ""},
		{"accepted message-only", multicast, Received{reseal(good, peer, Group, false), peer, Group, 255}, ""},
		{"accepted unicast allowed peer", Filter{VRID: 51, Allowed: []netip.Addr{peer}}, Received{good, peer, self, 255}.resealed(), ""},
		{"ttl 1", multicast, Received{good, peer, Group, 1}, DropTTL},
		{"ttl 254", multicast, Received{good, peer, Group, 254}, DropTTL},
		{"ttl unknown", multicast, Received{good, peer, Group, -1}, DropTTL},
		{"ttl checked before anything else", multicast, Received{nil, peer, Group, 64}, DropTTL},
		{"empty", multicast, Received{nil, peer, Group, 255}, DropShort},
		{"7 bytes", multicast, Received{good[:7], peer, Group, 255}, DropShort},
		{"count says 2 addresses, 1 present", multicast, Received{edit(func(b []byte) []byte { b[3] = 2; return b }), peer, Group, 255}, DropShort},
		{"v4 family but v6-sized count", multicast, Received{good[:11], peer, Group, 255}, DropShort},
		{"version 2", multicast, Received{edit(func(b []byte) []byte { b[0] = 0x21; return b }), peer, Group, 255}, DropVersion},
		{"version 4", multicast, Received{edit(func(b []byte) []byte { b[0] = 0x41; return b }), peer, Group, 255}, DropVersion},
		{"type 2", multicast, Received{edit(func(b []byte) []byte { b[0] = 0x32; return b }), peer, Group, 255}, DropType},
		{"flipped bit", multicast, Received{func() []byte { b := bytes.Clone(good); b[2] ^= 1; return b }(), peer, Group, 255}, DropChecksum},
		{"pseudo-header with wrong dst", multicast, Received{good, peer, netip.MustParseAddr("224.0.0.19"), 255}, DropChecksum},
		// The unicast pseudo-header must use the real destination (keepalived < 1.3.6 bug).
		{"unicast checksummed for 224.0.0.18", Filter{VRID: 51}, Received{good, peer, self, 255}, DropChecksum},
		{"count 0", multicast, Received{edit(func(b []byte) []byte { b[3] = 0; return b[:8] }), peer, Group, 255}, DropAddrCount},
		{"interval 0", multicast, Received{edit(func(b []byte) []byte { b[4], b[5] = 0xf0, 0; return b }), peer, Group, 255}, DropInterval},
		{"other vrid", multicast, Received{edit(func(b []byte) []byte { b[1] = 52; return b }), peer, Group, 255}, DropVRID},
		{"own primary looped back", multicast, Received{good, self, Group, 255}.resealed(), DropOwn},
		{"own vip as source", multicast, Received{good, vip, Group, 255}.resealed(), DropOwn},
		{"unicast stranger", unicast, Received{good, peer, self, 255}.resealed(), DropSource},
		{"src v6 dst v4", multicast, Received{good, v6Src, Group, 255}, DropFamily},
		{"no src", multicast, Received{good, netip.Addr{}, Group, 255}, DropFamily},
	}
	tested := map[DropReason]bool{}
	for _, tc := range rows {
		tested[tc.want] = true
		t.Run(tc.name, func(t *testing.T) {
			a, why := tc.f.Accept(tc.r)
			if why != tc.want {
				t.Fatalf("Accept = %q, want %q", why, tc.want)
			}
			if why == "" && !reflect.DeepEqual(a, adv) {
				t.Fatalf("Accept = %+v, want %+v", a, adv)
			}
			if why != "" && !reflect.DeepEqual(a, Advert{}) {
				t.Fatalf("dropped packet returned %+v", a)
			}
		})
	}

	for _, r := range allDropReasons {
		if !tested[r] {
			t.Errorf("drop reason %q has no test row", r)
		}
	}
}

// resealed recomputes the pseudo-header checksum for this packet's own src and dst,
// for rows that change who sent it but must still pass Parse.
func (r Received) resealed() Received {
	r.Payload = reseal(r.Payload, r.Src, r.Dst, true)
	return r
}

func TestDropReasonValuesStable(t *testing.T) {
	// These strings are Prometheus label values and JSON keys in the status API.
	want := []string{"short", "version", "type", "checksum", "addr_count", "interval", "ttl", "vrid", "own_address", "source", "family"}
	for i, r := range allDropReasons {
		if string(r) != want[i] {
			t.Errorf("%d: %q, want %q", i, r, want[i])
		}
	}
}
