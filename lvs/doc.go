// Package lvs runs a director's IPVS table: virtual servers from the
// configuration in keepalived's vocabulary (virtual_server,
// virtual_server_group, lb_algo, lb_kind, persistence_timeout, quorum,
// sorry_server, inhibit_on_failure, alpha; real_server with TCP_CHECK,
// HTTP_GET, SSL_GET and MISC_CHECK), real-server checks, and a reconcile
// loop that makes the kernel's table the desired one.
//
// The decisions are pure: Step is one checker's retry logic (keepalived's
// tcp_epilog: a success is up at once, an up checker goes down after
// retry+1 failures spaced by delay_before_retry), QuorumStep a virtual
// server's quorum with hysteresis, Desired the kernel services of a
// virtual server for its real servers' states, and Diff the changes from
// the kernel's table to the desired one. Their tables of cases are the
// specification.
//
// A Director runs the checks from min-heaps of due times (no goroutine
// or timer per server; checks due within Coalesce start together):
// TCP_CHECKs as keepalived does, as non-blocking connects on one epoll
// whose goroutine also schedules them (four system calls a check, no
// allocation, no hand-off between goroutines); the others from a
// scheduler goroutine on a bounded pool of workers. It applies each
// outcome with Step, and reconciles level-triggered: on every change of a
// real server's state or weight, of a quorum, of a group's lease
// (GroupTable, a node/resource.Resource), and every Resync. The kernel is
// behind Kernel (OpenIPVS: moby/ipvs, after checking that the generic
// netlink family "IPVS" exists; lvstest.Kernel in tests).
//
// Guaranteed:
//   - the desired table is configuration × check results × lease: in
//     ModeOwner a virtual server is desired only while this node owns the
//     lease of the group it follows; in ModeAll always;
//   - Diff touches only services this node manages (those in its
//     configuration and those recorded in its state file as created by an
//     earlier run); any other service in the kernel (ipvsadm's,
//     kube-proxy's) is never changed; Diff of a table against itself is
//     empty, so reconciling is idempotent;
//   - a service is recorded in the state file before it is added, so a
//     crash never leaves a service of ours that a later run does not
//     know; the first Reconcile of a run removes every managed service
//     not desired (in ModeOwner nothing is owned yet: all of them);
//   - a GroupTable promotion that fails takes back what it added before
//     returning the error (the group then demotes);
//   - at most Workers HTTP_GET, SSL_GET and MISC_CHECK checks run at
//     once; each check is bounded by connect_timeout (MISC_CHECK:
//     misc_timeout, enforced by package script, which kills the script's
//     process group);
//   - changes of real servers are applied in passes at most MinGap
//     apart, starting from the table the last pass left; every Resync a
//     pass reads the kernel's table (what others changed is corrected
//     then);
//   - when Run returns, the table has been removed (ModeAll, as keepalived
//     does on exit; ModeOwner: the groups' demotions did it).
//
// Not guaranteed: that a real server marked alive serves (a check is a
// sample); that a scheduler module exists in the kernel before the
// service using it is added (the kernel's error names the service); that
// checks keep their period when more than Workers of them hang until
// their timeout at once (they queue: the lateness is bounded by
// checks × timeout / Workers); that a real server's notify script runs
// at once (they run one at a time, in order); SMTP alerts, the other
// checkers (SMTP, DNS, UDP, PING, FILE, BFD), TUN options and
// virtual_server_group IPv6 ranges are not implemented: the
// configuration refuses them as unknown keys.
//
// Sync keeps the kernel's connection-sync daemons (lvs_sync_daemon,
// IPVS_CMD_NEW_DAEMON/DEL_DAEMON/GET_DAEMON over generic netlink, which
// moby/ipvs lacks) following a group's lease: master on the owner, backup
// elsewhere. What the kernel syncs (connections after sync_threshold
// packets, in buffers sent at least once a second) is what survives a
// failover; connections younger than that, or in flight when the master
// dies, may not.
package lvs
