// Package vrrptest is an in-memory layer-2 link for the vrrp platform seam:
// a Segment hands out vrrp.Socket, vrrp.VIPAnnouncer and vrrp.ProbeFunc
// implementations for named hosts, so that Muxes, Instances and whole
// daemons run without root, without a network namespace and, inside a
// testing/synctest bubble, without wall time.
//
// What it models:
//   - Adverts. A packet sent to a multicast address reaches every socket of
//     the same family on every other host (as 224.0.0.18 / ff02::12 on a
//     switch with the sender's multicast loopback off); a packet sent to a
//     unicast address reaches the sockets whose Src is that address
//     (except the sending socket). Received packets carry PacketMeta with
//     the sent source and destination, TTL/hop limit 255 and IfIndex 2.
//     A packet whose addresses do not match the socket's family fails with
//     vrrp.ErrInvalidAdvert, as on a *vrrp.Conn.
//   - Faults between hosts: Cut (both directions), CutOneWay, Heal,
//     Isolate / Rejoin, HealAll. A dropped packet is silently lost; the
//     sender sees success, as with a pulled cable.
//   - Foreign speakers: Inject and InjectPacket deliver a payload from an
//     address no socket owns, with any PacketMeta (a TTL of 64, a unicast
//     destination…).
//   - Announcements: an Announcer records every GARP/NA call (time, host,
//     VIPs, which hosts heard it) for assertions such as "no gratuitous ARP
//     from a non-owner"; Fail makes it return an error.
//   - Address conflicts: Claim / Release say which host has a VIP; the
//     ProbeFunc from Prober reports a reachable other host that has one,
//     at once or after half the wait (the real probe's two rounds), else
//     returns after the wait.
//
// What it does not model: ARP or neighbour caches, MAC learning, flooding
// or switch state (a GARP changes nothing but the record); multicast group
// membership (every socket hears every group); latency, reordering,
// duplication or random loss (delivery is synchronous, in send order);
// several links per host (one Segment is one link; make one Segment per
// link); the IP header beyond PacketMeta; checksums (payloads are passed
// as sent, so Decode still checks them).
//
// Guaranteed: deterministic given the order of calls (hosts and sockets
// are visited in creation order); safe for concurrent use; no background
// goroutines: a blocked ReadBatch waits on channels and wakes on delivery
// or Close, and a probe waits on a timer, so all of it is durably blocking
// in a synctest bubble. Create the sockets, and the Muxes on them, inside
// the bubble that uses them (their channels and clocks belong to it). A socket queues at most QueueLen
// unread packets; more are dropped and counted (Overflows).
package vrrptest
