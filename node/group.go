package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leasehold/leasehold/fencing"
	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/vrrp"
)

// VRRPControl is what a group needs of its VRRP instance (or sync group).
type VRRPControl interface {
	// Inject delivers vrrp.Claim to the VRRP machine.
	Inject(ev vrrp.Event)
	// SetFault holds the VRRP machine in fault while any source is on.
	SetFault(source string, on bool)
	// Announce starts the GARP/NA schedule (garp_master_*).
	Announce()
}

// masterHearer is the optional part of VRRPControl that says whether VRRP,
// as Backup, hears another node as master (vrrp.Instance.MasterHeard).
type masterHearer interface{ MasterHeard() bool }

// memberRanker is the optional part of VRRPControl that says whether a
// member of higher priority is registered at the quorum
// (Roster.HigherRegistered).
type memberRanker interface{ HigherMember() bool }

// Addresses adds and removes a group's VIPs; lifetime > 0 makes the kernel
// drop them by itself (the fence's second layer). Both are idempotent.
type Addresses interface {
	Add(lifetime time.Duration) error
	Remove() error
}

// Prober probes the VIPs (RFC 5227 style); a non-empty conflict names the
// hardware address that answered.
type Prober interface {
	Probe(ctx context.Context) (conflict string, err error)
}

// Resources are promoted and demoted under an epoch. node/resource puts a
// group's resources (hooks, DRBD, MySQL, IPVS) in an ordered chain behind
// an epoch guard.
type Resources interface {
	Promote(ctx context.Context, epoch uint64) error
	Demote(ctx context.Context, epoch uint64) error
}

// Lease is the part of a quorum session a group uses.
type Lease interface {
	Acquire(ctx context.Context, group string, priority int) (quorum.Grant, error)
	Release(ctx context.Context, g quorum.Grant) error
}

// PeerFencer runs the peer-fence hooks for a new grant.
type PeerFencer interface {
	Fence(ctx context.Context, env fencing.FenceEnv) error
}

// GroupConfig is one group's runtime configuration.
type GroupConfig struct {
	Machine  Config
	Priority int
	VIPs     []netip.Addr
	// FenceMargin is kept between the fence's expiry and the local deadline.
	FenceMargin time.Duration
	// StopBudget bounds the demotion at shutdown.
	StopBudget time.Duration
	// LifetimeIsFence: the address lifetime is the only kernel fence (no
	// nftables), so it must expire before the deadline or the VIP is not
	// added. Otherwise it is a backstop behind nftables and may be the
	// 1 s minimum even when that outlives the deadline.
	LifetimeIsFence bool
}

// GroupDeps are a group's actuators. Prober, Resources and PeerFence may be
// nil.
type GroupDeps struct {
	VRRP      VRRPControl
	Addrs     Addresses
	Fence     fencing.Fence
	Prober    Prober
	Resources Resources
	PeerFence PeerFencer
	Log       *slog.Logger
	// OnTransition is called (in the group's loop) after every role change.
	OnTransition func(t Transition, epoch uint64)
	// OnAlarm is called for alarms (stale-holder, fence failures...).
	OnAlarm func(a Alarm)
}

// GroupStatus is a snapshot for the status API.
type GroupStatus struct {
	Group        string        `json:"group"`
	Role         string        `json:"role"`
	Stage        string        `json:"stage,omitempty"`
	Epoch        uint64        `json:"epoch,omitempty"`
	DeadlineLeft string        `json:"deadline_left,omitempty"`
	FenceArmed   bool          `json:"fence_armed"`
	FenceLeft    string        `json:"fence_left,omitempty"`
	Since        time.Time     `json:"since"`
	Transitions  []TransRecord `json:"last_transitions,omitempty"`
	LastError    string        `json:"last_error,omitempty"`
	// ReleasePending is the epoch of a grant whose release failed and is
	// being retried (its key still sits under this node's session).
	ReleasePending uint64 `json:"release_pending,omitempty"`
	// Priority is the priority this node asks the lease with (the highest
	// of the group's instances).
	Priority int `json:"priority"`
	// Holder is who holds the group at the quorum as this node's watch last
	// saw it ("" = free or not seen yet, "unknown" = an unreadable value),
	// with HolderEpoch.
	Holder      string `json:"holder,omitempty"`
	HolderEpoch uint64 `json:"holder_epoch,omitempty"`
	// FenceRefreshes counts kernel fence refreshes, FenceRefreshFailures
	// those that failed or came too late.
	FenceRefreshes       uint64 `json:"fence_refreshes"`
	FenceRefreshFailures uint64 `json:"fence_refresh_failures"`
	// QuorumAcquires and QuorumReleases count the acquire and release
	// requests this node sent for the group (the quorum writes the storm
	// bound limits, doc.go); HeldOff is how long the storm guard still
	// holds acquires back.
	QuorumAcquires uint64 `json:"quorum_acquires"`
	QuorumReleases uint64 `json:"quorum_releases"`
	HeldOff        string `json:"acquires_held_off,omitempty"`
}

// TransRecord is one logged transition.
type TransRecord struct {
	At     time.Time `json:"at"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`
	Epoch  uint64    `json:"epoch,omitempty"`
}

// Group runs one group's Machine and performs its actions.
type Group struct {
	cfg    GroupConfig
	deps   GroupDeps
	log    *slog.Logger
	events *mailbox
	lease  atomic.Pointer[leaseRef]
	// view is the machine as of its last step, for the Gate: read
	// without g.mu by the VRRP instances, under their own locks.
	view atomic.Pointer[Machine]

	rel      releaser
	acquires atomic.Uint64 // acquire requests sent
	priority atomic.Int64
	// fence refreshes (RefreshFence actions), and those that failed
	refreshes, refreshFails atomic.Uint64

	mu     sync.Mutex
	holder struct {
		node  string
		epoch uint64
	}
	m      Machine
	since  time.Time
	trans  []TransRecord
	lastEr string
	armed  bool
}

type leaseRef struct{ Lease }

// NewGroup builds a group. It starts nothing.
func NewGroup(cfg GroupConfig, deps GroupDeps) (*Group, error) {
	if err := cfg.Machine.Validate(); err != nil {
		return nil, err
	}
	if deps.Addrs == nil || deps.Fence == nil {
		return nil, fmt.Errorf("node: %s: addresses and fence are required", cfg.Machine.Group)
	}
	if cfg.StopBudget <= 0 {
		cfg.StopBudget = 3 * time.Second
	}
	log := deps.Log
	if log == nil {
		log = slog.Default()
	}
	g := &Group{cfg: cfg, deps: deps, log: log.With("group", cfg.Machine.Group),
		events: newMailbox(), m: New(cfg.Machine), since: time.Now()}
	g.rel = releaser{log: g.log, interval: cfg.Machine.RetryInterval, timeout: cfg.Machine.StepTimeout}
	g.priority.Store(int64(cfg.Priority))
	m := g.m
	g.view.Store(&m)
	return g, nil
}

// Gate is the vrrp.Gate of the group's VRRP instances: they advertise a
// non-zero priority (or claim) only while this node's quorum session is
// live, and announce the VIPs only while it owns the group with a live
// local deadline (less the fence margin). It reads the role machine as of
// its last step (Machine.MayAdvertise, MayAnnounce) against the clock the
// instance reads at send time, so a node resumed from a freeze is silent
// before its group loop has even run.
func (g *Group) Gate() vrrp.Gate { return groupGate{g} }

type groupGate struct{ g *Group }

func (x groupGate) MayAdvertise(now time.Time) bool { return x.g.view.Load().MayAdvertise(now) }
func (x groupGate) MayAnnounce(now time.Time) bool {
	return x.g.view.Load().MayAnnounce(now, x.g.cfg.FenceMargin)
}

// SetVRRP connects the group's VRRP instance (created after the group,
// since it needs the group's Effects). Call it before Run.
func (g *Group) SetVRRP(v VRRPControl) { g.deps.VRRP = v }

// Name is the group's name.
func (g *Group) Name() string { return g.cfg.Machine.Group }

// SetLease installs the current session's lease (before SessionUp).
func (g *Group) SetLease(l Lease) {
	if l == nil {
		g.lease.Store(nil)
		return
	}
	g.lease.Store(&leaseRef{l})
}

// Post delivers an event to the group's loop. It never blocks, whatever
// the loop is doing (see mailbox for how renewals coalesce).
func (g *Group) Post(ev Event) {
	g.events.post(ev)
}

// Effects returns the vrrp.Effects that feed VRRP's master/not-master
// decisions to this group (lease mode: VRRP never adds VIPs itself).
func (g *Group) Effects() vrrp.Effects { return groupEffects{g} }

type groupEffects struct{ g *Group }

func (e groupEffects) Up(context.Context) error { e.g.Post(VRRPMaster{}); return nil }
func (e groupEffects) Down(context.Context) error {
	e.g.Post(VRRPNotMaster{Reason: "vrrp"})
	return nil
}

// Status returns a snapshot.
func (g *Group) Status() GroupStatus {
	g.mu.Lock()
	s := GroupStatus{Group: g.Name(), Role: g.m.Role().String(), Epoch: g.m.Grant().Epoch,
		Since: g.since, Transitions: append([]TransRecord(nil), g.trans...), LastError: g.lastEr, FenceArmed: g.armed}
	if g.m.Role() == RoleCandidate {
		s.Stage = g.m.Stage().String()
	}
	s.ReleasePending = g.rel.Pending()
	s.Priority = int(g.priority.Load())
	s.Holder, s.HolderEpoch = g.holder.node, g.holder.epoch
	// Failures first: a refresh is counted before its failure, so the
	// difference never goes negative.
	s.FenceRefreshFailures = g.refreshFails.Load()
	s.FenceRefreshes = g.refreshes.Load()
	if d := g.m.Deadline(); !d.IsZero() {
		s.DeadlineLeft = time.Until(d).Round(time.Millisecond).String()
	}
	if h := time.Until(g.m.HeldOff()); h > 0 {
		s.HeldOff = h.Round(time.Millisecond).String()
	}
	s.QuorumAcquires, s.QuorumReleases = g.acquires.Load(), g.rel.calls.Load()
	g.mu.Unlock()
	// The kernel is read without the group's lock: a slow netlink answer
	// must not hold up the group's loop.
	if s.FenceArmed && len(g.cfg.VIPs) > 0 {
		if left, ok, err := g.deps.Fence.Armed(g.cfg.VIPs[0]); err == nil && ok {
			s.FenceLeft = left.Round(time.Millisecond).String()
		}
	}
	return s
}

// Role returns the current role.
func (g *Group) Role() Role {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.m.Role()
}

// Run is the group's loop. When ctx ends it shuts down: demotes (with
// release) within the stop budget.
func (g *Group) Run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	stopping := false
	var stopBy <-chan time.Time
	for {
		g.mu.Lock()
		next := g.m.NextDeadline()
		role := g.m.Role()
		g.mu.Unlock()
		if role == RoleStopped {
			return nil
		}
		if next.IsZero() {
			next = time.Now().Add(time.Hour)
		}
		timer.Reset(time.Until(next))
		var ev Event
		done := ctx.Done()
		if stopping {
			done = nil
		}
		select {
		case <-done:
			stopping = true
			stopBy = time.After(g.cfg.StopBudget)
			ev = Shutdown{}
		case <-stopBy:
			g.log.Error("shutdown budget exhausted before demotion finished", "budget", g.cfg.StopBudget)
			return errors.New("node: shutdown budget exhausted")
		case <-g.events.ready:
			var ok bool
			if ev, ok = g.events.take(); !ok {
				continue
			}
		case <-timer.C:
			ev = Tick{}
		}
		g.step(ev)
	}
}

// SetPriority changes the priority recorded with the next acquire (a
// reload; VRRP's own priority is changed on the instance).
func (g *Group) SetPriority(p int) { g.priority.Store(int64(p)) }

func (g *Group) step(ev Event) {
	// Asked before g.mu: the VRRP instance and the roster take their own
	// locks.
	switch e := ev.(type) {
	case KeyDeleted:
		if h, ok := g.deps.VRRP.(masterHearer); ok {
			e.MasterHeard = h.MasterHeard()
		}
		if r, ok := g.deps.VRRP.(memberRanker); ok {
			e.HigherMember = r.HigherMember()
		}
		ev = e
	case VRRPMaster:
		if r, ok := g.deps.VRRP.(memberRanker); ok {
			e.HigherMember = r.HigherMember()
			ev = e
		}
	}
	now := time.Now()
	g.mu.Lock()
	switch ev := ev.(type) {
	case KeyPut:
		g.holder.node, g.holder.epoch = ev.Holder, ev.Epoch
		if ev.Holder == "" {
			g.holder.node = "unknown"
		}
	case KeyDeleted:
		g.holder.node, g.holder.epoch = "", 0
	}
	m, acts := g.m.Step(ev, now)
	g.m = m
	g.mu.Unlock()
	// Published before the actions run: Announce asks the gate at once.
	g.view.Store(&m)
	for _, a := range acts {
		g.perform(a, m)
	}
}

// live reports whether l is still the group's lease (the session that
// holds what it would release).
func (g *Group) live(l Lease) bool {
	cur := g.lease.Load()
	return cur != nil && Lease(cur) == l
}

func (g *Group) setErr(err error) {
	g.mu.Lock()
	g.lastEr = err.Error()
	g.mu.Unlock()
}

// async runs f with a timeout and posts its event.
func (g *Group) async(timeout time.Duration, f func(ctx context.Context) Event) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		g.Post(f(ctx))
	}()
}

func (g *Group) perform(a Action, m Machine) {
	step := g.cfg.Machine.StepTimeout
	switch a := a.(type) {
	case Transition:
		g.log.Info("role", "from", a.From.String(), "to", a.To.String(), "reason", a.Reason, "epoch", m.Grant().Epoch)
		g.mu.Lock()
		g.since = time.Now()
		g.trans = append(g.trans, TransRecord{At: g.since, From: a.From.String(), To: a.To.String(), Reason: a.Reason, Epoch: m.Grant().Epoch})
		if len(g.trans) > 10 {
			g.trans = g.trans[len(g.trans)-10:]
		}
		g.mu.Unlock()
		if g.deps.OnTransition != nil {
			g.deps.OnTransition(a, m.Grant().Epoch)
		}
	case Acquire:
		l := g.lease.Load()
		if l == nil {
			g.Post(AcquireFailed{Err: errors.New("no session")})
			return
		}
		g.async(step, func(ctx context.Context) Event {
			g.rel.Cancel() // an acquire of our own held key gets it back
			g.acquires.Add(1)
			gr, err := l.Acquire(ctx, g.Name(), int(g.priority.Load()))
			if err != nil {
				if errors.Is(err, quorum.ErrHeld) {
					return AcquireFailed{Holder: err.Error()}
				}
				g.setErr(err)
				return AcquireFailed{Err: err}
			}
			g.log.Info("lease acquired", "epoch", gr.Epoch)
			return Acquired{Grant: gr}
		})
	case Release:
		if l := g.lease.Load(); l != nil {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), step)
				defer cancel()
				if err := g.rel.Release(ctx, l, a.Grant, g.live); err != nil {
					g.log.Warn("release failed", "epoch", a.Grant.Epoch, "err", err, "retrying", retryable(err))
				}
			}()
		}
	case RunHooks:
		if g.deps.PeerFence == nil {
			g.Post(HooksDone{Epoch: a.Grant.Epoch})
			return
		}
		g.async(step, func(ctx context.Context) Event {
			prev, _ := netip.ParseAddr(a.PrevAddr)
			err := g.deps.PeerFence.Fence(ctx, fencing.FenceEnv{Group: g.Name(), Epoch: a.Grant.Epoch, PrevHolder: a.PrevHolder, PrevAddr: prev})
			return HooksDone{Epoch: a.Grant.Epoch, Err: err, Ran: true}
		})
	case Probe:
		if g.deps.Prober == nil {
			g.Post(ProbeDone{Epoch: a.Epoch})
			return
		}
		g.async(step, func(ctx context.Context) Event {
			c, err := g.deps.Prober.Probe(ctx)
			return ProbeDone{Epoch: a.Epoch, Conflict: c, Err: err}
		})
	case Promote:
		if g.deps.Resources == nil {
			g.Post(Promoted{Epoch: a.Epoch})
			return
		}
		g.async(step, func(ctx context.Context) Event {
			return Promoted{Epoch: a.Epoch, Err: g.deps.Resources.Promote(ctx, a.Epoch)}
		})
	case AddVIP:
		// Synchronous: a few netlink calls. Fence first, so ARP for the VIP
		// is allowed the moment the address exists.
		err := g.armFence(a.Deadline)
		if err == nil {
			var lt time.Duration
			if lt, err = g.lifetime(a.Deadline); err == nil {
				err = g.deps.Addrs.Add(lt)
			}
		}
		if err != nil {
			g.setErr(err)
			g.disarm()
			g.deps.Addrs.Remove()
		}
		g.Post(VIPUp{Epoch: a.Epoch, Err: err})
	case RefreshFence:
		g.refreshes.Add(1)
		err := g.armFence(a.Deadline)
		if err == nil {
			var lt time.Duration
			if lt, err = g.lifetime(a.Deadline); err == nil {
				err = g.deps.Addrs.Add(lt)
			}
		}
		if err != nil {
			g.refreshFails.Add(1)
			g.setErr(err)
			g.Post(FenceFailed{Err: err})
		}
	case Announce:
		g.deps.VRRP.Announce()
	case ClaimVRRP:
		g.deps.VRRP.Inject(vrrp.Claim{})
	case VRRPFault:
		g.deps.VRRP.SetFault("quorum", a.On)
	case Demote:
		g.demote(a)
	case Note:
		g.log.Info(a.Detail)
	case Alarm:
		g.log.Warn("alarm", "kind", a.Kind, "detail", a.Detail)
		if g.deps.OnAlarm != nil {
			g.deps.OnAlarm(a)
		}
	}
}

// lifetime is the VIP's address lifetime for a deadline.
// Behind nftables the lifetime is a backstop (for a flushed ruleset): at
// least backstopLifetime, so that second-granular kernel expiry never races
// the renewals.
func (g *Group) lifetime(deadline time.Time) (time.Duration, error) {
	lt, ok := fencing.LifetimeFor(deadline, time.Now(), g.cfg.FenceMargin)
	if g.cfg.LifetimeIsFence {
		if !ok {
			return 0, errors.New("local deadline too close for the address lifetime, the only fence without nftables")
		}
		return lt, nil
	}
	return max(lt, backstopLifetime), nil
}

// backstopLifetime is the VIP's address lifetime when nftables fences it.
const backstopLifetime = 2 * time.Second

func (g *Group) armFence(deadline time.Time) error {
	for _, v := range g.cfg.VIPs {
		if err := fencing.Refresh(g.deps.Fence, v, deadline, g.cfg.FenceMargin, time.Now); err != nil {
			g.disarm()
			return err
		}
	}
	g.mu.Lock()
	g.armed = true
	g.mu.Unlock()
	return nil
}

func (g *Group) disarm() {
	for _, v := range g.cfg.VIPs {
		if err := g.deps.Fence.Disarm(v); err != nil {
			g.log.Error("fence off failed", "vip", v, "err", err)
		}
	}
	g.mu.Lock()
	g.armed = false
	g.mu.Unlock()
}

// demote runs the demotion pipeline: fence off → demote resources →
// remove VIP → release. The fence goes first and synchronously: from then
// on the node drops the VIP's traffic whatever else fails.
func (g *Group) demote(a Demote) {
	g.disarm()
	budget := g.cfg.StopBudget
	if !a.Deadline.IsZero() {
		if left := time.Until(a.Deadline); left < budget {
			budget = max(left, 10*time.Millisecond)
		}
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		defer cancel()
		var errs []error
		stuck := false
		if g.deps.Resources != nil && a.Grant.Epoch != 0 {
			if err := g.deps.Resources.Demote(ctx, a.Grant.Epoch); err != nil {
				errs = append(errs, fmt.Errorf("demote resources: %w", err))
				stuck = true
			}
		}
		if err := g.deps.Addrs.Remove(); err != nil {
			errs = append(errs, fmt.Errorf("remove VIP: %w", err))
		}
		// Resources that failed to demote may still be active (DRBD
		// Primary, mounted): releasing the lease would let a peer promote
		// beside them. The lease is left to expire instead; the watchdog
		// (escalated, no longer fed) resets the machine before it does.
		if stuck && a.Release && a.Grant.Epoch != 0 {
			errs = append(errs, fmt.Errorf("lease epoch %d not released: resources may still be active; it expires unless renewed", a.Grant.Epoch))
		} else if a.Release && a.Grant.Epoch != 0 {
			if l := g.lease.Load(); l != nil {
				if err := g.rel.Release(ctx, l, a.Grant, g.live); err != nil {
					how := "not retried"
					if retryable(err) {
						how = "retrying in the background"
					}
					errs = append(errs, fmt.Errorf("release (%s): %w", how, err))
				}
			}
		}
		err := errors.Join(errs...)
		if err != nil {
			g.setErr(err)
			g.log.Warn("demotion finished with errors", "reason", a.Reason, "err", err)
		}
		g.Post(Demoted{Err: err})
	}()
}
