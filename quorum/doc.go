// Package quorum is the arbiter of ownership: a node may own a group's VIP
// only while it holds that group's lease.
//
// Guarantees: one session (one lease at the quorum) per node shared by all
// of its groups, so renewal traffic does not grow with groups; Acquire is a
// compare-and-set create; every grant carries an epoch that strictly
// increases per group; the local deadline is computed from the send time of
// the last acknowledged renewal minus a drift bound and a margin, so it
// passes before the quorum can expire the lease and grant it elsewhere; loss
// is signalled DemoteBudget before that deadline.
//
// Outdated marks (Backend.MarkOutdated) record, under a group's current
// epoch, that another node's copy of the group's replicated data (DRBD) is
// outdated; they outlive sessions until ClearOutdated.
//
// Not guaranteed: that a holder learns of an expiry at the quorum before its
// local deadline (it may only learn at the deadline); liveness under a
// partition. Values that do not parse count as held by an unknown node.
//
// Backends live in quorum/etcd and quorum/raft; contract tests in
// quorum/quorumtest run against both.
package quorum
