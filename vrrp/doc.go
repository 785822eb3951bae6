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
//   - conn.go, conn_linux.go, mux.go: raw IP protocol 112 sockets, one per
//     interface and family. IPv4 builds its own header (IP_HDRINCL: TTL
//     255, our source) and sends many adverts per sendmmsg; receive reads
//     batches and checks TTL/hop limit 255 on multicast. One scheduler per
//     Mux drives the timers of all its instances; packets are demultiplexed
//     by VRID and every drop is counted by reason.
//   - platform.go: the OS seam. Mux and Instance use a Socket (read and
//     write batches of adverts with their PacketMeta), the Instance an
//     AddrAnnouncer; the daemon owns VIPAnnouncers (AddrAnnouncer + Close)
//     and probes through a ProbeFunc. *Conn, *Announcer and Probe are the
//     Linux implementations; package vrrptest is an in-memory link for
//     unit tests without root (testdata/segment: its scenario scripts).
//   - announce.go, probe.go: gratuitous ARP and unsolicited neighbour
//     advertisements; the RFC 5227 probe (sender 0.0.0.0) before claiming.
//   - instance.go: one virtual router: the machine's adverts go out from
//     the scheduler, its effects (Effects.Up/Down, OnTransition) run in
//     order on the instance's Run goroutine — VIP add/remove in quorum
//     "none" mode, lease-gated in the node package. Faults are kept per
//     source (health, quorum, sync group). A lease-gated instance asks its
//     Gate right before it sends: no advert with a non-zero priority and
//     no claim unless the node's quorum session is live, no GARP/NA unless
//     it owns the lease with a live local deadline (the schedule ends at
//     the first refusal). A failed GARP/NA is retried with a short backoff
//     until sent or refused; it does not end the burst.
//   - foreign.go: lease mode membership. An instance with Members (the
//     node package's roster: configured peers and the nodes registered at
//     the quorum) drops adverts from anyone else as foreign_speaker before
//     the state machine, whatever their priority, and lists those speakers
//     in its Status (logged at most once per 10 s). Without Members
//     (quorum none) every advert counts, as with keepalived.
//   - hmac.go: optional authenticated adverts between leasehold nodes: an
//     HMAC-SHA-256/128 trailer with a per-sender counter (anti-replay);
//     pure and fuzzed. keepalived does not speak it.
//   - vipaddr: idempotent, labelled VIP add/remove through netlink.
//
// Guaranteed: RFC election order; malformed or hostile packets are dropped
// and counted, never crash or stall the loop. Not guaranteed: a single
// owner — VRRP alone cannot give that (a partition or a frozen master makes
// two masters); that is the quorum lease's job. Not guaranteed either: a
// freeze between the gate's check and the system call (microseconds) still
// lets one late packet out.
package vrrp
