// Package vmlab is the lab of virtual machines: leasehold on real guest
// kernels (Debian's stock kernel under qemu TCG, see lab/vm and
// lab/vm/image), where a watchdog can reset a machine, DRBD and IPVS
// exist, and a node's machine can lose power.
//
// Layout: N VMs (n1 priority 120, n2 100, ...) share an L2 segment (qemu
// socket multicast on 127.0.0.1: the VRRP and client link, eth0,
// 10.66.0.0/24, VIP 10.66.0.100). Each VM has a second NIC (eth1, qemu
// user networking with restrict=on) whose only way out is a forward of
// 10.0.2.100:2379 to the lab's etcd server on the host's loopback: the
// quorum link. Cutting one leaves the other, so "cut VRRP" and "cut the
// quorum" are separate faults (QMP set_link), and "isolation" cuts both.
// The daemon in each VM runs the same binary, configuration language and
// kernel fence (nftables in the guest kernel) as on a real machine, arms
// softdog as configured (fencing.watchdog), and logs to a 9p share that
// the host reads.
//
// With Options.DRBD (two nodes) a third NIC per VM (eth2, its own
// multicast segment, 10.67.0.0/24) carries only DRBD's replication link
// for r0 on the persistent disks, with leasehold's fence-peer handlers;
// CutReplication cuts it alone; the group's drbd section mounts ext4 on
// /srv (drbd.go). DrillTarget then is a drill.DataGuard: per drill, both
// nodes' roles sampled over 10×/s and a writer on the Primary whose
// acknowledged records are checked afterwards (drbdguard.go).
//
// Checkers run on the host's end of the segment (lab/vm/wire): an ARP
// probe for the VIP every 100 ms (two MACs answering one round is a split
// brain) and a TCP client (SYN to VIP:80 every 20 ms; the answering MAC
// names the node). The daemons' status comes through each guest's agent.
//
// Guarantees:
//   - Everything stays on loopback: the segment is multicast bound to
//     127.0.0.1, the user network is restricted, etcd listens on
//     127.0.0.1. No root is needed.
//   - Down stops exactly the processes the lab started (qemu, etcd), by
//     their PIDs, and removes its directory unless asked to keep it.
//   - Lab implements drill.Target with every optional fault: VRRP-link
//     cut, link flap, isolation, power cut; and drill.Resetter: with the
//     watchdog armed, kill -9 and freeze must reset the owner's VM before
//     another node takes over (qemu runs with -no-reboot, so a reset ends
//     it and the host times it; Restart boots it again on its disk).
//
// Not guaranteed: timings. TCG is slow (a guest is about 10× slower than
// the host); figures are measured and printed, never asserted.
package vmlab
