// Package drbd makes a DRBD 8.4 resource follow a group's lease: Primary,
// mounted and its services running only on the node that owns the group.
//
// Pieces, pure ones first:
//   - ParseProc (/proc/drbd) and ParseEvent (`drbdsetup events` lines of
//     drbdsetup-84) read DRBD's state; Watcher follows one minor by
//     reading /proc/drbd every 200 ms (see Watcher for why not a
//     `drbdsetup events` child).
//   - MayPromote: may this node become Primary, and why (not);
//     NeedsForDemote: what a demotion must do; FencePeer: a fence-peer
//     handler's exit code (3/4/5/6/7) from the lease; StaleMark: an
//     outdated mark that no longer describes the disk (connected and in
//     sync).
//   - Handler (`leasehold drbd fence-peer` and `unfence-peer`): asks the
//     quorum who holds the group's lease, records the peer's outdated mark
//     (quorum.Backend.MarkOutdated, under the holder's epoch) before it
//     answers 4, and after a resync (connected, both disks UpToDate)
//     clears this node's and the peer's marks;
//     MarkedAtQuorum feeds Resource.OutdatedAtQuorum.
//   - Resource (a node/resource.Resource named "drbd RES"): Promote checks
//     MayPromote, runs `drbdadm primary RES`, mounts, starts the services
//     in order; Demote stops the services in reverse, unmounts (retrying,
//     optionally killing the mount's holders, found in /proc) and runs
//     `drbdadm secondary RES`; Start, before the group runs, demotes what
//     an earlier run left Primary or mounted. Every program runs through
//     an Executor (OS: script.Run with explicit paths) with a per-step
//     timeout, inside the caller's context (the group's demote budget).
//
// Guaranteed:
//   - Promote never runs `drbdadm primary` unless the local disk is
//     UpToDate, or Consistent with the peer known Outdated; never beside a
//     Primary peer; never when OutdatedAtQuorum says the node is marked
//     (or cannot say); it never forces (no --force, no
//     --overwrite-data-of-peer). A refusal is ErrRefused with the reason.
//   - A Promote that fails after changing anything demotes again before it
//     returns (the chain then demotes the group). Another filesystem
//     mounted on the mountpoint is neither served (Promote fails) nor
//     unmounted.
//   - Killing a mount's holders (kill_holders) only ever targets the
//     filesystem of the device mounted on the mountpoint: it refuses if
//     the mountpoint is not one (an unmounted mountpoint would otherwise
//     name its parent's filesystem); PID 1 and the daemon are spared.
//   - Demote runs every step even after a failure, and its error names
//     each failed step and what DRBD reports afterwards; it reports
//     ErrStillPrimary when DRBD still says Primary. Nothing outlives ctx:
//     each program is killed with its process group at its step timeout
//     or when ctx ends.
//   - One Promote, Demote or ResolveSplitBrain at a time on a Resource
//     (the group's chain and the daemon's split-brain watch both act on
//     it); a caller waits no longer than its context. ResolveSplitBrain
//     asks again, once the resource is free, whether its decision still
//     holds (the lease read from the quorum then): a node that got the
//     lease meanwhile discards nothing (ErrDecisionChanged).
//   - The parsers return ErrParse for anything that is not DRBD 8.4's
//     format (an unknown state is an error, not a guess), never panic
//     (fuzzed) and run in linear time on bounded input.
//
// Not guaranteed:
//   - That DRBD is Secondary when Demote returns an error (a hung
//     process holding the mount, a frozen I/O path): the daemon leaves the
//     watchdog armed for a group with a DRBD resource (the plan marks the
//     watchdog needed) so that a demotion that cannot finish before the
//     local deadline ends in a reset, as with Patroni and SBD: the group
//     escalates (the watchdog is no longer fed) and keeps its lease until
//     it expires, so the peer cannot promote while this node may still
//     be Primary.
//   - That the data is the newest when DRBD says UpToDate while
//     disconnected, unless DRBD runs the fence-peer handler with its I/O
//     frozen (fencing resource-and-stonith): the mark only exists if the
//     holder's handler ran and reached the quorum (else it answered 1 or 6
//     and did not go on as an unfenced Primary). With resource-only a
//     Primary acknowledges writes before its handler has answered; if it
//     dies in between, the unmarked peer promotes without them (measured
//     in the VM lab: make bench-drbd's partition). The handler never
//     answers 5 or 7: it has no view of the peer's session.
//   - That a mark is cleared by itself: after-resync-target must run (or a
//     promotion must find DRBD connected and in sync); an operator can
//     clear one (`leasehold drbd unfence --force`), losing the peer's
//     later writes.
//   - That a split brain is seen without DRBD's split-brain handler
//     (`leasehold drbd split-brain`): a StandAlone connection alone may be
//     an operator's disconnect and is only reported. With the handler's
//     marker, the daemon reports it (status, metric, log) and, with
//     `after_split_brain: lease`, the node that does not hold the group's
//     lease demotes and reconnects with --discard-my-data (its writes
//     since the split are lost: the log names its generation); the holder
//     reconnects. Nobody holding the lease, or a lease that cannot be
//     read, leaves it reported and waiting. DecideSplitBrain is the rule.
//   - DRBD 9 (its /proc/drbd and events2 formats are refused), several
//     volumes per resource (one minor per resource), dual-Primary setups.
//   - A consistent file system after a Primary is reset: the new Primary
//     mounts what was on disk at the reset, which only a journaling file
//     system (ext4 with its journal, xfs) replays to a consistent state.
//     An ext2, or an ext4 made without a journal, is mounted as it is.
//   - That the user's services stop: a unit whose stop fails is reported,
//     and the unmount then usually fails busy unless kill_holders is set.
package drbd
