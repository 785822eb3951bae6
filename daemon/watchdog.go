package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/leasehold/leasehold/fencing"
	"github.com/leasehold/leasehold/node/resource"
)

// watchdogGuard arms /dev/watchdog while this node owns a group with
// resources the kernel cannot fence (promote/demote hooks: DRBD, MySQL),
// feeds it on every lease renewal, and disarms it when none is owned. If
// the daemon freezes or dies, the machine resets before another node can
// promote those resources.
type watchdogGuard struct {
	wd      Watchdog
	timeout time.Duration
	log     *slog.Logger
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
	return &watchdogGuard{wd: wd, timeout: w.Timeout, log: d.log, owned: map[string]bool{}}, nil
}

// resource returns the guard as the first resource of group's chain: it
// is armed before the group's resources are promoted (a required watchdog
// that cannot be armed fails the promotion, and the group demotes) and
// disarmed only after they are demoted.
func (g *watchdogGuard) resource(group string) resource.Resource {
	return watchdogResource{g: g, group: group}
}

type watchdogResource struct {
	g     *watchdogGuard
	group string
}

func (r watchdogResource) Name() string { return "watchdog" }

// Guards implements resource.Guard: a chain whose resource failed to
// demote (DRBD still Primary) leaves the watchdog armed, and the machine
// resets once the feeds stop with the lease.
func (r watchdogResource) Guards() {}

func (r watchdogResource) Promote(context.Context, uint64) error { return r.g.own(r.group) }

func (r watchdogResource) Demote(context.Context, uint64) error { return r.g.release(r.group) }

// own arms the device (if no other group has) for group.
func (g *watchdogGuard) own(group string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.wd.Armed() {
		// Mode auto logs a failure and returns nil, unarmed.
		if err := g.wd.Arm(g.timeout); err != nil {
			return fmt.Errorf("arming the watchdog (timeout %v): %w", g.timeout, err)
		}
		if g.wd.Armed() {
			g.log.Info("watchdog armed", "group", group, "timeout", g.timeout)
		}
	}
	g.owned[group] = true
	return nil
}

// release disarms the device once no group owns.
func (g *watchdogGuard) release(group string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.owned, group)
	if len(g.owned) > 0 || !g.wd.Armed() {
		return nil
	}
	if err := g.wd.Disarm(); err != nil {
		return err
	}
	g.log.Info("watchdog disarmed", "group", group)
	return nil
}

// renewed feeds the watchdog after an acknowledged renewal.
func (g *watchdogGuard) renewed() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.wd.Armed() {
		if err := g.wd.Feed(); err != nil {
			g.log.Error("watchdog feed failed: the machine resets unless a feed succeeds within the timeout", "err", err, "timeout", g.timeout)
		}
	}
}
