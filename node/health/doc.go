// Package health is keepalived's vrrp_script / track_script and
// track_interface for one group: it runs check scripts on their interval,
// watches links through netlink, and computes the group's effective
// priority and FAULT flag. The node package feeds Status into its role
// machine; health itself never touches VRRP or the lease.
//
// # Semantics (keepalived 2.x, read from its vrrp_scheduler.c/vrrp_track.c)
//
//   - A script runs at once when Run starts, then every Interval. Runs of
//     one script never overlap: a tick that passes while it runs is
//     dropped. Timeout defaults to Interval; a script still running at its
//     Timeout is killed with its whole process group (SIGKILL) and counts as
//     a failure. Exit status 0 is success; anything else — non-zero exit,
//     signal, timeout, a script that cannot be started or fails the
//     script.Check safety rules at run time — is a failure. The log
//     says so when a script's outcome changes (so a missing script is
//     logged once, not every interval).
//   - rise/fall: keepalived's counter (see scriptState). From Up, fall
//     consecutive failures make it Down; from Down, rise consecutive
//     successes make it Up. Without init_fail a script is Unknown until its
//     first result, which decides at once; with init_fail it starts Down.
//   - Weights (−253..253; keepalived turns ±254 into ±253, we refuse it):
//     weight > 0 is added while Up, weight < 0 is added while Down, Unknown
//     adds nothing, weight 0 puts the group in FAULT while Down or Unknown.
//     The same rules apply to links (Up = IFF_UP and IFF_RUNNING; a missing
//     link is Down). The sum is clamped to 1..254.
//   - Address owner (base priority 255): weights never change its priority,
//     as in keepalived (vrrp_set_effective_priority returns early); weight-0
//     items still put it in FAULT. NewTracker logs a warning when an owner
//     has weighted items. So a failing weighted script never demotes an
//     owner: give owners weight-0 scripts if a failure must hand over.
//
// # Links and network namespaces
//
// Run opens a netlink link subscription in the namespace given with
// WithNetNS (a path), or else in the namespace of the OS thread that calls
// Run; the first state of every link is read before the first Status is
// published, and again after every (re)subscription. Updates are only hints:
// each affected link is queried again by name, so the state cannot go
// stale through reordered events. If the subscription is lost, every link
// becomes Unknown (weight-0 links: FAULT) and Run subscribes again after a
// second. Tests in a fresh namespace (test/nstest) either call Run from the
// locked thread inside nstest.Run, or pass WithNetNS with
// /proc/self/task/TID/ns/net of that thread.
//
// # Guarantees and limits
//
// Decisions are pure (scriptState.Observe, Effective) and table-tested.
// Updates is level-triggered: it always holds the latest Status, never
// blocks Run, may skip intermediate ones. Run returns after every script it
// started has been killed and reaped. Not covered: keepalived's "reverse"
// weights, sync-group tracking, track_file/track_process/track_bfd, and
// vrrp_script's "user GROUP" (RunAs takes the user's primary group).
package health
