package drill

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"time"

	"github.com/leasehold/leasehold/lab/labctl"
	"github.com/leasehold/leasehold/lab/netlab"
)

// Sentinel errors.
var (
	ErrUnknownScenario = errors.New("drill: unknown scenario")
	errNotReady        = errors.New("drill: checkers not ready")
)

// Scenarios are the named drills, in the order `all` runs them; a target
// is offered those whose fault it can inject (ScenariosFor).
var Scenarios = []string{"graceful", "kill9", "freeze", "vrrp-partition", "quorum-partition", "quorum-loss", "link-flap", "preempt", "foreign-speaker",
	"power-cut", "vrrp-link-cut", "isolation", "mysqld-crash"}

// ScenariosFor returns the scenarios t can run, in Scenarios' order.
func ScenariosFor(t Target) []string {
	var out []string
	for _, name := range Scenarios {
		if supports(t, name) {
			out = append(out, name)
		}
	}
	return out
}

func supports(t Target, name string) bool {
	_, netns := t.(netlabTarget)
	switch name {
	case "vrrp-partition":
		_, ok := t.(VRRPCutter)
		return ok || netns
	case "link-flap":
		_, ok := t.(LinkSetter)
		return ok || netns
	case "foreign-speaker":
		_, api := t.(daemonAPI)
		return netns && api
	case "power-cut":
		_, ok := t.(PowerCutter)
		return ok
	case "vrrp-link-cut":
		_, ok := t.(VRRPLinkCutter)
		return ok
	case "isolation":
		_, ok := t.(Isolator)
		return ok
	case "mysqld-crash":
		_, ok := t.(MySQLCrasher)
		return ok && runsMySQL(t)
	}
	return true
}

// Scenario names a drill and how long its fault lasts.
type Scenario struct {
	Name string
	// Duration of the fault (freeze, partitions, quorum loss, link down);
	// zero means the scenario's default (DefaultDuration).
	Duration time.Duration
}

// DefaultDuration returns how long the fault of scenario name lasts by default.
func DefaultDuration(name string) time.Duration {
	switch name {
	case "freeze", "vrrp-partition", "vrrp-link-cut", "isolation":
		return 10 * time.Second
	case "quorum-partition", "quorum-loss":
		return 5 * time.Second
	case "link-flap":
		return 3 * time.Second
	}
	return 0
}

// expectation is what a scenario must show besides "never two MACs".
type expectation int

const (
	expectTakeover  expectation = iota // another node serves the client during the fault
	expectKeep                         // nothing required but safety and a steady lab after
	expectWithdrawn                    // nobody answers for the VIP while the quorum is gone
)

// Run performs one drill on t: waits until the target is steady, starts
// the checkers, injects the fault into the current owner, restores (the
// killed daemon restarted, the frozen one continued, the partition healed)
// and waits until the target is steady again, so the next drill finds a
// usable lab. The Result carries the verdict; the error is for drills that
// could not be carried out at all.
func Run(ctx context.Context, t Target, sc Scenario) (Result, error) {
	if !slices.Contains(Scenarios, sc.Name) || !supports(t, sc.Name) {
		return Result{}, fmt.Errorf("%w: %q (this target runs %v)", ErrUnknownScenario, sc.Name, ScenariosFor(t))
	}
	if sc.Duration <= 0 {
		sc.Duration = DefaultDuration(sc.Name)
	}
	// A daemon left down (by an interrupted drill) is started first.
	for _, n := range t.Nodes() {
		if st, _ := t.Status(ctx, n); !st.Running {
			if err := t.Restart(ctx, n); err != nil {
				return Result{}, fmt.Errorf("drill %s: restarting %s: %w", sc.Name, n, err)
			}
		}
	}
	if err := t.WaitSteady(ctx, 60*time.Second); err != nil {
		return Result{}, fmt.Errorf("drill %s: target not steady before the drill: %w", sc.Name, err)
	}
	s, err := observe(ctx, t)
	if err != nil {
		return Result{}, fmt.Errorf("drill %s: %w", sc.Name, err)
	}
	wr := StartWrites(ctx, t) // nil unless the target runs MySQL
	r := Result{Scenario: sc.Name, Duration: sc.Duration.String(), VIP: t.VIP().String(), Started: time.Now().UTC(), Nodes: t.Nodes()}
	var data DataWatch
	if dg, ok := t.(DataGuard); ok {
		if data, err = dg.GuardData(ctx); err != nil {
			s.stop()
			return Result{}, fmt.Errorf("drill %s: data guard: %w", sc.Name, err)
		}
	}
	// Let the checkers see the steady state first.
	sleep(ctx, time.Second)
	r.OldOwner = ownerOf(ctx, t)
	r.EpochBefore = epochs(ctx, t)
	ph, perr := perform(ctx, t, s, sc, &r, wr)
	// Whatever happened, leave the target steady (restart what is down).
	for _, n := range t.Nodes() {
		if st, _ := t.Status(ctx, n); !st.Running {
			if err := t.Restart(ctx, n); err != nil {
				r.Notes = append(r.Notes, fmt.Sprintf("restarting %s failed: %v", n, err))
			}
		}
	}
	steadyErr := t.WaitSteady(ctx, 45*time.Second)
	ph.steady = s.now()
	steadyAt := time.Now()
	sleep(ctx, time.Second)
	r.EpochAfter = epochs(ctx, t)
	r.FinalOwner = ownerOf(ctx, t)
	if data != nil {
		d := data.Check(ctx)
		r.Data = &d
	}
	s.stop()
	r.Transitions = s.transitions(60)
	r.measure(s, ph)
	if ph.check != nil {
		ph.check(&r)
	}
	if wr != nil {
		r.MySQL = wr.Finish(ctx, t.Nodes(), r.FinalOwner, steadyAt)
	}
	r.judge(ph, perr, steadyErr)
	r.judgeWrites()
	return r, nil
}

func epochs(ctx context.Context, t Target) map[string]uint64 {
	m := map[string]uint64{}
	for _, n := range t.Nodes() {
		if st, _ := t.Status(ctx, n); st.Up {
			m[n] = st.Epoch
		}
	}
	return m
}

// phases are the instants a drill marks on the timeline.
type phases struct {
	expect  expectation
	fault   netlab.Stamp // fault injected
	restore netlab.Stamp // restoring began (zero: nothing to restore)
	steady  netlab.Stamp // the target reported steady again after the drill
	victim  string       // the node the fault hit
	// served is the node expected to serve after the fault ("" = any other than victim).
	served string
	// withdrawBy: with expectWithdrawn, how long after the fault nobody
	// may answer any more (the lease TTL and a second).
	withdrawBy time.Duration
	// check, if set, adds the scenario's own verdict after the measures.
	check func(r *Result)
}

// perform injects the scenario's fault into the current owner and
// restores; wr is the write checker (nil without MySQL).
func perform(ctx context.Context, t Target, s *session, sc Scenario, r *Result, wr *WriteCheck) (phases, error) {
	victim := r.OldOwner
	ph := phases{victim: victim, expect: expectTakeover}
	if victim == "" {
		return ph, fmt.Errorf("no owner before the fault")
	}
	others := func() bool {
		for _, n := range t.Nodes() {
			if n != victim {
				if st, _ := t.Status(ctx, n); st.Up && st.Role == "owner" {
					return true
				}
			}
		}
		return false
	}
	switch sc.Name {
	case "graceful":
		r.Fault = fmt.Sprintf("SIGTERM to %s's daemon (the owner); restarted after the handover", victim)
		ph.fault = s.now()
		if err := stopGracefully(ctx, t, victim, r); err != nil {
			return ph, err
		}
		if !waitFor(ctx, 15*time.Second, others) {
			r.Reasons = append(r.Reasons, fmt.Sprintf("no role change: no other node reported role owner within 15 s of %s's graceful stop", victim))
		}
		sleep(ctx, time.Second)
		ph.restore = s.now()
		return ph, t.Restart(ctx, victim)
	case "kill9":
		ph.fault = s.now()
		killed, err := killOwner(ctx, t, victim, 5*time.Second)
		r.Fault = fmt.Sprintf("kill -9 of %s's daemon (the owner, pid %d); restarted after the takeover", victim, killed.PID)
		if err != nil {
			return ph, err
		}
		if !waitFor(ctx, 20*time.Second, others) {
			r.Reasons = append(r.Reasons, fmt.Sprintf("no role change: no other node reported role owner within 20 s of the kill -9 of %s (pid %d, gone)", victim, killed.PID))
		}
		ph.check = watchdogCheck(t, s, ph)
		sleep(ctx, 2*time.Second)
		ph.restore = s.now()
		return ph, t.Restart(ctx, victim)
	case "freeze":
		r.Fault = fmt.Sprintf("SIGSTOP of %s's daemon (the owner) for %v, then SIGCONT", victim, sc.Duration)
		ph.fault = s.now()
		if err := t.Signal(victim, syscall.SIGSTOP); err != nil {
			return ph, fmt.Errorf("owner %s not frozen: SIGSTOP not delivered: %w", victim, err)
		}
		ph.check = watchdogCheck(t, s, ph)
		sleep(ctx, sc.Duration)
		ph.restore = s.now()
		if rs, ok := t.(Resetter); ok && !s.tb.Stamp(rs.ResetAt(victim)).Before(ph.fault) {
			r.Notes = append(r.Notes, fmt.Sprintf("%s's machine reset during the freeze (its watchdog); nothing to thaw", victim))
			return ph, t.Restart(ctx, victim)
		}
		if err := t.Signal(victim, syscall.SIGCONT); err != nil {
			return ph, fmt.Errorf("owner %s not thawed: SIGCONT not delivered: %w", victim, err)
		}
		return ph, nil
	case "vrrp-partition":
		ph.expect = expectKeep
		r.Fault = fmt.Sprintf("VRRP (IP proto 112) dropped in and out of %s (the owner) for %v", victim, sc.Duration)
		ph.fault = s.now()
		if err := cutVRRP(ctx, t, victim, true); err != nil {
			return ph, err
		}
		sleep(ctx, sc.Duration)
		ph.restore = s.now()
		return ph, cutVRRP(context.WithoutCancel(ctx), t, victim, false)
	case "quorum-partition":
		r.Fault = fmt.Sprintf("%s (the owner) cut from the quorum, both directions, for %v after the takeover", victim, sc.Duration)
		ph.fault = s.now()
		if err := t.CutQuorum(ctx, victim, true); err != nil {
			return ph, err
		}
		if !waitFor(ctx, 30*time.Second, others) {
			r.Reasons = append(r.Reasons, fmt.Sprintf("no role change: no other node reported role owner within 30 s of cutting %s from the quorum", victim))
		}
		sleep(ctx, sc.Duration)
		ph.restore = s.now()
		return ph, t.CutQuorum(context.WithoutCancel(ctx), victim, false)
	case "quorum-loss":
		ph.expect = expectWithdrawn
		ph.withdrawBy = 2 * time.Second
		if tt, ok := t.(interface{ TTL() time.Duration }); ok && tt.TTL() > 0 {
			ph.withdrawBy = tt.TTL() + time.Second
		}
		r.Fault = fmt.Sprintf("the whole quorum unavailable for %v (quorum process frozen; raft: nodes also cut from each other)", sc.Duration)
		ph.fault = s.now()
		if err := t.StopQuorum(ctx, true); err != nil {
			return ph, err
		}
		sleep(ctx, sc.Duration)
		ph.restore = s.now()
		return ph, t.StopQuorum(context.WithoutCancel(ctx), false)
	case "link-flap":
		ph.expect = expectKeep
		r.Fault = fmt.Sprintf("%s's (the owner's) interface down for %v, then up", victim, sc.Duration)
		ph.fault = s.now()
		if err := setLink(ctx, t, victim, false); err != nil {
			return ph, err
		}
		sleep(ctx, sc.Duration)
		ph.restore = s.now()
		return ph, setLink(context.WithoutCancel(ctx), t, victim, true)
	case "power-cut":
		r.Fault = fmt.Sprintf("power cut of %s (the owner's machine switched off, no shutdown); booted again after the takeover", victim)
		ph.fault = s.now()
		if err := t.(PowerCutter).PowerCut(ctx, victim); err != nil {
			return ph, fmt.Errorf("owner %s not switched off: %w", victim, err)
		}
		if !waitFor(ctx, 30*time.Second, others) {
			r.Reasons = append(r.Reasons, fmt.Sprintf("no role change: no other node reported role owner within 30 s of the power cut of %s", victim))
		}
		sleep(ctx, 2*time.Second)
		ph.restore = s.now()
		return ph, t.Restart(ctx, victim)
	case "vrrp-link-cut", "isolation":
		cut := func(ctx context.Context, on bool) error { return t.(VRRPLinkCutter).CutVRRPLink(ctx, victim, on) }
		r.Fault = fmt.Sprintf("%s's (the owner's) VRRP and client link cut for %v (its quorum link stays)", victim, sc.Duration)
		if sc.Name == "isolation" {
			cut = func(ctx context.Context, on bool) error { return t.(Isolator).Isolate(ctx, victim, on) }
			r.Fault = fmt.Sprintf("%s (the owner) cut from everything (VRRP, clients and quorum) for %v", victim, sc.Duration)
		}
		ph.fault = s.now()
		if err := cut(ctx, true); err != nil {
			return ph, err
		}
		fault := time.Now()
		if !waitFor(ctx, 30*time.Second, others) {
			r.Reasons = append(r.Reasons, fmt.Sprintf("no role change: no other node reported role owner within 30 s of cutting %s off", victim))
		}
		sleep(ctx, sc.Duration)
		if wr != nil && sc.Name == "isolation" {
			snapshotNewMaster(ctx, t, wr, victim, fault, r)
		}
		ph.restore = s.now()
		return ph, cut(context.WithoutCancel(ctx), false)
	case "mysqld-crash":
		c := t.(MySQLCrasher)
		r.Fault = fmt.Sprintf("kill -9 of mysqld on %s (the owner; its leasehold keeps running); mysqld started again (read-only) after the takeover", victim)
		ph.fault = s.now()
		fault := time.Now()
		if err := c.KillMySQL(victim); err != nil {
			return ph, fmt.Errorf("mysqld on %s not crashed: %w", victim, err)
		}
		if !waitFor(ctx, 20*time.Second, others) {
			r.Reasons = append(r.Reasons, fmt.Sprintf("no role change: no other node reported role owner within 20 s of mysqld's crash on %s "+
				"(its health check did not put the group in FAULT?)", victim))
		}
		if wr != nil {
			snapshotNewMaster(ctx, t, wr, victim, fault, r)
		}
		ph.restore = s.now()
		return ph, c.StartMySQL(context.WithoutCancel(ctx), victim)
	case "foreign-speaker":
		return performForeign(ctx, t, s, sc, r)
	case "preempt":
		// The highest-priority node stops; once the next one owns, it
		// comes back and takes the group over through the lease.
		top := t.Nodes()[0]
		if victim != top {
			return ph, fmt.Errorf("preempt needs %s (highest priority) to own first; %s owns", top, victim)
		}
		if err := stopGracefully(ctx, t, top, r); err != nil {
			return ph, err
		}
		if !waitFor(ctx, 15*time.Second, others) {
			return ph, fmt.Errorf("no other owner after %s stopped", top)
		}
		sleep(ctx, time.Second)
		r.OldOwner = ownerOf(ctx, t)
		r.EpochBefore = epochs(ctx, t)
		r.Fault = fmt.Sprintf("%s (priority highest) restarted while %s owns: it preempts through the lease", top, r.OldOwner)
		ph.victim, ph.served = r.OldOwner, top
		ph.fault = s.now()
		if err := t.Restart(ctx, top); err != nil {
			return ph, err
		}
		waitFor(ctx, 15*time.Second, func() bool { st, _ := t.Status(ctx, top); return st.Role == "owner" })
		return ph, nil
	}
	return ph, fmt.Errorf("%w: %q", ErrUnknownScenario, sc.Name)
}

// snapshotNewMaster waits (at most 10 s) until the new owner's server
// acknowledged a write sent after the fault and takes the write checker's
// snapshot of it while the old master is still gone; a new master that
// acknowledges nothing is a finding.
func snapshotNewMaster(ctx context.Context, t Target, wr *WriteCheck, victim string, fault time.Time, r *Result) {
	owner := ownerOf(ctx, t)
	if owner == "" || owner == victim {
		return
	}
	if !waitFor(ctx, 10*time.Second, func() bool { return wr.ServedBy(owner, fault) }) {
		r.Reasons = append(r.Reasons, fmt.Sprintf("MySQL: the new owner %s's server acknowledged no write through the VIP within 10 s of taking over", owner))
		return
	}
	wr.Snapshot(ctx, owner)
}

// stopGracefully sends SIGTERM and waits up to 10 s for the daemon to
// exit; a daemon that hangs in its shutdown is a finding (returned as an
// error, so the run fails) and is killed so the drill can go on.
func stopGracefully(ctx context.Context, t Target, node string, r *Result) error {
	if err := t.Signal(node, syscall.SIGTERM); err != nil {
		return fmt.Errorf("%s not stopped: SIGTERM not delivered: %w", node, err)
	}
	if waitFor(ctx, 10*time.Second, func() bool { st, _ := t.Status(ctx, node); return !st.Running }) {
		return nil
	}
	t.Signal(node, syscall.SIGKILL)
	waitFor(ctx, 5*time.Second, func() bool { st, _ := t.Status(ctx, node); return !st.Running })
	return fmt.Errorf("%s's daemon did not exit within 10 s of SIGTERM (hung shutdown; killed with -9, see its log %s)", node, t.LogPath(node))
}

// servingPID is a target that can tell which process serves a node's
// status socket (labctl.Lab).
type servingPID interface {
	ServingPID(ctx context.Context, node string) (int, error)
}

// killOwner sends SIGKILL to node's daemon and verifies it took effect:
// the process the target records (PID and start time) is the one serving
// the node's status API, the signal was delivered, and that process is
// gone within wait. It returns the node's status from before the kill.
// Every error says what did not happen.
func killOwner(ctx context.Context, t Target, node string, wait time.Duration) (labctl.NodeStatus, error) {
	before, err := t.Status(ctx, node)
	switch {
	case err != nil:
		return before, fmt.Errorf("owner %s not killed: its daemon cannot be found: %w", node, err)
	case !before.Running || before.PID <= 0:
		return before, fmt.Errorf("owner %s not killed: no running daemon recorded (pid %d)", node, before.PID)
	}
	if sp, ok := t.(servingPID); ok {
		if pid, err := sp.ServingPID(ctx, node); err == nil && pid != before.PID {
			return before, fmt.Errorf("owner %s not killed: its status socket is served by pid %d but the lab records pid %d (start time %d): "+
				"refusing to kill -9 a process that is not the owner's daemon", node, pid, before.PID, before.StartTime)
		}
	}
	if err := t.Signal(node, syscall.SIGKILL); err != nil {
		return before, fmt.Errorf("owner %s (pid %d) still alive after kill -9: signal not delivered: %w", node, before.PID, err)
	}
	alive := func() bool { return netlab.ProcRecord{PID: before.PID, StartTime: before.StartTime}.Alive() }
	if pv, ok := t.(ProcessView); ok {
		alive = func() bool { return pv.ProcessAlive(ctx, node, before.PID, before.StartTime) }
	}
	if !waitFor(ctx, wait, func() bool { return !alive() }) {
		return before, fmt.Errorf("owner %s still alive %v after kill -9: pid %d (start time %d) still runs", node, wait, before.PID, before.StartTime)
	}
	return before, nil
}

// cutVRRP drops VRRP in and out of node: the target's way, or nftables in
// a netns lab.
func cutVRRP(ctx context.Context, t Target, node string, on bool) error {
	if c, ok := t.(VRRPCutter); ok {
		return c.CutVRRP(ctx, node, on)
	}
	return t.(netlabTarget).Netlab().Host(node).DropVRRP(ctx, on)
}

// setLink takes node's interface down or up.
func setLink(ctx context.Context, t Target, node string, up bool) error {
	if ls, ok := t.(LinkSetter); ok {
		return ls.SetLink(ctx, node, up)
	}
	h := t.(netlabTarget).Netlab().Host(node)
	if up {
		return h.LinkUp()
	}
	return h.LinkDown()
}

// watchdogCheck, on a target whose owners arm a watchdog, requires that
// the victim's machine reset (its watchdog fired) and that it reset before
// any other node took over: a peer that promotes while the old owner
// could still be running its resources is the split brain the watchdog is
// there to prevent. Both instants are recorded.
func watchdogCheck(t Target, s *session, ph phases) func(*Result) {
	rs, ok := t.(Resetter)
	if !ok || !rs.WatchdogArmed() {
		return nil
	}
	victim, fault := ph.victim, ph.fault
	return func(r *Result) {
		for _, m := range r.Timeline.Status {
			if m.Node != victim && m.Up && m.Role == "owner" && m.At >= rel(fault, s.start) {
				r.TakeoverUS = m.At - rel(fault, s.start)
				break
			}
		}
		at := rs.ResetAt(victim)
		if at.IsZero() || s.tb.Stamp(at).Before(fault) {
			r.Reasons = append(r.Reasons, fmt.Sprintf("%s's watchdog did not reset its machine (the daemon was armed)", victim))
			return
		}
		r.WatchdogResetUS = s.tb.Stamp(at).MonoUS - fault.MonoUS
		if r.TakeoverUS > 0 && r.TakeoverUS < r.WatchdogResetUS {
			r.Reasons = append(r.Reasons, fmt.Sprintf("%s took over %s after the fault, before %s's watchdog reset its machine (%s)",
				r.NewOwner, us(r.TakeoverUS), victim, us(r.WatchdogResetUS)))
		}
	}
}
