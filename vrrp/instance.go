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
type Effects interface {
	// Up: the machine became master. Called from the instance's loop.
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
}

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
}

// Instance runs one virtual router: it feeds adverts and timers to the pure
// Machine and performs its actions.
type Instance struct {
	cfg     InstanceConfig
	conn    *Conn
	ann     *Announcer
	effects Effects
	log     *slog.Logger
	// OnTransition, if set, is called after every state change (notify
	// scripts, metrics). It must not block for long.
	OnTransition func(Transition, uint8)

	in    chan AdvertReceived
	ctl   chan Event
	drops DropCounters
	sent  atomic.Uint64
	recv  atomic.Uint64

	mu     sync.Mutex
	status Status
}

// NewInstance builds an instance on a shared Conn. It starts nothing.
func NewInstance(cfg InstanceConfig, conn *Conn, ann *Announcer, eff Effects, log *slog.Logger) (*Instance, error) {
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
		log: log.With("group", cfg.Name, "vrid", cfg.Machine.VRID),
		in:  make(chan AdvertReceived, 64),
		ctl: make(chan Event, 8),
	}
	in.status = Status{Name: cfg.Name, Iface: cfg.Iface, VRID: cfg.Machine.VRID, State: StateInit.String(),
		Priority: cfg.Machine.Priority}
	return in, nil
}

// Config returns the instance's configuration.
func (in *Instance) Config() InstanceConfig { return in.cfg }

// Drops counts adverts dropped for this instance, by reason.
func (in *Instance) Drops() *DropCounters { return &in.drops }

// Status returns a snapshot.
func (in *Instance) Status() Status {
	in.mu.Lock()
	defer in.mu.Unlock()
	s := in.status
	s.AdvertsSent, s.AdvertsRecv = in.sent.Load(), in.recv.Load()
	s.Drops = in.drops.Snapshot()
	return s
}

// Inject delivers an event (PriorityChanged, Fault) to the loop.
func (in *Instance) Inject(ev Event) { in.ctl <- ev }

// deliver is called by the Mux for an accepted advert; it never blocks.
func (in *Instance) deliver(a AdvertReceived) {
	select {
	case in.in <- a:
		in.recv.Add(1)
	default:
		in.drops.Inc(DropQueueFull)
	}
}

// Run is the instance's loop. On ctx end it shuts down: priority-0 advert,
// Effects.Down, within stopBudget.
func (in *Instance) Run(ctx context.Context, stopBudget time.Duration) error {
	m := New(in.cfg.Machine)
	m, mastered := in.apply(ctx, m, Startup{}, time.Now())
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var garpAt time.Time
	garpLeft := 0 // bursts left: 2 (now and after delay), refresh continues
	for {
		next := m.NextDeadline()
		if !garpAt.IsZero() && (next.IsZero() || garpAt.Before(next)) {
			next = garpAt
		}
		if next.IsZero() {
			next = time.Now().Add(time.Hour)
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), stopBudget)
			in.apply(sctx, m, Shutdown{}, time.Now())
			cancel()
			return nil
		case a := <-in.in:
			m, mastered = in.apply(ctx, m, a, time.Now())
		case ev := <-in.ctl:
			m, mastered = in.apply(ctx, m, ev, time.Now())
		case <-timer.C:
			now := time.Now()
			if !garpAt.IsZero() && !now.Before(garpAt) {
				garpAt, garpLeft = in.garp(m, garpLeft, now)
			}
			if d := m.NextDeadline(); !d.IsZero() && !now.Before(d) {
				m, mastered = in.apply(ctx, m, Tick{}, now)
			}
		}
		switch {
		case mastered: // a first burst now, a second after garp_master_delay
			garpAt, garpLeft = in.garp(m, 2, time.Now())
			mastered = false
		case m.State() != StateMaster:
			garpAt, garpLeft = time.Time{}, 0
		}
	}
}

// garp sends one burst and returns when the next is due.
func (in *Instance) garp(m Machine, left int, now time.Time) (time.Time, int) {
	if m.State() != StateMaster || in.ann == nil {
		return time.Time{}, 0
	}
	for range max(in.cfg.GarpRepeat, 1) {
		if err := in.ann.Announce(in.cfg.VIPs); err != nil {
			in.setErr(err)
			in.log.Warn("announce failed", "err", err)
			break
		}
	}
	left--
	switch {
	case left > 0 && in.cfg.GarpDelay > 0:
		return now.Add(in.cfg.GarpDelay), left
	case in.cfg.GarpRefresh > 0:
		return now.Add(in.cfg.GarpRefresh), 0
	}
	return time.Time{}, 0
}

func (in *Instance) setErr(err error) {
	in.mu.Lock()
	in.status.LastError = err.Error()
	in.mu.Unlock()
}

// apply steps the machine and performs its actions in order. mastered
// reports that the instance became master (and Effects.Up succeeded).
func (in *Instance) apply(ctx context.Context, m Machine, ev Event, now time.Time) (_ Machine, mastered bool) {
	m, acts := m.Step(ev, now)
	for _, a := range acts {
		switch a := a.(type) {
		case Transition:
			in.log.Info("transition", "from", a.From.String(), "to", a.To.String(), "reason", a.Reason,
				"priority", m.Priority())
			in.mu.Lock()
			in.status.State, in.status.Since = a.To.String(), time.Now()
			in.mu.Unlock()
			if in.OnTransition != nil {
				in.OnTransition(a, m.Priority())
			}
		case SendAdvert:
			if err := in.send(a.Priority, m); err != nil {
				in.setErr(err)
				in.log.Warn("send advert failed", "err", err)
			}
		case BecomeMaster:
			if err := in.effects.Up(ctx); err != nil {
				in.setErr(err)
				in.log.Error("becoming master failed; backing off through fault", "err", err)
				// Fault releases what Up may have half done; clearing it
				// at once returns to backup, which retries after the
				// master-down interval.
				m, _ = in.apply(ctx, m, Fault{On: true}, now)
				m, _ = in.apply(ctx, m, Fault{On: false}, now)
				return m, false
			}
			mastered = true
		case BecomeBackup, BecomeFault, BecomeInit:
			if err := in.effects.Down(ctx); err != nil {
				in.setErr(err)
				in.log.Error("releasing addresses failed", "err", err)
			}
		case MasterRxLowerPrio:
			in.log.Debug("master heard lower priority", "peer", a.Src, "priority", a.Priority)
		}
	}
	src, prio := m.Master()
	in.mu.Lock()
	in.status.Priority = m.Priority()
	if src.IsValid() {
		in.status.Master, in.status.MasterPrio = src.String(), prio
	}
	in.mu.Unlock()
	return m, mastered
}

func (in *Instance) send(prio uint8, m Machine) error {
	a := Advert{
		Version:  in.cfg.Machine.Version,
		VRID:     in.cfg.Machine.VRID,
		Priority: prio,
		AuthType: in.cfg.Expect.AuthType,
		AuthData: in.cfg.Expect.AuthData,
		Interval: in.cfg.Machine.AdvertInterval,
		Addrs:    in.cfg.VIPs,
	}
	dsts := in.cfg.Peers
	if len(dsts) == 0 {
		g := GroupV4
		if in.conn.IPv6() {
			g = GroupV6
		}
		dsts = []netip.Addr{g}
	}
	var errs []error
	var b [1500]byte
	for _, d := range dsts {
		pkt, err := Encode(b[:0], &a, in.cfg.Src, d, in.cfg.Encode)
		if err != nil {
			return fmt.Errorf("vrrp: encode: %w", err)
		}
		if err := in.conn.WriteFrom(pkt, in.cfg.Src, d); err != nil {
			errs = append(errs, fmt.Errorf("to %s: %w", d, err))
			continue
		}
		in.sent.Add(1)
	}
	return errors.Join(errs...)
}
