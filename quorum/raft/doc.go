// Package raft is the embedded quorum backend: a hashicorp/raft group of
// voters (typically two leasehold nodes and a witness) that grants leases,
// and a client (Backend) implementing quorum.Backend against it.
//
// A Member is one voter: raft over TCP (optionally mutual TLS) with raft-wal
// as log and stable store and a file snapshot store, plus an HTTP/JSON client
// API on ClientAddr. Only the leader serves the API; other members answer
// "not_leader" with the leader's client address and the Backend follows it.
// The witness is a Member with Witness set: a full voter that runs no VIPs.
//
// Guarantees:
//   - Every change (open, renew, acquire, release, close, expire) is a raft
//     log entry applied by a deterministic FSM; the epoch of a grant is the
//     log index of its acquire, so it strictly increases per group across
//     holders, restarts and leader changes.
//   - Renewals go through the log (raft.Apply, bounded by the client's
//     request timeout), not through VerifyLeader plus a leader-local write: a
//     deposed leader cannot commit, so it cannot acknowledge a renewal, and
//     every acknowledged renewal is known to the next leader. The price is
//     one log entry per node per RenewInterval, whatever the number of
//     groups the node holds.
//   - Expiry is decided by the leader's clock only. The leader keeps one
//     timer per session (not replicated), armed with the full TTL when it
//     applies the session's open or renewal, i.e. after the client sent it.
//     When it fires, the leader applies an "expire" command naming the touch
//     it was armed for; the FSM ignores it if the session was renewed since.
//     A new leader first applies a barrier, then arms every session's timer
//     with the full TTL: a leader change only ever lengthens leases. Hence
//     the quorum never expires a lease before send time of its last
//     acknowledged renewal + TTL, which is after the holder's local deadline.
//   - Outdated marks (MarkOutdated) are replicated commands the FSM applies
//     only while the group's key carries the mark's epoch; they belong to
//     no session and are in the snapshot.
//   - Reads (Inspect, List, History, Outdated) and watches are served by a leader that
//     applied its barrier; reads also confirm leadership with VerifyLeader.
//     A watch stream starts with an atomic snapshot; when a stream breaks
//     (leader change, slow consumer) the Backend reconnects and reports the
//     snapshot as EventResync, including groups it saw held that are now
//     free.
//   - Session TTLs below Config.MinTTL (2×(heartbeat+election timeout)) are
//     refused when the session opens.
//
// Not guaranteed:
//   - Liveness across a leader change when the TTL is near MinTTL: a holder
//     whose loss point passes during an election signals loss (safely).
//   - That a failed Acquire did not take effect: a request that times out
//     may still commit; the key then stays with the session (a retry gets
//     ErrHeld) until released, closed or expired.
//   - Membership changes: the voter set is bootstrapped from Config.Peers
//     when the data directory is empty and never changed afterwards.
package raft
