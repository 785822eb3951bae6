// Package vrrp speaks VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798 / RFC 9568)
// over IPv4 and IPv6 so that keepalived accepts it as a peer.
//
// Layers:
//   - packet.go, drop.go: pure encode/decode with typed drop reasons,
//     fuzzed; decode does not allocate. PASS authentication is truncated to
//     8 bytes as keepalived does; VRRPv3 IPv4 checksums are accepted with
//     or without the pseudo-header.
//   - fsm.go: the RFC state machine as a pure Step(event, now) with
//     keepalived's choices where the RFC is silent (see the scenario
//     scripts in testdata/scenarios). Step never reads the clock; timers
//     exist only as NextDeadline.
//   - conn.go, mux.go: raw IP protocol 112 sockets (TTL/hop limit 255 sent
//     and checked on multicast receive), one per interface and family,
//     demultiplexed by VRID; every drop is counted by reason.
//   - announce.go: gratuitous ARP and unsolicited neighbour advertisements.
//   - instance.go: one virtual router's loop, performing the machine's
//     actions through an Effects interface (VIP add/remove in quorum "none"
//     mode; lease-gated in the node package).
//   - vipaddr: idempotent, labelled VIP add/remove through netlink.
//
// Guaranteed: RFC election order; malformed or hostile packets are dropped
// and counted, never crash or stall the loop. Not guaranteed: a single
// owner — VRRP alone cannot give that (a partition or a frozen master makes
// two masters); that is the quorum lease's job.
package vrrp
