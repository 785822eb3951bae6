package wire

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

// Frame encoding and decoding: pure functions, no IO. Parsers return a
// drop reason ("" when the frame is what was asked for) that tests assert
// on.

// Drop reasons.
const (
	dropEthernet = "bad ethernet frame"
	dropNotARP   = "not arp"
	dropARP      = "bad arp packet"
	dropNotIPv4  = "not ipv4"
	dropIPv4     = "bad ipv4 header"
	dropIPSum    = "bad ipv4 checksum"
	dropFragment = "ipv4 fragment"
	dropNotTCP   = "not tcp"
	dropTCP      = "bad tcp header"
	dropTCPSum   = "bad tcp checksum"
)

// TCP flags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// newMAC returns a random locally administered unicast MAC (02:…).
func newMAC() net.HardwareAddr {
	m := make(net.HardwareAddr, 6)
	rand.Read(m)
	m[0] = 0x02
	return m
}

// arpFrame builds an ARP packet in an Ethernet frame to dst.
func arpFrame(dst net.HardwareAddr, op arp.Operation, senderHW net.HardwareAddr, senderIP netip.Addr, targetHW net.HardwareAddr, targetIP netip.Addr) ([]byte, error) {
	if targetHW == nil {
		targetHW = make(net.HardwareAddr, 6)
	}
	p, err := arp.NewPacket(op, senderHW, senderIP, targetHW, targetIP)
	if err != nil {
		return nil, err
	}
	pb, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return (&ethernet.Frame{Destination: dst, Source: senderHW, EtherType: ethernet.EtherTypeARP, Payload: pb}).MarshalBinary()
}

// arpMsg is a decoded ARP frame.
type arpMsg struct {
	EthSrc, EthDst net.HardwareAddr
	arp.Packet
}

// gratuitous reports whether m announces its sender address (sender IP =
// target IP), request or reply.
func (m *arpMsg) gratuitous() bool { return m.SenderIP == m.TargetIP }

// parseARP decodes an Ethernet frame carrying an IPv4-over-Ethernet ARP
// packet.
func parseARP(b []byte) (arpMsg, string) {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(b); err != nil {
		return arpMsg{}, dropEthernet
	}
	if f.EtherType != ethernet.EtherTypeARP {
		return arpMsg{}, dropNotARP
	}
	var m arpMsg
	if err := m.Packet.UnmarshalBinary(f.Payload); err != nil || !m.SenderIP.Is4() || !m.TargetIP.Is4() {
		return arpMsg{}, dropARP
	}
	m.EthSrc, m.EthDst = f.Source, f.Destination
	return m, ""
}

// tcpSeg is a decoded TCP segment in an IPv4 packet in an Ethernet frame.
type tcpSeg struct {
	EthSrc, EthDst net.HardwareAddr
	Src, Dst       netip.AddrPort
	Seq, Ack       uint32
	Flags          uint8
}

// has reports whether all of flags are set.
func (t *tcpSeg) has(flags uint8) bool { return t.Flags&flags == flags }

const (
	ipv4HeaderLen = 20
	tcpHeaderLen  = 20
	// mssOption is the only option of our SYNs: MSS 1460.
	mssLen = 4
)

// tcpFrame builds an IPv4 TCP segment without payload in an Ethernet
// frame; a SYN carries an MSS option.
func tcpFrame(srcMAC, dstMAC net.HardwareAddr, src, dst netip.AddrPort, seq, ack uint32, flags uint8, ipID uint16) ([]byte, error) {
	optLen := 0
	if flags&tcpSYN != 0 {
		optLen = mssLen
	}
	tl := tcpHeaderLen + optLen
	pkt := make([]byte, ipv4HeaderLen+tl)
	ip := pkt[:ipv4HeaderLen]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(pkt)))
	binary.BigEndian.PutUint16(ip[4:], ipID)
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
	ip[8] = 64
	ip[9] = 6 // TCP
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(0, ip))

	t := pkt[ipv4HeaderLen:]
	binary.BigEndian.PutUint16(t[0:], src.Port())
	binary.BigEndian.PutUint16(t[2:], dst.Port())
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], ack)
	t[12] = byte(tl/4) << 4
	t[13] = flags
	if flags&tcpRST == 0 {
		binary.BigEndian.PutUint16(t[14:], 64240)
	}
	if optLen > 0 {
		copy(t[tcpHeaderLen:], []byte{2, 4, 0x05, 0xb4}) // MSS 1460
	}
	binary.BigEndian.PutUint16(t[16:], checksum(pseudoHeaderSum(ip, len(t)), t))
	return (&ethernet.Frame{Destination: dstMAC, Source: srcMAC, EtherType: ethernet.EtherTypeIPv4, Payload: pkt}).MarshalBinary()
}

// parseTCP decodes an Ethernet frame carrying an unfragmented IPv4 TCP
// segment, checking both checksums.
func parseTCP(b []byte) (tcpSeg, string) {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(b); err != nil {
		return tcpSeg{}, dropEthernet
	}
	if f.EtherType != ethernet.EtherTypeIPv4 {
		return tcpSeg{}, dropNotIPv4
	}
	p := f.Payload
	if len(p) < ipv4HeaderLen || p[0]>>4 != 4 {
		return tcpSeg{}, dropIPv4
	}
	ihl := int(p[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(p[2:]))
	if ihl < ipv4HeaderLen || total < ihl || total > len(p) {
		return tcpSeg{}, dropIPv4
	}
	ip := p[:ihl]
	if checksum(0, ip) != 0 {
		return tcpSeg{}, dropIPSum
	}
	if binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 { // MF or an offset
		return tcpSeg{}, dropFragment
	}
	if ip[9] != 6 {
		return tcpSeg{}, dropNotTCP
	}
	t := p[ihl:total]
	if len(t) < tcpHeaderLen || int(t[12]>>4)*4 < tcpHeaderLen || int(t[12]>>4)*4 > len(t) {
		return tcpSeg{}, dropTCP
	}
	if checksum(pseudoHeaderSum(ip, len(t)), t) != 0 {
		return tcpSeg{}, dropTCPSum
	}
	srcIP, _ := netip.AddrFromSlice(ip[12:16])
	dstIP, _ := netip.AddrFromSlice(ip[16:20])
	return tcpSeg{
		EthSrc: f.Source,
		EthDst: f.Destination,
		Src:    netip.AddrPortFrom(srcIP, binary.BigEndian.Uint16(t[0:])),
		Dst:    netip.AddrPortFrom(dstIP, binary.BigEndian.Uint16(t[2:])),
		Seq:    binary.BigEndian.Uint32(t[4:]),
		Ack:    binary.BigEndian.Uint32(t[8:]),
		Flags:  t[13],
	}, ""
}

// pseudoHeaderSum is the unfolded one's-complement sum of the TCP
// pseudo-header of a segment of length n in the IPv4 packet with header
// ip.
func pseudoHeaderSum(ip []byte, n int) uint32 {
	var ph [12]byte
	copy(ph[0:8], ip[12:20])
	ph[9] = ip[9]
	binary.BigEndian.PutUint16(ph[10:], uint16(n))
	return sum(0, ph[:])
}

// checksum returns the Internet checksum (RFC 1071) of b, starting from
// the partial sum initial. Over data that includes a correct checksum it
// returns 0.
func checksum(initial uint32, b []byte) uint16 {
	s := sum(initial, b)
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func sum(s uint32, b []byte) uint32 {
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

// sameMAC compares hardware addresses.
func sameMAC(a, b net.HardwareAddr) bool { return bytes.Equal(a, b) }
