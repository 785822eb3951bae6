package lvs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// GroupTable is the part of the table that follows one group's lease
// (ModeOwner), as a node/resource.Resource: promoted, it adds the group's
// virtual servers; demoted, it removes them. In a group's chain it is
// promoted after the lease is held and before the VIP goes up, and
// demoted after the VIP is down: a service without its VIP gets no
// traffic (IPVS sees only packets addressed to this host, and the kernel
// fence drops the VIP's), while a VIP without its service would refuse
// connections.
//
// Promote and Demote of a group run one at a time, and a promotion for an
// epoch already demoted is refused: a group may demote a grant while its
// promotion is still under way (its step timed out), and the promotion's
// late end must not add the table back after the demotion removed it.
type GroupTable struct {
	d     *Director
	group string
	g     *groupGuard
}

// groupGuard orders a group's promotions and demotions.
type groupGuard struct {
	mu      sync.Mutex
	demoted uint64 // highest epoch demoted
}

// Table returns the table of the virtual servers following group.
func (d *Director) Table(group string) GroupTable {
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.guards[group]
	if g == nil {
		g = &groupGuard{}
		d.guards[group] = g
	}
	return GroupTable{d: d, group: group, g: g}
}

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

// ErrDemoted: a promotion for an epoch whose demotion already ran.
var ErrDemoted = errors.New("lvs: the grant was demoted already")

// Promote adds the group's virtual servers. If that fails, it takes back
// what it added and returns the failure (the group then demotes).
func (g GroupTable) Promote(_ context.Context, epoch uint64) error {
	g.g.mu.Lock()
	defer g.g.mu.Unlock()
	if epoch <= g.g.demoted {
		return fmt.Errorf("%w: promotion for epoch %d after the demotion of epoch %d", ErrDemoted, epoch, g.g.demoted)
	}
	g.d.setOwned(g.group, true)
	err := g.d.Reconcile()
	if err != nil {
		g.d.setOwned(g.group, false)
		err = errors.Join(err, g.d.Reconcile())
	}
	return err
}

// Demote removes the group's virtual servers.
func (g GroupTable) Demote(_ context.Context, epoch uint64) error {
	g.g.mu.Lock()
	defer g.g.mu.Unlock()
	g.g.demoted = max(g.g.demoted, epoch)
	g.d.setOwned(g.group, false)
	return g.d.Reconcile()
}
