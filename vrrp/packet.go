package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Wire constants shared by the codec and its callers.
const (
	// IPProtoVRRP is the IP protocol number (IPv4) / next header (IPv6) of VRRP.
	IPProtoVRRP = 112
	// RequiredTTL is the IPv4 TTL / IPv6 hop limit VRRP packets are sent with
	// and must arrive with (RFC 3768 7.1, RFC 9568 7.1).
	RequiredTTL = 255

	// TypeAdvertisement is the only VRRP packet type.
	TypeAdvertisement = 1

	// AuthNone, AuthPass and AuthAH are the VRRPv2 authentication types
	// (RFC 2338 5.3.6; RFC 3768 keeps the field). AuthAH is carried on the wire
	// but leasehold does not implement IPsec AH.
	AuthNone = 0
	AuthPass = 1
	AuthAH   = 2

	// AuthDataLen is the size of the VRRPv2 authentication data trailer.
	AuthDataLen = 8

	headerLen = 8
)

// Group addresses VRRP adverts are sent to when no unicast peers are set.
var (
	GroupV4 = netip.AddrFrom4([4]byte{224, 0, 0, 18})
	GroupV6 = netip.MustParseAddr("ff02::12")
)

// ErrInvalidAdvert is returned (wrapped) by Encode when an Advert cannot be
// represented on the wire.
var ErrInvalidAdvert = errors.New("vrrp: invalid advert")

// ChecksumMode says how the checksum of a received advert was computed.
type ChecksumMode uint8

const (
	// ChecksumPseudo: with the IP pseudo-header (src, dst, proto, length):
	// RFC 5798/9568 VRRPv3, keepalived's default for v3.
	ChecksumPseudo ChecksumMode = iota
	// ChecksumPlain: over the VRRP packet only. Always so for VRRPv2; for
	// VRRPv3 over IPv4 it is the compatibility mode of implementations that
	// checksum v3 like v2.
	ChecksumPlain
	// ChecksumPseudoGroupDst: VRRPv3 over IPv4 unicast with the pseudo-header
	// built from the multicast group 224.0.0.18 instead of the real destination:
	// keepalived before 1.3.6 (its `old_unicast_checksum` compatibility).
	ChecksumPseudoGroupDst
)

// String returns a stable name for logs.
func (m ChecksumMode) String() string {
	switch m {
	case ChecksumPseudo:
		return "pseudo"
	case ChecksumPlain:
		return "plain"
	case ChecksumPseudoGroupDst:
		return "pseudo_group_dst"
	}
	return fmt.Sprintf("checksum_mode(%d)", uint8(m))
}

// Advert is one decoded VRRP advertisement (the IP payload, not the IP header).
// The address family is that of the IP header (src/dst given to Encode and
// Decode): IPv4 adverts carry 4-byte addresses, IPv6 adverts (always VRRPv3)
// 16-byte ones.
type Advert struct {
	Version  uint8 // 2 or 3
	VRID     uint8
	Priority uint8 // 0: the master releases; 255: address owner
	// AuthType is the VRRPv2 authentication type (AuthNone, AuthPass, AuthAH).
	// Always 0 for VRRPv3.
	AuthType uint8
	// Interval is the advertisement interval: whole seconds for VRRPv2
	// (0–255 s), a multiple of 10 ms for VRRPv3 (0–40.95 s).
	Interval time.Duration
	Addrs    []netip.Addr
	// AuthData is the VRRPv2 authentication data (for AuthPass the password,
	// see PassAuth). Always zero for VRRPv3.
	AuthData [AuthDataLen]byte
	// Checksum is the checksum as found on the wire by Decode; Encode ignores
	// it and computes its own.
	Checksum uint16
	// ChecksumMode is set by Decode to the way the checksum verified.
	ChecksumMode ChecksumMode
}

// PassAuth returns the VRRPv2 simple-text authentication data for password s
// the way keepalived builds it: the first 8 bytes of s, zero padded.
// "12345678910" and "12345678" give the same data.
func PassAuth(s string) [AuthDataLen]byte {
	var d [AuthDataLen]byte
	copy(d[:], s)
	return d
}

// EncodeOptions select compatibility variants of the wire format.
type EncodeOptions struct {
	// V3ChecksumNoPseudo computes the VRRPv3-over-IPv4 checksum over the VRRP
	// packet only, like VRRPv2 (ChecksumPlain). Ignored for v2 and IPv6.
	V3ChecksumNoPseudo bool
	// V3ChecksumGroupDst builds the VRRPv3-over-IPv4 pseudo-header with
	// 224.0.0.18 as destination whatever dst is (ChecksumPseudoGroupDst,
	// keepalived's old_unicast_checksum). Ignored when V3ChecksumNoPseudo is
	// set, for v2 and for IPv6.
	V3ChecksumGroupDst bool
}

// OptionsFor returns the EncodeOptions that reproduce checksum mode m.
func OptionsFor(m ChecksumMode) EncodeOptions {
	switch m {
	case ChecksumPlain:
		return EncodeOptions{V3ChecksumNoPseudo: true}
	case ChecksumPseudoGroupDst:
		return EncodeOptions{V3ChecksumGroupDst: true}
	}
	return EncodeOptions{}
}

// family returns 4 or 6 for a valid src/dst pair of one family, 0 otherwise.
func family(src, dst netip.Addr) int {
	src, dst = src.Unmap(), dst.Unmap()
	switch {
	case src.Is4() && dst.Is4():
		return 4
	case src.Is6() && dst.Is6():
		return 6
	}
	return 0
}

// Encode appends the VRRP payload of a (sent from src to dst) to b and
// returns the extended slice. It computes the checksum (a.Checksum is ignored)
// and does not modify a. Any Advert that Decode returns encodes without error.
func Encode(b []byte, a *Advert, src, dst netip.Addr, opts EncodeOptions) ([]byte, error) {
	fam := family(src, dst)
	if fam == 0 {
		return b, fmt.Errorf("%w: src %v and dst %v are not one IP family", ErrInvalidAdvert, src, dst)
	}
	var intervalField uint16
	switch a.Version {
	case 2:
		if fam == 6 {
			return b, fmt.Errorf("%w: VRRPv2 over IPv6", ErrInvalidAdvert)
		}
		if a.AuthType > AuthAH {
			return b, fmt.Errorf("%w: unknown auth type %d", ErrInvalidAdvert, a.AuthType)
		}
		if a.Interval < 0 || a.Interval > 255*time.Second || a.Interval%time.Second != 0 {
			return b, fmt.Errorf("%w: VRRPv2 interval %v is not 0–255 whole seconds", ErrInvalidAdvert, a.Interval)
		}
		intervalField = uint16(a.Interval / time.Second)
	case 3:
		if a.AuthType != 0 || a.AuthData != [AuthDataLen]byte{} {
			return b, fmt.Errorf("%w: VRRPv3 has no authentication", ErrInvalidAdvert)
		}
		cs := 10 * time.Millisecond
		if a.Interval < 0 || a.Interval > 0xfff*cs || a.Interval%cs != 0 {
			return b, fmt.Errorf("%w: VRRPv3 interval %v is not 0–40.95 s in centiseconds", ErrInvalidAdvert, a.Interval)
		}
		intervalField = uint16(a.Interval / cs)
	default:
		return b, fmt.Errorf("%w: version %d", ErrInvalidAdvert, a.Version)
	}
	if len(a.Addrs) > 255 {
		return b, fmt.Errorf("%w: %d addresses (max 255)", ErrInvalidAdvert, len(a.Addrs))
	}

	start := len(b)
	var hdr [headerLen]byte
	hdr[0] = a.Version<<4 | TypeAdvertisement
	hdr[1] = a.VRID
	hdr[2] = a.Priority
	hdr[3] = uint8(len(a.Addrs))
	if a.Version == 2 {
		hdr[4] = a.AuthType
		hdr[5] = uint8(intervalField)
	} else {
		binary.BigEndian.PutUint16(hdr[4:6], intervalField)
	}
	b = append(b, hdr[:]...)
	for _, ad := range a.Addrs {
		if fam == 4 {
			// Accept ::ffff:a.b.c.d for a.b.c.d; in an IPv6 advert a mapped
			// address is just 16 bytes.
			ad = ad.Unmap()
		}
		if (fam == 4) != ad.Is4() || ad.Zone() != "" {
			b = b[:start]
			return b, fmt.Errorf("%w: address %v in an IPv%d advert", ErrInvalidAdvert, ad, fam)
		}
		if fam == 4 {
			a4 := ad.As4()
			b = append(b, a4[:]...)
		} else {
			a16 := ad.As16()
			b = append(b, a16[:]...)
		}
	}
	if a.Version == 2 {
		b = append(b, a.AuthData[:]...)
	}
	pkt := b[start:]
	var sum uint32
	switch {
	case a.Version == 2, fam == 4 && opts.V3ChecksumNoPseudo:
	case fam == 4 && opts.V3ChecksumGroupDst:
		sum = pseudoSum(src, GroupV4, len(pkt))
	default:
		sum = pseudoSum(src, dst, len(pkt))
	}
	binary.BigEndian.PutUint16(pkt[6:8], ^fold(sumBytes(sum, pkt)))
	return b, nil
}

// Decode parses the VRRP payload b of an IP packet from src to dst into out
// and returns DropNone, or why the packet must be dropped (out is then
// unspecified). It checks what the packet alone tells: length, version
// (VRRPv2 only over IPv4), type, address count against length, checksum
// (VRRPv3 over IPv4 accepts every ChecksumMode and reports the one that
// matched) and that a VRRPv2 auth type is known. Whether the advert is for
// us is Expect.Check's business.
//
// Decode does not allocate when cap(out.Addrs) is at least the address count:
// it reuses out.Addrs' backing array. b is not retained.
func Decode(b []byte, src, dst netip.Addr, out *Advert) DropReason {
	fam := family(src, dst)
	if fam == 0 {
		return DropBadAddrFamily
	}
	if len(b) < headerLen {
		return DropTruncated
	}
	version := b[0] >> 4
	switch version {
	case 2:
		if fam == 6 {
			return DropBadVersion
		}
	case 3:
	default:
		return DropBadVersion
	}
	if b[0]&0x0f != TypeAdvertisement {
		return DropBadType
	}
	alen := 4
	if fam == 6 {
		alen = 16
	}
	trailer := 0
	if version == 2 {
		trailer = AuthDataLen
	}
	if len(b) < headerLen+trailer {
		return DropTruncated
	}
	n := int(b[3])
	if len(b) != headerLen+n*alen+trailer {
		return DropAddrCountMismatch
	}

	// Checksum: a correct packet sums (ones' complement) to 0xffff.
	plain := sumBytes(0, b)
	switch {
	case version == 2:
		if fold(plain) != 0xffff {
			return DropBadChecksum
		}
		out.ChecksumMode = ChecksumPlain
	case fam == 6:
		if fold(pseudoSum(src, dst, len(b))+plain) != 0xffff {
			return DropBadChecksum
		}
		out.ChecksumMode = ChecksumPseudo
	case fold(pseudoSum(src, dst, len(b))+plain) == 0xffff:
		out.ChecksumMode = ChecksumPseudo
	case fold(plain) == 0xffff:
		out.ChecksumMode = ChecksumPlain
	case dst.Unmap() != GroupV4 && fold(pseudoSum(src, GroupV4, len(b))+plain) == 0xffff:
		out.ChecksumMode = ChecksumPseudoGroupDst
	default:
		return DropBadChecksum
	}

	if version == 2 {
		if b[4] > AuthAH {
			return DropBadAuthType
		}
		out.AuthType = b[4]
		out.Interval = time.Duration(b[5]) * time.Second
		copy(out.AuthData[:], b[len(b)-AuthDataLen:])
	} else {
		out.AuthType = 0
		// The top 4 bits are reserved: sent as zero, ignored on receipt.
		out.Interval = time.Duration(binary.BigEndian.Uint16(b[4:6])&0x0fff) * 10 * time.Millisecond
		out.AuthData = [AuthDataLen]byte{}
	}
	out.Version = version
	out.VRID = b[1]
	out.Priority = b[2]
	out.Checksum = binary.BigEndian.Uint16(b[6:8])
	out.Addrs = out.Addrs[:0]
	p := b[headerLen:]
	for i := 0; i < n; i++ {
		if fam == 4 {
			out.Addrs = append(out.Addrs, netip.AddrFrom4([4]byte(p[:4])))
		} else {
			out.Addrs = append(out.Addrs, netip.AddrFrom16([16]byte(p[:16])))
		}
		p = p[alen:]
	}
	return DropNone
}

// Expect is what a virtual router accepts from its peers.
type Expect struct {
	Version uint8 // 2 or 3
	VRID    uint8
	// AuthType and AuthData: VRRPv2 only (see PassAuth); ignored for v3.
	AuthType uint8
	AuthData [AuthDataLen]byte
	// Interval is the configured advertisement interval. A VRRPv2 advert with
	// another interval is dropped (RFC 3768 7.1); a VRRPv3 backup learns the
	// master's interval instead, so for v3 it is not compared.
	Interval time.Duration
	// CheckTTL drops multicast adverts whose TTL/hop limit is not 255. As in
	// keepalived, unicast adverts (which may be routed) are not checked unless
	// CheckUnicastTTL is also set.
	CheckTTL        bool
	CheckUnicastTTL bool
}

// Check decides whether advert a, received with IP TTL/hop limit ttl (-1 when
// unknown) to a multicast (true) or unicast destination, belongs to the
// virtual router e describes. It returns DropNone or the reason; DropOtherVRID
// means "for another virtual router", which is normal on a shared LAN.
// A priority of 0 is valid (the master releases). An unknown TTL fails a TTL
// check.
func (e *Expect) Check(a *Advert, ttl int, multicast bool) DropReason {
	if e.CheckTTL && (multicast || e.CheckUnicastTTL) && ttl != RequiredTTL {
		return DropBadTTL
	}
	if a.VRID != e.VRID {
		return DropOtherVRID
	}
	if a.Version != e.Version {
		return DropVersionMismatch
	}
	if a.Version == 2 {
		if a.AuthType != e.AuthType {
			return DropAuthTypeMismatch
		}
		if a.AuthType == AuthPass && a.AuthData != e.AuthData {
			return DropAuthMismatch
		}
		if a.Interval != e.Interval {
			return DropIntervalMismatch
		}
	}
	if a.Interval <= 0 {
		return DropBadInterval
	}
	return DropNone
}

// pseudoSum returns the unfolded ones'-complement sum of the IPv4 or IPv6
// pseudo-header for a VRRP packet of length n from src to dst.
func pseudoSum(src, dst netip.Addr, n int) uint32 {
	src, dst = src.Unmap(), dst.Unmap()
	var s uint32
	if src.Is4() {
		a, d := src.As4(), dst.As4()
		s = sum16(a[:]) + sum16(d[:])
		// zero byte + protocol, then the 16-bit length.
		s += IPProtoVRRP + uint32(n)
		return s
	}
	a, d := src.As16(), dst.As16()
	s = sum16(a[:]) + sum16(d[:])
	// 32-bit upper-layer length, 3 zero bytes, next header.
	s += uint32(n>>16) + uint32(n&0xffff) + IPProtoVRRP
	return s
}

// sum16 adds the big-endian 16-bit words of an even-length b.
func sum16(b []byte) uint32 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	return s
}

// sumBytes adds b (padded with a zero byte if odd) to the running sum s.
// VRRP packets are at most 8+255*16+8 bytes, far from overflowing 32 bits.
func sumBytes(s uint32, b []byte) uint32 {
	s += sum16(b)
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

// fold reduces a 32-bit sum to 16 bits with end-around carry.
func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}
