package node

import (
	"fmt"
	"time"

	"github.com/leasehold/leasehold/quorum"
)

// Role is a node's role for one group (DESIGN.md "The ownership protocol").
type Role uint8

const (
	// RoleBackup: not VRRP master, or master without a session yet.
	RoleBackup Role = iota
	// RoleCandidate: VRRP says master (or the owner released); acquiring
	// the lease and running the promotion pipeline. No VIP.
	RoleCandidate
	// RoleOwner: lease held, local deadline in the future, VIP up.
	RoleOwner
	// RoleDemoting: the demotion pipeline runs; the VIP is going away.
	RoleDemoting
	// RoleFault: no quorum session; VRRP is held in fault (no adverts).
	RoleFault
	// RoleStopped: shut down.
	RoleStopped
)

func (r Role) String() string {
	switch r {
	case RoleBackup:
		return "backup"
	case RoleCandidate:
		return "candidate"
	case RoleOwner:
		return "owner"
	case RoleDemoting:
		return "demoting"
	case RoleFault:
		return "fault"
	case RoleStopped:
		return "stopped"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Stage is where a candidate is in the promotion pipeline.
type Stage uint8

const (
	StageIdle     Stage = iota // waiting: retry timer or the key's deletion
	StageAcquire               // Acquire sent
	StageHooks                 // peer-fence hooks running
	StageProbe                 // ARP/NA probe for the VIP
	StagePromote               // resources being promoted
	StageVIP                   // VIP being added, fence armed
	StageHandover              // backup saw the key deleted: waiting its skew
)

func (s Stage) String() string {
	return [...]string{"idle", "acquire", "hooks", "probe", "promote", "vip", "handover"}[s]
}

// Config is one group's node configuration.
type Config struct {
	Group string
	// Probe: ARP/NA-probe the VIP before claiming it (RFC 5227 style).
	Probe bool
	// StepTimeout bounds each promotion step.
	StepTimeout time.Duration
	// RetryInterval: a candidate whose acquire failed retries this often
	// (besides acquiring at once when it sees the key deleted).
	RetryInterval time.Duration
	// HandoverDelay: a backup that sees the key deleted waits this long
	// (its VRRP skew) before it tries to acquire, so that the best
	// candidate usually wins the race.
	HandoverDelay time.Duration
	// DemoteBudget: demotion starts at the latest this long before the
	// local deadline.
	DemoteBudget time.Duration
	// Storm guard (doc.go "Storm bound"); zero values take the defaults.
	// A flap is a grant this node gave up itself (VRRP left master, a stale
	// grant) less than FlapWindow after acquiring it; a grant given up
	// because a promotion step failed is paced apart (stepFailed).
	// After FlapLimit flaps, the k-th further flap holds every acquire for
	// min(FlapBackoff·2^(k−1), FlapBackoffMax). The count restarts after a
	// grant held FlapWindow or longer, or after 2·FlapBackoffMax without
	// a flap.
	FlapWindow     time.Duration
	FlapLimit      int
	FlapBackoff    time.Duration
	FlapBackoffMax time.Duration
	// RestoreWindow: for this long after a session that follows a quorum
	// fault (the daemon's start, or a lost session), the node elects as
	// after a restore (doc.go "After a quorum fault"): a deleted key is an
	// expiry, taken by the fast path only by the best registered member
	// (at once), and a VRRP master defers to a member of higher priority
	// registered at the quorum. Zero: no window.
	RestoreWindow time.Duration
}

// The storm guard's defaults.
const (
	DefaultFlapWindow     = time.Second
	DefaultFlapLimit      = 5
	DefaultFlapBackoff    = time.Second
	DefaultFlapBackoffMax = 30 * time.Second
)

// withDefaults fills the storm guard's zero values.
func (c Config) withDefaults() Config {
	if c.FlapWindow == 0 {
		c.FlapWindow = DefaultFlapWindow
	}
	if c.FlapLimit == 0 {
		c.FlapLimit = DefaultFlapLimit
	}
	if c.FlapBackoff == 0 {
		c.FlapBackoff = DefaultFlapBackoff
	}
	if c.FlapBackoffMax == 0 {
		c.FlapBackoffMax = DefaultFlapBackoffMax
	}
	return c
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Group == "":
		return fmt.Errorf("node: group: must be set")
	case c.StepTimeout <= 0:
		return fmt.Errorf("node: %s: step timeout must be > 0", c.Group)
	case c.RetryInterval <= 0:
		return fmt.Errorf("node: %s: retry interval must be > 0", c.Group)
	case c.HandoverDelay < 0:
		return fmt.Errorf("node: %s: handover delay must be >= 0", c.Group)
	case c.DemoteBudget <= 0:
		return fmt.Errorf("node: %s: demote budget must be > 0", c.Group)
	case c.RestoreWindow < 0:
		return fmt.Errorf("node: %s: restore window must be >= 0", c.Group)
	case c.FlapWindow < 0 || c.FlapLimit < 0 || c.FlapBackoff < 0 || c.FlapBackoffMax < 0:
		return fmt.Errorf("node: %s: storm guard settings must be >= 0", c.Group)
	case c.FlapBackoffMax != 0 && c.FlapBackoffMax < c.FlapBackoff:
		return fmt.Errorf("node: %s: flap backoff max %v below flap backoff %v", c.Group, c.FlapBackoffMax, c.FlapBackoff)
	}
	return nil
}

// Events. Completions carry the epoch of the grant they worked for; a
// completion for another epoch is stale and ignored.
type Event interface{ nodeEvent() }

type (
	// VRRPMaster: the VRRP machine became master. HigherMember: a member
	// of the group's instances with a higher priority is registered at the
	// quorum (Roster.HigherRegistered); within the restore window this
	// node waits for it instead of acquiring.
	VRRPMaster struct{ HigherMember bool }
	// VRRPNotMaster: the VRRP machine left master (higher priority heard,
	// fault, stop).
	VRRPNotMaster struct{ Reason string }
	// VRRPFaulted: the VRRP machine entered (On) or left fault (health
	// checks, tracked links). A faulted node never starts a handover.
	VRRPFaulted struct{ On bool }
	// SessionUp: a quorum session is established.
	SessionUp struct{ Deadline time.Time }
	// Renewed: the session's local deadline moved on.
	Renewed struct{ Deadline time.Time }
	// SessionLost: the session is gone (or its deadline is near).
	SessionLost struct{ Err error }
	// Acquired: the group's key is ours.
	Acquired struct {
		Grant      quorum.Grant
		PrevHolder string
		PrevAddr   string
	}
	// AcquireFailed: held by another (Holder) or an error.
	AcquireFailed struct {
		Holder string
		Err    error
	}
	// KeyDeleted: the watch saw the group's key deleted (released or
	// expired). Epoch is the deleted grant's, if known. MasterHeard: VRRP
	// hears another node as master (vrrp.Machine.MasterHeard); that node
	// is a candidate and acquires itself, so a backup does not race it.
	// HigherMember as for VRRPMaster.
	KeyDeleted struct {
		Epoch        uint64
		MasterHeard  bool
		HigherMember bool
	}
	// KeyPut: the watch saw the key created by a grant.
	KeyPut struct {
		Epoch  uint64
		Holder string
	}
	// HooksDone: the peer-fence hooks finished; Err means a required hook
	// failed. Ran says hooks were configured and run (a probe made before
	// them says nothing about their effect).
	HooksDone struct {
		Epoch uint64
		Err   error
		Ran   bool
	}
	// ProbeDone: the VIP probe finished. Conflict names another MAC that
	// answered for the VIP. Epoch 0 is the early probe of a handover.
	ProbeDone struct {
		Epoch    uint64
		Conflict string
		Err      error
	}
	// Promoted: resources promoted.
	Promoted struct {
		Epoch uint64
		Err   error
	}
	// VIPUp: VIP added and the kernel fence armed.
	VIPUp struct {
		Epoch uint64
		Err   error
	}
	// Demoted: the demotion pipeline finished (errors are logged by the
	// actuator; the VIP is gone either way or the fence expires it).
	Demoted struct{ Err error }
	// FenceFailed: refreshing the kernel fence failed or came too late
	// (a freeze between computing and applying the timeout).
	FenceFailed struct{ Err error }
	// Shutdown: the daemon stops.
	Shutdown struct{}
	// Tick: a timer from NextDeadline fired.
	Tick struct{}
)

func (VRRPMaster) nodeEvent()    {}
func (VRRPNotMaster) nodeEvent() {}
func (VRRPFaulted) nodeEvent()   {}
func (SessionUp) nodeEvent()     {}
func (Renewed) nodeEvent()       {}
func (SessionLost) nodeEvent()   {}
func (Acquired) nodeEvent()      {}
func (AcquireFailed) nodeEvent() {}
func (KeyDeleted) nodeEvent()    {}
func (KeyPut) nodeEvent()        {}
func (HooksDone) nodeEvent()     {}
func (ProbeDone) nodeEvent()     {}
func (Promoted) nodeEvent()      {}
func (VIPUp) nodeEvent()         {}
func (Demoted) nodeEvent()       {}
func (FenceFailed) nodeEvent()   {}
func (Shutdown) nodeEvent()      {}
func (Tick) nodeEvent()          {}

// Actions, performed in order by the actuator, which feeds the results
// back as events.
type Action interface{ nodeAction() }

type (
	// Transition records a role change (logs, notify, metrics).
	Transition struct {
		From, To Role
		Reason   string
	}
	// Acquire the group's key.
	Acquire struct{}
	// RunHooks runs the peer-fence hooks for the new grant.
	RunHooks struct {
		Grant                quorum.Grant
		PrevHolder, PrevAddr string
	}
	// Probe the VIP (sender 0.0.0.0 / unspecified). Epoch 0: the early
	// probe of a handover, started when the key was deleted, before any
	// grant.
	Probe struct{ Epoch uint64 }
	// Promote resources under the epoch.
	Promote struct{ Epoch uint64 }
	// AddVIP adds the VIP and arms the kernel fence until Deadline.
	AddVIP struct {
		Epoch    uint64
		Deadline time.Time
	}
	// Announce sends GARP/NA for the VIP.
	Announce struct{ Epoch uint64 }
	// ClaimVRRP makes the VRRP machine master (we own the lease).
	ClaimVRRP struct{}
	// RefreshFence extends the fence and the address lifetime to Deadline.
	RefreshFence struct {
		Epoch    uint64
		Deadline time.Time
	}
	// Demote runs the demotion pipeline: fence off (drop traffic) →
	// demote resources → remove VIP → release the lease (Release set).
	// Every step is time-boxed to finish before Deadline.
	Demote struct {
		Grant    quorum.Grant // Epoch 0: nothing to release
		Release  bool
		Deadline time.Time
		Reason   string
	}
	// Release gives up the key without demoting anything (no VIP yet).
	Release struct{ Grant quorum.Grant }
	// VRRPFault holds the VRRP machine in fault (On) or lets it go.
	VRRPFault struct{ On bool }
	// Alarm raises an operator-visible event (e.g. "stale-holder").
	Alarm struct{ Kind, Detail string }
	// Note is logged: a decision that changes no role (a deferral).
	Note struct{ Detail string }
)

func (Transition) nodeAction()   {}
func (Acquire) nodeAction()      {}
func (RunHooks) nodeAction()     {}
func (Probe) nodeAction()        {}
func (Promote) nodeAction()      {}
func (AddVIP) nodeAction()       {}
func (Announce) nodeAction()     {}
func (ClaimVRRP) nodeAction()    {}
func (RefreshFence) nodeAction() {}
func (Demote) nodeAction()       {}
func (Release) nodeAction()      {}
func (VRRPFault) nodeAction()    {}
func (Alarm) nodeAction()        {}
func (Note) nodeAction()         {}

// Machine is one group's role state. It is a value: Step returns the next.
type Machine struct {
	cfg      Config
	role     Role
	stage    Stage
	vrrp     bool   // VRRP machine is master
	faulted  bool   // VRRP machine is in fault (health)
	released uint64 // epoch of the last grant we released ourselves
	session  bool
	deadline time.Time // local deadline of the session (zero: none)
	grant    quorum.Grant
	prev     [2]string // previous holder and address, for hooks
	timer    time.Time // stage timeout / retry / handover
	stopping bool
	early    early
	earlyAt  time.Time // when the early probe started
	// quorumFault: VRRP is held in fault for want of a session (set on
	// SessionLost, cleared by the next SessionUp).
	quorumFault bool
	// restoreUntil ends the restore window (zero: none), opened by the
	// SessionUp that clears a quorum fault. deferred: VRRP is master but
	// the node waits for a higher-priority member until then.
	restoreUntil time.Time
	deferred     bool
	// The storm guard: when the grant held was acquired, flaps counted
	// and the last one, and until when no acquire goes out.
	acquiredAt time.Time
	flaps      int
	lastFlap   time.Time
	holdUntil  time.Time
	// Failed promotion steps in a row (stepFailed) and the last one.
	failures    int
	lastFailure time.Time
}

// early is the state of a handover's early probe. A handover starts when
// the key is deleted: the holder released it after removing its VIPs, or
// the quorum expired it after the holder's own fence had run out. From
// then on nobody may answer for the VIP, so the probe can run while this
// node waits its skew and acquires, instead of after. Only a clean result
// is used, and only when no peer-fence hooks run (the probe then has to
// see their effect): anything else falls back to the probe after the grant.
type early int

const (
	earlyNone early = iota
	earlyRunning
	earlyClean
)

// New returns a machine in RoleFault: no session yet.
func New(cfg Config) Machine {
	return Machine{cfg: cfg.withDefaults(), role: RoleFault, quorumFault: true}
}

// HeldOff returns until when the storm guard holds acquires back (zero or
// past: not held).
func (m Machine) HeldOff() time.Time { return m.holdUntil }

// Role returns the current role.
func (m Machine) Role() Role { return m.role }

// Stage returns the candidate's pipeline stage.
func (m Machine) Stage() Stage { return m.stage }

// Grant returns the grant held (Epoch 0: none).
func (m Machine) Grant() quorum.Grant { return m.grant }

// Deadline returns the session's local deadline.
func (m Machine) Deadline() time.Time { return m.deadline }

// MayAdvertise reports whether this node may speak VRRP with a non-zero
// priority for the group at now, or claim VRRP mastership: its quorum
// session is live, the local deadline after now on the monotonic clock.
// A node that resumes from a freeze (a stall, a late timer) past its
// deadline stays silent until a renewal or a new session says it is live:
// its adverts would displace the healthy owner while it holds no lease.
func (m Machine) MayAdvertise(now time.Time) bool {
	return m.session && now.Before(m.deadline)
}

// MayAnnounce reports whether this node may announce the VIPs (GARP/NA) at
// now: it owns the group and now is before the local deadline less margin,
// when the kernel fence stops answering for the VIP. Packet-socket frames
// bypass the fence, so the check must come before each one.
func (m Machine) MayAnnounce(now time.Time, margin time.Duration) bool {
	return m.role == RoleOwner && m.session && m.grant.Epoch != 0 && now.Before(m.deadline.Add(-margin))
}

// NextDeadline is when the actuator must deliver a Tick (zero: no timer).
func (m Machine) NextDeadline() time.Time {
	t := m.timer
	if m.deferred && (t.IsZero() || m.restoreUntil.Before(t)) {
		t = m.restoreUntil
	}
	if (m.role == RoleOwner || m.grant.Epoch != 0) && !m.deadline.IsZero() && m.role != RoleDemoting {
		guard := m.deadline.Add(-m.cfg.DemoteBudget)
		if t.IsZero() || guard.Before(t) {
			t = guard
		}
	}
	return t
}

// Step applies one event at now.
func (m Machine) Step(ev Event, now time.Time) (Machine, []Action) {
	var out []Action
	switch ev := ev.(type) {
	case SessionUp:
		m.session, m.deadline = true, ev.Deadline
		wasFault := m.role == RoleFault
		if wasFault {
			out = m.to(RoleBackup, "quorum session established", out)
		}
		if m.quorumFault && m.cfg.RestoreWindow > 0 {
			m.restoreUntil = now.Add(m.cfg.RestoreWindow)
		}
		if m.quorumFault {
			// Whatever the role: a new session can come while the old
			// grant is still being demoted, and VRRP must not stay in
			// fault after it (it would never be master again).
			m.quorumFault = false
			out = append(out, VRRPFault{On: false})
		}
		if wasFault && m.vrrp && !m.stopping {
			// VRRP became master before the session was up.
			out = m.to(RoleCandidate, "VRRP master", out)
			out = m.acquire(now, out)
		}
	case Renewed:
		if ev.Deadline.After(m.deadline) {
			m.deadline = ev.Deadline
		}
		if m.role == RoleOwner {
			out = append(out, RefreshFence{Epoch: m.grant.Epoch, Deadline: m.deadline})
		}
	case SessionLost:
		m.session, m.deadline = false, time.Time{}
		// VRRP is put in fault: it leaves master (and comes back through
		// backup once the fault is cleared).
		m.vrrp, m.quorumFault, m.deferred = false, true, false
		out = append(out, VRRPFault{On: true})
		out = m.demote("quorum session lost: "+errString(ev.Err), false, now, out)
		if m.role != RoleDemoting && m.role != RoleStopped {
			out = m.to(RoleFault, "quorum session lost", out)
		}
	case VRRPMaster:
		m.vrrp = true
		if m.role == RoleBackup && m.session && !m.stopping {
			if ev.HigherMember && m.restoring(now) {
				// After a quorum fault every node's VRRP starts from its own
				// session's return, so the first back, not the best, would
				// be master first and be preempted in turn: one ownership
				// change per node. The better member is alive (registered
				// with a live session); its adverts end this, or the window
				// does (its health may hold it in fault).
				m.deferred = true
				out = append(out, Note{Detail: fmt.Sprintf("VRRP master after a quorum fault: waiting up to %v for a registered member of higher priority", m.restoreUntil.Sub(now).Round(time.Millisecond))})
				break
			}
			out = m.to(RoleCandidate, "VRRP master", out)
			out = m.acquire(now, out)
		}
	case VRRPNotMaster:
		m.vrrp, m.deferred = false, false
		switch {
		case m.role == RoleOwner:
			out = m.demote("VRRP left master: "+ev.Reason, true, now, out)
		case m.role == RoleCandidate && m.stage != StageHandover:
			out = m.demote("VRRP left master while candidate: "+ev.Reason, true, now, out)
		}
	case VRRPFaulted:
		m.faulted = ev.On
		if ev.On && m.role == RoleCandidate && m.stage == StageHandover {
			out = m.to(RoleBackup, "VRRP fault", out)
		}
	case KeyDeleted:
		switch {
		case m.role == RoleOwner && ev.Epoch == m.grant.Epoch:
			out = append(out, Alarm{Kind: "lease-deleted", Detail: fmt.Sprintf("our key (epoch %d) was deleted at the quorum", ev.Epoch)})
			out = m.demote("our lease key was deleted", false, now, out)
		case m.role == RoleCandidate && m.stage == StageIdle:
			// VRRP master, retrying while another held the key: acquire
			// after the skew, as a backup's handover does, so that a better
			// node taking the key at once (the best member in its restore
			// window) comes first.
			m.timer = now.Add(m.cfg.HandoverDelay)
		case m.role == RoleBackup && m.session && !m.stopping && !m.faulted && !ev.MasterHeard &&
			(ev.Epoch == 0 || ev.Epoch != m.released) && !(m.restoring(now) && ev.HigherMember):
			// Not for our own release: we let go for a reason. Not while
			// VRRP hears another master: the owner released for it (a
			// preemption), and racing it would add ownership changes. In
			// the restore window, only when no better member is registered:
			// the key expired with the fault, nobody handed it over, and
			// the best node takes it, at once, ahead of the others' skew
			// (a node back from a link flap whose old session expired
			// behind it: the others, outside any window, race it).
			out = m.to(RoleCandidate, "the owner released the lease", out)
			delay := m.cfg.HandoverDelay
			if m.restoring(now) {
				delay = 0
			}
			m.stage, m.timer = StageHandover, now.Add(delay)
			if m.cfg.Probe {
				m.early, m.earlyAt = earlyRunning, now
				out = append(out, Probe{})
			}
		}
	case KeyPut:
		if m.role == RoleOwner && ev.Epoch != m.grant.Epoch && ev.Epoch != 0 {
			out = append(out, Alarm{Kind: "lease-conflict", Detail: fmt.Sprintf("key put by %s at epoch %d while we own epoch %d", ev.Holder, ev.Epoch, m.grant.Epoch)})
			out = m.demote("someone else holds our lease key", false, now, out)
		}
		if m.role == RoleCandidate && m.stage == StageHandover && ev.Epoch != m.grant.Epoch {
			// Another candidate won the handover race.
			out = m.to(RoleBackup, "another node acquired: "+ev.Holder, out)
		}
	case Acquired:
		if m.role != RoleCandidate || m.stage != StageAcquire {
			// Stale: we no longer want it.
			m.acquiredAt = now
			out = m.yield(now, out)
			out = append(out, Release{Grant: ev.Grant})
			break
		}
		m.grant, m.prev = ev.Grant, [2]string{ev.PrevHolder, ev.PrevAddr}
		m.acquiredAt = now
		if !m.vrrp {
			// The handover path: make VRRP master so adverts go out.
			out = append(out, ClaimVRRP{})
		}
		m.stage, m.timer = StageHooks, now.Add(m.cfg.StepTimeout)
		out = append(out, RunHooks{Grant: m.grant, PrevHolder: ev.PrevHolder, PrevAddr: ev.PrevAddr})
	case AcquireFailed:
		if m.role == RoleCandidate && m.stage == StageAcquire {
			m.early = earlyNone // a retry comes later: probe afresh then
			if !m.vrrp {
				out = m.to(RoleBackup, "handover lost: "+holderOrErr(ev.Holder, ev.Err), out)
				break
			}
			m.stage, m.timer = StageIdle, now.Add(m.cfg.RetryInterval)
		}
	case HooksDone:
		if !m.current(RoleCandidate, StageHooks, ev.Epoch) {
			break
		}
		if ev.Err != nil {
			out = append(out, Alarm{Kind: "fence-hook-failed", Detail: ev.Err.Error()})
			m.stepFailed(now)
			out = append(out, Release{Grant: m.grant})
			m.grant = quorum.Grant{}
			m.stage, m.timer = StageIdle, now.Add(m.cfg.RetryInterval)
			break
		}
		if m.cfg.Probe {
			e := m.early
			m.early = earlyNone
			if ev.Ran || now.Sub(m.earlyAt) > m.cfg.StepTimeout {
				e = earlyNone // hooks changed things, or too old to trust
			}
			switch e {
			case earlyClean:
				out = m.promote(now, out)
			case earlyRunning:
				// Wait for the early probe's result.
				m.early = earlyRunning
				m.stage, m.timer = StageProbe, now.Add(m.cfg.StepTimeout)
			default:
				m.stage, m.timer = StageProbe, now.Add(m.cfg.StepTimeout)
				out = append(out, Probe{Epoch: m.grant.Epoch})
			}
			break
		}
		out = m.promote(now, out)
	case ProbeDone:
		if ev.Epoch == 0 {
			out = m.earlyDone(ev, now, out)
			break
		}
		if !m.current(RoleCandidate, StageProbe, ev.Epoch) {
			break
		}
		if ev.Conflict != "" || ev.Err != nil {
			detail := "the VIP answered from " + ev.Conflict
			if ev.Err != nil {
				detail = "probe failed: " + ev.Err.Error()
			}
			out = append(out, Alarm{Kind: "stale-holder", Detail: detail})
			// Fence the stale holder again, then probe again.
			m.stage, m.timer = StageHooks, now.Add(m.cfg.StepTimeout)
			out = append(out, RunHooks{Grant: m.grant, PrevHolder: m.prev[0], PrevAddr: m.prev[1]})
			break
		}
		out = m.promote(now, out)
	case Promoted:
		if !m.current(RoleCandidate, StagePromote, ev.Epoch) {
			break
		}
		if ev.Err != nil {
			out = m.demoteFailed("promoting resources failed: "+ev.Err.Error(), now, out)
			break
		}
		m.stage, m.timer = StageVIP, now.Add(m.cfg.StepTimeout)
		out = append(out, AddVIP{Epoch: m.grant.Epoch, Deadline: m.deadline})
	case VIPUp:
		if !m.current(RoleCandidate, StageVIP, ev.Epoch) {
			break
		}
		if ev.Err != nil {
			out = m.demoteFailed("adding the VIP failed: "+ev.Err.Error(), now, out)
			break
		}
		m.stage, m.timer = StageIdle, time.Time{}
		m.failures = 0
		out = m.to(RoleOwner, fmt.Sprintf("lease epoch %d held, VIP up", m.grant.Epoch), out)
		out = append(out, Announce{Epoch: m.grant.Epoch})
	case Demoted:
		if m.role != RoleDemoting {
			break
		}
		m.grant, m.timer = quorum.Grant{}, time.Time{}
		switch {
		case m.stopping:
			out = m.to(RoleStopped, "shut down", out)
		case !m.session:
			out = m.to(RoleFault, "no quorum session", out)
		case m.vrrp:
			out = m.to(RoleCandidate, "VRRP still master: retrying", out)
			m.stage, m.timer = StageIdle, now.Add(m.cfg.RetryInterval)
		default:
			out = m.to(RoleBackup, "demoted", out)
		}
	case FenceFailed:
		if m.role == RoleOwner {
			out = append(out, Alarm{Kind: "fence-failed", Detail: errString(ev.Err)})
			out = m.demote("kernel fence refresh failed: "+errString(ev.Err), true, now, out)
		}
	case Shutdown:
		m.stopping = true
		out = m.demote("shutdown", true, now, out)
		if m.role != RoleDemoting {
			out = m.to(RoleStopped, "shut down", out)
		}
	case Tick:
		out = m.tick(now, out)
	}
	return m, out
}

// earlyDone takes the early probe's result. A conflict is not acted on:
// the probe after the grant decides (and raises stale-holder).
func (m *Machine) earlyDone(ev ProbeDone, now time.Time, out []Action) []Action {
	if m.early != earlyRunning || m.role != RoleCandidate {
		return out
	}
	clean := ev.Conflict == "" && ev.Err == nil
	if m.stage != StageProbe {
		if clean {
			m.early = earlyClean
		} else {
			m.early = earlyNone
		}
		return out
	}
	// The grant is waiting for it.
	m.early = earlyNone
	if clean {
		return m.promote(now, out)
	}
	m.timer = now.Add(m.cfg.StepTimeout)
	return append(out, Probe{Epoch: m.grant.Epoch})
}

// current reports whether a completion belongs to the step in progress.
func (m *Machine) current(r Role, s Stage, epoch uint64) bool {
	return m.role == r && m.stage == s && epoch == m.grant.Epoch && epoch != 0
}

// restoring reports whether now is inside the restore window.
func (m *Machine) restoring(now time.Time) bool { return now.Before(m.restoreUntil) }

func (m *Machine) tick(now time.Time, out []Action) []Action {
	if m.deferred && !m.restoring(now) {
		m.deferred = false
		if m.role == RoleBackup && m.vrrp && m.session && !m.stopping {
			out = m.to(RoleCandidate, "VRRP master: the restore window ended without the member of higher priority taking over", out)
			return m.acquire(now, out)
		}
	}
	// The deadline guard: the session should have said so, but never act
	// as owner inside the demote budget.
	if (m.role == RoleOwner || m.grant.Epoch != 0) && m.role != RoleDemoting && !m.deadline.IsZero() &&
		!now.Before(m.deadline.Add(-m.cfg.DemoteBudget)) {
		return m.demote("local deadline near without renewal", false, now, out)
	}
	if m.timer.IsZero() || now.Before(m.timer) {
		return out
	}
	m.timer = time.Time{}
	if m.role != RoleCandidate {
		return out
	}
	switch m.stage {
	case StageIdle, StageHandover:
		return m.acquire(now, out)
	case StageAcquire:
		// The acquire request itself is time-boxed by the backend; no
		// grant yet, so nothing to undo.
		m.stage, m.timer = StageIdle, now.Add(m.cfg.RetryInterval)
		return out
	default:
		return m.demoteFailed(fmt.Sprintf("promotion step %s timed out", m.stage), now, out)
	}
}

func (m *Machine) acquire(now time.Time, out []Action) []Action {
	if !m.session {
		return out
	}
	if !now.Before(m.deadline) {
		// Resumed after a freeze past the deadline: the session is not
		// known to be live. Ask nothing of the quorum until a renewal or
		// the session's loss says which; look again after the retry
		// interval.
		m.stage, m.timer = StageIdle, now.Add(m.cfg.RetryInterval)
		return out
	}
	if now.Before(m.holdUntil) {
		// The storm guard: wait (a handover stays a handover, so that
		// another node's acquire still sends this one back).
		if m.stage != StageHandover {
			m.stage = StageIdle
		}
		m.timer = m.holdUntil
		return out
	}
	m.stage, m.timer = StageAcquire, now.Add(m.cfg.StepTimeout)
	return append(out, Acquire{})
}

// yield counts a grant this node gives up itself (doc.go "Storm bound"):
// one held for less than FlapWindow is a flap, and flaps beyond FlapLimit
// hold the next acquire back, exponentially, capped. Shutdown is not a
// flap.
func (m *Machine) yield(now time.Time, out []Action) []Action {
	if m.stopping {
		return out
	}
	if now.Sub(m.acquiredAt) >= m.cfg.FlapWindow {
		m.flaps = 0
		return out
	}
	if !m.lastFlap.IsZero() && now.Sub(m.lastFlap) > 2*m.cfg.FlapBackoffMax {
		m.flaps = 0
	}
	m.flaps++
	m.lastFlap = now
	if m.flaps <= m.cfg.FlapLimit {
		return out
	}
	b := m.cfg.FlapBackoffMax
	if k := m.flaps - m.cfg.FlapLimit - 1; k < 30 {
		b = min(m.cfg.FlapBackoff<<k, m.cfg.FlapBackoffMax)
	}
	m.holdUntil = now.Add(b)
	return append(out, Alarm{Kind: "acquire-backoff", Detail: fmt.Sprintf(
		"%d claim/yield cycles in a row, each grant held under %v: no acquire for %v", m.flaps, m.cfg.FlapWindow, b)})
}

func (m *Machine) promote(now time.Time, out []Action) []Action {
	m.stage, m.timer = StagePromote, now.Add(m.cfg.StepTimeout)
	return append(out, Promote{Epoch: m.grant.Epoch})
}

// stepFailed paces the acquires after a grant given up because a step of
// the promotion failed (a peer-fence hook, the resources, the VIP, a step's
// timeout). It is not a flap: the resource refused (a DRBD disk marked
// outdated refuses until it has resynced), which says nothing of VRRP, and
// counting it would hold a later failover back for the guard's backoff
// (make bench-drbd: kill -9 right after a partition, 11 s instead of 5).
// The first FlapLimit failures in a row are retried at the retry interval;
// after them, one acquire per FlapBackoff, without growth. The count
// restarts when the node becomes owner, or after FlapBackoffMax without a
// failure.
func (m *Machine) stepFailed(now time.Time) {
	if m.stopping {
		return
	}
	if !m.lastFailure.IsZero() && now.Sub(m.lastFailure) > m.cfg.FlapBackoffMax {
		m.failures = 0
	}
	m.failures++
	m.lastFailure = now
	if m.failures > m.cfg.FlapLimit {
		m.holdUntil = later(m.holdUntil, now.Add(m.cfg.FlapBackoff))
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// demoteFailed demotes and releases after a failed promotion step
// (stepFailed, not a flap).
func (m *Machine) demoteFailed(reason string, now time.Time, out []Action) []Action {
	return m.give(reason, true, false, now, out)
}

// demote starts the demotion pipeline if anything is held; release says
// whether to delete the key (not when the session is gone: it cannot, and
// the lease expires). A grant released is counted by the storm guard.
func (m *Machine) demote(reason string, release bool, now time.Time, out []Action) []Action {
	return m.give(reason, release, true, now, out)
}

// give is demote; flap says whether a grant released counts as a flap
// (yield) or as a failed step (stepFailed).
func (m *Machine) give(reason string, release, flap bool, now time.Time, out []Action) []Action {
	switch m.role {
	case RoleDemoting, RoleStopped:
		return out
	case RoleOwner, RoleCandidate:
		if m.grant.Epoch == 0 {
			// Nothing acquired yet: just step back.
			m.stage, m.timer = StageIdle, time.Time{}
			next := RoleBackup
			if !m.session {
				next = RoleFault
			}
			if m.stopping {
				next = RoleStopped
			}
			return m.to(next, reason, out)
		}
		out = m.to(RoleDemoting, reason, out)
		m.stage, m.timer = StageIdle, time.Time{}
		if release && m.session {
			m.released = m.grant.Epoch
			if flap {
				out = m.yield(now, out)
			} else {
				m.stepFailed(now)
			}
		}
		return append(out, Demote{Grant: m.grant, Release: release && m.session, Deadline: m.deadline, Reason: reason})
	}
	return out
}

func (m *Machine) to(r Role, reason string, out []Action) []Action {
	if m.role == r {
		return out
	}
	out = append(out, Transition{From: m.role, To: r, Reason: reason})
	m.role = r
	if r != RoleCandidate {
		m.stage = StageIdle
		m.early = earlyNone
	}
	return out
}

func errString(err error) string {
	if err == nil {
		return "unknown"
	}
	return err.Error()
}

func holderOrErr(h string, err error) string {
	if err != nil {
		return err.Error()
	}
	return "held by " + h
}
