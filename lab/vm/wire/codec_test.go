package wire

import (
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

// The IPv4 header checksum of a textbook header (Wikipedia, "IPv4 header
// checksum"): 0xb861.
func TestChecksumKnownHeader(t *testing.T) {
	h, _ := hex.DecodeString("450000730000400040110000c0a80001c0a800c7")
	if got := checksum(0, h); got != 0xb861 {
		t.Fatalf("checksum = %#04x, want 0xb861", got)
	}
	h[10], h[11] = 0xb8, 0x61
	if got := checksum(0, h); got != 0 {
		t.Fatalf("checksum over a correct header = %#04x, want 0", got)
	}
}

func TestTCPFrameRoundTrip(t *testing.T) {
	src := netip.MustParseAddrPort("10.66.0.250:40000")
	dst := netip.MustParseAddrPort("10.66.0.100:9000")
	for _, flags := range []uint8{tcpSYN, tcpSYN | tcpACK, tcpRST, tcpRST | tcpACK} {
		b, err := tcpFrame(macA, macB, src, dst, 0xfffffff0, 17, flags, 99)
		if err != nil {
			t.Fatal(err)
		}
		var e ethernet.Frame
		if err := e.UnmarshalBinary(b); err != nil || !independentChecksumsOK(e.Payload) {
			t.Fatalf("flags %#x: frame %x fails the independent checksum check (%v)", flags, b, err)
		}
		s, drop := parseTCP(b)
		if drop != "" || s.Src != src || s.Dst != dst || s.Seq != 0xfffffff0 || s.Ack != 17 || s.Flags != flags ||
			!sameMAC(s.EthSrc, macA) || !sameMAC(s.EthDst, macB) {
			t.Errorf("flags %#x: parsed %+v, drop %q", flags, s, drop)
		}
	}
}

func TestParseTCPDrops(t *testing.T) {
	src := netip.MustParseAddrPort("10.66.0.250:40000")
	dst := netip.MustParseAddrPort("10.66.0.100:9000")
	good, _ := tcpFrame(macA, macB, src, dst, 1, 0, tcpSYN, 1)
	arpF, _ := arpFrame(ethernet.Broadcast, arp.OperationRequest, macA, vip, nil, vip)
	mutate := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	const ip, tcp = 14, 14 + 20
	// reSum fixes the IPv4 header checksum after a change to the header.
	reSum := func(b []byte) {
		b[ip+10], b[ip+11] = 0, 0
		c := checksum(0, b[ip:ip+20])
		b[ip+10], b[ip+11] = byte(c>>8), byte(c)
	}
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"short", good[:10], dropEthernet},
		{"arp", arpF, dropNotIPv4},
		{"version", mutate(func(b []byte) { b[ip] = 0x65 }), dropIPv4},
		{"length", mutate(func(b []byte) { b[ip+2] = 0xff }), dropIPv4},
		{"ip checksum", mutate(func(b []byte) { b[ip+8] = 1 }), dropIPSum},
		{"fragment", mutate(func(b []byte) { b[ip+6] = 0x20; reSum(b) }), dropFragment},
		{"udp", mutate(func(b []byte) { b[ip+9] = 17; reSum(b) }), dropNotTCP},
		{"tcp checksum", mutate(func(b []byte) { b[tcp+4] ^= 1 }), dropTCPSum},
		{"data offset", mutate(func(b []byte) { b[tcp+12] = 0xf0 }), dropTCP},
	} {
		if _, drop := parseTCP(c.b); drop != c.want {
			t.Errorf("%s: drop %q, want %q", c.name, drop, c.want)
		}
	}
}

func TestClassifyARP(t *testing.T) {
	self := newMAC()
	other := netip.MustParseAddr("10.66.0.7")
	frame := func(op arp.Operation, hw []byte, sip netip.Addr, thw []byte, tip netip.Addr) []byte {
		b, err := arpFrame(ethernet.Broadcast, op, hw, sip, thw, tip)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, c := range []struct {
		name string
		b    []byte
		want arpKind
	}{
		{"answer", frame(arp.OperationReply, macA, vip, self, netip.IPv4Unspecified()), arpAnswer},
		{"garp request", frame(arp.OperationRequest, macA, vip, nil, vip), arpAnnounce},
		{"garp reply", frame(arp.OperationReply, macA, vip, ethernet.Broadcast, vip), arpAnnounce},
		{"our own probe", frame(arp.OperationRequest, self, netip.IPv4Unspecified(), nil, vip), arpOther},
		{"our own announcement", frame(arp.OperationRequest, self, vip, nil, vip), arpOther},
		{"reply to another", frame(arp.OperationReply, macA, vip, macX, other), arpOther},
		{"request from the vip", frame(arp.OperationRequest, macA, vip, nil, other), arpOther},
		{"another address", frame(arp.OperationReply, macA, other, self, vip), arpOther},
		{"not arp", []byte("garbage"), arpOther},
	} {
		if got, _ := classifyARP(c.b, vip, self); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func FuzzParseTCP(f *testing.F) {
	src := netip.MustParseAddrPort("10.66.0.250:40000")
	dst := netip.MustParseAddrPort("10.66.0.100:9000")
	good, _ := tcpFrame(macA, macB, src, dst, 1, 0, tcpSYN, 1)
	f.Add(good)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, drop := parseTCP(b)
		if drop != "" {
			return
		}
		// What parses re-encodes (without options) to a frame that parses
		// the same.
		flags := s.Flags &^ tcpSYN
		out, err := tcpFrame(s.EthSrc, s.EthDst, s.Src, s.Dst, s.Seq, s.Ack, flags, 1)
		if err != nil {
			return
		}
		back, drop := parseTCP(out)
		if drop != "" || back.Src != s.Src || back.Dst != s.Dst || back.Seq != s.Seq || back.Ack != s.Ack {
			t.Fatalf("round trip of %+v: %+v %q", s, back, drop)
		}
	})
}

func FuzzClassifyARP(f *testing.F) {
	b, _ := arpFrame(ethernet.Broadcast, arp.OperationRequest, macA, vip, nil, vip)
	f.Add(b)
	self := newMAC()
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, mac := classifyARP(b, vip, self)
		if (kind == arpOther) != (mac == nil) {
			t.Fatalf("kind %v with mac %v", kind, mac)
		}
	})
}
