package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leasehold/leasehold/config"
	"github.com/leasehold/leasehold/fencing"
	"github.com/leasehold/leasehold/lvs"
	"github.com/leasehold/leasehold/node"
	"github.com/leasehold/leasehold/node/notify"
	"github.com/leasehold/leasehold/node/resource"
	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/vrrp"
	"github.com/leasehold/leasehold/vrrp/vipaddr"
)

// stopBudget bounds the graceful shutdown (priority-0 adverts, VIP removal).
const stopBudget = 3 * time.Second

// Daemon is one node: its VRRP instances, and in lease mode its quorum
// session, kernel fence, watchdog and one node.Group per group, assembled
// from a validated Plan on a Platform.
type Daemon struct {
	plan  *Plan
	cfg   *config.Config // plan.Config; priorities change on reload
	plat  Platform
	log   *slog.Logger
	vips  Addresses
	muxes []*vrrp.Mux
	insts []*vrrp.Instance
	anns  []vrrp.VIPAnnouncer

	// Lease mode (quorum etcd or raft).
	backend   quorum.Backend
	voter     Voter
	fence     fencing.Fence
	fenceDesc string
	groups    []*node.Group
	chains    []*resource.Chain // the groups' resources (Start before they run)
	drbd      []groupDRBD       // the groups' DRBD resources (status, metrics)
	mysql     []groupMySQL      // the groups' MySQL servers (status, metrics, health checks)
	rosters   []*node.Roster    // lease mode: each instance's members
	super     atomic.Pointer[node.Supervisor]
	notifiers map[string]notifier
	// syncNotifiers are the vrrp_sync_groups' own notify scripts.
	syncNotifiers map[string]*notify.Notifier
	metrics       *metrics
	tracked       []*tracked
	watchdog      *watchdogGuard
	// lvs keeps the IPVS table (virtual_server configured).
	lvs *lvs.Director
	// lvsSync: the kernel's connection-sync daemons (lvs_sync_daemon),
	// following one group's lease.
	lvsSync *lvs.Sync

	// reloadMu serialises Reload with itself and with Run's setup.
	reloadMu sync.Mutex
	ready    atomic.Bool
}

// notifier runs notify scripts (package node/notify).
type notifier interface {
	Notify(state string, priority uint8, epoch uint64)
	Counters() notify.Counters
}

func (d *Daemon) leaseMode() bool { return d.plan.LeaseMode() }

// New assembles a daemon from a plan (see NewPlan) on a platform (OS() for
// the real one). It starts nothing and touches no OS state: Run does.
func New(plan *Plan, plat Platform, log *slog.Logger) (*Daemon, error) {
	if plan == nil || plan.Config == nil {
		return nil, errors.New("daemon: no plan")
	}
	cfg := plan.Config
	if !plan.LeaseMode() {
		log.Warn("QUORUM IS NONE: plain VRRP with NO split-brain protection. If this node is cut off or frozen, " +
			"two nodes may hold the VIP at once (as with keepalived). Use it for interop and migration only.")
	}
	d := &Daemon{plan: plan, cfg: cfg, plat: plat, log: log, vips: plat.Addresses(cfg.StateDir),
		notifiers: map[string]notifier{}, syncNotifiers: map[string]*notify.Notifier{}, metrics: newMetrics()}
	d.metrics.watch(d)
	return d, nil
}

// Ready reports whether Run has set everything up and serves.
func (d *Daemon) Ready() bool { return d.ready.Load() }

// addrEffects adds and removes an instance's VIPs (quorum none).
type addrEffects struct {
	addrs groupAddrs
	log   *slog.Logger
}

func newAddrEffects(d *Daemon, group string, vips []vipaddr.VIP) *addrEffects {
	return &addrEffects{addrs: groupAddrs{m: d.vips, vips: vips}, log: d.log.With("group", group)}
}

func (e *addrEffects) Up(context.Context) error {
	if err := e.addrs.Add(0); err != nil {
		return err
	}
	e.log.Info("vips added", "vips", len(e.addrs.vips))
	return nil
}

func (e *addrEffects) Down(context.Context) error { return e.addrs.Remove() }

func (d *Daemon) setup(ctx context.Context) error {
	// Orphans of a crash first (VIPs and, in lease mode, fence state),
	// before joining VRRP.
	removed, err := d.vips.RemoveOrphans()
	for _, v := range removed {
		d.log.Warn("removed orphan VIP left by an earlier run", "vip", v.String())
	}
	if err != nil {
		return fmt.Errorf("orphan cleanup: %w", err)
	}
	if err := d.setupLVS(); err != nil {
		return err
	}
	if d.leaseMode() {
		if err := d.setupLease(ctx); err != nil {
			return err
		}
		wd, err := d.newWatchdogGuard()
		if err != nil {
			return err
		}
		d.watchdog = wd
	}
	type sockKey struct {
		iface string
		six   bool
	}
	muxes := map[sockKey]*vrrp.Mux{}
	anns := map[string]vrrp.VIPAnnouncer{}
	syncOf := d.cfg.SyncOf()
	syncs, err := d.setupSync()
	if err != nil {
		return err
	}
	for _, name := range d.cfg.Names() {
		ic := d.cfg.Instance[name]
		k := sockKey{ic.Interface, ic.IPv6}
		mux := muxes[k]
		if mux == nil {
			conn, err := d.plat.VRRPSocket(ic.Interface, ic.IPv6)
			if err != nil {
				return err
			}
			mux = vrrp.NewMux(conn, d.log.With("iface", ic.Interface))
			muxes[k] = mux
			d.muxes = append(d.muxes, mux)
		}
		var addrs []netip.Addr
		var vips []vipaddr.VIP
		for _, v := range ic.VIPs {
			addrs = append(addrs, v.Prefix.Addr())
			vips = append(vips, vipaddr.VIP{Iface: v.Dev, Prefix: v.Prefix})
		}
		ann := anns[ic.Interface]
		if ann == nil {
			if ann, err = d.plat.Announcer(ic.Interface, d.allVIPs(ic.Interface)); err != nil {
				return err
			}
			anns[ic.Interface] = ann
			d.anns = append(d.anns, ann)
		}
		icfg := d.plan.Instances[name]
		var eff vrrp.Effects = newAddrEffects(d, name, vips)
		var g *node.Group
		sg, inSync := syncs[syncOf[name]]
		switch {
		case inSync:
			eff, icfg.LeaseGated = sg.sync.Effects(sg.index[name]), true
		case d.leaseMode():
			if g, err = d.newGroup(name, []*config.Instance{ic}, vips, addrs); err != nil {
				return err
			}
			eff, icfg.LeaseGated = g.Effects(), true
		}
		in, err := vrrp.NewInstance(icfg, mux.Socket(), ann, eff, d.log)
		if err != nil {
			return err
		}
		// Lease mode: the instance hears its members only (node/members.go)
		// and speaks only as the lease allows.
		var roster *node.Roster
		if d.leaseMode() {
			r := node.NewRoster(name, in.Config().Src, ic.Priority, icfg.Peers)
			roster = r
			in.SetMembers(r)
			d.rosters = append(d.rosters, r)
		}
		switch {
		case inSync && sg.group != nil:
			in.SetGate(sg.group.Gate())
		case g != nil:
			in.SetGate(g.Gate())
		}
		tr, err := d.newTracked(ic)
		if err != nil {
			return err
		}
		tr.in = in
		d.tracked = append(d.tracked, tr)
		if err := mux.Add(in); err != nil {
			return err
		}
		d.insts = append(d.insts, in)
		var observers []func(vrrp.Transition, uint8)
		if tr.notif != nil && !d.leaseMode() {
			observers = append(observers, vrrpNotify(tr.notif))
		}
		switch {
		case inSync:
			sg.sync.SetMember(sg.index[name], vrrpControl{in, roster})
			observers = append(observers, sg.sync.OnTransition(sg.index[name]))
			if sg.none != nil {
				sg.none.effects[sg.index[name]] = newAddrEffects(d, name, vips)
			}
		case g != nil:
			observers = append(observers, func(tr vrrp.Transition, _ uint8) {
				switch {
				case tr.To == vrrp.StateFault:
					g.Post(node.VRRPFaulted{On: true})
				case tr.From == vrrp.StateFault:
					g.Post(node.VRRPFaulted{On: false})
				}
			})
			g.SetVRRP(vrrpControl{in, roster})
			d.groups = append(d.groups, g)
		}
		in.OnTransition = func(t vrrp.Transition, p uint8) {
			for _, o := range observers {
				o(t, p)
			}
		}
	}
	// Resources an earlier run left active (a DRBD Primary) are demoted
	// before any group runs: no lease is held yet.
	for _, c := range d.chains {
		if err := c.Start(ctx); err != nil {
			return err
		}
	}
	return nil
}

// allVIPs lists every VIP announced on iface, so the announcer opens the
// sockets of both families if needed.
func (d *Daemon) allVIPs(iface string) []netip.Addr {
	var out []netip.Addr
	for _, ic := range d.cfg.Instance {
		if ic.Interface == iface {
			for _, v := range ic.VIPs {
				out = append(out, v.Prefix.Addr())
			}
		}
	}
	return out
}

// Run sets the node up (orphans first, then the quorum, the fence, the
// watchdog and the VRRP sockets), serves until ctx ends, then stops in
// order: VRRP sends priority 0 while the groups demote (fence off,
// resources, VIPs, release), then the session is revoked and the raft
// voter stops last. It returns an error when the set-up failed.
func (d *Daemon) Run(ctx context.Context) error {
	var memberWG sync.WaitGroup
	memberCtx, stopMember := context.WithCancel(context.Background())
	defer func() {
		// The raft voter stops last; a shutdown stuck on a dead peer
		// connection must not keep the daemon from exiting.
		stopMember()
		done := make(chan struct{})
		go func() { memberWG.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(stopBudget):
			d.log.Error("raft member did not stop within the stop budget; exiting anyway", "budget", stopBudget)
		}
	}()
	if d.cfg.Quorum.Backend == config.BackendRaft {
		// This node is a raft voter too; it outlives everything else so the
		// groups can release their keys on the way down.
		m, err := d.plat.Voter(d.plan.Raft, d.log.With("raft", d.plan.Raft.ID))
		if err != nil {
			return err
		}
		d.voter = m
		memberWG.Go(func() {
			if err := m.Run(memberCtx); err != nil && memberCtx.Err() == nil {
				d.log.Error("raft member stopped", "err", err)
			}
		})
	}
	if err := d.setup(ctx); err != nil {
		d.close()
		return err
	}
	defer d.close()
	status, err := d.serveStatus()
	if err != nil {
		return err
	}
	defer status()
	var wg sync.WaitGroup
	muxCtx, stopMux := context.WithCancel(context.Background())
	for _, m := range d.muxes {
		wg.Go(func() { m.Run(muxCtx) })
	}
	var gwg, swg sync.WaitGroup
	superCtx, stopSuper := context.WithCancel(context.Background())
	defer stopSuper()
	if d.leaseMode() {
		super := node.NewSupervisor(d.backend, d.groups, d.log)
		super.OnRenew = func(rtt time.Duration, deadline time.Time) {
			d.metrics.renewed(rtt, deadline)
			d.watchdog.renewed()
		}
		super.OnSession = d.metrics.session
		for _, r := range d.rosters {
			super.AddRoster(r)
		}
		d.super.Store(super)
		swg.Go(func() { super.Run(superCtx) })
		for _, g := range d.groups {
			gwg.Go(func() { g.Run(ctx) })
		}
	}
	var iwg, hwg, lwg sync.WaitGroup
	for _, in := range d.insts {
		iwg.Go(func() { in.Run(ctx, stopBudget) })
	}
	// The IPVS table's checks and reconcile loop run beside the groups and
	// stop after them: in lvs_mode owner the groups' demotions remove their
	// tables after their VIPs; in lvs_mode all the table goes after the
	// VIPs too (as keepalived removes it on exit).
	lctx, stopLVS := context.WithCancel(context.Background())
	defer func() {
		stopLVS()
		lwg.Wait()
		if d.lvsSync != nil {
			if err := d.lvsSync.Stop(); err != nil {
				d.log.Error("lvs_sync_daemon: stopping the sync daemons failed", "err", err)
			}
		}
	}()
	if d.lvs != nil {
		lwg.Go(func() { d.lvs.Run(lctx) })
	}
	// DRBD split-brain watches (report; resolve by the lease if so
	// configured) run while the groups do.
	for _, g := range d.drbd {
		lwg.Go(func() { g.sb.run(lctx) })
	}
	// Health trackers and notifiers outlive the instances by the stop
	// budget, so STOP notifications run.
	hctx, stopHealth := context.WithCancel(context.Background())
	defer func() { stopHealth(); hwg.Wait() }()
	for _, t := range d.tracked {
		t.run(hctx, &hwg)
	}
	for _, n := range d.syncNotifiers {
		hwg.Go(func() { n.Run(hctx) })
	}
	d.log.Info("running", "node", d.cfg.Node.Name, "instances", len(d.insts), "quorum", d.cfg.Quorum.Backend, "fence", d.fenceDesc)
	sdNotify("READY=1\nSTATUS=running")
	watchdog := sdWatchdogInterval()
	var wdC <-chan time.Time
	if watchdog > 0 {
		t := time.NewTicker(watchdog)
		defer t.Stop()
		wdC = t.C
	}
	d.ready.Store(true)
	for done := false; !done; {
		select {
		case <-wdC:
			sdNotify("WATCHDOG=1")
		case <-ctx.Done():
			done = true
		}
	}
	sdNotify("STOPPING=1")
	// Order: VRRP sends priority 0 (instances) while the groups demote:
	// fence off, resources, VIPs, release; then the session is revoked.
	iwg.Wait()
	gwg.Wait()
	stopLVS()
	lwg.Wait()
	stopHealth()
	hwg.Wait()
	for _, t := range d.tracked {
		if t.notif != nil {
			fctx, cancel := context.WithTimeout(context.Background(), stopBudget)
			t.notif.Flush(fctx)
			cancel()
		}
	}
	for _, n := range d.syncNotifiers {
		if !d.leaseMode() {
			n.Notify(notify.Stop, 0, 0) // with a quorum the group's own stop says it
		}
		fctx, cancel := context.WithTimeout(context.Background(), stopBudget)
		n.Flush(fctx)
		cancel()
	}
	if super := d.super.Load(); super != nil {
		// The supervisor stops first (it leaves the session to Close):
		// closed under a running supervisor, the session would look lost
		// and a new one would be opened on the way down.
		stopSuper()
		swg.Wait()
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		super.Close(cctx)
		cancel()
	}
	stopMux()
	wg.Wait()
	return nil
}

// Dump logs every instance's state and the socket drop counters (SIGUSR1).
func (d *Daemon) Dump() {
	for _, in := range d.insts {
		s := in.Status()
		d.log.Info("state dump", "group", s.Name, "state", s.State, "priority", s.Priority,
			"master", s.Master, "sent", s.AdvertsSent, "received", s.AdvertsRecv, "drops", s.Drops)
	}
	for _, m := range d.muxes {
		d.log.Info("state dump", "socket_drops", m.Drops().Snapshot())
	}
}

func (d *Daemon) close() {
	for _, a := range d.anns {
		a.Close()
	}
	if d.backend != nil {
		d.backend.Close()
	}
}
