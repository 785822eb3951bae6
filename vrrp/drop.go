package vrrp

import (
	"fmt"
	"sync/atomic"
)

// DropReason says why a received packet was not accepted. The zero value,
// DropNone, means accepted. Values and names are stable (metrics labels):
// new reasons are only ever appended.
type DropReason uint8

const (
	DropNone DropReason = iota
	// Decode: the packet alone is malformed.
	DropTruncated         // shorter than the fixed header (+ v2 auth data)
	DropBadVersion        // not 2 or 3, or VRRPv2 over IPv6
	DropBadType           // not an advertisement (type 1)
	DropBadChecksum       // checksum does not verify in any accepted mode
	DropBadAddrFamily     // src/dst invalid or of different families
	DropAddrCountMismatch // length does not match the address count
	DropBadAuthType       // VRRPv2 auth type other than 0, 1, 2
	// Expect.Check: well-formed but not acceptable for this virtual router.
	DropBadTTL           // TTL/hop limit not 255
	DropOtherVRID        // for another virtual router: not an error
	DropVersionMismatch  // VRRP version differs from ours
	DropAuthTypeMismatch // VRRPv2 auth type differs from ours
	DropAuthMismatch     // VRRPv2 PASS data differs from ours
	DropIntervalMismatch // VRRPv2 interval differs from ours (RFC 3768 7.1)
	DropBadInterval      // advertisement interval 0
	// Receive path: accepted but not delivered.
	DropQueueFull   // the instance's receive queue was full
	DropOwnAdvert   // our own advert, looped back
	DropUnknownPeer // unicast source not among the configured peers
	// DropForeignSpeaker: lease mode, the source is not a member of the
	// group (its configured peers, or the nodes registered with the group
	// at the quorum): it may neither displace the owner nor make a backup
	// a candidate.
	DropForeignSpeaker
	// Authenticated adverts (hmac.go), an instance with an HMAC key:
	DropMACMissing // no HMAC trailer
	DropBadMAC     // the HMAC does not verify (wrong key, forged or altered, spoofed source)
	DropReplay     // counter not above the sender's last, or outside the freshness window

	numDropReasons
)

var dropNames = [numDropReasons]string{
	DropNone:              "none",
	DropTruncated:         "truncated",
	DropBadVersion:        "bad_version",
	DropBadType:           "bad_type",
	DropBadChecksum:       "bad_checksum",
	DropBadAddrFamily:     "bad_addr_family",
	DropAddrCountMismatch: "addr_count_mismatch",
	DropBadAuthType:       "bad_auth_type",
	DropBadTTL:            "bad_ttl",
	DropOtherVRID:         "other_vrid",
	DropVersionMismatch:   "version_mismatch",
	DropAuthTypeMismatch:  "auth_type_mismatch",
	DropAuthMismatch:      "auth_mismatch",
	DropIntervalMismatch:  "interval_mismatch",
	DropBadInterval:       "bad_interval",
	DropQueueFull:         "queue_full",
	DropOwnAdvert:         "own_advert",
	DropUnknownPeer:       "unknown_peer",
	DropForeignSpeaker:    "foreign_speaker",
	DropMACMissing:        "hmac_missing",
	DropBadMAC:            "hmac_bad",
	DropReplay:            "hmac_replay",
}

// String returns the reason's stable snake_case name.
func (r DropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return fmt.Sprintf("drop_reason_%d", uint8(r))
}

// AllDropReasons returns every reason, DropNone included, in value order
// (for registering metric label values up front).
func AllDropReasons() []DropReason {
	rs := make([]DropReason, numDropReasons)
	for i := range rs {
		rs[i] = DropReason(i)
	}
	return rs
}

// DropCounters counts packets per DropReason. The zero value is ready; it is
// safe for concurrent use, lock-free, and must not be copied after first use.
// Inc(DropNone) counts accepted packets.
type DropCounters struct {
	c [numDropReasons]atomic.Uint64
}

// Inc adds one to r's counter. Unknown reasons are ignored.
func (d *DropCounters) Inc(r DropReason) {
	if r < numDropReasons {
		d.c[r].Add(1)
	}
}

// Load returns r's count (0 for an unknown reason).
func (d *DropCounters) Load(r DropReason) uint64 {
	if r < numDropReasons {
		return d.c[r].Load()
	}
	return 0
}

// Snapshot returns every reason's count keyed by its name, zeros included.
// Counters are read one by one: the snapshot is not atomic across reasons.
func (d *DropCounters) Snapshot() map[string]uint64 {
	m := make(map[string]uint64, numDropReasons)
	for i := range d.c {
		m[DropReason(i).String()] = d.c[i].Load()
	}
	return m
}
