// Package node combines VRRP and the quorum lease per group: VRRP picks the
// candidate, the lease decides the owner (DESIGN.md "The ownership
// protocol").
//
// machine.go is the pure role state machine (BACKUP, CANDIDATE, OWNER,
// DEMOTING, FAULT) with scenario scripts in testdata/scenarios; the
// actuator performs its actions (acquire, peer-fence hooks, VIP probe,
// resource promotion, VIP + kernel fence, GARP; and the demotion pipeline)
// and feeds the results back as events.
//
// Guaranteed: a node adds a VIP only while it holds the group's grant and
// its local deadline is ahead; completions for an old epoch are ignored;
// losing the session, a deleted or overwritten key, a failed or hung step,
// or the deadline coming within the demote budget all demote. Not
// guaranteed by this package alone: that the VIP disappears if the process
// dies — that is the kernel fence's job (package fencing), armed until the
// local deadline.
//
// # After a quorum fault
//
// For Config.RestoreWindow after a session that follows a quorum fault,
// a deleted key is taken for an expiry: only a node with no member of
// higher priority registered (KeyDeleted.HigherMember) takes the fast
// path, and at once, ahead of the others' skew; and a VRRP master defers
// while a member of higher priority is registered at the quorum
// (VRRPMaster.HigherMember), acquiring when the window ends if VRRP is
// still master. Guaranteed by Machine alone (testdata/scenarios/
// restore_window*.txt): no acquire in the window while HigherMember holds.
// Not guaranteed: one ownership change per restore, which also needs the
// better member registered, as this node's watch sees it, before this
// node's Master_Down runs out, and its adverts heard within the window.
//
// # Storm bound
//
// Whatever VRRP says (a foreign speaker with a higher priority on the
// group's VRID, a spoofed member, a stuck promotion step), a node's quorum
// writes for a group stay bounded. A flap is a grant the node gives up
// itself less than FlapWindow (1 s) after acquiring it — a storm's grants
// last tens of milliseconds (acquire, claim, hear the higher priority,
// release), a legitimate handback comes seconds after a takeover; after
// FlapLimit (5) flaps in a row, the k-th further flap holds every acquire
// back for min(FlapBackoff·2^(k−1), FlapBackoffMax) = 1, 2, 4, 8, 16, 30,
// 30 … s. The count restarts after a grant held FlapWindow or longer, or
// after 2·FlapBackoffMax (60 s) without a flap. Each acquire is followed by
// at most one release, so with the defaults one node makes at most 5 + 3 =
// 8 acquires (16 writes) in any 10 s, and from the sixth backoff on (after
// ~35 s) at most one acquire and one release per 30 s. (A 10 s window and a
// limit of 3 held back real failovers in an hour of lab faults, where a
// fault every ~10 s with a handback after each looked like a storm: kill -9
// outages of 21 s.) The group's rate is
// the sum over its nodes. Guaranteed by Machine alone (TestStormBound,
// testdata/scenarios/storm.txt). Not guaranteed: a fast failover while the
// guard holds back, which waits out the backoff (the key deleted by a
// crashed owner looks like a yield to the others); and the acquire retries
// of a candidate whose VRRP stays master while another node holds the key
// (one per retry interval, as before).
//
// A grant given up because a step of the promotion failed (a peer-fence
// hook, the resources, the VIP, a step's timeout) is not a flap: a
// resource that refuses (a DRBD disk marked outdated refuses until it has
// resynced) says nothing of VRRP, and counting it held a kill -9 failover
// right after a partition back for 16 s. The first FlapLimit failures in a
// row retry at the retry interval, then one acquire per FlapBackoff (1 s)
// until the node becomes owner or FlapBackoffMax passes without a failure
// (testdata/scenarios/step_failures.txt). The flap count is left as it is.
package node
