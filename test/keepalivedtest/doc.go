// Package keepalivedtest runs the real keepalived (Debian's
// /usr/sbin/keepalived) inside a netlab host namespace, as a VRRP peer for
// interoperability tests and as the baseline in drills.
//
// Guarantees:
//   - Each Keepalived gets its own directory for its configuration, pid
//     files (parent, VRRP, checker and BFD children) and log, so instances
//     never collide with each other or with a system keepalived.
//   - keepalived runs in the foreground (--dont-fork) with only the VRRP
//     subsystem, logging to the console; the log is kept in a file and in
//     memory (Log).
//   - The processes are recorded in the lab's state file, so netlab.Cleanup
//     removes them after a crash.
//
// keepalived's process model, measured with 2.2.7 (see Kill9): the parent
// forks a VRRP child, which holds the VRRP state and the VIPs. Killing
// only the parent with SIGKILL makes the child (PR_SET_PDEATHSIG) shut down
// gracefully: it sends priority 0 and removes the VIPs. Killing only the
// child makes the parent respawn it, and the new child removes the VIPs at
// start. Neither reproduces `kill -9 keepalived` (pkill -9 reaches both);
// Kill9 stops both, then kills both, and the VIP stays configured on the
// dead node.
package keepalivedtest
