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
// promote those resources. A group whose resources failed to demote
// escalates: the watchdog is no longer fed (the session's renewals go on
// for the node's other groups and must not keep a machine alive whose
// DRBD may still be Primary), so the machine resets within the timeout,
// unless a later demotion of that group succeeds first.
type watchdogGuard struct {
	wd        Watchdog
	timeout   time.Duration
	log       *slog.Logger
	mu        sync.Mutex
	owned     map[string]bool
	escalated map[string]uint64 // group → epoch whose demotion failed
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
	return &watchdogGuard{wd: wd, timeout: w.Timeout, log: d.log, owned: map[string]bool{}, escalated: map[string]uint64{}}, nil
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

// Escalate implements resource.Guard: a chain whose resource failed to
// demote (DRBD still Primary) leaves the watchdog armed and stops feeding
// it, and the machine resets.
func (r watchdogResource) Escalate(epoch uint64, cause error) { r.g.escalate(r.group, epoch, cause) }

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

// escalate stops the feeds: group's resources may still be active
// without a lease behind them.
func (g *watchdogGuard) escalate(group string, epoch uint64, cause error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.escalated[group] = epoch
	if g.wd.Armed() {
		g.log.Error("resources failed to demote: the watchdog is no longer fed, this machine resets unless they demote first",
			"group", group, "epoch", epoch, "timeout", g.timeout, "err", cause)
	} else {
		g.log.Error("resources failed to demote and no watchdog is armed: nothing resets this machine", "group", group, "epoch", epoch, "err", cause)
	}
}

// release disarms the device once no group owns (a group that demotes
// ends its escalation).
func (g *watchdogGuard) release(group string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.owned, group)
	delete(g.escalated, group)
	if len(g.owned) > 0 || !g.wd.Armed() {
		return nil
	}
	if err := g.wd.Disarm(); err != nil {
		return err
	}
	g.log.Info("watchdog disarmed", "group", group)
	return nil
}

// renewed feeds the watchdog after an acknowledged renewal, unless a
// group escalated.
func (g *watchdogGuard) renewed() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.wd.Armed() && len(g.escalated) == 0 {
		if err := g.wd.Feed(); err != nil {
			g.log.Error("watchdog feed failed: the machine resets unless a feed succeeds within the timeout", "err", err, "timeout", g.timeout)
		}
	}
}
