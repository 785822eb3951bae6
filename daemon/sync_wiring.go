package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"

	"github.com/leasehold/leasehold/config"
	"github.com/leasehold/leasehold/node"
	"github.com/leasehold/leasehold/node/notify"
	"github.com/leasehold/leasehold/vrrp/vipaddr"
)

// syncSetup is one vrrp_sync_group being built.
type syncSetup struct {
	sync  *node.SyncGroup
	group *node.Group      // lease mode: the sync group's lease (its gate)
	index map[string]int   // member instance → index
	none  *noneSync        // quorum none: adds/removes the members' VIPs
	notif *notify.Notifier // the group's own notify scripts (nil: none)
}

// setupSync builds every sync group: in lease mode one node.Group (one
// lease, named after the sync group) for all members' VIPs; with quorum
// none the members' VIPs go up when all are master and down when one
// leaves.
func (d *Daemon) setupSync() (map[string]*syncSetup, error) {
	out := map[string]*syncSetup{}
	names := make([]string, 0, len(d.cfg.Sync))
	for n := range d.cfg.Sync {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		members := d.cfg.Sync[name].Group
		ss := &syncSetup{index: map[string]int{}}
		n, err := d.syncNotifier(name, d.cfg.Sync[name])
		if err != nil {
			return nil, err
		}
		ss.notif = n
		var ics []*config.Instance
		var vips []vipaddr.VIP
		var addrs []netip.Addr
		for i, m := range members {
			ss.index[m] = i
			ic := d.cfg.Instance[m]
			ics = append(ics, ic)
			for _, v := range ic.VIPs {
				addrs = append(addrs, v.Prefix.Addr())
				vips = append(vips, vipaddr.VIP{Iface: v.Dev, Prefix: v.Prefix})
			}
		}
		if d.leaseMode() {
			g, err := d.newGroup(name, ics, vips, addrs)
			if err != nil {
				return nil, err
			}
			ss.sync, ss.group = node.NewSyncGroup(node.GroupTarget{G: g}, len(members)), g
			g.SetVRRP(ss.sync.Control())
			d.groups = append(d.groups, g)
		} else {
			ss.none = &noneSync{d: d, name: name, effects: make([]*addrEffects, len(members)), notif: n}
			ss.sync = node.NewSyncGroup(ss.none, len(members))
			ss.none.sync = ss.sync
		}
		out[name] = ss
	}
	return out, nil
}

// syncNotifier builds a sync group's notifier (nil if it has no scripts);
// the daemon runs and flushes it with the instances' ones.
func (d *Daemon) syncNotifier(name string, sg *config.SyncGroup) (*notify.Notifier, error) {
	n, err := newSyncNotifier(name, sg, d.log)
	if err != nil {
		return nil, fmt.Errorf("vrrp_sync_group %s: %w", name, err)
	}
	if n != nil {
		d.syncNotifiers[name] = n
	}
	return n, nil
}

// newSyncNotifier builds a sync group's notify_* runner (nil: none).
func newSyncNotifier(name string, sg *config.SyncGroup, log *slog.Logger) (*notify.Notifier, error) {
	if !sg.Any() {
		return nil, nil
	}
	return notify.New(name, notify.Config{Master: sg.NotifyMaster, Backup: sg.NotifyBackup, Fault: sg.NotifyFault,
		Stop: sg.NotifyStop, Generic: sg.Notify, Timeout: sg.NotifyTimeout.D(), Kind: notify.KindGroup}, log)
}

// noneSync applies a sync group's decisions without a quorum.
type noneSync struct {
	d       *Daemon
	name    string
	sync    *node.SyncGroup
	effects []*addrEffects
	notif   *notify.Notifier
	faulted bool
}

func (n *noneSync) AllMaster() {
	for _, e := range n.effects {
		if err := e.Up(context.Background()); err != nil {
			n.d.log.Error("sync group: adding VIPs failed", "group", n.name, "err", err)
		}
	}
	n.sync.Control().Announce()
	n.notify(notify.Master)
}

func (n *noneSync) NotAllMaster(reason string) {
	for _, e := range n.effects {
		e.Down(context.Background())
	}
	n.d.log.Info("sync group left master", "group", n.name, "reason", reason)
	if !n.faulted {
		n.notify(notify.Backup)
	}
}

func (n *noneSync) Faulted(on bool) {
	n.faulted = on
	if on {
		n.notify(notify.Fault)
	} else {
		n.notify(notify.Backup)
	}
}

func (n *noneSync) notify(state string) {
	if n.notif != nil {
		n.notif.Notify(state, 0, 0)
	}
}
