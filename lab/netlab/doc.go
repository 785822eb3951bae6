// Package netlab builds throwaway layer-2 labs out of Linux network
// namespaces and measures what a virtual IP does in them.
//
// A Lab is one "switch" namespace holding a Linux bridge plus one namespace
// per host, each joined to the bridge by a veth pair, with an IPv4 /24 and an
// IPv6 ULA /64 address (nodad). Names carry a random per-lab prefix
// ("lh3f2a-n1"), so labs of concurrent tests never collide, and nothing is
// ever created in the caller's own namespace.
//
// Guarantees:
//   - Every namespace and process the lab creates is recorded in a JSON state
//     file before (namespaces) or right after (processes) it is created. Down,
//     or Cleanup(stateFile) after a crash, removes exactly those: namespaces
//     by name, processes by PID checked against their recorded start time,
//     plus any process still running inside one of the lab's namespaces
//     (children of processes the lab started, such as keepalived's VRRP
//     child). Nothing else is touched.
//   - Host.Do runs Go code on a dedicated OS thread switched into the host's
//     namespace; that thread is never returned to the scheduler's pool.
//     Sockets opened inside Do stay bound to the namespace.
//   - Faults (Freeze/Thaw, DropVRRP, DropTCPTo, LinkDown/LinkUp,
//     Unplug/Plug) act only inside the lab's namespaces, and Freeze/Thaw
//     refuse a PID that is not in the host's namespace.
//
// Invariant checkers: AddrMonitor (netlink address events per namespace),
// ARPProber (RFC 5227 probes for the VIP from the switch, sender 0.0.0.0, so
// no cache learns from them) and TCPProber (a client connecting through the
// VIP to a Responder on each node) each record timestamped samples in a
// single Run(ctx) call that starts no goroutine of its own (the netlink
// subscription's reader is the library's). BuildReport combines them into a
// JSON-serialisable Report.
//
// Not guaranteed: timings. The checkers measure; tests assert invariants
// (who held the VIP, whether two MACs answered) with generous slack.
//
// Requires root (CAP_NET_ADMIN, CAP_SYS_ADMIN), iproute2's ip and, for the
// firewall faults, nft.
package netlab
