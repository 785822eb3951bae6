// Package wire attaches the host to a qemu VM lab's layer-2 segment and
// runs netlab's invariant checkers on it.
//
// A VM's NIC "-netdev socket,mcast=230.x.y.z:PORT,localaddr=127.0.0.1" is
// an L2 segment carried as UDP multicast on the loopback interface: each
// datagram sent to the group is one raw Ethernet frame (no FCS, no header,
// no length prefix; qemu's net/socket.c in dgram mode). A Segment joins
// the group like a VM does, hears every frame of the segment and can put
// frames on it. ARPProber and TCPProber make the measurements of
// netlab.ARPProber and netlab.TCPProber there, filling the same
// netlab.ARPRound, netlab.TCPSample and netlab.Interval records, without
// root and without network namespaces.
//
// Guaranteed:
//   - A Segment's socket is joined, and sends, only on 127.0.0.1
//     (IP_ADD_MEMBERSHIP and IP_MULTICAST_IF on the loopback address,
//     IP_MULTICAST_TTL 0, IP_MULTICAST_ALL off): no frame leaves the host
//     and datagrams of other groups on the same port are not delivered.
//   - Open starts the Segment's single reader, and Close stops it and waits
//     for it. The reader hands every frame, stamped with its receive time,
//     to every Subscription in order; a subscriber whose channel is full
//     misses the frame and it is counted (Dropped), the reader never waits.
//     The frames a Segment sends are heard by its own subscribers too
//     (IP_MULTICAST_LOOP): checkers ignore frames from their own MAC.
//   - Each checker has its own locally administered MAC (02:…), starts no
//     goroutine of its own and records only in Run(ctx). A frame counts in
//     the ARP round it was received in, however late it is read; a TCP
//     probe is judged by the receive time of its answer, and frames already
//     queued are handled before a probe is declared timed out.
//   - The TCP prober's IPv4 and TCP checksums are computed (and, on
//     received segments, checked) per RFC 1071; every SYN-ACK addressed to
//     the client is answered with an RST, so no half-open connections pile
//     up in the guests.
//
// Not guaranteed:
//   - Timings. The checkers measure; tests assert invariants (who answered,
//     whether two MACs answered in one round) with generous slack.
//   - Completeness: a checker that falls behind by more than its
//     subscription's buffer misses frames (see Subscription.Dropped), and
//     the kernel drops datagrams when the socket's receive buffer is full.
//   - IPv6: the checkers speak ARP and IPv4 only.
//   - Frames whose TCP checksum was left to an offload are dropped as bad:
//     a qemu NIC on a socket netdev offers none, so guests sum in full, but
//     frames relayed from a veth or tap need "tx off" there first.
//   - Realistic neighbour behaviour beyond what TCPProber's doc states: the
//     client learns the target's MAC from any ARP reply or announcement on
//     the segment (a hub, where a real client on a switch would not hear
//     replies to others), so during a split brain it follows whichever
//     holder spoke last.
//
// Differences from netlab: a gratuitous ARP is one whose sender IP equals
// its target IP (netlab counts any ARP from the VIP that is not an answer
// to its probe); here the TCP client's own ARP traffic with the guests is
// on the same wire, and a guest's reply to the client is not an
// announcement.
package wire
