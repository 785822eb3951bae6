// Package drill runs fencing drills: named faults (graceful stop, kill -9,
// freeze, VRRP partition, quorum partition, quorum loss, link flap,
// preemption) injected into the current owner of a Target (a lab, see
// labctl) while the invariant checkers of netlab watch, and a verdict per
// run. Run is what `leasehold drill` and benchmarks call in-process.
//
// Guarantees:
//   - The split-brain invariant is measured on the wire: an ARP probe
//     (sender 0.0.0.0) every 100 ms from the switch; any round answered by
//     two MACs fails the run. The netlink view (VIP configured in two
//     namespaces) is reported separately and does not fail a run: after
//     kill -9 the dead node's address lingers until its lifetime expires
//     while the nftables fence already keeps it silent.
//   - Every run restores what it broke (restarts a killed or stopped
//     daemon, continues a frozen one, heals partitions, brings the link
//     up) and waits until the target is steady (one owner per group)
//     before returning, so runs can follow each other.
//   - Results are JSON-serialisable; WriteHTML renders them as a
//     self-contained page (inline CSS and SVG).
//
// Not guaranteed: timings. Figures are measured and printed, never asserted.
package drill
