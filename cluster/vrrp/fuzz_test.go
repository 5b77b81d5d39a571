package vrrp

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary payloads and IP addresses to Parse. Parse must never panic,
// and whatever it accepts must survive Marshal: decoding it again gives the same Advert
// in both checksum forms, and an exact-length packet with zero reserved bits is
// reproduced byte for byte by the form whose checksum it carried.
//
// reseal lets the fuzzer past the checksum: random bytes almost never carry a valid
// one, which would leave every check after it unexplored.
func FuzzParse(f *testing.F) {
	v4, _ := vecAdv.Marshal(vecSrc, Group, ChecksumPseudoHeader)
	v4m, _ := vecAdv.Marshal(vecSrc, Group, ChecksumMessageOnly)
	v6a := Advert{VRID: 1, Priority: 255, Interval: 10 * time.Millisecond, Addrs: []netip.Addr{v6Src, netip.MustParseAddr("2001:db8::1")}}
	v6, _ := v6a.Marshal(v6Src, v6Group, ChecksumPseudoHeader)
	for _, seed := range []struct {
		b        []byte
		src, dst netip.Addr
		reseal   bool
	}{
		{v4, vecSrc, Group, false},
		{v4m, vecSrc, Group, false},
		{v6, v6Src, v6Group, false},
		{append(bytes.Clone(v6), 9, 9), v6Src, v6Group, true},
		{reseal(v6, v6Src, v6Group, false), v6Src, v6Group, false}, // message-only: dropped for IPv6
		{v6[:20], v6Src, v6Group, true},
		{append(bytes.Clone(v4), 1, 2, 3), vecSrc, Group, true},
		{[]byte{0x31, 0x33, 0xc8, 0x00, 0x00, 0x00, 0, 0}, vecSrc, Group, true},
		{[]byte{0x21, 0x33, 0xc8, 0x01, 0x01, 0x01, 0, 0, 192, 0, 2, 10, 0, 0, 0, 0, 0, 0, 0, 0}, vecSrc, Group, true},
		{nil, vecSrc, Group, false},
		{v4, v6Src, Group, false},
	} {
		f.Add(seed.b, seed.src.AsSlice(), seed.dst.AsSlice(), seed.reseal)
	}

	f.Fuzz(func(t *testing.T, b, srcB, dstB []byte, fix bool) {
		src, _ := netip.AddrFromSlice(srcB)
		dst, _ := netip.AddrFromSlice(dstB)
		if fix && len(b) >= headerLen && src.Unmap().IsValid() && dst.Unmap().IsValid() && src.Unmap().Is4() == dst.Unmap().Is4() {
			b = reseal(b, src.Unmap(), dst.Unmap(), true)
		}
		in := bytes.Clone(b)
		a, why := Parse(b, src, dst)
		if !bytes.Equal(in, b) {
			t.Fatal("Parse modified its input")
		}
		if why != "" {
			if !reflect.DeepEqual(a, Advert{}) {
				t.Fatalf("dropped (%s) but returned %+v", why, a)
			}
			return
		}

		alen := 4
		if !src.Unmap().Is4() {
			alen = 16
		}
		exact := len(b) == headerLen+len(a.Addrs)*alen && b[4]>>4 == 0
		matched := false
		for _, mode := range []ChecksumMode{ChecksumPseudoHeader, ChecksumMessageOnly} {
			out, err := a.Marshal(src, dst, mode)
			if err != nil {
				t.Fatalf("accepted %+v does not marshal (mode %d): %v", a, mode, err)
			}
			back, why := Parse(out, src, dst)
			if why != "" || !reflect.DeepEqual(back, a) {
				t.Fatalf("mode %d: Parse(Marshal(a)) = %+v, %q; want %+v", mode, back, why, a)
			}
			if exact && sameModuloChecksumZero(out, b) {
				matched = true
			}
		}
		if exact && !matched {
			t.Fatalf("accepted % x re-marshals to neither checksum form", b)
		}
	})
}

// sameModuloChecksumZero compares two packets, treating the checksums 0x0000 and 0xffff
// as equal: both are one's-complement zero, and a sender may put either.
func sameModuloChecksumZero(x, y []byte) bool {
	if len(x) != len(y) || !bytes.Equal(x[:6], y[:6]) || !bytes.Equal(x[8:], y[8:]) {
		return false
	}
	cx, cy := binary.BigEndian.Uint16(x[6:]), binary.BigEndian.Uint16(y[6:])
	return cx == cy || (cx == 0 || cx == 0xffff) && (cy == 0 || cy == 0xffff)
}
