// Package daemon assembles a leasehold node from a validated Plan and a
// Platform, the way hashicorp/raft's NewRaft takes its stores and
// transport: cmd/leasehold only parses flags, handles signals and calls
// Load, New, Run, Reload and Dump.
//
//	plan, err := daemon.Load("/etc/leasehold/leasehold.yaml") // = config check
//	d, err := daemon.New(plan, daemon.OS(), log)              // starts nothing
//	err = d.Run(ctx)                                           // until ctx ends
//
// Guaranteed:
//   - one Plan: `config check`, `run` and a SIGHUP reload build it with the
//     same function (NewPlan), which runs every package's validation with
//     its cross-field rules (lease timings against the backend, the VRRP
//     machine's ranges, hooks and scripts, the watchdog inside the lease);
//     a file check accepts, run accepts, and every refusal names file,
//     line and key;
//   - New touches no OS state; Run removes the orphans of an earlier run
//     (VIPs, fence state, IPVS services it recorded) before it joins VRRP,
//     refuses to start with virtual_server configured and no IPVS in the
//     kernel, and in lease mode opens the quorum and installs the kernel
//     fence before any VIP can go up;
//   - lvs_mode owner: a group's IPVS table is a resource of its chain
//     (added after the lease is held and before the VIP, removed after the
//     VIP); lvs_mode all: the table runs beside the groups, on every node,
//     and is removed on exit after the VIPs;
//   - Run stops in the protocol's order: VRRP priority 0 while the groups
//     demote (fence off, resources in reverse, VIPs, release), then the
//     quorum session is revoked and the raft voter stops last, each step
//     within the stop budget;
//   - Reload applies only the Reloadable subset (instance priorities
//     without health trackers) and refuses the whole reload, naming each
//     key, when anything else changed.
//
// Not guaranteed: that the Platform's edges work as they claim (OS() is the
// real kernel; an in-memory platform is for tests); a reload never
// restarts anything, so a refused reload leaves the running configuration
// in force until a restart.
package daemon
