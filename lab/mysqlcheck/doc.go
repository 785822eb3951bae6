// Package mysqlcheck measures what a MySQL failover costs in writes: a
// Client writes through an address (the VIP) continuously, one row per
// write (a sequence number, the client's send time, the server that
// accepted it and the epoch that server had recorded), and logs every
// acknowledgement and failure; after the drill Collect reads every server
// and Audit reports acknowledged writes missing on the final master
// (asynchronous replication can lose these), split-brain writes
// (acknowledged by a server after the other one had accepted a write
// under a newer epoch: must be 0), rows one server holds and the other not
// (divergence), the servers' replication errors, and the write outages
// (first failed write to the next good one).
//
// Guaranteed: Audit is pure and deterministic. The Client never has more
// than one connection open and bounds each write by its Timeout.
//
// Not guaranteed: a write that failed on the client may still have
// committed (the acknowledgement was lost): Audit counts only what was
// acknowledged as lost, and the row simply appears. Split-brain writes are
// judged from the client's single clock and the epochs the servers had
// recorded, so a server that writes without ever having been promoted
// (epoch 0) counts as the oldest epoch.
//
// Used by lab/drill (every drill on a `leasehold lab up --mysql` lab, and
// `make bench-mysql`) and by the tests against a real MariaDB pair.
package mysqlcheck
