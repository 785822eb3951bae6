package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Effects is what an instance does to the world when the state machine
// says master or not master. In quorum "none" mode it adds and removes the
// VIPs; the lease-gated node wraps it.
//
// Effects run on the instance's own Run goroutine, in the order the machine
// asked for them, never on the Mux's scheduler: a slow Up delays neither
// this instance's adverts nor other instances'.
type Effects interface {
	// Up: the machine became master. If it fails, the instance passes
	// through fault back to backup (and Down is called).
	Up(ctx context.Context) error
	// Down: the machine left master (backup, fault, stop). Idempotent.
	Down(ctx context.Context) error
}

// InstanceConfig is one vrrp_instance, resolved.
type InstanceConfig struct {
	Name    string
	Iface   string
	Machine Config
	Expect  Expect
	// Src is the advert source (unicast_src_ip or the interface default).
	Src netip.Addr
	// Peers: unicast peers; empty = multicast.
	Peers []netip.Addr
	// VIPs are carried in adverts and announced by GARP/NA.
	VIPs   []netip.Addr
	Encode EncodeOptions
	// GARP schedule on becoming master (keepalived's garp_master_*).
	GarpRepeat  int
	GarpDelay   time.Duration
	GarpRefresh time.Duration
	// HMACKey: if set, adverts carry an HMAC trailer (hmac.go) and adverts
	// without a valid, fresh one are dropped. leasehold nodes only.
	HMACKey []byte
	// LeaseGated: becoming master does not announce the VIPs; the owner of
	// the group's lease calls Announce once the VIPs are really up. A
	// lease-gated instance also consults its Gate (SetGate) before it
	// speaks.
	LeaseGated bool
}

// Gate says whether this node may speak for the group at an instant, on
// the monotonic clock. A lease-gated instance asks it right before each
// send, so a node that resumes after a freeze, a stall or a late timer
// says nothing until its lease state says it may: the decision is the
// lease's, not the VRRP state's. Implementations must be cheap and must not
// block or call back into the instance (it asks under its own lock).
type Gate interface {
	// MayAdvertise: an advert with a non-zero priority, or a claim of
	// mastership, may go out at now (the node's quorum session is live:
	// its local deadline is after now). Priority 0 adverts are never
	// gated.
	MayAdvertise(now time.Time) bool
	// MayAnnounce: a gratuitous ARP / unsolicited NA for the VIPs may go
	// out at now (the node owns the group's lease and its local deadline,
	// less the fence margin, is after now).
	MayAnnounce(now time.Time) bool
}

// AddrAnnouncer sends one gratuitous ARP or unsolicited NA per VIP
// (*Announcer on a real interface).
type AddrAnnouncer interface {
	Announce(vips []netip.Addr) error
}

// The retry of a failed announcement: after a link flap the first frames
// fail (ENETDOWN) and must not end the burst.
const (
	garpRetryMin = 10 * time.Millisecond
	garpRetryMax = 320 * time.Millisecond
)

// Status is a snapshot of an instance, for dumps and the status API.
type Status struct {
	Name        string            `json:"name"`
	Iface       string            `json:"interface"`
	VRID        uint8             `json:"vrid"`
	State       string            `json:"state"`
	Priority    uint8             `json:"priority"`
	Master      string            `json:"master,omitempty"`
	MasterPrio  uint8             `json:"master_priority,omitempty"`
	Since       time.Time         `json:"since"`
	AdvertsSent uint64            `json:"adverts_sent"`
	AdvertsRecv uint64            `json:"adverts_received"`
	Drops       map[string]uint64 `json:"drops,omitempty"`
	LastError   string            `json:"last_error,omitempty"`

	// AdvertsWithheld: adverts with a non-zero priority (and claims) the
	// gate refused: the node's quorum session was not live.
	AdvertsWithheld uint64 `json:"adverts_withheld,omitempty"`
	// GARPsSent counts announcements sent (one per VIP each),
	// GARPsWithheld those the gate refused (not owner, or the local
	// deadline passed: the schedule stops there), GARPFailures sends
	// that failed and were retried.
	GARPsSent     uint64 `json:"garps_sent"`
	GARPsWithheld uint64 `json:"garps_withheld,omitempty"`
	GARPFailures  uint64 `json:"garp_failures,omitempty"`
	// HMAC: adverts are authenticated (hmac.go).
	HMAC bool `json:"hmac,omitempty"`
	// Foreign: non-members heard on the VRID (lease mode), most recent
	// first; their adverts are dropped (DropForeignSpeaker).
	Foreign []ForeignSpeaker `json:"foreign_speakers,omitempty"`
}

// ErrNotAdded: Instance.Run was called before Mux.Add.
var ErrNotAdded = errors.New("vrrp: instance not added to a Mux")

// ErrRunning: Instance.Run was called while it already runs.
var ErrRunning = errors.New("vrrp: instance already running")

// Instance runs one virtual router. Its Machine is driven by the Mux it was
// added to: the Mux's scheduler delivers timers and sends adverts (batched
// with the other instances due at the same instant), its reader delivers
// adverts. Instance.Run performs the slow effects (Effects, OnTransition)
// in order on its own goroutine and shuts the instance down.
type Instance struct {
	cfg     InstanceConfig
	conn    Socket
	ann     AddrAnnouncer
	effects Effects
	log     *slog.Logger
	// OnTransition, if set, is called after every state change (notify
	// scripts, metrics), on the instance's Run goroutine in order with
	// Effects. It must not block for long.
	OnTransition func(Transition, uint8)

	// write sends one advert outside the Mux's batches (conn.WriteFrom;
	// replaced in tests).
	write func(b []byte, src, dst netip.Addr) error

	mux     *Mux // set by Mux.Add
	wake    chan struct{}
	drops   DropCounters
	foreign foreignTable
	counter Counter     // HMAC counters sent
	replay  ReplayGuard // HMAC counters accepted
	sent    atomic.Uint64
	recv    atomic.Uint64
	// withheld adverts; GARPs sent, withheld, failed
	advWithheld, garpSent, garpWithheld, garpFailed atomic.Uint64

	mu       sync.Mutex // guards everything below
	m        Machine
	running  bool   // between Startup and Shutdown (Run)
	gen      uint64 // transitions so far: tells a stale Up from a current one
	garpAt   time.Time
	garpLeft int
	jobs     []job
	advPrio  int // priority the cached adverts carry; -1: none cached
	advDsts  []netip.Addr
	advPkts  [][]byte // encoded advert per destination
	state    State
	since    time.Time
	lastErr  string
	faults   map[string]bool // fault sources (health, quorum, sync) now on

	gate Gate // nil: not gated (quorum none)
	// The announcement schedule: at garpAt send the rest of the current
	// burst (garpFrames announcements); garpLeft bursts are left including
	// it (after the last, garp_master_refresh if set). garpRetry is the
	// backoff of the next failed send.
	garpFrames int
	garpRetry  time.Duration
	withheld   bool // the gate refused the last advert (logged once per streak)
}

// job is one effect for the Run goroutine.
type job struct {
	kind jobKind
	tr   Transition
	prio uint8
	gen  uint64
}

type jobKind uint8

const (
	jobTransition jobKind = iota
	jobUp
	jobDown
)

// NewInstance builds an instance on a shared Socket (its Mux's). ann may
// be nil (no announcements). It starts nothing.
func NewInstance(cfg InstanceConfig, conn Socket, ann AddrAnnouncer, eff Effects, log *slog.Logger) (*Instance, error) {
	if nilSocket(conn) {
		return nil, fmt.Errorf("vrrp: instance %s: no socket (use Mux.Socket)", cfg.Name)
	}
	if nilAnnouncer(ann) {
		ann = nil
	}
	if !cfg.Src.IsValid() {
		cfg.Src = conn.Src()
	}
	if !cfg.Machine.PrimaryIP.IsValid() {
		cfg.Machine.PrimaryIP = cfg.Src
	}
	if err := cfg.Machine.Validate(); err != nil {
		return nil, fmt.Errorf("vrrp: instance %s: %w", cfg.Name, err)
	}
	in := &Instance{
		cfg: cfg, conn: conn, ann: ann, effects: eff,
		log:     log.With("group", cfg.Name, "vrid", cfg.Machine.VRID),
		wake:    make(chan struct{}, 1),
		m:       New(cfg.Machine),
		advPrio: -1,
		advDsts: cfg.Peers,
		write:   conn.WriteFrom,
	}
	if len(in.advDsts) == 0 {
		g := GroupV4
		if conn.IPv6() {
			g = GroupV6
		}
		in.advDsts = []netip.Addr{g}
	}
	in.advPkts = make([][]byte, len(in.advDsts))
	return in, nil
}

// Config returns the instance's configuration.
func (in *Instance) Config() InstanceConfig { return in.cfg }

// SetGate installs the lease gate of a lease-gated instance (node.Group's
// Gate). Call it before Run. Without a gate the instance speaks whenever
// its VRRP state says so (quorum none).
func (in *Instance) SetGate(g Gate) {
	in.mu.Lock()
	in.gate = g
	in.mu.Unlock()
}

// Drops counts adverts dropped for this instance, by reason.
func (in *Instance) Drops() *DropCounters { return &in.drops }

// Status returns a snapshot.
func (in *Instance) Status() Status {
	in.mu.Lock()
	s := Status{Name: in.cfg.Name, Iface: in.cfg.Iface, VRID: in.cfg.Machine.VRID, State: in.state.String(),
		Priority: in.m.Priority(), Since: in.since, LastError: in.lastErr}
	src, prio := in.m.Master()
	in.mu.Unlock()
	if src.IsValid() {
		s.Master, s.MasterPrio = src.String(), prio
	}
	s.AdvertsSent, s.AdvertsRecv = in.sent.Load(), in.recv.Load()
	s.AdvertsWithheld = in.advWithheld.Load()
	s.GARPsSent, s.GARPsWithheld, s.GARPFailures = in.garpSent.Load(), in.garpWithheld.Load(), in.garpFailed.Load()
	s.Drops = in.drops.Snapshot()
	s.Foreign = in.foreignSpeakers()
	s.HMAC = len(in.cfg.HMACKey) > 0
	return s
}

// MasterHeard reports whether the machine, as Backup, hears another router
// as master now (Machine.MasterHeard).
func (in *Instance) MasterHeard() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.m.MasterHeard(time.Now())
}

// Inject delivers an event (PriorityChanged, Fault) to the machine. It does
// not block on IO other than the adverts the event makes it send. Events
// injected before Run apply to the machine in init (a pending fault holds
// it in fault at startup).
func (in *Instance) Inject(ev Event) {
	in.mu.Lock()
	now := time.Now()
	if _, claim := ev.(Claim); claim && in.gate != nil && !in.gate.MayAdvertise(now) {
		// The lease that asked for the claim is no longer known to be
		// live (a freeze since): claim nothing.
		in.advWithheld.Add(1)
		in.mu.Unlock()
		in.log.Warn("claim withheld: quorum session not live")
		return
	}
	in.stepLocked(ev, now, nil)
	d := in.deadlineLocked()
	in.mu.Unlock()
	in.poke(d)
}

// SetFault turns one fault source on or off. The machine is in fault while
// any source is on, so a health check clearing its fault cannot clear the
// quorum's (or a sync group's), and the other way round.
func (in *Instance) SetFault(source string, on bool) {
	in.mu.Lock()
	if in.faults == nil {
		in.faults = map[string]bool{}
	}
	before := len(in.faults) > 0
	if on {
		in.faults[source] = true
	} else {
		delete(in.faults, source)
	}
	after := len(in.faults) > 0
	if before != after {
		in.stepLocked(Fault{On: after}, time.Now(), nil)
	}
	d := in.deadlineLocked()
	in.mu.Unlock()
	in.poke(d)
}

// Faults lists the fault sources now on.
func (in *Instance) Faults() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []string
	for f := range in.faults {
		out = append(out, f)
	}
	return out
}

// Announce starts the GARP/NA schedule now (a burst, a second burst after
// garp_master_delay, then garp_master_refresh), if the instance is master.
// Lease-gated instances call it once the VIPs are up; every burst then
// asks the gate at send time and the schedule ends at the first refusal.
func (in *Instance) Announce() {
	in.mu.Lock()
	in.startGARPLocked(time.Now())
	d := in.deadlineLocked()
	in.mu.Unlock()
	in.poke(d)
}

// deliver is called by the Mux's reader for an accepted advert.
func (in *Instance) deliver(a AdvertReceived, now time.Time) {
	in.recv.Add(1)
	in.mu.Lock()
	in.stepLocked(a, now, nil)
	d := in.deadlineLocked()
	in.mu.Unlock()
	in.poke(d)
}

// authentic checks an advert's HMAC trailer if the instance has a key
// (DropNone if it has none).
func (in *Instance) authentic(advert, trailer []byte, src, dst netip.Addr, now time.Time) DropReason {
	if len(in.cfg.HMACKey) == 0 {
		return DropNone
	}
	counter, r := VerifyMAC(advert, trailer, in.cfg.HMACKey, src, dst)
	if r != DropNone {
		return r
	}
	if !in.replay.Accept(src, counter, now) {
		return DropReplay
	}
	return DropNone
}

// poke tells the Mux's scheduler about a deadline that may be earlier than
// the one it sleeps until.
func (in *Instance) poke(d time.Time) {
	if in.mux != nil {
		in.mux.poke(d)
	}
}

// Run starts the machine (the instance must have been added to a Mux,
// whose Run drives it), performs its effects until ctx ends, then shuts it
// down: priority-0 advert if master, Effects.Down, within stopBudget.
func (in *Instance) Run(ctx context.Context, stopBudget time.Duration) error {
	if in.mux == nil {
		return fmt.Errorf("%w: %s", ErrNotAdded, in.cfg.Name)
	}
	in.mu.Lock()
	if in.running {
		in.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrRunning, in.cfg.Name)
	}
	in.running = true
	in.stepLocked(Startup{}, time.Now(), nil)
	d := in.deadlineLocked()
	in.mu.Unlock()
	in.poke(d)
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), stopBudget)
			defer cancel()
			in.mu.Lock()
			in.stepLocked(Shutdown{}, time.Now(), nil)
			in.running = false
			in.mu.Unlock()
			in.runJobs(sctx)
			return nil
		case <-in.wake:
			in.runJobs(ctx)
		}
	}
}

// runJobs performs the queued effects in order.
func (in *Instance) runJobs(ctx context.Context) {
	for {
		in.mu.Lock()
		if len(in.jobs) == 0 {
			in.mu.Unlock()
			return
		}
		j := in.jobs[0]
		in.jobs = in.jobs[1:]
		stale := j.gen != in.gen
		in.mu.Unlock()
		switch j.kind {
		case jobTransition:
			in.OnTransition(j.tr, j.prio)
		case jobDown:
			if err := in.effects.Down(ctx); err != nil {
				in.setErr(err)
				in.log.Error("releasing addresses failed", "err", err)
			}
		case jobUp:
			if stale { // the machine left master since; a Down follows
				continue
			}
			in.up(ctx, j.gen)
		}
	}
}

// up performs Effects.Up for the master term gen and starts announcing.
func (in *Instance) up(ctx context.Context, gen uint64) {
	err := in.effects.Up(ctx)
	now := time.Now()
	in.mu.Lock()
	current := in.running && in.gen == gen
	if err != nil {
		in.lastErr = err.Error()
		if current {
			// Fault releases what Up may have half done; clearing it at
			// once returns to backup, which retries after the
			// master-down interval.
			in.stepLocked(Fault{On: true}, now, nil)
			in.stepLocked(Fault{On: false}, now, nil)
		}
	} else if current && !in.cfg.LeaseGated {
		// A first burst now, a second after garp_master_delay.
		in.startGARPLocked(now)
	}
	d := in.deadlineLocked()
	in.mu.Unlock()
	if err != nil {
		in.log.Error("becoming master failed; backing off through fault", "err", err)
	}
	in.poke(d)
}

// deadlineLocked is when the scheduler must next call tickLocked (zero:
// never).
func (in *Instance) deadlineLocked() time.Time {
	d := in.m.NextDeadline()
	if !in.garpAt.IsZero() && (d.IsZero() || in.garpAt.Before(d)) {
		d = in.garpAt
	}
	return d
}

// tickLocked delivers what is due at now: a GARP burst, a Tick.
func (in *Instance) tickLocked(now time.Time, out *Outbox, owners *[]*Instance) {
	if !in.garpAt.IsZero() && !now.Before(in.garpAt) {
		in.garpLocked(now)
	}
	if d := in.m.NextDeadline(); !d.IsZero() && !now.Before(d) {
		n := out.Len()
		in.stepLocked(Tick{}, now, out)
		for range out.Len() - n {
			*owners = append(*owners, in)
		}
	}
}

// startGARPLocked starts the announcement schedule at now: a first burst,
// a second after garp_master_delay, then garp_master_refresh.
func (in *Instance) startGARPLocked(now time.Time) {
	in.garpLeft, in.garpFrames, in.garpRetry = 2, max(in.cfg.GarpRepeat, 1), garpRetryMin
	in.garpLocked(now)
}

// stopGARPLocked ends the announcement schedule.
func (in *Instance) stopGARPLocked() {
	in.garpAt, in.garpLeft, in.garpFrames = time.Time{}, 0, 0
}

// garpLocked sends the rest of the current burst and plans the next. Each
// announcement asks the gate at send time: a refusal ends the schedule (a
// new owner term starts a new one). A failed send (the link is down after
// a flap) does not end the burst: it is retried after a backoff (10 ms
// doubling to 320 ms) until it goes out or the node may no longer announce.
// A retry sends one frame for every VIP again, also those whose frame went
// out (a duplicate gratuitous ARP is harmless).
func (in *Instance) garpLocked(now time.Time) {
	in.garpAt = time.Time{}
	if in.m.State() != StateMaster || in.ann == nil {
		in.stopGARPLocked()
		return
	}
	for in.garpFrames > 0 {
		if in.gate != nil && !in.gate.MayAnnounce(time.Now()) {
			in.garpWithheld.Add(uint64(len(in.cfg.VIPs)))
			in.stopGARPLocked()
			in.log.Info("announcements stopped: not the lease owner with a live deadline")
			return
		}
		if err := in.ann.Announce(in.cfg.VIPs); err != nil {
			in.garpFailed.Add(1)
			in.lastErr = err.Error()
			if in.garpRetry == garpRetryMin { // once per streak of failures
				in.log.Warn("announce failed; retrying until sent or no longer owner", "err", err)
			}
			in.garpAt = now.Add(in.garpRetry)
			in.garpRetry = min(2*in.garpRetry, garpRetryMax)
			return
		}
		in.garpSent.Add(uint64(len(in.cfg.VIPs)))
		in.garpRetry = garpRetryMin
		in.garpFrames--
	}
	in.garpLeft--
	in.garpFrames = max(in.cfg.GarpRepeat, 1)
	switch {
	case in.garpLeft > 0 && in.cfg.GarpDelay > 0:
		in.garpAt = now.Add(in.cfg.GarpDelay)
	case in.cfg.GarpRefresh > 0:
		in.garpAt = now.Add(in.cfg.GarpRefresh)
	default:
		in.stopGARPLocked()
	}
}

func (in *Instance) setErr(err error) {
	in.mu.Lock()
	in.lastErr = err.Error()
	in.mu.Unlock()
}

// stepLocked steps the machine and performs its actions in order: adverts
// are sent at once (into out if not nil, else directly), effects are queued
// for the Run goroutine.
func (in *Instance) stepLocked(ev Event, now time.Time, out *Outbox) {
	m, acts := in.m.Step(ev, now)
	in.m = m
	queued := false
	for _, a := range acts {
		switch a := a.(type) {
		case Transition:
			in.gen++
			in.state, in.since = a.To, now
			in.log.Info("transition", "from", a.From.String(), "to", a.To.String(), "reason", a.Reason,
				"priority", m.Priority())
			if in.OnTransition != nil {
				in.jobs = append(in.jobs, job{kind: jobTransition, tr: a, prio: m.Priority(), gen: in.gen})
				queued = true
			}
		case SendAdvert:
			in.sendLocked(a.Priority, out)
		case BecomeMaster:
			in.jobs = append(in.jobs, job{kind: jobUp, gen: in.gen})
			queued = true
		case BecomeBackup, BecomeFault, BecomeInit:
			in.stopGARPLocked()
			in.jobs = append(in.jobs, job{kind: jobDown, gen: in.gen})
			queued = true
		case MasterRxLowerPrio:
			if in.log.Enabled(context.Background(), slog.LevelDebug) {
				in.log.Debug("master heard lower priority", "peer", a.Src, "priority", a.Priority)
			}
		}
	}
	if queued {
		select {
		case in.wake <- struct{}{}:
		default:
		}
	}
}

// sendLocked sends an advert with priority prio to every destination. A
// gated instance asks its gate first, with the clock read now: after a
// freeze the machine may still say master while the lease is gone.
func (in *Instance) sendLocked(prio uint8, out *Outbox) {
	if prio != PriorityRelease && in.gate != nil {
		if !in.gate.MayAdvertise(time.Now()) {
			in.advWithheld.Add(uint64(len(in.advDsts)))
			if !in.withheld {
				in.withheld = true
				in.log.Warn("adverts withheld: quorum session not live", "priority", prio)
			}
			return
		}
		if in.withheld {
			in.withheld = false
			in.log.Info("adverts resumed: quorum session live", "priority", prio)
		}
	}
	if in.advPrio != int(prio) {
		if err := in.encodeLocked(prio); err != nil {
			in.lastErr = err.Error()
			in.log.Warn("send advert failed", "err", err)
			return
		}
	}
	for i, d := range in.advDsts {
		pkt := in.advPkts[i]
		if len(in.cfg.HMACKey) > 0 {
			// A fresh buffer per advert: a batch may still hold the last.
			pkt = AppendMAC(append(make([]byte, 0, len(pkt)+TrailerLen), pkt...), in.cfg.HMACKey,
				in.cfg.Src, d, in.counter.Next(time.Now()))
		}
		if out != nil {
			out.Add(pkt, in.cfg.Src, d)
			continue
		}
		if err := in.write(pkt, in.cfg.Src, d); err != nil {
			in.lastErr = err.Error()
			in.log.Warn("send advert failed", "err", err)
			continue
		}
		in.sent.Add(1)
	}
}

// encodeLocked caches the adverts with priority prio.
func (in *Instance) encodeLocked(prio uint8) error {
	a := Advert{
		Version:  in.cfg.Machine.Version,
		VRID:     in.cfg.Machine.VRID,
		Priority: prio,
		AuthType: in.cfg.Expect.AuthType,
		AuthData: in.cfg.Expect.AuthData,
		Interval: in.cfg.Machine.AdvertInterval,
		Addrs:    in.cfg.VIPs,
	}
	for i, d := range in.advDsts {
		pkt, err := Encode(in.advPkts[i][:0], &a, in.cfg.Src, d, in.cfg.Encode)
		if err != nil {
			in.advPrio = -1
			return fmt.Errorf("vrrp: encode: %w", err)
		}
		in.advPkts[i] = pkt
	}
	in.advPrio = int(prio)
	return nil
}

// sendResult records the outcome of an advert the scheduler sent for in.
func (in *Instance) sendResult(err error) {
	if err == nil {
		in.sent.Add(1)
		return
	}
	in.setErr(err)
	in.log.Warn("send advert failed", "err", err)
}
