package vmlab

import (
	"fmt"
	"slices"

	"github.com/leasehold/leasehold/lab/vm"
)

// baseModules are loaded in every guest: softdog for the watchdog,
// nftables for the kernel fence, DRBD and IPVS.
var baseModules = []string{"softdog", "nfnetlink", "nf_tables", "drbd", "ip_vs"}

// modules is the guests' lh.modules list: the lab's, then
// Options.ExtraModules not already in it.
func (l *Lab) modules() []string {
	out := slices.Clone(baseModules)
	extra := l.o.ExtraModules
	if l.o.DRBD {
		extra = append([]string{"ext4"}, extra...)
	}
	for _, m := range extra {
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// Segment is the lab's L2 segment (the qemu multicast group "230.x.y.z:PORT"
// on loopback): more VMs (real servers, clients) join it with a NIC
// {Mcast: Segment()}, the host with lab/vm/wire.Open.
func (l *Lab) Segment() string { return l.mcast }

// VM returns the running VM of a node (for tests that look inside it:
// Exec, HTTP to its daemon's status socket StatusSocket).
func (l *Lab) VM(name string) (*vm.VM, error) {
	n, err := l.node(name)
	if err != nil {
		return nil, err
	}
	v := l.vmOf(n)
	if v == nil {
		return nil, fmt.Errorf("vmlab: %s has no VM running", name)
	}
	return v, nil
}

// StatusSocket is where each guest's daemon serves its status API.
const StatusSocket = statusSocket
