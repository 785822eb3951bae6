package vrrp

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// sameAdvert compares everything but the checksum, which legitimately
// differs after re-encoding when reserved bits were set or the sender wrote
// 0xffff where Encode writes 0x0000 (both are "zero" in ones' complement).
func sameAdvert(a, b *Advert) bool {
	return a.Version == b.Version && a.VRID == b.VRID && a.Priority == b.Priority &&
		a.AuthType == b.AuthType && a.Interval == b.Interval && a.AuthData == b.AuthData &&
		slices.Equal(a.Addrs, b.Addrs)
}

// FuzzDecode: Decode never panics; whatever it accepts re-encodes (with the
// checksum mode it reported) into a packet that decodes to the same Advert,
// and which is byte-identical unless reserved bits or the checksum's
// ones'-complement representation differ.
func FuzzDecode(f *testing.F) {
	// Seeds besides testdata/fuzz/FuzzDecode (keepalived captures).
	for _, s := range []struct {
		a        Advert
		src, dst netip.Addr
		o        EncodeOptions
	}{
		{Advert{Version: 2, VRID: 1, Priority: 255, Interval: time.Second, Addrs: mustAddrs("192.0.2.1")}, src4, GroupV4, EncodeOptions{}},
		{Advert{Version: 3, VRID: 2, Priority: 0, Interval: 20 * time.Millisecond, Addrs: mustAddrs("192.0.2.1", "192.0.2.2")}, src4, peer4, EncodeOptions{V3ChecksumNoPseudo: true}},
		{Advert{Version: 3, VRID: 3, Priority: 1, Interval: time.Second, Addrs: mustAddrs("fe80::3")}, src6, GroupV6, EncodeOptions{}},
	} {
		b := mustEncode(f, &s.a, s.src, s.dst, s.o)
		f.Add(b, s.src.AsSlice(), s.dst.AsSlice())
	}
	f.Add([]byte{}, src4.AsSlice(), GroupV4.AsSlice())
	f.Add([]byte{0x31, 1, 1, 0, 0, 100, 0, 0}, []byte{}, GroupV4.AsSlice())

	f.Fuzz(func(t *testing.T, payload, srcB, dstB []byte) {
		src, _ := netip.AddrFromSlice(srcB)
		dst, _ := netip.AddrFromSlice(dstB)
		a := Advert{Addrs: make([]netip.Addr, 0, 16)}
		r := Decode(payload, src, dst, &a)
		if r >= numDropReasons {
			t.Fatalf("unknown drop reason %d", r)
		}
		if r != DropNone {
			return
		}
		re, err := Encode(nil, &a, src, dst, OptionsFor(a.ChecksumMode))
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", a, err)
		}
		var b Advert
		if r := Decode(re, src, dst, &b); r != DropNone {
			t.Fatalf("re-encoded %x dropped: %v", re, r)
		}
		if !sameAdvert(&a, &b) {
			t.Fatalf("round trip changed the advert:\n%+v\n%+v", a, b)
		}
		reservedSet := a.Version == 3 && payload[4]&0xf0 != 0
		if !reservedSet && !bytes.Equal(re[:6], payload[:6]) || !bytes.Equal(re[8:], payload[8:]) {
			t.Fatalf("re-encoding differs outside the checksum:\n%x\n%x", payload, re)
		}
		if !reservedSet && a.Checksum != b.Checksum && (a.Checksum != 0xffff || b.Checksum != 0) {
			t.Fatalf("checksum %#04x re-encoded as %#04x", a.Checksum, b.Checksum)
		}
		// Check never panics on decoded input and returns a known reason.
		e := Expect{Version: a.Version, VRID: a.VRID, AuthType: a.AuthType, AuthData: a.AuthData, Interval: a.Interval, CheckTTL: true}
		if r := e.Check(&a, RequiredTTL, true); r != DropNone && r != DropBadInterval {
			t.Fatalf("Check of its own advert = %v", r)
		}
	})
}

// FuzzRoundTrip: every Advert Encode accepts decodes back to itself.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(2), uint8(51), uint8(120), uint8(AuthPass), uint16(1), false, []byte{192, 168, 10, 100}, "12345678910", uint8(0), false)
	f.Add(uint8(3), uint8(52), uint8(0), uint8(0), uint16(10), false, []byte{192, 168, 10, 101, 192, 168, 10, 102}, "", uint8(2), true)
	f.Add(uint8(3), uint8(53), uint8(255), uint8(0), uint16(4095), true, make([]byte, 32), "", uint8(0), false)
	f.Fuzz(func(t *testing.T, version, vrid, prio, authType uint8, interval uint16, v6 bool, addrBytes []byte, pass string, mode uint8, unicast bool) {
		src, dst := src4, GroupV4
		alen := 4
		if v6 {
			src, dst, alen = src6, GroupV6, 16
		} else if unicast {
			dst = peer4
		}
		a := Advert{Version: version, VRID: vrid, Priority: prio, AuthType: authType}
		if version == 2 {
			a.Interval = time.Duration(interval) * time.Second
			a.AuthData = PassAuth(pass)
		} else {
			a.Interval = time.Duration(interval) * 10 * time.Millisecond
		}
		for len(addrBytes) >= alen {
			ad, _ := netip.AddrFromSlice(addrBytes[:alen])
			a.Addrs = append(a.Addrs, ad)
			addrBytes = addrBytes[alen:]
		}
		opts := OptionsFor(ChecksumMode(mode % 3))
		b, err := Encode(nil, &a, src, dst, opts)
		if err != nil {
			return // not representable: Encode's job to refuse
		}
		var got Advert
		if r := Decode(b, src, dst, &got); r != DropNone {
			t.Fatalf("Decode(Encode(%+v)) = %v", a, r)
		}
		want := a
		for i, ad := range want.Addrs {
			if !v6 {
				want.Addrs[i] = ad.Unmap()
			}
		}
		if !sameAdvert(&want, &got) {
			t.Fatalf("round trip:\n%+v\n%+v", want, got)
		}
		// The reported mode reproduces the same bytes.
		b2, err := Encode(nil, &got, src, dst, OptionsFor(got.ChecksumMode))
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("re-encode with mode %v: %v\n%x\n%x", got.ChecksumMode, err, b, b2)
		}
	})
}
