package daemon

import (
	"sync"
	"time"

	"github.com/leasehold/leasehold/fencing"
	"github.com/leasehold/leasehold/node"
)

// watchdogGuard arms /dev/watchdog while this node owns a group with
// resources the kernel cannot fence (promote/demote hooks: DRBD, MySQL),
// feeds it on every lease renewal, and disarms it when none is owned. If
// the daemon freezes or dies, the machine resets before another node can
// promote those resources.
type watchdogGuard struct {
	wd      Watchdog
	timeout time.Duration
	mu      sync.Mutex
	owned   map[string]bool
}

// newWatchdogGuard returns nil when the watchdog is off or not needed.
func (d *Daemon) newWatchdogGuard() (*watchdogGuard, error) {
	w := d.plan.Watchdog
	if !w.Needed {
		return nil, nil
	}
	wd := d.plat.Watchdog(w.Device, w.Mode, d.log)
	if err := wd.Probe(); err != nil {
		if w.Mode == fencing.WatchdogRequired {
			return nil, err
		}
		d.log.Warn("watchdog unavailable; unfenceable resources rely on peer-fence hooks only", "err", err)
		return nil, nil
	}
	return &watchdogGuard{wd: wd, timeout: w.Timeout, owned: map[string]bool{}}, nil
}

// transition arms or disarms with ownership of groups that need it.
func (g *watchdogGuard) transition(group string, needs bool, to node.Role) {
	if g == nil || !needs {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if to == node.RoleOwner {
		g.owned[group] = true
	} else {
		delete(g.owned, group)
	}
	switch {
	case len(g.owned) > 0 && !g.wd.Armed():
		g.wd.Arm(g.timeout)
	case len(g.owned) == 0 && g.wd.Armed():
		g.wd.Disarm()
	}
}

// renewed feeds the watchdog after an acknowledged renewal.
func (g *watchdogGuard) renewed() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.wd.Armed() {
		g.wd.Feed()
	}
}
