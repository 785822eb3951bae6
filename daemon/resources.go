package daemon

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"

	"github.com/leasehold/leasehold/fencing"
	"github.com/leasehold/leasehold/lvs"
	"github.com/leasehold/leasehold/node/resource"
)

// resources builds a group's resource chain, promoted in this order after
// the lease is held and before the VIP goes up, demoted in reverse after
// the VIP is down: the promote/demote hooks of the configuration, then the
// IPVS table of the virtual servers following the group (lvs_mode
// owner). DRBD and MySQL resources join the chain here as they are
// configured.
func (d *Daemon) resources(group string, promote, demote []fencing.Hook, log *slog.Logger) *resource.Chain {
	var rs []resource.Resource
	if len(promote)+len(demote) > 0 {
		rs = append(rs, resource.Hooks{Group: group, Promotes: promote, Demotes: demote, Log: log,
			Failed: func(kind string) { d.metrics.hookFails.WithLabelValues(group, kind).Inc() }})
	}
	// Resources the kernel cannot fence keep the watchdog armed while
	// owned: armed first, disarmed last. The IPVS table is not one of
	// them: IPVS sees the VIP's packets after the kernel fence (its
	// LOCAL_IN hook runs after the fence's filter-priority chain), so an
	// expired fence stops its traffic too.
	if d.watchdog != nil && len(rs) > 0 {
		rs = append([]resource.Resource{d.watchdog.resource(group)}, rs...)
	}
	if d.lvs != nil && d.cfg.LVS.Mode == lvs.ModeOwner && slices.Contains(d.lvs.Groups(), group) {
		rs = append(rs, d.lvs.Table(group))
	}
	return resource.NewChain(rs...)
}

// setupLVS opens the kernel's IPVS table and removes what an earlier run
// left there (its state file under state_dir), before any group can
// own: without IPVS in the kernel the daemon does not start.
func (d *Daemon) setupLVS() error {
	if len(d.cfg.LVS.Services) == 0 {
		return nil
	}
	k, p, err := d.plat.LVS()
	if err != nil {
		return fmt.Errorf("virtual_server: %w", err)
	}
	dir, err := lvs.New(d.cfg.LVS, lvs.Options{Kernel: k, Prober: p, StateFile: filepath.Join(d.cfg.StateDir, "lvs.json"),
		Log: d.log.With("lvs", d.cfg.LVS.Mode)})
	if err != nil {
		return err
	}
	if err := dir.Reconcile(); err != nil {
		return fmt.Errorf("virtual_server: first reconcile (orphans of an earlier run): %w", err)
	}
	d.lvs = dir
	return nil
}
