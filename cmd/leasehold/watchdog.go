package main

import (
	"fmt"
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
	wd      *fencing.Watchdog
	timeout time.Duration
	mu      sync.Mutex
	owned   map[string]bool
}

// newWatchdogGuard returns nil when the watchdog is off or not needed.
func (d *daemon) newWatchdogGuard() (*watchdogGuard, error) {
	mode, err := fencing.ParseWatchdogMode(d.cfg.Fencing.Watchdog)
	if err != nil {
		return nil, err
	}
	needed := false
	for _, ic := range d.cfg.Instance {
		needed = needed || len(ic.Promote)+len(ic.Demote) > 0
	}
	if mode == fencing.WatchdogOff || !needed || !d.leaseMode() {
		return nil, nil
	}
	opts := quorumOptions(d.cfg)
	// Whole seconds, inside the local deadline: the reset must come before
	// the lease can pass to another node.
	timeout := (opts.TTL - opts.Drift - opts.Margin - opts.DemoteBudget).Truncate(time.Second)
	if timeout < time.Second {
		msg := fmt.Sprintf("watchdog: a whole-second timeout does not fit inside the lease (ttl %v): use ttl >= 2s", opts.TTL)
		if mode == fencing.WatchdogRequired {
			return nil, fmt.Errorf("fencing.watchdog required: %s", msg)
		}
		d.log.Warn(msg + "; the watchdog stays off")
		return nil, nil
	}
	wd := fencing.NewWatchdog(d.cfg.Fencing.WatchdogDevice, mode, d.log)
	if err := wd.Probe(); err != nil {
		if mode == fencing.WatchdogRequired {
			return nil, err
		}
		d.log.Warn("watchdog unavailable; unfenceable resources rely on peer-fence hooks only", "err", err)
		return nil, nil
	}
	return &watchdogGuard{wd: wd, timeout: timeout, owned: map[string]bool{}}, nil
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
