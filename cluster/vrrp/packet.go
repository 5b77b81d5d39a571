// Package vrrp is the pure part of mxgate's VRRPv3 (RFC 5798, as updated by RFC 9568)
// implementation: the advertisement codec, the receive-side validation, and the state
// machine. It does no I/O and reads no clock so that every protocol decision can be
// table-tested with made-up times; the Linux runtime lives in package cluster.
package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Protocol is the IP protocol number of VRRP (RFC 5798 §5.1.1.3).
const Protocol = 112

// Group is the IPv4 multicast destination of adverts (RFC 5798 §5.1.1.2).
var Group = netip.MustParseAddr("224.0.0.18")

// Group6 is the IPv6 multicast destination of adverts (RFC 5798 §5.1.2.2).
var Group6 = netip.MustParseAddr("ff02::12")

// ChecksumMode selects what is sent; Parse accepts both forms always.
//
// Two camps exist for IPv4 because RFC 5798 §5.2.8 points at an IPv6 pseudo-header
// definition: keepalived (the implementation we must interoperate with by default)
// includes an IPv4 pseudo-header, RFC 9568 and the router vendors do not. IPv6 always
// uses the RFC 8200 §8.1 pseudo-header, whatever the mode.
type ChecksumMode int

const (
	ChecksumPseudoHeader ChecksumMode = iota // RFC 5798 reading, keepalived default (IPv4 src,dst,0,112,len)
	ChecksumMessageOnly                      // RFC 9568
)

// Advert is one decoded VRRPv3 advertisement.
type Advert struct {
	VRID     uint8
	Priority uint8
	Interval time.Duration // Max Adver Int; wire unit centiseconds (1..4095)
	Addrs    []netip.Addr  // IPv4 (or IPv6) addresses carried
}

const (
	versionV3    = 3
	typeAdvert   = 1
	headerLen    = 8
	centisecond  = 10 * time.Millisecond
	maxIntervalC = 0x0fff // 12-bit field (RFC 5798 §5.2.7)
)

// intervalCS converts an interval to the wire's centiseconds. A value that is not a whole
// number of centiseconds is an error rather than rounded, because silently advertising a
// different interval than configured would skew every peer's Master_Down_Interval.
func intervalCS(d time.Duration) (uint16, error) {
	if d < centisecond || d > maxIntervalC*centisecond {
		return 0, fmt.Errorf("advert interval %v outside 10ms..40.95s", d)
	}
	if d%centisecond != 0 {
		return 0, fmt.Errorf("advert interval %v is not a multiple of 10ms", d)
	}
	return uint16(d / centisecond), nil
}

// addrLen is the size of one address in the packet, by family; 4-in-6 addresses stay
// 16 bytes so that what Parse produced always marshals back to the same bytes.
func addrLen(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 16
}

// Marshal encodes a VRRPv3 advert; src/dst are the IP source and destination used for the
// pseudo-header (dst = 224.0.0.18 or the unicast peer). Errors: interval out of 10ms..40.95s
// or not representable, 0 or >255 addrs, mixed families.
//
// VRID 0 is not refused here: the codec stays symmetric with Parse, and New rejects it
// in configuration.
func (a Advert) Marshal(src, dst netip.Addr, mode ChecksumMode) ([]byte, error) {
	cs, err := intervalCS(a.Interval)
	if err != nil {
		return nil, fmt.Errorf("marshal vrrp advert: %w", err)
	}
	n := len(a.Addrs)
	if n == 0 || n > 255 {
		return nil, fmt.Errorf("marshal vrrp advert: %d addresses, want 1..255", n)
	}
	if !a.Addrs[0].IsValid() {
		return nil, errors.New("marshal vrrp advert: invalid address")
	}
	alen := addrLen(a.Addrs[0])
	for _, ip := range a.Addrs[1:] {
		if !ip.IsValid() {
			return nil, errors.New("marshal vrrp advert: invalid address")
		}
		if addrLen(ip) != alen {
			return nil, fmt.Errorf("marshal vrrp advert: mixed address families (%v, %v)", a.Addrs[0], ip)
		}
	}
	var pseudo bool
	switch mode {
	case ChecksumPseudoHeader:
		pseudo = true
	case ChecksumMessageOnly:
		// RFC 9568 changed only IPv4; IPv6 keeps its mandatory pseudo-header.
		pseudo = alen == 16
	default:
		return nil, fmt.Errorf("marshal vrrp advert: unknown checksum mode %d", mode)
	}
	src, dst = src.Unmap(), dst.Unmap()
	if pseudo && (addrLen(src) != alen || addrLen(dst) != alen || !src.IsValid() || !dst.IsValid()) {
		return nil, fmt.Errorf("marshal vrrp advert: pseudo-header src %v / dst %v do not match the address family of %v", src, dst, a.Addrs[0])
	}

	b := make([]byte, headerLen, headerLen+n*alen)
	b[0] = versionV3<<4 | typeAdvert
	b[1] = a.VRID
	b[2] = a.Priority
	b[3] = uint8(n)
	binary.BigEndian.PutUint16(b[4:], cs) // reserved nibble stays 0 (RFC 5798 §5.2.6)
	for _, ip := range a.Addrs {
		b = append(b, ip.AsSlice()...)
	}
	var acc uint64
	if pseudo {
		acc = pseudoSum(src, dst, len(b))
	}
	binary.BigEndian.PutUint16(b[6:], ^fold(sum16(b, acc)))
	return b, nil
}

// sum16 adds b as big-endian 16-bit words (RFC 1071); 64 bits cannot overflow for any
// payload an IP packet can carry, so folding waits until the end.
func sum16(b []byte, acc uint64) uint64 {
	for len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return acc
}

func fold(acc uint64) uint16 {
	for acc>>16 != 0 {
		acc = acc&0xffff + acc>>16
	}
	return uint16(acc)
}

// pseudoSum is the sum of the pseudo-header: IPv4 src, dst, zero, protocol, length as in
// UDP (what keepalived builds), IPv6 per RFC 8200 §8.1 with a 32-bit length.
func pseudoSum(src, dst netip.Addr, n int) uint64 {
	var acc uint64
	s, d := src.AsSlice(), dst.AsSlice()
	acc = sum16(s, acc)
	acc = sum16(d, acc)
	if src.Is4() {
		return acc + Protocol + uint64(uint16(n))
	}
	return acc + uint64(uint32(n)>>16) + uint64(uint32(n)&0xffff) + Protocol
}

// checksumOK reports whether b verifies. For IPv4 either form passes (the two camps
// above); IPv6 has only one form, the RFC 8200 pseudo-header, so a message-only sum
// there is corruption, not a dialect. It sums the whole payload, as keepalived does,
// so a sender that counted trailing bytes is still verified correctly.
func checksumOK(b []byte, src, dst netip.Addr) bool {
	msg := sum16(b, 0)
	if src.Is4() && fold(msg) == 0xffff {
		return true
	}
	return fold(msg+pseudoSum(src, dst, len(b))) == 0xffff
}

// DropReason names why a received packet was discarded (metric label values, stable).
type DropReason string

const (
	DropShort     DropReason = "short"       // < 8 bytes or shorter than 8+4*count
	DropVersion   DropReason = "version"     // version != 3
	DropType      DropReason = "type"        // type != 1
	DropChecksum  DropReason = "checksum"    // neither checksum form matches
	DropAddrCount DropReason = "addr_count"  // count == 0
	DropInterval  DropReason = "interval"    // max adver int == 0
	DropTTL       DropReason = "ttl"         // TTL != 255
	DropVRID      DropReason = "vrid"        // not our VRID
	DropOwn       DropReason = "own_address" // sent from one of our own addresses
	DropSource    DropReason = "source"      // unicast mode: source not an allowed peer
	DropFamily    DropReason = "family"      // address family mismatch
)

// Parse decodes and validates one received VRRP payload (without IP header). It never
// panics. A packet longer than needed is accepted (trailing bytes ignored, as keepalived).
//
// The address family of the carried addresses is the family of the IP packet (RFC 5798
// §5.2.9), so src and dst decide it; they must agree. The checks follow RFC 5798 §7.1
// with the RFC 9568 errata checks (count and interval non-zero) after the checksum, so
// that a corrupted packet is counted as corrupted rather than as a protocol error.
func Parse(b []byte, src, dst netip.Addr) (Advert, DropReason) {
	src, dst = src.Unmap(), dst.Unmap()
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return Advert{}, DropFamily
	}
	alen := addrLen(src)
	if len(b) < headerLen {
		return Advert{}, DropShort
	}
	if b[0]>>4 != versionV3 {
		return Advert{}, DropVersion
	}
	if b[0]&0x0f != typeAdvert {
		return Advert{}, DropType
	}
	n := int(b[3])
	if len(b) < headerLen+n*alen {
		return Advert{}, DropShort
	}
	if !checksumOK(b, src, dst) {
		return Advert{}, DropChecksum
	}
	if n == 0 {
		return Advert{}, DropAddrCount
	}
	cs := binary.BigEndian.Uint16(b[4:]) & maxIntervalC
	if cs == 0 {
		return Advert{}, DropInterval
	}
	a := Advert{
		VRID:     b[1],
		Priority: b[2],
		Interval: time.Duration(cs) * centisecond,
		Addrs:    make([]netip.Addr, n),
	}
	p := b[headerLen:]
	for i := range a.Addrs {
		if alen == 4 {
			a.Addrs[i] = netip.AddrFrom4([4]byte(p[:4]))
		} else {
			a.Addrs[i] = netip.AddrFrom16([16]byte(p[:16]))
		}
		p = p[alen:]
	}
	return a, ""
}

// Received is one packet as the transport saw it.
type Received struct {
	Payload  []byte
	Src, Dst netip.Addr
	TTL      int
}

// Filter is the receive-side policy of one virtual router.
type Filter struct {
	VRID    uint8
	Own     []netip.Addr // our own addresses (primary + VIPs): packets from them are ours looped back
	Allowed []netip.Addr // unicast mode: accepted sources; empty = any (multicast mode)
}

// Accept applies TTL, Parse, VRID, own-address and source checks in RFC 5798 §7.1 order.
//
// TTL comes first because it is the cheap proof that the sender is on-link (GTSM-style);
// own-address and source checks come last because they are local policy, not protocol
// validity, and a metric that says "vrid" is more useful than one that says "source"
// for a neighbour's other virtual router.
func (f Filter) Accept(r Received) (Advert, DropReason) {
	if r.TTL != 255 {
		return Advert{}, DropTTL
	}
	a, why := Parse(r.Payload, r.Src, r.Dst)
	if why != "" {
		return Advert{}, why
	}
	if a.VRID != f.VRID {
		return Advert{}, DropVRID
	}
	src := r.Src.Unmap()
	if contains(f.Own, src) {
		return Advert{}, DropOwn
	}
	// Unicast peers cannot rely on TTL 255 alone: a routed attacker can forge it.
	if len(f.Allowed) > 0 && !contains(f.Allowed, src) {
		return Advert{}, DropSource
	}
	return a, ""
}

func contains(list []netip.Addr, a netip.Addr) bool {
	for _, x := range list {
		if x.Unmap() == a {
			return true
		}
	}
	return false
}
