package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/leasehold/leasehold/config"
	"github.com/leasehold/leasehold/node/health"
	"github.com/leasehold/leasehold/node/notify"
	"github.com/leasehold/leasehold/script"
	"github.com/leasehold/leasehold/storage/mysql"
	"github.com/leasehold/leasehold/vrrp"
)

// tracked is one instance's health tracker and notifier.
type tracked struct {
	name    string
	in      *vrrp.Instance
	tracker *health.Tracker
	notif   *notify.Notifier
}

// newTracked builds the tracker (track_script, track_interface) and the
// notifier (notify_*) of an instance; either may be nil.
func (d *Daemon) newTracked(ic *config.Instance) (*tracked, error) {
	t := &tracked{name: ic.Name}
	var native []health.Script
	for _, m := range d.mysql {
		if m.instance == ic.Name {
			native = append(native, mysqlCheck(m.r.Config(), m.r.Check))
		}
	}
	tr, err := newTracker(d.cfg, ic, d.log, native...)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", ic.Name, err)
	}
	t.tracker = tr
	n, err := newInstanceNotifier(ic, d.log)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", ic.Name, err)
	}
	if n != nil {
		t.notif = n
		d.notifiers[ic.Name] = n
	}
	return t, nil
}

// newTracker builds an instance's health tracker (nil when it tracks
// nothing): its track_scripts, then the native checks of its resources
// (a mysql section's), and its track_interfaces. The plan calls it too,
// so check and run agree.
func newTracker(c *config.Config, ic *config.Instance, log *slog.Logger, native ...health.Script) (*health.Tracker, error) {
	var scripts []health.Script
	for _, name := range ic.TrackScript {
		s := c.Script[name]
		line, err := script.ParseLine(s.Script)
		if err != nil {
			return nil, fmt.Errorf("vrrp_script %s: %w", name, err)
		}
		scripts = append(scripts, health.Script{Name: name, Path: line.Path, Args: line.Args, Interval: s.Interval.D(),
			Timeout: s.Timeout.D(), Weight: s.Weight, Rise: s.Rise, Fall: s.Fall, InitFail: s.InitFail, RunAs: s.User})
	}
	scripts = append(scripts, native...)
	var ifaces []health.Interface
	for _, ti := range ic.Tracks {
		ifaces = append(ifaces, health.Interface{Name: ti.Name, Weight: ti.Weight})
	}
	if len(scripts)+len(ifaces) == 0 {
		return nil, nil
	}
	return health.NewTracker(uint8(ic.Priority), scripts, ifaces, log.With("group", ic.Name))
}

// mysqlCheck is the native health check of a mysql section, named
// "mysql" in the tracker's reasons, weighted like a vrrp_script.
func mysqlCheck(mc mysql.Config, check func(context.Context) error) health.Script {
	c := mc.Defaults().Check
	return health.Script{Name: "mysql", Check: check, Interval: c.Interval, Timeout: c.Timeout, Weight: c.Weight, Rise: c.Rise, Fall: c.Fall}
}

// newInstanceNotifier builds an instance's notify_* runner (nil: none).
func newInstanceNotifier(ic *config.Instance, log *slog.Logger) (*notify.Notifier, error) {
	if !ic.Any() {
		return nil, nil
	}
	return notify.New(ic.Name, notify.Config{Master: ic.NotifyMaster, Backup: ic.NotifyBackup, Fault: ic.NotifyFault,
		Stop: ic.NotifyStop, Generic: ic.Notify, Timeout: ic.NotifyTimeout.D()}, log)
}

// run feeds health changes to the VRRP instance and runs the notifier
// until ctx ends; then it flushes STOP notifications within the budget.
func (t *tracked) run(ctx context.Context, wg *sync.WaitGroup) {
	if t.tracker != nil {
		wg.Go(func() { t.tracker.Run(ctx) })
		wg.Go(func() {
			var last health.Status
			first := true
			for {
				select {
				case <-ctx.Done():
					return
				case s := <-t.tracker.Updates():
					if first || s.Priority != last.Priority {
						t.in.Inject(vrrp.PriorityChanged{Priority: s.Priority})
					}
					if first || s.Fault != last.Fault {
						t.in.SetFault("health", s.Fault)
					}
					last, first = s, false
				}
			}
		})
	}
	if t.notif != nil {
		wg.Go(func() { t.notif.Run(ctx) })
	}
}

// vrrpNotify maps VRRP transitions to notify states (quorum none: VRRP
// master is the owner).
func vrrpNotify(n *notify.Notifier) func(vrrp.Transition, uint8) {
	return func(tr vrrp.Transition, prio uint8) {
		switch tr.To {
		case vrrp.StateMaster:
			n.Notify("MASTER", prio, 0)
		case vrrp.StateBackup:
			n.Notify("BACKUP", prio, 0)
		case vrrp.StateFault:
			n.Notify("FAULT", prio, 0)
		case vrrp.StateInit:
			n.Notify("STOP", prio, 0)
		}
	}
}
