// Package mysql makes a MySQL/MariaDB server follow a group's lease:
// writable (read_only OFF) only on the node that owns the group, for the
// dual-master pairs seed 002 runs behind keepalived. It speaks to the
// server with github.com/go-sql-driver/mysql over its unix socket or TCP;
// user and password come from a credentials file (my.cnf style, not
// accessible to others, never logged).
//
// Pieces, pure ones first:
//   - MayPromote (stale epoch, catch-up policy), WaitTarget/MergeTargets
//     (which GTIDs this server must apply), ToKill (which connections a
//     kill round ends), Health (the check's verdict): decisions without IO,
//     table-tested.
//   - Server, the statements sent to one server (SQL is the real one,
//     mysqltest.Fake a fake).
//   - Resource (a node/resource.Resource named "mysql SOCKET|ADDRESS"):
//     Promote(epoch): fence the peer (best effort, bounded by
//     peer_timeout: read_only ON over TCP and its clients killed, its
//     binlog position read), wait until what this server received and what
//     the peer wrote is applied (MASTER_GTID_WAIT, bounded by
//     catchup_timeout; catchup_policy refuse or promote_anyway, reported
//     either way), refuse an epoch lower than any in the epoch table (or
//     equal to another server's), record the epoch (leasehold.epoch, one
//     row per server_id, replicated), then SET GLOBAL read_only = OFF.
//     Demote: read_only ON first (and super_read_only where it exists),
//     then KILL every client connection (replication threads, the binlog
//     dump of the peer's replica and our own connections spared). SET
//     GLOBAL read_only waits for write statements in flight: when it has
//     not returned within a third of the demotion's budget, the clients
//     are killed first (their statements roll back), read_only is set
//     again and a second kill round follows. Start:
//     a server found writable before the group runs is demoted.
//     Check: the native health check (connect, SELECT, replication SQL
//     thread, lag) the group's tracker runs like a vrrp_script, and the
//     watch of read_only: a server that must be read-only and is writable
//     is demoted; the owner's server found read-only (an operator's SET
//     GLOBAL read_only = ON, or mysqld restarted with read_only in my.cnf)
//     is made writable again only when the epoch table shows no newer
//     epoch than the one it was promoted for (nor that one recorded by
//     another server), counted and logged; otherwise, or when the table
//     cannot be read, the check fails, so the group gives the lease up
//     (doubt means demote). Its rationale: the lease says which server
//     takes the writes, and a VIP in front of a read-only server is an
//     outage no failover ends; to keep a server read-only, stop or demote
//     its leasehold group. The check also reports semi-synchronous
//     replication's state (on, off, fallen back to asynchronous). After a
//     promotion refused because the relay log was not applied in time (a
//     node back from a partition preempting while its replication is
//     behind), the check fails until this server has applied what the
//     peer wrote (the peer's binlog position, read over TCP), so the group
//     stops taking the lease from the serving peer only to refuse again; a
//     peer that does not answer ends the wait.
//
// Accounts that ignore read_only. MariaDB 10.11 has no super_read_only;
// READ_ONLY ADMIN (held by root, and by any account granted ALL) writes
// through read_only (SUPER no longer does). leasehold handles them by
// killing: Demote kills every client connection, theirs included; while
// the server must be read-only, every Check (each check interval) kills
// the connections of users holding READ_ONLY ADMIN (user names are
// matched, hosts are not: it errs on the side of killing), and Start does
// the same. So a connection such an account opens on a demoted server can
// write until the next check: give applications accounts without
// READ_ONLY ADMIN (GRANT ALL ON db.* is fine; ALL ON *.* is not). On
// MySQL 5.7+/8, super_read_only stops SUPER accounts and is set with
// read_only.
//
// The daemon's own account must write the epoch table while read_only is
// on: on MariaDB 10.11 it needs READ_ONLY ADMIN, SUPER, PROCESS,
// CONNECTION ADMIN and SLAVE MONITOR, and SELECT, INSERT, UPDATE, CREATE
// on leasehold.* (the tests run it with exactly these); root over the
// socket has them all.
//
// Guaranteed:
//   - A stale epoch is refused before the peer is touched (a late
//     promotion from an old grant never fences the real owner).
//   - read_only is OFF only after the epoch was checked against the epoch
//     table and recorded; a promotion refused (stale epoch, catch-up
//     refused, epoch table unreadable) leaves the server read-only and
//     returns ErrRefused with the reason; a failure after read_only went
//     OFF sets it ON again before returning.
//   - Demote runs every step even after a failure (the kill round runs
//     when read_only could not be set) and reports ErrStillWritable when
//     the server still says writable; no client connection open before
//     the demotion survives it (replication threads excepted).
//   - Nothing outlives its context: every statement is bounded by
//     step_timeout (the catch-up wait by catchup_timeout, the peer fence by
//     peer_timeout) and by the caller's context (the group's demote
//     budget).
//
// Not guaranteed:
//   - A server that is not running (connection refused, no socket) is
//     demoted by doing nothing: it takes no writes, and Demote returns nil
//     so that a crashed mysqld does not leave the watchdog armed. It must
//     come back read-only (read_only=ON in my.cnf; the watch corrects it
//     within a check interval otherwise). A server that does not answer
//     (a timeout) is an error.
//   - That the server is read-only when Demote returns an error (mysqld
//     hung, unreachable): the kernel fence keeps VIP traffic off it and the
//     watchdog resets a node whose demotion cannot finish (the plan marks
//     the watchdog needed for a group with a mysql section); clients that
//     reach the server by its own address are not fenced by the kernel.
//   - No lost writes: replication is asynchronous. A transaction the old
//     master acknowledged but had not yet sent to the peer when it died is
//     not on the new master (the peer fence's binlog position only helps
//     when the old master's mysqld still answers). Semi-synchronous
//     replication closes that window; leasehold does not configure it (it
//     belongs in my.cnf) but reports its state, and it only holds while
//     the master has not fallen back to asynchronous after
//     rpl_semi_sync_master_timeout without the peer's answer.
//   - Accounts holding READ_ONLY ADMIN through a role are not recognised;
//     their connections are killed by Demote but not by the watch.
//   - The stale-epoch refusal across servers relies on replication having
//     brought the peer's row: when replication is down, each server only
//     knows its own epochs (the lease is then the only guard).
//   - The catch-up wait relies on MariaDB's GTIDs (Gtid_IO_Pos,
//     @@gtid_binlog_pos, MASTER_GTID_WAIT); give each server its own
//     gtid_domain_id (as the test pair does). On MySQL nothing is waited
//     for.
package mysql
