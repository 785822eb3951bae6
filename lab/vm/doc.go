// Package vm runs lab VMs: qemu under pure software emulation (TCG, one
// vCPU, -cpu qemu64), booting a kernel and initramfs such as lab/vm/image
// builds, so that tests get real DRBD, IPVS, nftables and a watchdog on a
// host whose own kernel has none of them, and without root.
//
// Start launches qemu-system-x86_64 with the serial console in
// Dir/console.log, QMP on Dir/qmp.sock and the agent's virtio-serial port
// "ctl" on Dir/ctl.sock. The guest's /init is expected to set itself up
// from the kernel command line (lh.name=, lh.ip0=, lh.ip1=, lh.gw1=,
// lh.modules=, lh.share=), print "@@VM-READY <name> <uptime>" on ttyS0 and
// run cmd/leasehold-lab-guest on the port; WaitReady waits for both.
// Exec, Spawn, Signal, Alive and HTTP are requests to that agent (the
// protocol is described in package lab/vm/agent), multiplexed over one
// connection to ctl.sock that is dialled again if it drops. QMP, SetLink,
// Reset and PowerCut go through QMP.
//
// Networking: each NIC is either a UDP multicast group bound to 127.0.0.1
// (-netdev socket,mcast=…,localaddr=127.0.0.1): an L2 segment shared by
// every VM given the same group, seen by nothing but those VMs (use
// NewMcastGroup per lab, so that concurrent labs do not share one); or
// qemu user networking with restrict=on, whose only way out is the
// configured guestfwd commands, run on the host per guest connection.
//
// Guaranteed:
//   - Every call is bounded: by the caller's context, else by a default
//     (Start 30 s, WaitReady 2 min, Exec its timeout (default 1 min) + 5 s,
//     others 10 s), and ends early with ErrExited when qemu exits.
//   - Only the qemu process Start started is ever signalled, through its
//     pidfd (never a recycled PID); it also gets SIGKILL if the process
//     that started it dies. Guest processes are signalled only if their
//     PID still has the start time Spawn returned.
//   - Stop and PowerCut return when qemu has exited (and been reaped);
//     Stop is idempotent. An error from Start leaves no qemu running.
//   - Config.Disk is created sparse when absent and never truncated or
//     removed: its content survives Stop, PowerCut and a new Start.
//
// Not guaranteed:
//   - Timing. TCG is slow and the host is shared: measured boots take
//     2–3 s on an idle 2-core machine and several times that when busy.
//     Tests should wait for conditions, not durations.
//   - Exactly-once delivery across a guest reboot: requests sent while the
//     guest's agent is down wait in qemu and may run after the reboot;
//     replies lost to the reboot surface as timeouts.
//   - Isolation of a multicast segment from another lab that picked the
//     same group and port (NewMcastGroup makes that unlikely, not
//     impossible).
//   - Bytes that are not UTF-8 in exec output or HTTP bodies (they travel
//     as JSON strings and arrive as U+FFFD).
//
// Requires qemu-system-x86_64 on PATH; KVM is not used.
package vm
