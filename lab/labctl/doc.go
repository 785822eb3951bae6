// Package labctl brings up, inspects and tears down the product lab behind
// `leasehold lab`: on one machine, network namespaces (a bridge, N
// leasehold nodes n1..nN with priorities 120, 100, ..., a quorum host q and
// a client), a real quorum (a raft witness, each node's daemon being a
// voter, or an embedded etcd member started from the leasehold binary), a
// responder naming the node on port 8080 of each node, and `leasehold run`
// on each node with G groups (VRIDs 1..G, VIPs .100.., VRRPv3 0.1 s, TTL
// 1 s).
//
// Guarantees:
//   - Every process runs detached (own session, no parent-death signal), so
//     the lab outlives `leasehold lab up`; each is recorded, by PID and
//     start time, in the lab directory (lab.json) and in netlab's state
//     file (netlab.json) before anything else happens.
//   - Down and Remove kill those processes and anything left inside the
//     lab's namespaces, delete the namespaces and the lab directory, also
//     after `lab up` itself crashed half-way. Nothing outside the lab is
//     touched: namespaces carry netlab's random per-lab prefix.
//   - Labs live under DefaultDir (/run/leasehold-lab/NAME), not in
//     netlab's state directory, so tests that clean stale netlab labs never
//     remove a lab that outlived its creator.
//
// Not guaranteed: timings; daemons are not supervised (drills restart what
// they kill).
package labctl
