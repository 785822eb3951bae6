package vrrp

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func signed(t testing.TB, a Advert, src, dst netip.Addr, key []byte, counter uint64) []byte {
	b := mustEncode(t, &a, src, dst, EncodeOptions{})
	return AppendMAC(b, key, src, dst, counter)
}

func TestHMACTrailer(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := uint64(now.UnixMicro())
	v3 := Advert{Version: 3, VRID: 7, Priority: 120, Interval: 100 * time.Millisecond, Addrs: mustAddrs("192.0.2.1", "192.0.2.2")}
	v2 := Advert{Version: 2, VRID: 7, Priority: 120, Interval: time.Second, Addrs: mustAddrs("192.0.2.1")}
	v6 := Advert{Version: 3, VRID: 7, Priority: 120, Interval: time.Second, Addrs: mustAddrs("fe80::1")}
	other := netip.MustParseAddr("192.0.2.99")
	for _, tc := range []struct {
		name     string
		a        Advert
		src, dst netip.Addr
	}{{"v3", v3, src4, GroupV4}, {"v2", v2, src4, GroupV4}, {"v3 unicast", v3, src4, peer4}, {"v6", v6, src6, GroupV6}} {
		t.Run(tc.name, func(t *testing.T) {
			pkt := signed(t, tc.a, tc.src, tc.dst, testKey, c)
			adv, tr := CutTrailer(pkt, tc.src.Is6())
			if len(tr) != TrailerLen {
				t.Fatalf("no trailer found in %x", pkt)
			}
			var a Advert
			if r := Decode(adv, tc.src, tc.dst, &a); r != DropNone || !sameAdvert(&a, &tc.a) {
				t.Fatalf("advert part: %v %+v", r, a)
			}
			if got, r := VerifyMAC(adv, tr, testKey, tc.src, tc.dst); r != DropNone || got != c {
				t.Fatalf("verify: %v counter %d", r, got)
			}
			// Without the trailer, with another key, from another source
			// (a spoofed member), to another destination, altered: refused.
			plain := mustEncode(t, &tc.a, tc.src, tc.dst, EncodeOptions{})
			if a2, tr2 := CutTrailer(plain, tc.src.Is6()); tr2 != nil || !bytes.Equal(a2, plain) {
				t.Errorf("plain advert cut: %x %x", a2, tr2)
			}
			if _, r := VerifyMAC(plain, nil, testKey, tc.src, tc.dst); r != DropMACMissing {
				t.Errorf("no trailer: %v", r)
			}
			if _, r := VerifyMAC(adv, tr, []byte("another key, sixteen+"), tc.src, tc.dst); r != DropBadMAC {
				t.Errorf("other key: %v", r)
			}
			if !tc.src.Is6() {
				if _, r := VerifyMAC(adv, tr, testKey, other, tc.dst); r != DropBadMAC {
					t.Errorf("other source: %v", r)
				}
			}
			if _, r := VerifyMAC(adv, tr, testKey, tc.src, peer4); r != DropBadMAC && tc.dst != peer4 {
				t.Errorf("other destination: %v", r)
			}
			for i := range pkt {
				bad := bytes.Clone(pkt)
				bad[i] ^= 0x10
				adv, tr := CutTrailer(bad, tc.src.Is6())
				if _, r := VerifyMAC(adv, tr, testKey, tc.src, tc.dst); r == DropNone {
					t.Fatalf("byte %d flipped: accepted", i)
				}
			}
		})
	}
}

func TestReplayGuard(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	at := func(d time.Duration) uint64 { return uint64(now.Add(d).UnixMicro()) }
	var g ReplayGuard
	a, b := src4, peer4
	for _, s := range []struct {
		src     netip.Addr
		counter uint64
		want    bool
	}{
		{a, at(-time.Minute), false},     // first from a, too old
		{a, at(time.Minute), false},      // first from a, too far ahead
		{a, at(-time.Second), true},      // fresh
		{a, at(-time.Second), false},     // replayed
		{a, at(-2 * time.Second), false}, // older than the last
		{a, at(-time.Second) + 1, true},
		{b, at(-time.Second), true}, // per source
		{a, at(0), true},
	} {
		if got := g.Accept(s.src, s.counter, now); got != s.want {
			t.Errorf("%v %d: accepted %v, want %v", s.src, s.counter, got, s.want)
		}
	}
	var c Counter
	x, y := c.Next(now), c.Next(now)
	if y <= x || x != at(0) || c.Next(now.Add(-time.Hour)) <= y {
		t.Errorf("counter not strictly increasing from the clock: %d %d", x, y)
	}
}

// FuzzCutTrailer: CutTrailer and VerifyMAC never panic; nothing but a
// trailer made with the key verifies; a signed advert round-trips.
func FuzzCutTrailer(f *testing.F) {
	v3 := Advert{Version: 3, VRID: 7, Priority: 120, Interval: 100 * time.Millisecond, Addrs: mustAddrs("192.0.2.1")}
	v2 := Advert{Version: 2, VRID: 9, Priority: 1, Interval: time.Second, Addrs: mustAddrs("192.0.2.1", "192.0.2.3")}
	for _, a := range []Advert{v3, v2} {
		f.Add(signed(f, a, src4, GroupV4, testKey, 1234), false)
		f.Add(mustEncode(f, &a, src4, GroupV4, EncodeOptions{}), false)
	}
	f.Add(signed(f, Advert{Version: 3, VRID: 1, Priority: 9, Interval: time.Second, Addrs: mustAddrs("fe80::1")}, src6, GroupV6, testKey, 1), true)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, b []byte, six bool) {
		src, dst := src4, GroupV4
		if six {
			src, dst = src6, GroupV6
		}
		adv, tr := CutTrailer(b, six)
		if tr == nil && !bytes.Equal(adv, b) || tr != nil && len(adv)+len(tr) != len(b) {
			t.Fatalf("cut %x into %x + %x", b, adv, tr)
		}
		counter, r := VerifyMAC(adv, tr, testKey, src, dst)
		if r >= numDropReasons {
			t.Fatalf("unknown drop reason %d", r)
		}
		if r == DropNone {
			// Only a trailer made with the key: re-signing gives the same bytes.
			re := AppendMAC(bytes.Clone(adv), testKey, src, dst, counter)
			if !bytes.Equal(re, b) {
				t.Fatalf("verified %x, but signing gives %x", b, re)
			}
		}
	})
}
