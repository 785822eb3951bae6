package vrrp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"sync"
	"time"
)

// Authenticated adverts between leasehold nodes (issue 14), in the spirit
// of VRRPv2's IPsec AH and CARP: a trailer after the advert carries a
// sender counter and an HMAC-SHA-256, truncated to 128 bits, keyed with a
// secret the group's nodes share. keepalived does not speak it (it drops
// such adverts: their length does not match the address count); use the
// existing auth types for keepalived interop.
//
// Wire format, appended to an encoded advert (v2 or v3, the VRRP checksum
// covering the advert only):
//
//	0      4                12                         28
//	+------+----------------+--------------------------+
//	| LHM1 | counter (BE64) | HMAC-SHA-256(key, ...)[:16] |
//	+------+----------------+--------------------------+
//
// The MAC covers "leasehold vrrp hmac v1\x00", the IP source and
// destination (16 bytes each, IPv4 mapped), the advert, the magic and the
// counter: a captured advert re-sent from another source (a spoofed member)
// does not verify. The counter is the sender's clock in microseconds since
// the Unix epoch, strictly increasing per sender (the next is
// max(last+1, now)). A receiver accepts a counter only above the last it
// accepted from that source, and, for a source it has not heard since it
// started, only within ReplayWindow of its own clock: a replayed advert is
// refused, and an old capture cannot be replayed to a restarted receiver.
// Nodes need clocks within ReplayWindow of each other (NTP).
const (
	// TrailerLen is the length of the HMAC trailer.
	TrailerLen = 4 + 8 + MACLen
	// MACLen is the truncated HMAC-SHA-256's length.
	MACLen = 16
	// MinKeyLen is the shortest key accepted.
	MinKeyLen = 16
	// ReplayWindow bounds the age (and the lead) of the first counter
	// accepted from a source.
	ReplayWindow = 30 * time.Second
)

var (
	trailerMagic = [4]byte{'L', 'H', 'M', '1'}
	macContext   = []byte("leasehold vrrp hmac v1\x00")
)

// mac computes the truncated HMAC of an advert.
func mac(key, advert []byte, src, dst netip.Addr, head []byte) [MACLen]byte {
	h := hmac.New(sha256.New, key)
	h.Write(macContext)
	s, d := src.WithZone("").As16(), dst.WithZone("").As16() // IPv4 mapped
	h.Write(s[:])
	h.Write(d[:])
	h.Write(advert)
	h.Write(head)
	var out [MACLen]byte
	copy(out[:], h.Sum(nil))
	return out
}

// AppendMAC appends the HMAC trailer for an encoded advert b sent from
// src to dst with counter, and returns the extended slice.
func AppendMAC(b, key []byte, src, dst netip.Addr, counter uint64) []byte {
	n := len(b)
	b = append(b, trailerMagic[:]...)
	b = binary.BigEndian.AppendUint64(b, counter)
	m := mac(key, b[:n], src, dst, b[n:])
	return append(b, m[:]...)
}

// CutTrailer splits a received VRRP payload into the advert and its HMAC
// trailer (nil if it has none). A payload has a trailer when it is exactly
// TrailerLen longer than its header's address count says, and the trailer
// starts with the magic; anything else is returned whole, for Decode to
// judge.
func CutTrailer(b []byte, six bool) (advert, trailer []byte) {
	if len(b) < headerLen+TrailerLen {
		return b, nil
	}
	alen, auth := 4, 0
	if six {
		alen = 16
	}
	if b[0]>>4 == 2 {
		auth = AuthDataLen
	}
	n := headerLen + int(b[3])*alen + auth
	if len(b) != n+TrailerLen || [4]byte(b[n:n+4]) != trailerMagic {
		return b, nil
	}
	return b[:n:n], b[n:]
}

// VerifyMAC checks an advert's trailer with key; it returns the sender's
// counter, or DropMACMissing / DropBadMAC.
func VerifyMAC(advert, trailer, key []byte, src, dst netip.Addr) (uint64, DropReason) {
	if len(trailer) != TrailerLen || [4]byte(trailer[:4]) != trailerMagic {
		return 0, DropMACMissing
	}
	want := mac(key, advert, src, dst, trailer[:12])
	if !hmac.Equal(want[:], trailer[12:]) {
		return 0, DropBadMAC
	}
	return binary.BigEndian.Uint64(trailer[4:12]), DropNone
}

// maxReplaySources bounds the senders a ReplayGuard remembers; they all
// hold the key.
const maxReplaySources = 256

// ReplayGuard keeps the last counter accepted per source. The zero value
// is ready; it is safe for concurrent use.
type ReplayGuard struct {
	mu   sync.Mutex
	last map[netip.Addr]uint64
}

// Accept reports whether counter from src is fresh at now, and records it.
func (g *ReplayGuard) Accept(src netip.Addr, counter uint64, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	src = src.Unmap().WithZone("")
	last, seen := g.last[src]
	if seen {
		if counter <= last {
			return false
		}
	} else {
		at := time.UnixMicro(int64(counter))
		if counter > 1<<62 || at.Before(now.Add(-ReplayWindow)) || at.After(now.Add(ReplayWindow)) {
			return false
		}
		if g.last == nil {
			g.last = map[netip.Addr]uint64{}
		}
		if len(g.last) >= maxReplaySources {
			clear(g.last)
		}
	}
	g.last[src] = counter
	return true
}

// Counter issues a sender's strictly increasing counters. The zero value
// is ready; it is safe for concurrent use.
type Counter struct {
	mu   sync.Mutex
	last uint64
}

// Next returns the counter for an advert sent at now.
func (c *Counter) Next(now time.Time) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = max(c.last+1, uint64(now.UnixMicro()))
	return c.last
}
