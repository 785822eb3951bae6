// Package resource is the room for what follows a group's lease besides its
// VIPs: DRBD Primary, a writable MySQL master, a director's IPVS table. A
// Resource is promoted and demoted under the epoch of the grant; a Chain
// puts several in order for node.Group (promote in order, demote in
// reverse) behind an epoch guard; Hooks is the first Resource (the
// promote/demote scripts of the configuration).
//
// Guaranteed:
//   - every call carries the grant's epoch; a Chain refuses (ErrStaleEpoch)
//     a promotion or a demotion for an epoch older than one it already saw,
//     so a late call from an old grant never undoes a newer one;
//   - promotion stops at the first failure and demotes, in reverse, the
//     failed resource (it may have got halfway) and those already
//     promoted for that epoch (the group then demotes: doubt means
//     demote);
//   - calls are serialised: a demotion that starts while a promotion is in
//     flight waits for it (within its own ctx) and then undoes it, rather
//     than running beside it and being overtaken by it;
//   - demotion runs every resource, in reverse order, even after failures,
//     and returns all their errors; a Guard (the watchdog) is the
//     exception: it is not demoted once a resource after it failed to
//     demote but escalated (Guard.Escalate), so it stays armed while
//     something may still be active, and acts (the watchdog is no longer
//     fed). The group then does not release its lease: it expires after
//     the machine resets, never while the resource may still be active.
//
// Not guaranteed: that a resource is really demoted when Demote returns an
// error (a hung DRBD, an unreachable MySQL): the kernel fence and the
// watchdog cover what the process cannot; resources the kernel cannot
// fence need the watchdog (fencing.watchdog) or peer-fence hooks.
package resource
