package vrrp

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// capture is one VRRP packet as seen on the wire: the IP payload and the IP
// header fields Decode and Check need.
type capture struct {
	name    string
	src     netip.Addr
	dst     netip.Addr
	ttl     int
	payload []byte
}

// keepalivedExpect is what keepalived's configuration (keepalivedConf) says a
// captured advert must contain, per VRID.
type keepalivedExpect struct {
	version  uint8
	prio     uint8 // while master; 0 is sent on shutdown
	authType uint8
	authData [AuthDataLen]byte
	interval time.Duration
	addrs    []netip.Addr
	v6       bool
	unicast  bool
	mode     ChecksumMode
	file     string // testdata/keepalived/<file>_prio<N>.hex
}

var mustAddrs = func(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// keepalivedVRIDs mirrors keepalivedConf below.
var keepalivedVRIDs = map[uint8]keepalivedExpect{
	51: {version: 2, prio: 120, authType: AuthPass, authData: [8]byte{'1', '2', '3', '4', '5', '6', '7', '8'},
		interval: time.Second, addrs: mustAddrs("192.168.10.100"), mode: ChecksumPlain, file: "v2_pass_vrid51"},
	52: {version: 3, prio: 110, interval: 100 * time.Millisecond, addrs: mustAddrs("192.168.10.101", "192.168.10.102"),
		mode: ChecksumPseudo, file: "v3_ipv4_vrid52"},
	53: {version: 3, prio: 100, interval: time.Second, addrs: mustAddrs("fe80::53", "2001:db8::53"), v6: true,
		mode: ChecksumPseudo, file: "v3_ipv6_vrid53"},
	54: {version: 3, prio: 90, interval: time.Second, addrs: mustAddrs("192.168.10.104"), unicast: true,
		mode: ChecksumPseudo, file: "v3_ipv4_unicast_vrid54"},
	55: {version: 3, prio: 80, interval: time.Second, addrs: mustAddrs("192.168.10.105"), unicast: true,
		mode: ChecksumPseudoGroupDst, file: "v3_ipv4_unicast_oldcsum_vrid55"},
}

// checkKeepalivedAdvert decodes c and asserts every field against what
// keepalived was configured with, then that re-encoding gives c's bytes.
func checkKeepalivedAdvert(t *testing.T, c capture) {
	t.Helper()
	a := Advert{Addrs: make([]netip.Addr, 0, 16)}
	if r := Decode(c.payload, c.src, c.dst, &a); r != DropNone {
		t.Fatalf("%s: Decode = %v, want none (payload %x)", c.name, r, c.payload)
	}
	want, ok := keepalivedVRIDs[a.VRID]
	if !ok {
		t.Fatalf("%s: unexpected VRID %d", c.name, a.VRID)
	}
	if a.Version != want.version || a.AuthType != want.authType || a.AuthData != want.authData ||
		a.Interval != want.interval || !slices.Equal(a.Addrs, want.addrs) || a.ChecksumMode != want.mode {
		t.Errorf("%s: decoded %+v, want %+v", c.name, a, want)
	}
	if a.Priority != want.prio && a.Priority != 0 {
		t.Errorf("%s: priority %d, want %d or 0", c.name, a.Priority, want.prio)
	}
	if a.Checksum != binary.BigEndian.Uint16(c.payload[6:8]) {
		t.Errorf("%s: Checksum %#04x, wire %x", c.name, a.Checksum, c.payload[6:8])
	}
	if c.ttl != RequiredTTL {
		t.Errorf("%s: keepalived sent TTL %d", c.name, c.ttl)
	}
	if c.src.Is6() != want.v6 || (want.v6 && (!c.src.IsLinkLocalUnicast() || c.dst != GroupV6)) {
		t.Errorf("%s: src %v dst %v, want IPv6=%v from a link-local address", c.name, c.src, c.dst, want.v6)
	}
	if !want.v6 && (c.dst == GroupV4) == want.unicast {
		t.Errorf("%s: dst %v, unicast=%v", c.name, c.dst, want.unicast)
	}
	// VRRPv3 over IPv4 really uses a pseudo-header: the plain sum must fail.
	if want.version == 3 && !want.v6 && fold(sumBytes(0, c.payload)) == 0xffff {
		t.Errorf("%s: v3 checksum also verifies without pseudo-header", c.name)
	}
	re, err := Encode([]byte{0xee}, &a, c.src, c.dst, OptionsFor(a.ChecksumMode))
	if err != nil {
		t.Fatalf("%s: Encode: %v", c.name, err)
	}
	if re[0] != 0xee || !bytes.Equal(re[1:], c.payload) {
		t.Errorf("%s: round trip\n got %x\nwant %x", c.name, re[1:], c.payload)
	}
	// Check accepts it with the configuration keepalived ran.
	e := Expect{Version: want.version, VRID: a.VRID, AuthType: want.authType, AuthData: PassAuth("12345678910"),
		Interval: want.interval, CheckTTL: true}
	if r := e.Check(&a, c.ttl, !want.unicast); r != DropNone {
		t.Errorf("%s: Check = %v", c.name, r)
	}
}

func readCapture(t *testing.T, path string) capture {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := capture{name: filepath.Base(path), ttl: -1}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "src":
			c.src = netip.MustParseAddr(v)
		case "dst":
			c.dst = netip.MustParseAddr(v)
		case "ttl":
			c.ttl, err = strconv.Atoi(v)
		case "payload":
			c.payload, err = hex.DecodeString(v)
		default:
			err = fmt.Errorf("unknown key %q", k)
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestKeepalivedCaptures decodes the stored keepalived 2.2.7 adverts
// (testdata/keepalived, see its README.md).
func TestKeepalivedCaptures(t *testing.T) {
	files, err := filepath.Glob("testdata/keepalived/*.hex")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range files {
		c := readCapture(t, p)
		t.Run(c.name, func(t *testing.T) { checkKeepalivedAdvert(t, c) })
		seen[strings.TrimSuffix(c.name, ".hex")] = true
	}
	// Every configured instance, as master and releasing (priority 0).
	for vrid, w := range keepalivedVRIDs {
		for _, p := range []uint8{w.prio, 0} {
			name := fmt.Sprintf("%s_prio%d", w.file, p)
			if !seen[name] {
				t.Errorf("VRID %d: missing testdata/keepalived/%s.hex", vrid, name)
			}
		}
	}
}

// TestKeepalivedCaptureDetails pins facts about specific captures that are
// the point of having them.
func TestKeepalivedCaptureDetails(t *testing.T) {
	c := readCapture(t, "testdata/keepalived/v2_pass_vrid51_prio120.hex")
	// auth_pass 12345678910 goes on the wire as its first 8 bytes.
	if got := string(c.payload[len(c.payload)-8:]); got != "12345678" {
		t.Errorf("v2 auth data on the wire %q", got)
	}
	if PassAuth("12345678910") != [8]byte([]byte("12345678")) || PassAuth("ab") != [8]byte{'a', 'b'} {
		t.Errorf("PassAuth does not truncate/pad like keepalived")
	}
	// keepalived's old_unicast_checksum: pseudo-header with 224.0.0.18 as dst.
	c = readCapture(t, "testdata/keepalived/v3_ipv4_unicast_oldcsum_vrid55_prio80.hex")
	var a Advert
	if r := Decode(c.payload, c.src, c.dst, &a); r != DropNone || a.ChecksumMode != ChecksumPseudoGroupDst {
		t.Errorf("old checksum: %v %v", r, a.ChecksumMode)
	}
	// With the group as destination it is an ordinary pseudo-header checksum.
	if r := Decode(c.payload, c.src, GroupV4, &a); r != DropNone || a.ChecksumMode != ChecksumPseudo {
		t.Errorf("old checksum to group: %v %v", r, a.ChecksumMode)
	}
	// The v3 IPv6 checksum depends on the addresses (pseudo-header).
	c = readCapture(t, "testdata/keepalived/v3_ipv6_vrid53_prio100.hex")
	if r := Decode(c.payload, netip.MustParseAddr("fe80::1"), c.dst, &a); r != DropBadChecksum {
		t.Errorf("v6 with another src: %v", r)
	}
}

// TestChecksumRFC1071 checks the sum against RFC 1071 section 3's example.
func TestChecksumRFC1071(t *testing.T) {
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := fold(sumBytes(0, b)); got != 0xddf2 {
		t.Errorf("sum = %#04x, want 0xddf2", got)
	}
	// Odd length: the last byte is padded with zero.
	if got := fold(sumBytes(0, []byte{0x01, 0x02, 0x03})); got != 0x0402 {
		t.Errorf("odd sum = %#04x, want 0x0402", got)
	}
}

// fixChecksum rewrites b's checksum for mode after a test edited b.
func fixChecksum(b []byte, src, dst netip.Addr, v3 bool, mode ChecksumMode) {
	b[6], b[7] = 0, 0
	var s uint32
	switch {
	case !v3, mode == ChecksumPlain:
	case mode == ChecksumPseudoGroupDst:
		s = pseudoSum(src, GroupV4, len(b))
	default:
		s = pseudoSum(src, dst, len(b))
	}
	binary.BigEndian.PutUint16(b[6:8], ^fold(sumBytes(s, b)))
}

var (
	src4  = netip.MustParseAddr("10.0.0.1")
	src6  = netip.MustParseAddr("fe80::1")
	peer4 = netip.MustParseAddr("10.0.0.2")
)

func mustEncode(t testing.TB, a *Advert, src, dst netip.Addr, o EncodeOptions) []byte {
	t.Helper()
	b, err := Encode(nil, a, src, dst, o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeDrops(t *testing.T) {
	v2 := &Advert{Version: 2, VRID: 7, Priority: 100, AuthType: AuthPass, AuthData: PassAuth("secret"),
		Interval: time.Second, Addrs: mustAddrs("192.0.2.1", "192.0.2.2")}
	v3 := &Advert{Version: 3, VRID: 7, Priority: 100, Interval: 50 * time.Millisecond, Addrs: mustAddrs("192.0.2.1")}
	v6 := &Advert{Version: 3, VRID: 7, Priority: 100, Interval: time.Second, Addrs: mustAddrs("fe80::7", "2001:db8::7")}

	type tc struct {
		name     string
		base     *Advert
		src, dst netip.Addr
		edit     func(b []byte) []byte // nil: unchanged
		fix      bool                  // recompute the checksum after edit
		want     DropReason
	}
	cases := []tc{
		{"v2 ok", v2, src4, GroupV4, nil, false, DropNone},
		{"v3 ok", v3, src4, GroupV4, nil, false, DropNone},
		{"v6 ok", v6, src6, GroupV6, nil, false, DropNone},
		{"empty", v3, src4, GroupV4, func(b []byte) []byte { return b[:0] }, false, DropTruncated},
		{"7 bytes", v3, src4, GroupV4, func(b []byte) []byte { return b[:7] }, false, DropTruncated},
		{"v2 without auth data", v2, src4, GroupV4, func(b []byte) []byte { return b[:12] }, false, DropTruncated},
		{"v2 one addr short", v2, src4, GroupV4, func(b []byte) []byte { return b[:len(b)-4] }, false, DropAddrCountMismatch},
		{"v3 trailing byte", v3, src4, GroupV4, func(b []byte) []byte { return append(b, 0) }, true, DropAddrCountMismatch},
		{"v3 count+1", v3, src4, GroupV4, func(b []byte) []byte { b[3]++; return b }, true, DropAddrCountMismatch},
		{"v6 count-1", v6, src6, GroupV6, func(b []byte) []byte { b[3]--; return b }, true, DropAddrCountMismatch},
		{"version 1", v3, src4, GroupV4, func(b []byte) []byte { b[0] = 0x11; return b }, true, DropBadVersion},
		{"version 4", v3, src4, GroupV4, func(b []byte) []byte { b[0] = 0x41; return b }, true, DropBadVersion},
		{"v2 over IPv6", v6, src6, GroupV6, func(b []byte) []byte { b[0] = 0x21; return b }, true, DropBadVersion},
		{"type 2", v3, src4, GroupV4, func(b []byte) []byte { b[0] = 0x32; return b }, true, DropBadType},
		{"bit flip", v3, src4, GroupV4, func(b []byte) []byte { b[2] ^= 1; return b }, false, DropBadChecksum},
		{"v2 bit flip in auth", v2, src4, GroupV4, func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }, false, DropBadChecksum},
		{"v6 bit flip in addr", v6, src6, GroupV6, func(b []byte) []byte { b[20] ^= 4; return b }, false, DropBadChecksum},
		{"v2 auth type 3", v2, src4, GroupV4, func(b []byte) []byte { b[4] = 3; return b }, true, DropBadAuthType},
		{"v2 auth type AH decodes", v2, src4, GroupV4, func(b []byte) []byte { b[4] = AuthAH; return b }, true, DropNone},
		{"mixed families", v3, src4, GroupV6, nil, false, DropBadAddrFamily},
		{"invalid src", v3, netip.Addr{}, GroupV4, nil, false, DropBadAddrFamily},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			encSrc, encDst := c.src, c.dst
			if !encSrc.IsValid() || family(c.src, c.dst) == 0 {
				encSrc, encDst = src4, GroupV4
			}
			b := mustEncode(t, c.base, encSrc, encDst, EncodeOptions{})
			if c.edit != nil {
				b = c.edit(b)
			}
			if c.fix {
				fixChecksum(b, c.src, c.dst, b[0]>>4 != 2, ChecksumPseudo)
			}
			var a Advert
			if got := Decode(b, c.src, c.dst, &a); got != c.want {
				t.Fatalf("Decode(%x) = %v, want %v", b, got, c.want)
			}
			if c.want == DropNone && (a.VRID != 7 || a.Priority != 100) {
				t.Errorf("decoded %+v", a)
			}
		})
	}
}

func TestDecodeV3ChecksumModes(t *testing.T) {
	a := &Advert{Version: 3, VRID: 9, Priority: 200, Interval: 300 * time.Millisecond, Addrs: mustAddrs("198.51.100.9")}
	for _, tc := range []struct {
		dst  netip.Addr
		opts EncodeOptions
		want ChecksumMode
	}{
		{GroupV4, EncodeOptions{}, ChecksumPseudo},
		{GroupV4, EncodeOptions{V3ChecksumNoPseudo: true}, ChecksumPlain},
		{peer4, EncodeOptions{}, ChecksumPseudo},
		{peer4, EncodeOptions{V3ChecksumNoPseudo: true}, ChecksumPlain},
		{peer4, EncodeOptions{V3ChecksumGroupDst: true}, ChecksumPseudoGroupDst},
		{peer4, EncodeOptions{V3ChecksumNoPseudo: true, V3ChecksumGroupDst: true}, ChecksumPlain},
	} {
		b := mustEncode(t, a, src4, tc.dst, tc.opts)
		var got Advert
		if r := Decode(b, src4, tc.dst, &got); r != DropNone || got.ChecksumMode != tc.want {
			t.Errorf("dst %v %+v: Decode = %v mode %v, want none %v", tc.dst, tc.opts, r, got.ChecksumMode, tc.want)
		}
		if tc.want != ChecksumPlain {
			// Sent to another destination it no longer verifies (unless the
			// group is built in, as with the group-dst mode).
			other := netip.MustParseAddr("10.9.9.9")
			r := Decode(b, src4, other, &got)
			if wantR := map[bool]DropReason{true: DropNone, false: DropBadChecksum}[tc.want == ChecksumPseudoGroupDst || tc.dst == GroupV4]; r != wantR {
				t.Errorf("dst %v %+v to %v: %v, want %v", tc.dst, tc.opts, other, r, wantR)
			}
		}
	}
	// IPv6 ignores the IPv4 compatibility options: always with pseudo-header.
	a6 := &Advert{Version: 3, VRID: 9, Priority: 200, Interval: time.Second, Addrs: mustAddrs("fe80::9")}
	b := mustEncode(t, a6, src6, GroupV6, EncodeOptions{V3ChecksumNoPseudo: true})
	var got Advert
	if r := Decode(b, src6, GroupV6, &got); r != DropNone || got.ChecksumMode != ChecksumPseudo {
		t.Errorf("v6: %v %v", r, got.ChecksumMode)
	}
	if fold(sumBytes(0, b)) == 0xffff {
		t.Errorf("v6 checksum verifies without pseudo-header")
	}
}

func TestDecodeV3ReservedIntervalBits(t *testing.T) {
	a := &Advert{Version: 3, VRID: 1, Priority: 1, Interval: 40950 * time.Millisecond, Addrs: mustAddrs("192.0.2.1")}
	b := mustEncode(t, a, src4, GroupV4, EncodeOptions{})
	if b[4]&0xf0 != 0 {
		t.Fatalf("reserved bits sent: %x", b[4])
	}
	b[4] |= 0xf0
	fixChecksum(b, src4, GroupV4, true, ChecksumPseudo)
	var got Advert
	if r := Decode(b, src4, GroupV4, &got); r != DropNone || got.Interval != a.Interval {
		t.Errorf("Decode = %v interval %v, want none %v", r, got.Interval, a.Interval)
	}
}

func TestDecodeReusesAddrs(t *testing.T) {
	a := &Advert{Version: 3, VRID: 1, Priority: 1, Interval: time.Second, Addrs: mustAddrs("192.0.2.1", "192.0.2.2", "192.0.2.3")}
	b := mustEncode(t, a, src4, GroupV4, EncodeOptions{})
	got := Advert{Addrs: make([]netip.Addr, 5, 16)}
	backing := &got.Addrs[:1][0]
	if r := Decode(b, src4, GroupV4, &got); r != DropNone {
		t.Fatal(r)
	}
	if !slices.Equal(got.Addrs, a.Addrs) || &got.Addrs[0] != backing {
		t.Errorf("Addrs %v (reused backing: %v)", got.Addrs, &got.Addrs[0] == backing)
	}
}

func TestDecodeZeroAllocs(t *testing.T) {
	v2 := mustEncode(t, &Advert{Version: 2, VRID: 1, Priority: 100, AuthType: AuthPass, AuthData: PassAuth("x"),
		Interval: time.Second, Addrs: mustAddrs("192.0.2.1", "192.0.2.2")}, src4, GroupV4, EncodeOptions{})
	v3 := mustEncode(t, &Advert{Version: 3, VRID: 1, Priority: 100, Interval: time.Second,
		Addrs: mustAddrs("192.0.2.1")}, src4, peer4, EncodeOptions{V3ChecksumGroupDst: true})
	v6 := mustEncode(t, &Advert{Version: 3, VRID: 1, Priority: 100, Interval: time.Second,
		Addrs: mustAddrs("fe80::1", "2001:db8::1", "2001:db8::2")}, src6, GroupV6, EncodeOptions{})
	out := Advert{Addrs: make([]netip.Addr, 0, 16)}
	e := Expect{Version: 3, VRID: 1, Interval: time.Second, CheckTTL: true}
	for name, tc := range map[string]struct {
		b        []byte
		src, dst netip.Addr
	}{"v2": {v2, src4, GroupV4}, "v3": {v3, src4, peer4}, "v6": {v6, src6, GroupV6}} {
		allocs := testing.AllocsPerRun(200, func() {
			if r := Decode(tc.b, tc.src, tc.dst, &out); r != DropNone {
				t.Fatal(r)
			}
			_ = e.Check(&out, 255, true)
		})
		if allocs != 0 {
			t.Errorf("%s: Decode+Check allocates %.1f times per call", name, allocs)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	many := make([]netip.Addr, 256)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
	}
	for _, tc := range []struct {
		name     string
		a        Advert
		src, dst netip.Addr
	}{
		{"version 1", Advert{Version: 1, Interval: time.Second}, src4, GroupV4},
		{"v2 over IPv6", Advert{Version: 2, Interval: time.Second}, src6, GroupV6},
		{"v2 fractional interval", Advert{Version: 2, Interval: 1500 * time.Millisecond}, src4, GroupV4},
		{"v2 interval 256s", Advert{Version: 2, Interval: 256 * time.Second}, src4, GroupV4},
		{"v2 auth type 3", Advert{Version: 2, AuthType: 3, Interval: time.Second}, src4, GroupV4},
		{"v3 interval 5ms", Advert{Version: 3, Interval: 5 * time.Millisecond}, src4, GroupV4},
		{"v3 interval 41s", Advert{Version: 3, Interval: 41 * time.Second}, src4, GroupV4},
		{"v3 negative interval", Advert{Version: 3, Interval: -time.Second}, src4, GroupV4},
		{"v3 with auth", Advert{Version: 3, AuthType: AuthPass, Interval: time.Second}, src4, GroupV4},
		{"v6 addr in v4 advert", Advert{Version: 3, Interval: time.Second, Addrs: mustAddrs("2001:db8::1")}, src4, GroupV4},
		{"v4 addr in v6 advert", Advert{Version: 3, Interval: time.Second, Addrs: mustAddrs("192.0.2.1")}, src6, GroupV6},
		{"zoned addr", Advert{Version: 3, Interval: time.Second, Addrs: mustAddrs("fe80::1%eth0")}, src6, GroupV6},
		{"mixed src/dst", Advert{Version: 3, Interval: time.Second}, src4, GroupV6},
		{"256 addrs", Advert{Version: 3, Interval: time.Second, Addrs: many}, src4, GroupV4},
	} {
		prefix := []byte{1, 2, 3}
		b, err := Encode(prefix, &tc.a, tc.src, tc.dst, EncodeOptions{})
		if !errors.Is(err, ErrInvalidAdvert) {
			t.Errorf("%s: err = %v, want ErrInvalidAdvert", tc.name, err)
		}
		if !bytes.Equal(b, []byte{1, 2, 3}) {
			t.Errorf("%s: b = %x, want the prefix back unchanged", tc.name, b)
		}
	}
}

// TestEncodeLayout checks the wire layout field by field against RFC 3768
// section 5.1 and RFC 9568 section 5.1.
func TestEncodeLayout(t *testing.T) {
	a := &Advert{Version: 2, VRID: 51, Priority: 120, AuthType: AuthPass, AuthData: PassAuth("12345678910"),
		Interval: 3 * time.Second, Addrs: mustAddrs("192.168.10.100"), Checksum: 0xdead}
	b := mustEncode(t, a, src4, GroupV4, EncodeOptions{})
	wantHead := []byte{0x21, 51, 120, 1, AuthPass, 3}
	if !bytes.Equal(b[:6], wantHead) || !bytes.Equal(b[8:12], []byte{192, 168, 10, 100}) ||
		string(b[12:]) != "12345678" || len(b) != 20 {
		t.Errorf("v2 layout %x", b)
	}
	if fold(sumBytes(0, b)) != 0xffff || a.Checksum != 0xdead {
		t.Errorf("v2 checksum does not verify, or Encode wrote to a")
	}
	a3 := &Advert{Version: 3, VRID: 52, Priority: 255, Interval: 4095 * 10 * time.Millisecond, Addrs: mustAddrs("fe80::1")}
	b = mustEncode(t, a3, src6, GroupV6, EncodeOptions{})
	if !bytes.Equal(b[:6], []byte{0x31, 52, 255, 1, 0x0f, 0xff}) || len(b) != 8+16 {
		t.Errorf("v3 layout %x", b)
	}
}

func TestCheck(t *testing.T) {
	v2 := Advert{Version: 2, VRID: 51, Priority: 120, AuthType: AuthPass, AuthData: PassAuth("12345678"), Interval: time.Second}
	v3 := Advert{Version: 3, VRID: 52, Priority: 110, Interval: 100 * time.Millisecond}
	e2 := Expect{Version: 2, VRID: 51, AuthType: AuthPass, AuthData: PassAuth("12345678910"), Interval: time.Second, CheckTTL: true}
	e3 := Expect{Version: 3, VRID: 52, Interval: time.Second, CheckTTL: true}
	with := func(a Advert, f func(*Advert)) Advert { f(&a); return a }
	withE := func(e Expect, f func(*Expect)) Expect { f(&e); return e }
	for _, tc := range []struct {
		name      string
		e         Expect
		a         Advert
		ttl       int
		multicast bool
		want      DropReason
	}{
		{"v2 ok", e2, v2, 255, true, DropNone},
		{"v3 ok, other interval learnt", e3, v3, 255, true, DropNone},
		{"priority 0 is a release", e2, with(v2, func(a *Advert) { a.Priority = 0 }), 255, true, DropNone},
		{"ttl 254 multicast", e2, v2, 254, true, DropBadTTL},
		{"ttl unknown", e3, v3, -1, true, DropBadTTL},
		{"ttl 64 unicast, keepalived-like", e3, v3, 64, false, DropNone},
		{"ttl 64 unicast, checked", withE(e3, func(e *Expect) { e.CheckUnicastTTL = true }), v3, 64, false, DropBadTTL},
		{"ttl not checked", withE(e3, func(e *Expect) { e.CheckTTL = false }), v3, 1, true, DropNone},
		{"other vrid", e2, with(v2, func(a *Advert) { a.VRID = 50 }), 255, true, DropOtherVRID},
		{"other vrid, other version", e3, with(v2, func(a *Advert) { a.VRID = 50 }), 255, true, DropOtherVRID},
		{"version mismatch", e3, with(v2, func(a *Advert) { a.VRID = 52 }), 255, true, DropVersionMismatch},
		{"auth type none vs pass", e2, with(v2, func(a *Advert) { a.AuthType = AuthNone }), 255, true, DropAuthTypeMismatch},
		{"auth type AH", e2, with(v2, func(a *Advert) { a.AuthType = AuthAH }), 255, true, DropAuthTypeMismatch},
		{"auth differs in byte 8", e2, with(v2, func(a *Advert) { a.AuthData[7] = 'x' }), 255, true, DropAuthMismatch},
		{"auth shorter password", e2, with(v2, func(a *Advert) { a.AuthData = PassAuth("1234567") }), 255, true, DropAuthMismatch},
		{"no auth ignores data", withE(e2, func(e *Expect) { e.AuthType = AuthNone }),
			with(v2, func(a *Advert) { a.AuthType = AuthNone; a.AuthData = PassAuth("junk") }), 255, true, DropNone},
		{"v2 interval mismatch", e2, with(v2, func(a *Advert) { a.Interval = 2 * time.Second }), 255, true, DropIntervalMismatch},
		{"v3 interval 0", e3, with(v3, func(a *Advert) { a.Interval = 0 }), 255, true, DropBadInterval},
	} {
		if got := tc.e.Check(&tc.a, tc.ttl, tc.multicast); got != tc.want {
			t.Errorf("%s: Check = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestDropReasons(t *testing.T) {
	all := AllDropReasons()
	if len(all) != int(numDropReasons) || all[0] != DropNone {
		t.Fatalf("AllDropReasons = %v", all)
	}
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	names := map[string]bool{}
	for i, r := range all {
		if int(r) != i {
			t.Errorf("AllDropReasons[%d] = %d", i, r)
		}
		s := r.String()
		if !snake.MatchString(s) || names[s] {
			t.Errorf("reason %d name %q: not snake_case or duplicate", r, s)
		}
		names[s] = true
	}
	// Names are metric labels: pin the ones dashboards will use.
	for r, s := range map[DropReason]string{DropNone: "none", DropTruncated: "truncated", DropBadChecksum: "bad_checksum",
		DropBadTTL: "bad_ttl", DropOtherVRID: "other_vrid", DropAuthMismatch: "auth_mismatch",
		DropIntervalMismatch: "interval_mismatch", DropAddrCountMismatch: "addr_count_mismatch"} {
		if r.String() != s {
			t.Errorf("%d.String() = %q, want %q", r, r.String(), s)
		}
	}
	if s := DropReason(200).String(); s != "drop_reason_200" {
		t.Errorf("unknown reason name %q", s)
	}
}

func TestDropCounters(t *testing.T) {
	var d DropCounters
	var wg sync.WaitGroup
	const workers, per = 4, 1000
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				d.Inc(DropReason((w + i) % 3)) // none, truncated, bad_version
			}
		}()
	}
	wg.Wait()
	d.Inc(DropReason(250)) // ignored
	snap := d.Snapshot()
	if len(snap) != int(numDropReasons) {
		t.Errorf("snapshot has %d keys", len(snap))
	}
	var total uint64
	for _, v := range snap {
		total += v
	}
	if total != workers*per {
		t.Errorf("total %d, want %d", total, workers*per)
	}
	if snap["none"]+snap["truncated"]+snap["bad_version"] != workers*per || d.Load(DropTruncated) != snap["truncated"] {
		t.Errorf("snapshot %v", snap)
	}
}

func TestChecksumModeString(t *testing.T) {
	var got []string
	for _, m := range []ChecksumMode{ChecksumPseudo, ChecksumPlain, ChecksumPseudoGroupDst, 9} {
		got = append(got, m.String())
	}
	sort.Strings(got)
	if strings.Join(got, ",") != "checksum_mode(9),plain,pseudo,pseudo_group_dst" {
		t.Errorf("names %v", got)
	}
}

func BenchmarkDecodeV2(b *testing.B) {
	p := mustEncode(b, &Advert{Version: 2, VRID: 51, Priority: 120, AuthType: AuthPass, AuthData: PassAuth("12345678"),
		Interval: time.Second, Addrs: mustAddrs("192.168.10.100")}, src4, GroupV4, EncodeOptions{})
	out := Advert{Addrs: make([]netip.Addr, 0, 16)}
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if Decode(p, src4, GroupV4, &out) != DropNone {
			b.Fatal("drop")
		}
	}
}

func BenchmarkDecodeV3(b *testing.B) {
	p := mustEncode(b, &Advert{Version: 3, VRID: 52, Priority: 110, Interval: 100 * time.Millisecond,
		Addrs: mustAddrs("192.168.10.101", "192.168.10.102")}, src4, GroupV4, EncodeOptions{})
	out := Advert{Addrs: make([]netip.Addr, 0, 16)}
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if Decode(p, src4, GroupV4, &out) != DropNone {
			b.Fatal("drop")
		}
	}
}

func BenchmarkEncodeV3(b *testing.B) {
	a := &Advert{Version: 3, VRID: 52, Priority: 110, Interval: 100 * time.Millisecond,
		Addrs: mustAddrs("192.168.10.101", "192.168.10.102")}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = Encode(buf[:0], a, src4, GroupV4, EncodeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// keepalivedConf runs the instances keepalivedVRIDs describes on veth0.
const keepalivedConf = `global_defs {
    router_id lhcap
}
vrrp_instance V2 {
    interface veth0
    state MASTER
    virtual_router_id 51
    priority 120
    advert_int 1
    version 2
    authentication {
        auth_type PASS
        auth_pass 12345678910
    }
    virtual_ipaddress {
        192.168.10.100/32
    }
}
vrrp_instance V3 {
    interface veth0
    state MASTER
    virtual_router_id 52
    priority 110
    advert_int 0.1
    version 3
    virtual_ipaddress {
        192.168.10.101/32
        192.168.10.102/32
    }
}
vrrp_instance V6 {
    interface veth0
    state MASTER
    virtual_router_id 53
    priority 100
    advert_int 1
    virtual_ipaddress {
        fe80::53/64
        2001:db8::53/64
    }
}
vrrp_instance U3 {
    interface veth0
    state MASTER
    virtual_router_id 54
    priority 90
    advert_int 1
    version 3
    unicast_src_ip 10.0.0.1
    unicast_peer {
        10.0.0.2
    }
    virtual_ipaddress {
        192.168.10.104/32
    }
}
vrrp_instance U3OLD {
    interface veth0
    state MASTER
    virtual_router_id 55
    priority 80
    advert_int 1
    version 3
    old_unicast_checksum
    unicast_src_ip 10.0.0.1
    unicast_peer {
        10.0.0.2
    }
    virtual_ipaddress {
        192.168.10.105/32
    }
}
`

// TestKeepalivedLive runs the real keepalived in a fresh network namespace,
// captures its adverts with tcpdump and decodes, checks and re-encodes every
// one of them. With LEASEHOLD_UPDATE_TESTDATA=1 it also rewrites
// testdata/keepalived/*.hex and the FuzzDecode seed corpus from the capture.
func TestKeepalivedLive(t *testing.T) {
	caps := captureKeepalived(t)
	if len(caps) == 0 {
		t.Fatal("no VRRP packets captured")
	}
	first := map[string]capture{}
	for _, c := range caps {
		checkKeepalivedAdvert(t, c)
		if len(c.payload) < 4 {
			continue
		}
		w := keepalivedVRIDs[c.payload[1]]
		name := fmt.Sprintf("%s_prio%d", w.file, c.payload[2])
		if _, ok := first[name]; !ok {
			c.name = name
			first[name] = c
		}
	}
	for _, w := range keepalivedVRIDs {
		for _, p := range []uint8{w.prio, 0} {
			if _, ok := first[fmt.Sprintf("%s_prio%d", w.file, p)]; !ok {
				t.Errorf("no %s advert with priority %d captured", w.file, p)
			}
		}
	}
	t.Logf("decoded %d keepalived adverts, %d kinds", len(caps), len(first))
	if os.Getenv("LEASEHOLD_UPDATE_TESTDATA") == "1" && !t.Failed() {
		writeCaptures(t, first)
	}
}

func writeCaptures(t *testing.T, caps map[string]capture) {
	if err := os.MkdirAll("testdata/fuzz/FuzzDecode", 0o755); err != nil {
		t.Fatal(err)
	}
	for name, c := range caps {
		hexFile := fmt.Sprintf("# keepalived 2.2.7 advert, captured by TestKeepalivedLive (see README.md)\n"+
			"src %v\ndst %v\nttl %d\npayload %x\n", c.src, c.dst, c.ttl, c.payload)
		if err := os.WriteFile(filepath.Join("testdata/keepalived", name+".hex"), []byte(hexFile), 0o644); err != nil {
			t.Fatal(err)
		}
		src, dst := c.src.AsSlice(), c.dst.AsSlice()
		corpus := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\n[]byte(%q)\n", c.payload, src, dst)
		if err := os.WriteFile(filepath.Join("testdata/fuzz/FuzzDecode", "keepalived_"+name), []byte(corpus), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %d captures to testdata", len(caps))
}

// needKernel skips the test (fails it when LEASEHOLD_STRICT=1) when it cannot
// create network namespaces or run the given programs.
func needKernel(t *testing.T, progs ...string) {
	t.Helper()
	var why string
	if os.Geteuid() != 0 {
		why = "needs root to create a network namespace"
	}
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil && why == "" {
			why = fmt.Sprintf("needs %s: %v", p, err)
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("LEASEHOLD_STRICT") == "1" {
		t.Fatal(why)
	}
	t.Skip(why)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// killPID sends SIGKILL to pid if it is still a process named comm.
func killPID(pid int, comm string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(b)) != comm {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// captureKeepalived runs keepalived (keepalivedConf) in a new network
// namespace until every instance has advertised as master, stops it with
// SIGTERM (so it sends priority-0 adverts) and returns every VRRP packet
// tcpdump saw on veth0.
func captureKeepalived(t *testing.T) []capture {
	keepalived := "/usr/sbin/keepalived"
	needKernel(t, "ip", "tcpdump", keepalived)
	dir := t.TempDir()
	ns := fmt.Sprintf("lh-cap-%d", rand.IntN(1<<30))
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	in := func(args ...string) []string { return append([]string{"netns", "exec", ns}, args...) }
	run(t, "ip", in("sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0")...)
	run(t, "ip", in("ip", "link", "set", "lo", "up")...)
	run(t, "ip", in("ip", "link", "add", "veth0", "type", "veth", "peer", "name", "veth1")...)
	run(t, "ip", in("ip", "link", "set", "veth0", "up")...)
	run(t, "ip", in("ip", "link", "set", "veth1", "up")...)
	run(t, "ip", in("ip", "addr", "add", "10.0.0.1/24", "dev", "veth0")...)
	// The unicast peer 10.0.0.2 exists nowhere: a static neighbour entry lets
	// the adverts leave veth0 without ARP.
	mac := strings.TrimSpace(run(t, "ip", in("cat", "/sys/class/net/veth1/address")...))
	run(t, "ip", in("ip", "neigh", "add", "10.0.0.2", "lladdr", mac, "dev", "veth0", "nud", "permanent")...)

	pcap := filepath.Join(dir, "vrrp.pcap")
	tcpdump := exec.Command("ip", in("tcpdump", "-i", "veth0", "-U", "-n", "-w", pcap, "ip proto 112 or ip6 proto 112")...)
	tdErr, err := tcpdump.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tcpdump.Start(); err != nil {
		t.Fatal(err)
	}
	tdPID := tcpdump.Process.Pid
	t.Cleanup(func() { killPID(tdPID, "tcpdump"); _ = tcpdump.Wait() })
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(tdErr)
		var all []string
		for sc.Scan() {
			all = append(all, sc.Text())
			if strings.Contains(sc.Text(), "listening on") {
				listening <- ""
			}
		}
		listening <- strings.Join(all, "\n")
	}()
	select {
	case msg := <-listening:
		if msg != "" {
			t.Fatalf("tcpdump: %s", msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tcpdump did not start listening")
	}

	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(keepalivedConf), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "keepalived.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	vrrpPIDFile := filepath.Join(dir, "vrrp.pid")
	ka := exec.Command("ip", in(keepalived, "--dont-fork", "--log-console", "--log-detail", "--vrrp",
		"-f", conf, "-p", filepath.Join(dir, "keepalived.pid"), "-r", vrrpPIDFile)...)
	ka.Stdout, ka.Stderr = logFile, logFile
	if err := ka.Start(); err != nil {
		t.Fatal(err)
	}
	kaPID := ka.Process.Pid // ip netns exec execs keepalived in place
	kaDone := make(chan error, 1)
	go func() { kaDone <- ka.Wait() }()
	t.Cleanup(func() {
		killPID(kaPID, "keepalived")
		if b, err := os.ReadFile(vrrpPIDFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				killPID(pid, "keepalived")
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("keepalived log:\n%s", b)
		}
	})

	// seen reports whether every VRID has advertised with priority prio
	// (0: released) or, with prio -1, with its configured priority.
	seen := func(prio int) bool {
		got := map[[2]uint8]bool{}
		for _, c := range readPcap(t, pcap) {
			if len(c.payload) >= 3 {
				got[[2]uint8{c.payload[1], c.payload[2]}] = true
			}
		}
		for vrid, w := range keepalivedVRIDs {
			p := uint8(prio)
			if prio < 0 {
				p = w.prio
			}
			if !got[[2]uint8{vrid, p}] {
				return false
			}
		}
		return true
	}
	// waitFor polls cond; exited (nil when not watched) reports an early
	// keepalived exit.
	waitFor := func(what string, timeout time.Duration, exited chan error, cond func() bool) {
		t.Helper()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(timeout)
		for !cond() {
			select {
			case <-tick.C:
			case err := <-exited:
				if !cond() {
					t.Fatalf("keepalived exited (%v) before %s", err, what)
				}
			case <-deadline:
				t.Fatalf("timed out after %v waiting for %s", timeout, what)
			}
		}
	}
	// Instances with advert_int 1 become master after 3 s + skew.
	waitFor("every instance to advertise as master", 20*time.Second, kaDone, func() bool { return seen(-1) })
	if err := syscall.Kill(kaPID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-kaDone:
		if err != nil {
			t.Errorf("keepalived exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("keepalived did not stop on SIGTERM")
	}
	waitFor("priority-0 adverts", 5*time.Second, nil, func() bool { return seen(0) })
	_ = tcpdump.Process.Signal(syscall.SIGINT)
	return readPcap(t, pcap)
}

// readPcap returns the IPv4/IPv6 VRRP packets of an Ethernet pcap file,
// ignoring a partially written last record.
func readPcap(t *testing.T, path string) []capture {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 24 {
		return nil
	}
	var bo binary.ByteOrder
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo = binary.LittleEndian
	default:
		bo = binary.BigEndian
	}
	if lt := bo.Uint32(b[20:24]); lt != 1 {
		t.Fatalf("%s: link type %d, want Ethernet", path, lt)
	}
	var out []capture
	for p := b[24:]; len(p) >= 16; {
		n := int(bo.Uint32(p[8:12]))
		if len(p) < 16+n {
			break
		}
		frame := p[16 : 16+n]
		p = p[16+n:]
		if len(frame) < 14 {
			continue
		}
		ip := frame[14:]
		c := capture{name: fmt.Sprintf("%s#%d", filepath.Base(path), len(out))}
		switch binary.BigEndian.Uint16(frame[12:14]) {
		case 0x0800:
			if len(ip) < 20 || ip[9] != IPProtoVRRP {
				continue
			}
			ihl, total := int(ip[0]&0x0f)*4, int(binary.BigEndian.Uint16(ip[2:4]))
			if total > len(ip) || ihl > total {
				continue
			}
			c.ttl = int(ip[8])
			c.src, c.dst = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
			c.payload = slices.Clone(ip[ihl:total])
		case 0x86dd:
			if len(ip) < 40 || ip[6] != IPProtoVRRP {
				continue
			}
			plen := int(binary.BigEndian.Uint16(ip[4:6]))
			if 40+plen > len(ip) {
				continue
			}
			c.ttl = int(ip[7])
			c.src, c.dst = netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
			c.payload = slices.Clone(ip[40 : 40+plen])
		default:
			continue
		}
		out = append(out, c)
	}
	return out
}

// An IPv4-mapped address is 16 bytes in an IPv6 advert, 4 in an IPv4 one.
func TestEncodeMappedAddrs(t *testing.T) {
	mapped := netip.MustParseAddr("::ffff:192.0.2.1")
	for _, tc := range []struct {
		src, dst netip.Addr
		want     netip.Addr
		len      int
	}{{src6, GroupV6, mapped, 8 + 16}, {src4, GroupV4, mapped.Unmap(), 8 + 4}} {
		a := &Advert{Version: 3, VRID: 1, Priority: 1, Interval: time.Second, Addrs: []netip.Addr{mapped}}
		b := mustEncode(t, a, tc.src, tc.dst, EncodeOptions{})
		var got Advert
		if r := Decode(b, tc.src, tc.dst, &got); r != DropNone || len(b) != tc.len || len(got.Addrs) != 1 || got.Addrs[0] != tc.want {
			t.Errorf("%v: %v len %d %v", tc.src, r, len(b), got.Addrs)
		}
	}
}
