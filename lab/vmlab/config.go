package vmlab

import "fmt"

// guestYAML is node i's configuration: one group on eth0 (VRRPv3, advert
// 0.1 s, priority 120, 100, ...), the link tracked (a cut link puts the
// group in FAULT, so the node gives up its lease), etcd through the quorum
// link, promote and demote hooks (a resource the kernel cannot fence, so
// the watchdog is armed while the node owns), with Options.DRBD a drbd
// section (r0, ext4 on /srv, the lab writer's gate as its service, the
// holders killed). The fence's margin (the
// time one nftables refresh may take before the node stops trusting it)
// is the default TTL/10 = 300 ms: an emulated guest is about ten times
// slower than the host, and 80 ms refreshes were seen there.
func guestYAML(name string, i int, o Options) string {
	drbd, budget := "", ""
	if o.DRBD {
		// Unmounting writes the dirty data first: under TCG a graceful
		// demotion ran out of time (2.6 s, then drbdadm secondary was cut
		// short and the watchdog reset the node). A DRBD lab has a 4 s
		// lease (Options.defaults) and a 1 s budget.
		budget = "\n  demote_budget: 1s"
		sb := ""
		if o.AfterSplitBrain != "" {
			sb = ", after_split_brain: " + o.AfterSplitBrain
		}
		// The lab's writer is the service on /srv: leasehold stops it
		// (writerGate) before the unmount and starts it after the mount,
		// as a user's database or file server would be.
		drbd = fmt.Sprintf("    drbd: {resource: %s, device: %s, mount: %s, fstype: ext4, kill_holders: true, services: [%s]%s}\n",
			DRBDResource, DRBDDevice, DRBDMount, writerGate, sb)
	}
	return fmt.Sprintf(`# leasehold VM lab, node %[1]s (written by vmlab)
node: {name: %[1]s}
quorum:
  backend: etcd
  ttl: %[2]s%[9]s
  etcd: {endpoints: ["http://%[3]s"]}
status: {listen: "unix:%[4]s"}
state_dir: /var/lib/leasehold
fencing: {watchdog: %[5]s}
vrrp_instance:
  VI_1:
    interface: eth0
    virtual_router_id: 1
    priority: %[6]d
    version: 3
    advert_int: 0.1
    virtual_ipaddress: ["%[7]s/24"]
    track_interface: [eth0]
    promote: [{path: /etc/leasehold/resource.sh, args: [promote]}]
    demote: [{path: /etc/leasehold/resource.sh, args: [demote]}]
%[8]s`, name, o.TTL, etcdGuestAddr, statusSocket, o.Watchdog, 120-20*i, vip, drbd, budget) + o.ExtraYAML
}
