package lvs

import (
	"context"
	"errors"
	"slices"
)

// GroupTable is the part of the table that follows one group's lease
// (ModeOwner), as a node/resource.Resource: promoted, it adds the group's
// virtual servers; demoted, it removes them. In a group's chain it is
// promoted after the lease is held and before the VIP goes up, and
// demoted after the VIP is down: a service without its VIP gets no
// traffic (IPVS sees only packets addressed to this host, and the kernel
// fence drops the VIP's), while a VIP without its service would refuse
// connections.
type GroupTable struct {
	d     *Director
	group string
}

// Table returns the table of the virtual servers following group.
func (d *Director) Table(group string) GroupTable { return GroupTable{d: d, group: group} }

// Groups lists the groups virtual servers follow (ModeOwner).
func (d *Director) Groups() []string {
	var out []string
	for _, s := range d.cfg.Services {
		if s.Follow != "" && !slices.Contains(out, s.Follow) {
			out = append(out, s.Follow)
		}
	}
	return out
}

// Name implements resource.Resource.
func (g GroupTable) Name() string { return "lvs" }

// Promote adds the group's virtual servers. If that fails, it takes back
// what it added and returns the failure (the group then demotes).
func (g GroupTable) Promote(_ context.Context, _ uint64) error {
	g.d.setOwned(g.group, true)
	err := g.d.Reconcile()
	if err != nil {
		g.d.setOwned(g.group, false)
		err = errors.Join(err, g.d.Reconcile())
	}
	return err
}

// Demote removes the group's virtual servers.
func (g GroupTable) Demote(_ context.Context, _ uint64) error {
	g.d.setOwned(g.group, false)
	return g.d.Reconcile()
}
