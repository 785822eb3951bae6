package vrrp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// This file holds the pure VRRP state machine of RFC 3768 §6 (VRRPv2) and
// RFC 5798/9568 §6 (VRRPv3). Where the RFCs are silent or keepalived
// deliberately differs, the machine follows keepalived 2.x, because keepalived
// is the peer it must converge with:
//
//   - a master that hears a lower priority advert answers at once with its
//     own advert (keepalived "forcing new election"), unless
//     Config.LowerPrioNoAdvert;
//   - "state MASTER" below priority 255 does not take over at once: it waits
//     one advert interval plus the minimum skew (keepalived vrrp_init_state);
//   - preempt_delay starts at startup and again at the first lower priority
//     advert after it was stopped by a higher one;
//   - skew is computed in microseconds with keepalived's integer arithmetic
//     and from the effective priority;
//   - two address owners (255) seen by one another: the local one drops to
//     254.
//
// The machine does no IO and never reads the clock: time is the now argument
// of Step, and NextDeadline says when the caller must deliver the next Tick.

// State is the RFC state of one virtual router, plus Fault for tracked
// failures (keepalived's FAULT).
type State uint8

// The states. The zero value is StateInit.
const (
	StateInit State = iota
	StateBackup
	StateMaster
	StateFault
)

func (s State) String() string {
	switch s {
	case StateInit:
		return "init"
	case StateBackup:
		return "backup"
	case StateMaster:
		return "master"
	case StateFault:
		return "fault"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Special priorities (RFC 3768 §5.3.4).
const (
	// PriorityRelease in an advert means the master stops being master.
	PriorityRelease uint8 = 0
	// PriorityOwner is the priority of the router that owns the addresses.
	PriorityOwner uint8 = 255
)

// Limits of the configuration.
const (
	// MaxPreemptDelay is keepalived's upper bound for preempt_delay.
	MaxPreemptDelay = 1000 * time.Second
	// MaxAdvertIntervalV2 is the largest VRRPv2 interval (8-bit seconds).
	MaxAdvertIntervalV2 = 255 * time.Second
	// MaxAdvertIntervalV3 is the largest VRRPv3 interval (12-bit centiseconds).
	MaxAdvertIntervalV3 = 4095 * centisecond
)

const centisecond = 10 * time.Millisecond

// ErrMachineConfig is wrapped by every error of Config.Validate.
var ErrMachineConfig = errors.New("vrrp: invalid state machine config")

// Config is what the state machine needs of one virtual router instance.
type Config struct {
	VRID     uint8 // 1..255
	Priority uint8 // 1..255; 255 = address owner
	Version  uint8 // 2 or 3
	// AdvertInterval: v2 whole seconds (1s..255s); v3 multiples of 10ms
	// (10ms..40.95s).
	AdvertInterval time.Duration
	// Preempt: a higher priority backup takes over from a lower priority
	// master (keepalived default; false is "nopreempt").
	Preempt bool
	// PreemptDelay: after startup (or after the first lower priority advert
	// following a higher priority one) a backup waits this long before it
	// preempts. 0..MaxPreemptDelay.
	PreemptDelay time.Duration
	// InitialState is keepalived's "state": StateMaster or StateBackup.
	// StateInit means StateBackup.
	InitialState State
	// PrimaryIP is our advert source address: the tie-break on equal
	// priority (the higher address wins).
	PrimaryIP netip.Addr
	// AcceptMode is carried for the caller (RFC 5798 Accept_Mode); the
	// machine does not use it.
	AcceptMode bool
	// LowerPrioNoAdvert: a master does not answer a lower priority advert
	// with an immediate advert (keepalived lower_prio_no_advert; the RFC
	// behaviour).
	LowerPrioNoAdvert bool
}

// Validate checks the ranges and cross-field rules. Combinations keepalived
// accepts with a warning are not errors here: see Normalize.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMachineConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.VRID == 0:
		return bad("vrid 0 (valid 1..255)")
	case c.Priority == 0:
		return bad("priority 0 (valid 1..255)")
	case c.Version != 2 && c.Version != 3:
		return bad("version %d (valid 2, 3)", c.Version)
	case !c.PrimaryIP.IsValid():
		return bad("no primary IP")
	case c.PreemptDelay < 0 || c.PreemptDelay > MaxPreemptDelay:
		return bad("preempt delay %v (valid 0..%v)", c.PreemptDelay, MaxPreemptDelay)
	case c.InitialState != StateInit && c.InitialState != StateBackup && c.InitialState != StateMaster:
		return bad("initial state %v (valid backup, master)", c.InitialState)
	}
	if c.Version == 2 {
		if c.AdvertInterval < time.Second || c.AdvertInterval > MaxAdvertIntervalV2 ||
			c.AdvertInterval%time.Second != 0 {
			return bad("advert interval %v: VRRPv2 needs whole seconds 1s..255s", c.AdvertInterval)
		}
		if c.PrimaryIP.Unmap().Is6() {
			return bad("VRRPv2 is IPv4 only, primary IP %v", c.PrimaryIP)
		}
	} else if c.AdvertInterval < centisecond || c.AdvertInterval > MaxAdvertIntervalV3 ||
		c.AdvertInterval%centisecond != 0 {
		return bad("advert interval %v: VRRPv3 needs multiples of 10ms, 10ms..40.95s", c.AdvertInterval)
	}
	return nil
}

// Normalize applies keepalived's silent or warned adjustments and returns
// the config the machine runs with and one warning per adjustment:
//   - priority 255 always preempts and starts as master;
//   - initial state MASTER clears nopreempt and preempt_delay;
//   - nopreempt clears preempt_delay;
//   - initial state Init becomes Backup.
func (c Config) Normalize() (Config, []string) {
	var warn []string
	c.PrimaryIP = c.PrimaryIP.Unmap()
	if c.InitialState == StateInit {
		c.InitialState = StateBackup
	}
	if c.Priority == PriorityOwner {
		if !c.Preempt {
			warn = append(warn, "priority 255 (address owner) always preempts: nopreempt cleared")
			c.Preempt = true
		}
		c.InitialState = StateMaster
	}
	if c.InitialState == StateMaster {
		if !c.Preempt {
			warn = append(warn, "nopreempt does not work with initial state MASTER: cleared")
			c.Preempt = true
		}
		if c.PreemptDelay != 0 {
			warn = append(warn, "preempt delay does not work with initial state MASTER: cleared")
			c.PreemptDelay = 0
		}
	}
	if !c.Preempt && c.PreemptDelay != 0 {
		warn = append(warn, "preempt delay is meaningless with nopreempt: cleared")
		c.PreemptDelay = 0
	}
	return c, warn
}

// skewMicros is keepalived's VRRP_TIMER_SKEW_CALC: factor is 256-priority
// (or 1 for the minimum skew). v2 ignores interval (RFC 3768: seconds); v3
// uses whole centiseconds of interval.
func skewMicros(version uint8, factor int64, interval time.Duration) time.Duration {
	if version == 3 {
		centis := int64(interval / centisecond)
		return time.Duration(factor*centis*625/16) * time.Microsecond
	}
	return time.Duration(factor*1_000_000/256) * time.Microsecond
}

// SkewTime is Skew_Time: v2 (256-prio)/256 s; v3 (256-prio)*interval/256
// with interval in centiseconds. Both are computed in whole microseconds
// with keepalived's integer arithmetic. For v3, interval is the
// Master_Adver_Interval.
func SkewTime(version uint8, prio uint8, interval time.Duration) time.Duration {
	return skewMicros(version, 256-int64(prio), interval)
}

// MasterDownInterval is 3*interval + SkewTime: how long a backup waits
// without adverts before it becomes master.
func MasterDownInterval(version uint8, prio uint8, interval time.Duration) time.Duration {
	return 3*interval + SkewTime(version, prio, interval)
}

// Event is an input of Machine.Step: Startup, Shutdown, Tick,
// AdvertReceived, PriorityChanged or Fault.
type Event interface{ vrrpEvent() }

// Startup starts the instance (RFC "Startup event"): to Master at once for
// the address owner, else Backup with the down timer running, or Fault if a
// fault is pending.
type Startup struct{}

// Shutdown stops the instance (RFC "Shutdown event"): a master sends a
// priority 0 advert; every state goes to Init.
type Shutdown struct{}

// Tick tells the machine that time has reached now: the Master_Down timer or
// the Adver timer may fire. Deliver it at NextDeadline; early or extra ticks
// are harmless.
type Tick struct{}

// AdvertReceived is a valid advert for our VRID (already checked by the
// codec: version, auth, TTL, v2 interval).
type AdvertReceived struct {
	Priority uint8
	Src      netip.Addr
	// Interval is the advertised interval; v3 backups learn it as
	// Master_Adver_Interval. 0 means unknown: keep the current one.
	Interval time.Duration
}

// PriorityChanged sets the effective priority (base priority plus track
// weights). It is clamped to 1..254 and ignored by an address owner.
type PriorityChanged struct{ Priority uint8 }

// Fault reports the aggregated health of tracked interfaces and scripts: On
// enters Fault (no adverts, addresses released), off returns to Backup (or
// Master for the address owner).
type Fault struct{ On bool }

// Claim makes a Backup master at once: the quorum lease says this node owns
// the group (it acquired after the owner released), so waiting for the
// master-down timer would only leave the group without adverts. Ignored in
// other states.
type Claim struct{}

func (Startup) vrrpEvent()         {}
func (Shutdown) vrrpEvent()        {}
func (Tick) vrrpEvent()            {}
func (AdvertReceived) vrrpEvent()  {}
func (PriorityChanged) vrrpEvent() {}
func (Fault) vrrpEvent()           {}
func (Claim) vrrpEvent()           {}

// Action is an output of Machine.Step, to be performed in order:
// Transition, SendAdvert, BecomeMaster, BecomeBackup, BecomeFault,
// BecomeInit or MasterRxLowerPrio.
type Action interface{ vrrpAction() }

// Transition records a state change, for logs and notify scripts. It comes
// first among the actions of the step that changed the state.
type Transition struct {
	From, To State
	Reason   string
}

// SendAdvert: send one advert now with this priority (0 = release).
type SendAdvert struct{ Priority uint8 }

// BecomeMaster: add the virtual addresses and announce them (GARP/NA).
type BecomeMaster struct{}

// BecomeBackup: remove the virtual addresses (if held).
type BecomeBackup struct{}

// BecomeFault: remove the virtual addresses (if held); no adverts follow.
type BecomeFault struct{}

// BecomeInit: the instance stopped; remove the virtual addresses (if held).
type BecomeInit struct{}

// MasterRxLowerPrio: as master we heard a lower priority advert (another
// node thinks it is master). keepalived refreshes ARP caches
// (garp_lower_prio_repeat) and runs notify_master_rx_lower_pri here.
type MasterRxLowerPrio struct {
	Src      netip.Addr
	Priority uint8
}

func (Transition) vrrpAction()        {}
func (SendAdvert) vrrpAction()        {}
func (BecomeMaster) vrrpAction()      {}
func (BecomeBackup) vrrpAction()      {}
func (BecomeFault) vrrpAction()       {}
func (BecomeInit) vrrpAction()        {}
func (MasterRxLowerPrio) vrrpAction() {}

// Machine is the state of one virtual router. It is a value: Step returns
// the next one and leaves the receiver unchanged.
type Machine struct {
	cfg   Config
	state State
	base  uint8 // configured priority (254 after an owner conflict)
	prio  uint8 // effective priority
	mai   time.Duration

	masterDownAt time.Time // Backup: Master_Down timer; zero when not running
	advertAt     time.Time // Master: Adver timer; zero when not running

	preemptArmed bool      // preempt delay running or elapsed
	preemptAt    time.Time // when preempting becomes allowed

	faulted bool // last Fault event was On

	masterSrc  netip.Addr // last master heard (Backup)
	masterPrio uint8
}

// New returns a machine in StateInit. cfg should have passed Validate; New
// applies Normalize.
func New(cfg Config) Machine {
	cfg, _ = cfg.Normalize()
	if cfg.AdvertInterval <= 0 {
		cfg.AdvertInterval = time.Second
	}
	return Machine{cfg: cfg, base: cfg.Priority, prio: cfg.Priority, mai: cfg.AdvertInterval}
}

// Config returns the normalized configuration.
func (m Machine) Config() Config { return m.cfg }

// State returns the current state.
func (m Machine) State() State { return m.state }

// Priority returns the effective priority that adverts carry.
func (m Machine) Priority() uint8 { return m.prio }

// MasterAdverInterval returns the interval the down timer is computed from:
// the configured one, or in v3 the one learnt from the master.
func (m Machine) MasterAdverInterval() time.Duration { return m.mai }

// Master returns the address and priority of the master as far as the
// machine knows: the last advert heard as Backup, ourselves as Master
// (invalid address if none yet).
func (m Machine) Master() (netip.Addr, uint8) { return m.masterSrc, m.masterPrio }

// MasterHeard reports whether, as Backup at now, the machine hears another
// router as master: its last advert carried a non-zero priority and the
// Master_Down timer has not run out. A lease-mode node uses it to leave a
// released lease to that router, which is VRRP master and acquires itself
// (DESIGN.md "The ownership protocol"); if it falls silent, the timer makes
// this router master as usual.
func (m Machine) MasterHeard(now time.Time) bool {
	return m.state == StateBackup && m.masterSrc.IsValid() && m.masterPrio != PriorityRelease &&
		!m.masterDownAt.IsZero() && now.Before(m.masterDownAt)
}

// NextDeadline returns when the caller must deliver the next Tick: the
// Master_Down timer in Backup, the Adver timer in Master, zero (no timer)
// in Init and Fault.
func (m Machine) NextDeadline() time.Time {
	switch m.state {
	case StateBackup:
		return m.masterDownAt
	case StateMaster:
		return m.advertAt
	}
	return time.Time{}
}

// Step applies one event at time now and returns the next machine and the
// actions to perform, in order. It does no IO.
func (m Machine) Step(ev Event, now time.Time) (Machine, []Action) {
	var out []Action
	switch ev := ev.(type) {
	case Startup:
		out = m.startup(now, out)
	case Shutdown:
		out = m.shutdown(out)
	case Tick:
		out = m.tick(now, out)
	case AdvertReceived:
		out = m.advert(ev, now, out)
	case PriorityChanged:
		m.setPriority(ev.Priority)
	case Fault:
		out = m.fault(ev.On, now, out)
	case Claim:
		if m.state == StateBackup {
			out = m.becomeMaster(now, "claim: this node holds the group's lease", out)
		}
	}
	return m, out
}

func (m *Machine) skew() time.Duration { return SkewTime(m.cfg.Version, m.prio, m.mai) }

func (m *Machine) downInterval() time.Duration { return 3*m.mai + m.skew() }

func (m *Machine) startup(now time.Time, out []Action) []Action {
	if m.state != StateInit {
		return out
	}
	m.mai = m.cfg.AdvertInterval
	m.masterSrc, m.masterPrio = netip.Addr{}, 0
	m.preemptArmed = m.cfg.PreemptDelay > 0
	m.preemptAt = now.Add(m.cfg.PreemptDelay)
	switch {
	case m.faulted:
		return m.enterFault("fault pending at startup", out)
	case m.base == PriorityOwner:
		return m.becomeMaster(now, "address owner (priority 255) at startup", out)
	case m.cfg.InitialState == StateMaster:
		// keepalived: a wanted MASTER waits one interval plus the minimum
		// skew, so an existing higher master can still be heard.
		return m.becomeBackup(now, m.mai+skewMicros(m.cfg.Version, 1, m.mai), "startup (initial state master)", out)
	default:
		return m.becomeBackup(now, m.downInterval(), "startup", out)
	}
}

func (m *Machine) shutdown(out []Action) []Action {
	if m.state == StateInit {
		return out
	}
	from := m.state
	m.state = StateInit
	m.masterDownAt, m.advertAt = time.Time{}, time.Time{}
	out = append(out, Transition{From: from, To: StateInit, Reason: "shutdown"})
	if from == StateMaster {
		out = append(out, SendAdvert{Priority: PriorityRelease})
	}
	return append(out, BecomeInit{})
}

func (m *Machine) tick(now time.Time, out []Action) []Action {
	switch m.state {
	case StateBackup:
		if !m.masterDownAt.IsZero() && !now.Before(m.masterDownAt) {
			return m.becomeMaster(now, "master down timer expired", out)
		}
	case StateMaster:
		if !now.Before(m.advertAt) {
			m.advertAt = now.Add(m.cfg.AdvertInterval)
			return append(out, SendAdvert{Priority: m.prio})
		}
	}
	return out
}

func (m *Machine) learnInterval(iv time.Duration) {
	if m.cfg.Version == 3 && iv > 0 {
		m.mai = iv
	}
}

func (m *Machine) advert(ev AdvertReceived, now time.Time, out []Action) []Action {
	src := ev.Src.Unmap()
	switch m.state {
	case StateBackup:
		switch {
		case ev.Priority == PriorityRelease:
			// RFC: the master released: take over after Skew_Time.
			m.masterDownAt = now.Add(m.skew())
			m.masterSrc, m.masterPrio = src, PriorityRelease
		case !m.cfg.Preempt || ev.Priority >= m.prio || m.preemptHeld(now):
			m.learnInterval(ev.Interval)
			m.masterDownAt = now.Add(m.downInterval())
			m.masterSrc, m.masterPrio = src, ev.Priority
			if m.cfg.PreemptDelay > 0 {
				if ev.Priority >= m.prio {
					m.preemptArmed = false
				} else if !m.preemptArmed {
					m.preemptArmed = true
					m.preemptAt = now.Add(m.cfg.PreemptDelay)
				}
			}
		default:
			// Lower priority and preempting: discard, the down timer
			// keeps running and we take over when it fires.
			m.masterSrc, m.masterPrio = src, ev.Priority
		}
	case StateMaster:
		if ev.Priority == PriorityRelease {
			// RFC: answer at once so backups do not take over.
			return append(out, SendAdvert{Priority: m.prio})
		}
		cmp := src.Compare(m.cfg.PrimaryIP)
		if ev.Priority == m.prio {
			if cmp == 0 {
				return out // our own advert looped back
			}
			if m.prio == PriorityOwner {
				// Two address owners: keepalived lowers the local one.
				m.base, m.prio = PriorityOwner-1, PriorityOwner-1
			}
		}
		if ev.Priority < m.prio || (ev.Priority == m.prio && cmp < 0) {
			if !m.cfg.LowerPrioNoAdvert {
				out = append(out, SendAdvert{Priority: m.prio})
			}
			return append(out, MasterRxLowerPrio{Src: src, Priority: ev.Priority})
		}
		m.learnInterval(ev.Interval)
		m.masterSrc, m.masterPrio = src, ev.Priority
		reason := fmt.Sprintf("higher priority advert from %v (priority %d, ours %d)", src, ev.Priority, m.prio)
		if ev.Priority == m.prio {
			reason = fmt.Sprintf("equal priority %d advert from higher address %v", ev.Priority, src)
		}
		m.preemptArmed = false
		return m.becomeBackup(now, m.downInterval(), reason, out)
	}
	return out
}

// preemptHeld reports whether the preempt delay still forbids preempting.
// An unarmed delay holds too: the first lower priority advert arms it.
func (m *Machine) preemptHeld(now time.Time) bool {
	return m.cfg.PreemptDelay > 0 && (!m.preemptArmed || now.Before(m.preemptAt))
}

func (m *Machine) setPriority(p uint8) {
	if m.base == PriorityOwner {
		return
	}
	p = max(1, min(p, PriorityOwner-1))
	if p == m.prio {
		return
	}
	oldSkew := m.skew()
	m.prio = p
	if m.state == StateBackup && !m.masterDownAt.IsZero() {
		// The skew part of the running down timer follows the priority.
		m.masterDownAt = m.masterDownAt.Add(m.skew() - oldSkew)
	}
}

func (m *Machine) fault(on bool, now time.Time, out []Action) []Action {
	m.faulted = on
	switch {
	case on && (m.state == StateBackup || m.state == StateMaster):
		return m.enterFault("fault", out)
	case !on && m.state == StateFault:
		m.mai = m.cfg.AdvertInterval
		m.preemptArmed = false
		if m.base == PriorityOwner {
			return m.becomeMaster(now, "fault cleared (address owner)", out)
		}
		return m.becomeBackup(now, m.downInterval(), "fault cleared", out)
	}
	return out
}

func (m *Machine) enterFault(reason string, out []Action) []Action {
	from := m.state
	m.state = StateFault
	m.masterDownAt, m.advertAt = time.Time{}, time.Time{}
	out = append(out, Transition{From: from, To: StateFault, Reason: reason})
	if from == StateMaster {
		out = append(out, SendAdvert{Priority: PriorityRelease})
	}
	return append(out, BecomeFault{})
}

func (m *Machine) becomeMaster(now time.Time, reason string, out []Action) []Action {
	from := m.state
	m.state = StateMaster
	m.masterDownAt = time.Time{}
	m.advertAt = now.Add(m.cfg.AdvertInterval)
	m.masterSrc, m.masterPrio = m.cfg.PrimaryIP, m.prio
	// The advert goes first so a previous master drops the addresses
	// before our announcements (keepalived vrrp_state_master_tx).
	return append(out,
		Transition{From: from, To: StateMaster, Reason: reason},
		SendAdvert{Priority: m.prio},
		BecomeMaster{})
}

func (m *Machine) becomeBackup(now time.Time, down time.Duration, reason string, out []Action) []Action {
	from := m.state
	m.state = StateBackup
	m.advertAt = time.Time{}
	m.masterDownAt = now.Add(down)
	return append(out,
		Transition{From: from, To: StateBackup, Reason: reason},
		BecomeBackup{})
}
