package main

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
	"github.com/leasehold/leasehold/vrrp"
	"github.com/leasehold/leasehold/vrrp/vipaddr"
)

// groupAddrs adds and removes one group's VIPs (node.Addresses).
type groupAddrs struct {
	m    *vipaddr.Manager
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

// arpProber probes a group's IPv4 VIPs (node.Prober).
type arpProber struct {
	iface string
	vips  []netip.Addr
	wait  time.Duration
}

func (p arpProber) Probe(ctx context.Context) (string, error) {
	c, ok, err := vrrp.Probe(ctx, p.iface, p.vips, p.wait)
	if err != nil || !ok {
		return "", err
	}
	return c.String(), nil
}

// hookRunner runs peer-fence hooks (node.PeerFencer) and resource hooks
// (node.Resources).
type hookRunner struct {
	group           string
	fence           []fencing.Hook
	promote, demote []fencing.Hook
	log             *slog.Logger
	failed          func(kind string) // counts a failed run (metrics)
}

func (h hookRunner) Fence(ctx context.Context, env fencing.FenceEnv) error {
	return fencing.RunHooks(ctx, h.fence, env, h.log)
}

func (h hookRunner) Promote(ctx context.Context, epoch uint64) error {
	return h.count("promote", fencing.RunHooks(ctx, h.promote, fencing.FenceEnv{Group: h.group, Epoch: epoch}, h.log))
}

func (h hookRunner) Demote(ctx context.Context, epoch uint64) error {
	return h.count("demote", fencing.RunHooks(ctx, h.demote, fencing.FenceEnv{Group: h.group, Epoch: epoch}, h.log))
}

func (h hookRunner) count(kind string, err error) error {
	if err != nil && h.failed != nil {
		h.failed(kind)
	}
	return err
}

func hooks(hs []config.Hook) []fencing.Hook {
	out := make([]fencing.Hook, 0, len(hs))
	for _, h := range hs {
		out = append(out, fencing.Hook{Path: h.Path, Args: h.Args, Timeout: h.Timeout.D(), Required: *h.Required, RunAs: h.User})
	}
	return out
}

// openFence installs the kernel fence per fencing.nftables.
func openFence(ctx context.Context, cfg *config.Config, log *slog.Logger) (fencing.Fence, string, error) {
	mode := cfg.Fencing.NFTables
	if mode == "off" {
		log.Warn("fencing.nftables off: address lifetimes are the only kernel fence")
		return fencing.LifetimeOnly{}, "address lifetimes only (nftables off)", nil
	}
	if err := fencing.Usable(); err != nil {
		if mode == "required" {
			return nil, "", fmt.Errorf("fencing.nftables required but not usable: %w", err)
		}
		log.Error("nftables is not usable: address lifetimes are the only kernel fence; the lease TTL must exceed the lifetime + 2 s", "err", err)
		return fencing.LifetimeOnly{}, "address lifetimes only (nftables unusable: " + err.Error() + ")", nil
	}
	f, err := fencing.NewNFT("", log)
	if err != nil {
		return nil, "", err
	}
	if err := f.Install(ctx); err != nil {
		return nil, "", fmt.Errorf("install nftables fence: %w", err)
	}
	return f, "nftables timeout sets + address lifetimes", nil
}

// setupLease builds the quorum backend, the fence and one node.Group per
// instance (lease mode).
func (d *daemon) setupLease(ctx context.Context) error {
	b, err := openBackend(d.cfg, d.log)
	if err != nil {
		return err
	}
	d.backend = b
	opts := quorumOptions(d.cfg)
	if err := opts.Validate(minTTL(d.cfg)); err != nil {
		return fmt.Errorf("quorum timings: %w", err)
	}
	fence, desc, err := openFence(ctx, d.cfg, d.log)
	if err != nil {
		return err
	}
	d.fence, d.fenceDesc = fence, desc
	if _, lifetimeOnly := fence.(fencing.LifetimeOnly); lifetimeOnly && opts.TTL < 3*time.Second+d.cfg.Fencing.Margin.D() {
		return fmt.Errorf("quorum.ttl %v is too short without nftables: address lifetimes need ttl > 1 s lifetime + 2 s", opts.TTL)
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

func minTTL(cfg *config.Config) time.Duration {
	if cfg.Quorum.Backend == config.BackendRaft {
		return raftMemberConfig(cfg, false).MinTTL()
	}
	return time.Second
}

// newGroup makes the node.Group for an instance, or for the instances of
// a sync group (ics; the group is named name and its lease key is name).
func (d *daemon) newGroup(name string, ics []*config.Instance, vips []vipaddr.VIP, addrs []netip.Addr) (*node.Group, error) {
	opts := quorumOptions(d.cfg)
	lead := ics[0]
	prio := 0
	var fence, promote, demote []fencing.Hook
	probeOK := true
	var members []string
	for _, ic := range ics {
		if ic.Priority > prio {
			lead, prio = ic, ic.Priority
		}
		fence, promote, demote = append(fence, hooks(ic.FencePeer)...), append(promote, hooks(ic.Promote)...), append(demote, hooks(ic.Demote)...)
		probeOK = probeOK && *ic.Probe
		members = append(members, ic.Name)
	}
	// A backup that sees the key released waits an eighth of its VRRP skew:
	// still ordered by priority, so the best candidate usually wins, but
	// a handover need not wait for VRRP's timers (the lease arbitrates).
	skew := vrrp.SkewTime(uint8(lead.Version), uint8(prio), lead.AdvertInt.D()) / 8
	var probe node.Prober
	if probeOK && len(addrs) > 0 {
		probe = arpProber{iface: lead.Interface, vips: addrs, wait: 20 * time.Millisecond}
	}
	hr := hookRunner{group: name, fence: fence, promote: promote, demote: demote, log: d.log.With("group", name),
		failed: func(kind string) { d.metrics.hookFails.WithLabelValues(name, kind).Inc() }}
	for _, h := range append(append(append([]fencing.Hook{}, fence...), promote...), demote...) {
		if err := fencing.CheckHook(h); err != nil {
			return nil, fmt.Errorf("group %s: %w", name, err)
		}
	}
	deps := node.GroupDeps{Addrs: groupAddrs{m: d.vips, vips: vips}, Fence: d.fence, Prober: probe, Log: d.log}
	if len(fence) > 0 {
		deps.PeerFence = hr
	}
	if len(promote)+len(demote) > 0 {
		deps.Resources = hr
	}
	needsWatchdog := len(promote)+len(demote) > 0
	deps.OnTransition = func(t node.Transition, epoch uint64) {
		d.watchdog.transition(name, needsWatchdog, t.To)
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
		Machine: node.Config{Group: name, Probe: probe != nil, StepTimeout: max(opts.TTL/2, 500*time.Millisecond),
			RetryInterval: max(retry, 100*time.Millisecond), HandoverDelay: skew, DemoteBudget: opts.DemoteBudget},
		Priority: prio, VIPs: addrs, FenceMargin: d.cfg.Fencing.Margin.D(), StopBudget: stopBudget,
		LifetimeIsFence: lifetimeOnly(d.fence),
	}, deps)
}

func lifetimeOnly(f fencing.Fence) bool {
	_, ok := f.(fencing.LifetimeOnly)
	return ok
}

// vrrpControl adapts a vrrp.Instance to node.VRRPControl.
type vrrpControl struct{ in *vrrp.Instance }

func (v vrrpControl) Inject(ev vrrp.Event)            { v.in.Inject(ev) }
func (v vrrpControl) SetFault(source string, on bool) { v.in.SetFault(source, on) }
func (v vrrpControl) Announce()                       { v.in.Announce() }
func (v vrrpControl) Faults() []string                { return v.in.Faults() }

// onTransition logs, counts and notifies a role change.
func (d *daemon) onTransition(group string, members []string, t node.Transition, epoch uint64) {
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
