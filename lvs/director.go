package lvs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/leasehold/leasehold/script"
)

// Options are a Director's edges and limits.
type Options struct {
	Kernel Kernel
	Prober Prober // nil: NetProber
	// StateFile records the services this node created (see Director);
	// "" records nothing: only configured services are managed.
	StateFile string
	// Workers bounds the checks running at once (default DefaultWorkers).
	Workers int
	// Resync is the period of the reconcile pass that runs even without
	// a change (default DefaultResync).
	Resync time.Duration
	// Jitter returns a random delay in [0, max) for the first check
	// (warmup); default math/rand.
	Jitter func(max time.Duration) time.Duration
	Log    *slog.Logger
}

// Defaults of Options.
const (
	DefaultWorkers = 128
	DefaultResync  = 5 * time.Second
)

// MinGap separates the reconcile passes that changes of real servers
// trigger: a burst of changes is applied in one pass. Lease changes
// (GroupTable) are applied at once.
const MinGap = 50 * time.Millisecond

// Coalesce: checks due within it of each other start together (a check
// may run up to this much early).
const Coalesce = 5 * time.Millisecond

// Director keeps a director's IPVS table: it runs the checks (TCP_CHECK
// on one epoll as keepalived does, the others on a pool of Workers
// goroutines, all fed by one scheduler: not a goroutine per server),
// keeps each checker's state with Step, and reconciles the kernel's table
// with the desired one on every change of a real server's state or of
// the lease, and every Resync.
//
// It manages the services of its configuration and those its state file
// records as created by an earlier run (a configuration that dropped a
// virtual server still has it removed); it never touches other services.
// The first Reconcile removes the orphans of an earlier run: in ModeOwner
// nothing is owned at start, so every managed service goes.
type Director struct {
	cfg    Config
	o      Options
	items  []item // every checker, flattened
	config map[Key]bool

	recMu sync.Mutex // one reconcile at a time; guards state and cache
	state *stateFile
	cache []Virtual // the kernel's table after the last pass; nil: unknown

	kick     chan struct{}
	notifies sync.WaitGroup // the scripts' runner
	scripts  notifyQueue    // quorum_up/down, real servers' notify_up/down, in order

	mu       sync.Mutex
	checks   [][][]CheckState // service → real → checker
	quorum   []bool
	owned    map[string]bool
	guards   map[string]*groupGuard
	stopping bool
	stats    [][]realStats
	inTable  map[Key]map[string]int // last desired dests by address → weight
	last     reconcileStats
}

type item struct{ svc, rs, chk int }

type realStats struct {
	ups, downs uint64
	checks     []checkStats
}

type checkStats struct {
	ok, failed uint64
	last       time.Time
	lastErr    string
}

type reconcileStats struct {
	at     time.Time
	err    error
	ops    uint64
	errors uint64
}

// New builds a Director; it touches nothing until Reconcile or Run.
func New(cfg Config, o Options) (*Director, error) {
	if o.Kernel == nil {
		return nil, errors.New("lvs: no kernel")
	}
	if o.Prober == nil {
		o.Prober = &NetProber{}
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.Resync <= 0 {
		o.Resync = DefaultResync
	}
	if o.Jitter == nil {
		o.Jitter = func(max time.Duration) time.Duration {
			if max <= 0 {
				return 0
			}
			return rand.N(max)
		}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	st, err := loadState(o.StateFile)
	if err != nil {
		return nil, err
	}
	d := &Director{cfg: cfg, o: o, config: map[Key]bool{}, state: st, kick: make(chan struct{}, 1),
		owned: map[string]bool{}, guards: map[string]*groupGuard{}, inTable: map[Key]map[string]int{}}
	for si, s := range cfg.Services {
		for _, k := range s.Keys {
			d.config[k] = true
		}
		var cs [][]CheckState
		var rst []realStats
		for ri, r := range s.Reals {
			var rs []CheckState
			for ci, c := range r.Checks {
				rs = append(rs, InitialState(c))
				d.items = append(d.items, item{si, ri, ci})
			}
			cs = append(cs, rs)
			rst = append(rst, realStats{checks: make([]checkStats, len(r.Checks))})
		}
		d.checks = append(d.checks, cs)
		d.stats = append(d.stats, rst)
		d.quorum = append(d.quorum, QuorumStep(false, LiveWeight(d.reals(si)), s.Quorum, s.Hysteresis))
	}
	return d, nil
}

// reals is the state of service si's real servers (d.mu held or not yet
// shared).
func (d *Director) reals(si int) []RealState {
	s := d.cfg.Services[si]
	out := make([]RealState, len(s.Reals))
	for ri, r := range s.Reals {
		out[ri] = Real(r, d.checks[si][ri])
	}
	return out
}

// active reports whether service si is desired in the kernel (d.mu held).
func (d *Director) active(si int) bool {
	if d.stopping {
		return false
	}
	return d.cfg.Mode == ModeAll || d.owned[d.cfg.Services[si].Follow]
}

// desired is the table this node wants now.
func (d *Director) desired() []Virtual {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Virtual
	for si, s := range d.cfg.Services {
		vs := Desired(s, d.reals(si), d.quorum[si])
		for _, v := range vs {
			m := map[string]int{}
			for _, dst := range v.Dests {
				m[dst.Addr.String()] = dst.Weight
			}
			if !d.active(si) {
				m = nil
			}
			d.inTable[v.Key] = m
		}
		if d.active(si) {
			out = append(out, vs...)
		}
	}
	return out
}

// Reconcile makes the kernel's table the desired one, once. Errors name
// each failed change; the changes that worked stay.
func (d *Director) Reconcile() error { return d.reconcileOnce(true) }

// reconcileOnce is one pass; full reads the kernel's table, otherwise the
// table as the last pass left it is the starting point (the periodic
// full pass corrects what others changed meanwhile).
func (d *Director) reconcileOnce(full bool) error {
	d.recMu.Lock()
	defer d.recMu.Unlock()
	err := d.reconcile(full)
	d.mu.Lock()
	d.last.at, d.last.err = time.Now(), err
	if err != nil {
		d.last.errors++
	}
	d.mu.Unlock()
	return err
}

func (d *Director) reconcile(full bool) error {
	want := d.desired()
	have := d.cache
	if full || have == nil {
		var err error
		if have, err = d.o.Kernel.Table(); err != nil {
			d.cache = nil
			return fmt.Errorf("lvs: read the IPVS table: %w", err)
		}
	}
	managed := func(k Key) bool { return d.config[k] || d.state.keys[k] }
	// After a pass without errors the kernel holds want and the foreign
	// services it had.
	d.cache = slices.Clone(want)
	for _, v := range have {
		if !managed(v.Key) {
			d.cache = append(d.cache, v)
		}
	}
	ops := Diff(want, have, managed)
	if len(ops) == 0 {
		return nil
	}
	rec := map[Key]bool{}
	for k := range d.state.keys {
		rec[k] = true
	}
	for _, v := range want {
		rec[v.Key] = true
	}
	if err := d.state.set(rec); err != nil {
		d.cache = nil
		return err // never add what could not be recorded
	}
	for _, op := range ops {
		d.o.Log.Info("ipvs", "op", op.String())
	}
	deleted, err := apply(d.o.Kernel, ops)
	d.mu.Lock()
	d.last.ops += uint64(len(ops))
	d.mu.Unlock()
	if len(deleted) > 0 {
		after := map[Key]bool{}
		for k := range rec {
			after[k] = true
		}
		for _, k := range deleted {
			delete(after, k)
		}
		err = errors.Join(err, d.state.set(after))
	}
	if err != nil {
		d.cache = nil
		return fmt.Errorf("lvs: %w", err)
	}
	return nil
}

// setOwned records whether this node owns group's lease.
func (d *Director) setOwned(group string, on bool) {
	d.mu.Lock()
	d.owned[group] = on
	d.mu.Unlock()
}

func (d *Director) poke() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Run runs the checks and the reconcile loop until ctx ends; then, with
// nothing desired any more, it removes the table (as keepalived does on
// exit; in ModeOwner the groups' demotions have removed it already) and
// runs quorum_down of omega virtual servers with quorum.
func (d *Director) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { d.schedule(ctx) })
	t := time.NewTicker(d.o.Resync)
	defer t.Stop()
	var last time.Time
	for done := false; !done; {
		full := false
		select {
		case <-ctx.Done():
			done = true
			continue
		case <-d.kick:
			// Changes coming in bursts (many servers failing at once) are
			// applied together, at most every MinGap.
			if wait := MinGap - time.Since(last); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
				}
			}
		case <-t.C:
			full = true
		}
		last = time.Now()
		if err := d.reconcileOnce(full); err != nil {
			d.o.Log.Error("lvs reconcile failed", "err", err)
		}
	}
	wg.Wait()
	d.mu.Lock()
	d.stopping = true
	d.mu.Unlock()
	if err := d.Reconcile(); err != nil {
		d.o.Log.Error("lvs: removing the table on exit failed", "err", err)
	}
	for si, s := range d.cfg.Services {
		if s.Omega && d.quorum[si] {
			d.notify(s, false)
		}
	}
	d.notifies.Wait()
}

// notify queues a virtual server's quorum_up or quorum_down script
// (d.queue).
func (d *Director) notify(s Service, up bool) {
	cmd, what := s.QuorumDown, "quorum_down"
	if up {
		cmd, what = s.QuorumUp, "quorum_up"
	}
	if cmd == nil {
		return
	}
	d.queue(func() {
		if r := script.Run(context.Background(), *cmd); !r.OK() {
			d.o.Log.Warn("lvs: "+what+" failed", "virtual_server", s.Name, "reason", r.Reason())
		}
	})
}

// realNotify is rs's notify_up (alive) or notify_down script, or nil.
func realNotify(rs RealServer, alive bool) *script.Command {
	if alive {
		return rs.NotifyUp
	}
	return rs.NotifyDown
}

// notifyQueue runs scripts one at a time, in the order they were queued.
type notifyQueue struct {
	mu      sync.Mutex
	pending []func()
	running bool
}

// notifyReal queues rs's notify script for a change to alive (d.queue).
func (d *Director) notifyReal(s Service, rs RealServer, cmd script.Command, alive bool) {
	what := "notify_down"
	if alive {
		what = "notify_up"
	}
	cmd.Env = append(slices.Clip(cmd.Env), "LEASEHOLD_VIRTUAL_SERVER="+s.Name, "LEASEHOLD_REAL_SERVER="+rs.Addr.String())
	d.queue(func() {
		if r := script.Run(context.Background(), cmd); !r.OK() {
			d.o.Log.Warn("lvs: real server "+what+" failed", "virtual_server", s.Name, "real_server", rs.Addr.String(), "reason", r.Reason())
		}
	})
}

// queue runs a script after those queued before it: the quorum and notify
// scripts run one at a time in the order of the changes (a flapping
// server's or quorum's down never overtakes its up), outside d.mu, each
// bounded by its timeout; a failure is logged.
func (d *Director) queue(run func()) {
	q := &d.scripts
	q.mu.Lock()
	q.pending = append(q.pending, run)
	start := !q.running
	q.running = true
	q.mu.Unlock()
	if !start {
		return
	}
	d.notifies.Go(func() {
		for {
			q.mu.Lock()
			if len(q.pending) == 0 {
				q.running, q.pending = false, nil
				q.mu.Unlock()
				return
			}
			f := q.pending[0]
			q.pending = q.pending[1:]
			q.mu.Unlock()
			f()
		}
	})
}

type result struct {
	id  int
	out Outcome
	at  time.Time
}

// schedule runs every checker when due and applies the outcomes:
// TCP_CHECKs on the epoll poller, which schedules them itself, the others
// on the worker pool.
func (d *Director) schedule(ctx context.Context) {
	if len(d.items) == 0 {
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	now := time.Now()
	poll := d.tcpPoller()
	q := make(timeHeap[int], 0, len(d.items))
	for id, it := range d.items {
		c := d.check(it)
		first := now.Add(d.o.Jitter(c.Warmup))
		if poll != nil && c.Kind == TCPCheck {
			poll.add(id, c.Target, c.ConnectTimeout, first)
			continue
		}
		q.push(timed[int]{at: first, v: id})
	}
	if poll != nil {
		wg.Go(func() {
			poll.run(ctx, func(id int, o Outcome, at time.Time) time.Duration {
				return d.record(result{id: id, out: o, at: at})
			})
		})
	}
	if len(q) == 0 {
		return
	}
	jobs := make(chan int)
	results := make(chan result)
	for range min(d.o.Workers, len(q)) {
		wg.Go(func() { d.work(ctx, jobs, results) })
	}
	defer close(jobs)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var ready []int
	for {
		if len(q) > 0 {
			timer.Reset(time.Until(q[0].at))
		}
		var send chan<- int
		var head int
		if len(ready) > 0 {
			send, head = jobs, ready[0]
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			// Checks due within Coalesce start together: one wake-up
			// for many.
			now := time.Now().Add(Coalesce)
			for len(q) > 0 && !q[0].at.After(now) {
				ready = append(ready, q.pop().v)
			}
		case send <- head:
			ready = ready[1:]
		case r := <-results:
			next := d.record(r)
			q.push(timed[int]{at: r.at.Add(next), v: r.id})
		}
	}
}

// tcpPoller returns the epoll TCP checker when the prober is the real
// one with a default dialer (else nil: TCP checks go to the workers).
func (d *Director) tcpPoller() *tcpPoller {
	np, ok := d.o.Prober.(*NetProber)
	if !ok || np.Dialer.LocalAddr != nil || np.Dialer.Control != nil || np.Dialer.ControlContext != nil {
		return nil
	}
	p, err := newTCPPoller()
	if err != nil {
		d.o.Log.Warn("lvs: TCP checks run on the worker pool", "err", err)
		return nil
	}
	return p
}

func (d *Director) check(it item) Check {
	return d.cfg.Services[it.svc].Reals[it.rs].Checks[it.chk]
}

// work runs checks until jobs closes.
func (d *Director) work(ctx context.Context, jobs <-chan int, results chan<- result) {
	for id := range jobs {
		c := d.check(d.items[id])
		timeout := c.ConnectTimeout
		if c.Kind == MiscCheck && c.Command != nil {
			timeout = c.Command.Timeout + script.PipeDelay
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		out := d.o.Prober.Probe(cctx, c)
		cancel()
		select {
		case results <- result{id: id, out: out, at: time.Now()}:
		case <-ctx.Done():
		}
	}
}

// record applies one outcome and returns the delay to the checker's next
// run; a change of its real server's state (or weight) or of the
// virtual server's quorum asks for a reconcile.
func (d *Director) record(r result) time.Duration {
	it := d.items[r.id]
	s := d.cfg.Services[it.svc]
	c := s.Reals[it.rs].Checks[it.chk]
	d.mu.Lock()
	before := Real(s.Reals[it.rs], d.checks[it.svc][it.rs])
	st, next, _ := Step(c, d.checks[it.svc][it.rs][it.chk], r.out)
	d.checks[it.svc][it.rs][it.chk] = st
	after := Real(s.Reals[it.rs], d.checks[it.svc][it.rs])
	rs := &d.stats[it.svc][it.rs]
	cs := &rs.checks[it.chk]
	cs.last = r.at
	if r.out.OK {
		cs.ok++
		cs.lastErr = ""
	} else {
		cs.failed++
		cs.lastErr = r.out.Err
	}
	var quorumFlip, quorumUp bool
	if before != after {
		if before.Alive != after.Alive {
			if after.Alive {
				rs.ups++
			} else {
				rs.downs++
			}
			d.o.Log.Info("lvs real server "+upDown(after.Alive),
				"virtual_server", s.Name, "real_server", s.Reals[it.rs].Addr.String(), "check", string(c.Kind), "err", r.out.Err)
			if cmd := realNotify(s.Reals[it.rs], after.Alive); cmd != nil {
				d.notifyReal(s, s.Reals[it.rs], *cmd, after.Alive)
			}
		}
		quorumUp = QuorumStep(d.quorum[it.svc], LiveWeight(d.reals(it.svc)), s.Quorum, s.Hysteresis)
		quorumFlip = quorumUp != d.quorum[it.svc]
		d.quorum[it.svc] = quorumUp
	}
	d.mu.Unlock()
	if quorumFlip {
		d.o.Log.Info("lvs quorum "+upDown(quorumUp), "virtual_server", s.Name)
		d.notify(s, quorumUp)
	}
	if before != after {
		d.poke()
	}
	return next
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

// timed is an item due at a time.
type timed[T any] struct {
	at time.Time
	v  T
}

// timeHeap is a min-heap of items by time (push and pop without
// container/heap's boxing: no allocation a check).
type timeHeap[T any] []timed[T]

func (q *timeHeap[T]) push(x timed[T]) {
	h := append(*q, x)
	for i := len(h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h[i].at.Before(h[parent].at) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
	*q = h
}

func (q *timeHeap[T]) pop() timed[T] {
	h := *q
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		small, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && h[l].at.Before(h[small].at) {
			small = l
		}
		if r < len(h) && h[r].at.Before(h[small].at) {
			small = r
		}
		if small == i {
			break
		}
		h[i], h[small] = h[small], h[i]
		i = small
	}
	*q = h
	return top
}
