package daemon

import (
	"log/slog"

	"github.com/leasehold/leasehold/fencing"
	"github.com/leasehold/leasehold/node/resource"
)

// resources builds a group's resource chain, promoted in this order after
// the lease is held and before the VIP goes up, demoted in reverse after
// the VIP is down: the promote/demote hooks of the configuration. DRBD,
// MySQL and IPVS resources join the chain here as they are configured.
func (d *Daemon) resources(group string, promote, demote []fencing.Hook, log *slog.Logger) *resource.Chain {
	var rs []resource.Resource
	if len(promote)+len(demote) > 0 {
		rs = append(rs, resource.Hooks{Group: group, Promotes: promote, Demotes: demote, Log: log,
			Failed: func(kind string) { d.metrics.hookFails.WithLabelValues(group, kind).Inc() }})
	}
	// Resources the kernel cannot fence keep the watchdog armed while
	// owned: armed first, disarmed last.
	if d.watchdog != nil && len(rs) > 0 {
		rs = append([]resource.Resource{d.watchdog.resource(group)}, rs...)
	}
	return resource.NewChain(rs...)
}
