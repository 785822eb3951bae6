package daemon

import (
	"fmt"
	"log/slog"

	"github.com/leasehold/leasehold/fencing"
	"github.com/leasehold/leasehold/node/resource"
	"github.com/leasehold/leasehold/storage/drbd"
)

// resources builds a group's resource chain, promoted in this order after
// the lease is held and before the VIP goes up, demoted in reverse after
// the VIP is down: the watchdog (when any resource follows), the
// promote/demote hooks of the configuration, then the members' DRBD
// resources (so a demote hook runs once DRBD is Secondary). MySQL and
// IPVS resources join the chain here as they are configured.
func (d *Daemon) resources(group string, promote, demote []fencing.Hook, drbds []drbd.Config, log *slog.Logger) (*resource.Chain, error) {
	var rs []resource.Resource
	if len(promote)+len(demote) > 0 {
		rs = append(rs, resource.Hooks{Group: group, Promotes: promote, Demotes: demote, Log: log,
			Failed: func(kind string) { d.metrics.hookFails.WithLabelValues(group, kind).Inc() }})
	}
	for _, dc := range drbds {
		r, err := drbd.New(dc, d.plat.DRBD(), log)
		if err != nil {
			return nil, fmt.Errorf("group %s: %w", group, err)
		}
		rs = append(rs, r)
	}
	// Resources the kernel cannot fence keep the watchdog armed while
	// owned: armed first, disarmed last.
	if d.watchdog != nil && len(rs) > 0 {
		rs = append([]resource.Resource{d.watchdog.resource(group)}, rs...)
	}
	return resource.NewChain(rs...), nil
}
