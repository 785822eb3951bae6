// Package etcd is the etcd v3 quorum backend.
//
// Layout under Config.Prefix (default "/leasehold/"):
//
//	<prefix>groups/<group>   JSON quorum.Record, attached to the holder's lease
//	<prefix>history/<group>  JSON list of the last grants, oldest first
//	<prefix>outdated/<group>/<node>  JSON quorum.Mark, no lease; written in a
//	                         transaction comparing the group key's create
//	                         revision with the mark's epoch
//
// Guarantees: one etcd lease per session, renewed by our own timer with
// KeepAliveOnce (quorum.Renewer), so renewal traffic does not grow with the
// number of groups; Acquire is a transaction that creates the key only if it
// is absent, and the epoch it returns is the key's create revision (strictly
// increasing per group, across leaders and restarts); Release deletes the key
// only if its create revision is still the grant's epoch; the local deadline
// is taken from the send time of the last acknowledged Grant/KeepAliveOnce,
// so it passes before the etcd leader can expire the lease (the leader starts
// the TTL when it processes the request, after we sent it). A value that is
// not a valid quorum.Record counts as held by an unknown node. Watch
// re-establishes lost watches and sends quorum.EventResync after a fresh read.
//
// Not guaranteed: history is best effort (written after a grant, dropped under
// load or failure, never blocking ownership). A default etcd server grants no
// lease shorter than 2 s (1.5 × election timeout, rounded up to seconds); the
// backend accepts TTLs down to MinTTL (1 s), which needs a tuned server
// (election timeout ≤ 666 ms, e.g. heartbeat 50 ms / election 500 ms).
// With a longer server minimum the lease simply lives longer than our local
// deadline, which is safe but slows failover.
package etcd
