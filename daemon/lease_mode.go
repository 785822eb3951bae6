package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/leasehold/leasehold/config"
	"github.com/leasehold/leasehold/fencing"
	"github.com/leasehold/leasehold/node"
	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/storage/drbd"
	"github.com/leasehold/leasehold/vrrp"
	"github.com/leasehold/leasehold/vrrp/vipaddr"
)

// groupAddrs adds and removes one group's VIPs (node.Addresses).
type groupAddrs struct {
	m    Addresses
	vips []vipaddr.VIP
}

func (a groupAddrs) Add(lifetime time.Duration) error {
	for _, v := range a.vips {
		if err := a.m.Add(v, lifetime); err != nil {
			return err
		}
	}
	return nil
}

func (a groupAddrs) Remove() error {
	var errs []error
	for _, v := range a.vips {
		errs = append(errs, a.m.Remove(v))
	}
	return errors.Join(errs...)
}

// peerFence runs a group's peer-fence hooks (node.PeerFencer).
type peerFence struct {
	hooks []fencing.Hook
	log   *slog.Logger
}

func (p peerFence) Fence(ctx context.Context, env fencing.FenceEnv) error {
	return fencing.RunHooks(ctx, p.hooks, env, p.log)
}

// setupLease builds the quorum backend, the fence and one node.Group per
// instance (lease mode).
func (d *Daemon) setupLease(ctx context.Context) error {
	b, err := d.plat.Quorum(d.plan, d.log)
	if err != nil {
		return err
	}
	d.backend = b
	fence, desc, err := d.plat.Fence(ctx, d.cfg.Fencing.NFTables, d.log)
	if err != nil {
		return err
	}
	d.fence, d.fenceDesc = fence, desc
	if _, lifetimeOnly := fence.(fencing.LifetimeOnly); lifetimeOnly && d.plan.Quorum.TTL < 3*time.Second+d.cfg.Fencing.Margin.D() {
		return fmt.Errorf("quorum.ttl %v is too short without nftables: address lifetimes need ttl > 1 s lifetime + 2 s", d.plan.Quorum.TTL)
	}
	var all []netip.Addr
	for _, ic := range d.cfg.Instance {
		for _, v := range ic.VIPs {
			all = append(all, v.Prefix.Addr())
		}
	}
	if err := fence.Manage(all); err != nil {
		return fmt.Errorf("fence manage: %w", err)
	}
	return nil
}

// newGroup makes the node.Group for an instance, or for the instances of
// a sync group (ics; the group is named name and its lease key is name).
func (d *Daemon) newGroup(name string, ics []*config.Instance, vips []vipaddr.VIP, addrs []netip.Addr) (*node.Group, error) {
	opts := d.plan.Quorum
	lead := ics[0]
	prio := 0
	var fence, promote, demote []fencing.Hook
	var drbds []drbd.Config
	var mysqls []instanceMySQL
	probeOK := true
	var members []string
	for _, ic := range ics {
		if ic.Priority > prio {
			lead, prio = ic, ic.Priority
		}
		fence, promote, demote = append(fence, hooks(ic.FencePeer)...), append(promote, hooks(ic.Promote)...), append(demote, hooks(ic.Demote)...)
		if dc, ok := d.plan.DRBD[ic.Name]; ok {
			drbds = append(drbds, dc)
		}
		if mc, ok := d.plan.MySQL[ic.Name]; ok {
			mysqls = append(mysqls, instanceMySQL{instance: ic.Name, cfg: mc})
		}
		probeOK = probeOK && *ic.Probe
		members = append(members, ic.Name)
	}
	// A backup that sees the key released waits an eighth of its VRRP skew:
	// still ordered by priority, so the best candidate usually wins, but
	// a handover need not wait for VRRP's timers (the lease arbitrates).
	skew := vrrp.SkewTime(uint8(lead.Version), uint8(prio), lead.AdvertInt.D()) / 8
	var probe node.Prober
	if probeOK && len(addrs) > 0 {
		probe = d.plat.Prober(lead.Interface, addrs)
	}
	glog := d.log.With("group", name)
	deps := node.GroupDeps{Addrs: groupAddrs{m: d.vips, vips: vips}, Fence: d.fence, Prober: probe, Log: d.log}
	if len(fence) > 0 {
		deps.PeerFence = peerFence{hooks: fence, log: glog}
	}
	chain, err := d.resources(name, promote, demote, drbds, mysqls, glog)
	if err != nil {
		return nil, err
	}
	if chain.Len() > 0 {
		deps.Resources = chain
		d.chains = append(d.chains, chain)
	}
	deps.OnTransition = func(t node.Transition, epoch uint64) {
		d.onTransition(name, members, t, epoch)
	}
	deps.OnAlarm = func(a node.Alarm) {
		d.metrics.alarm(name, a.Kind)
		if a.Kind == "fence-hook-failed" {
			d.metrics.hookFails.WithLabelValues(name, "fence_peer").Inc()
		}
	}
	retry := lead.AdvertInt.D()
	return node.NewGroup(node.GroupConfig{
		Machine: node.Config{Group: name, Probe: probe != nil, StepTimeout: stepTimeout(opts),
			RetryInterval: max(retry, 100*time.Millisecond), HandoverDelay: skew, DemoteBudget: opts.DemoteBudget,
			RestoreWindow: restoreWindow(uint8(lead.Version), uint8(prio), lead.AdvertInt.D())},
		Priority: prio, VIPs: addrs, FenceMargin: d.cfg.Fencing.Margin.D(), StopBudget: stopBudget,
		LifetimeIsFence: lifetimeOnly(d.fence),
	}, deps)
}

// restoreWindow is how long after a quorum fault a node elects as after a
// restore (node.Config.RestoreWindow): its own Master_Down, then a better
// member's, which starts when that member's session is back, up to a
// second later (the sessions reopen at the phase of each node's retries).
func restoreWindow(version, prio uint8, advert time.Duration) time.Duration {
	return 2*vrrp.MasterDownInterval(version, prio, advert) + time.Second
}

func lifetimeOnly(f fencing.Fence) bool {
	_, ok := f.(fencing.LifetimeOnly)
	return ok
}

// vrrpControl adapts a vrrp.Instance to node.VRRPControl; r is its
// membership in lease mode (nil otherwise).
type vrrpControl struct {
	in *vrrp.Instance
	r  *node.Roster
}

func (v vrrpControl) Inject(ev vrrp.Event)            { v.in.Inject(ev) }
func (v vrrpControl) SetFault(source string, on bool) { v.in.SetFault(source, on) }
func (v vrrpControl) Announce()                       { v.in.Announce() }
func (v vrrpControl) Faults() []string                { return v.in.Faults() }
func (v vrrpControl) MasterHeard() bool               { return v.in.MasterHeard() }
func (v vrrpControl) HigherMember() bool              { return v.r != nil && v.r.HigherRegistered() }

// onTransition logs, counts and notifies a role change.
func (d *Daemon) onTransition(group string, members []string, t node.Transition, epoch uint64) {
	d.metrics.transition(group, t.To.String())
	state := map[node.Role]string{node.RoleOwner: "MASTER", node.RoleBackup: "BACKUP", node.RoleFault: "FAULT",
		node.RoleStopped: "STOP"}[t.To]
	if state == "" {
		return
	}
	for _, m := range members {
		if n := d.notifiers[m]; n != nil {
			n.Notify(state, uint8(d.cfg.Instance[m].Priority), epoch)
		}
	}
	if n := d.syncNotifiers[group]; n != nil {
		n.Notify(state, 0, epoch)
	}
}

func describeQuorum(c *config.Config, s quorum.Session) string {
	q := c.Quorum
	var where string
	switch q.Backend {
	case config.BackendEtcd:
		where = strings.Join(q.Etcd.Endpoints, ",")
	case config.BackendRaft:
		where = q.Raft.ClientBind
	}
	id := "none"
	if s != nil {
		id = s.ID()
	}
	return fmt.Sprintf("%s %s session %s", q.Backend, where, id)
}
