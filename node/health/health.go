package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/leasehold/leasehold/script"
)

// Defaults, as keepalived's.
const (
	DefaultInterval = time.Second // vrrp_script interval
	// A Script's Timeout defaults to its Interval (keepalived does the same).
)

// ErrConfig: a Script or Interface is out of range.
var ErrConfig = errors.New("health: invalid config")

// ErrRunning: Run was called twice.
var ErrRunning = errors.New("health: tracker already running")

// Script is a vrrp_script tracked by a group.
type Script struct {
	Name     string
	Path     string   // absolute path of an executable (checked with script.Check)
	Args     []string // arguments after the program name
	Interval time.Duration
	Timeout  time.Duration // 0 = Interval
	Weight   int           // -253..253; 0 = failing puts the group in FAULT
	Rise     int           // consecutive successes from Down to Up; 0 = 1
	Fall     int           // consecutive failures from Up to Down; 0 = 1
	InitFail bool          // start Down instead of Unknown
	RunAs    string        // user to run as; "" = the daemon's user
	// Check, if set, is a native check run in place of a program (Path,
	// Args and RunAs unused): nil is success. It runs on the same
	// schedule, bounded by Timeout through its ctx, with the same
	// rise/fall and weight (e.g. a MySQL server's check).
	Check func(ctx context.Context) error
}

// Interface is a track_interface entry: a link is Up while it has both
// IFF_UP and IFF_RUNNING (keepalived's IF_FLAGS_UP); a missing link is Down.
type Interface struct {
	Name   string
	Weight int // -253..253; 0 = link down puts the group in FAULT
}

// Status is a group's tracked health.
type Status struct {
	Priority uint8
	Fault    bool
	Reasons  []string
}

func (s Status) equal(o Status) bool {
	return s.Priority == o.Priority && s.Fault == o.Fault && slices.Equal(s.Reasons, o.Reasons)
}

// Option adjusts a Tracker.
type Option func(*Tracker)

// WithNetNS makes the link watch act in the network namespace at path
// (e.g. /run/netns/NAME, or /proc/PID/task/TID/ns/net of a thread that stays
// in it while Run runs). Default: the namespace of the thread that calls Run.
func WithNetNS(path string) Option { return func(t *Tracker) { t.nsPath = path } }

// WithEnv adds KEY=VALUE pairs to every check script's environment (after
// PATH), e.g. LEASEHOLD_GROUP.
func WithEnv(env ...string) Option { return func(t *Tracker) { t.env = append(t.env, env...) } }

// Tracker tracks one group's scripts and links and computes its effective
// priority and fault.
type Tracker struct {
	base    uint8
	scripts []Script
	ifaces  []Interface
	log     *slog.Logger
	nsPath  string
	env     []string

	updates chan Status

	mu      sync.Mutex
	running bool
	sstates []scriptState
	reasons []string // last script.Result.Reason per script, for log dedup
	lstates []State
	status  Status
}

// NewTracker validates the configuration (ranges, unique names, script
// safety with script.Check, RunAs users) and fills in defaults. It
// starts nothing.
func NewTracker(base uint8, scripts []Script, ifaces []Interface, log *slog.Logger, opts ...Option) (*Tracker, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...)))
	}
	if base == 0 {
		bad("priority 0 is reserved (1..255)")
	}
	t := &Tracker{base: base, log: log, updates: make(chan Status, 1)}
	names := map[string]bool{}
	for _, s := range scripts {
		key := fmt.Sprintf("script %q", s.Name)
		switch {
		case s.Name == "":
			bad("script with path %q: name must be set", s.Path)
		case names[s.Name]:
			bad("%s: duplicate", key)
		}
		names[s.Name] = true
		if s.Interval < 0 || s.Timeout < 0 || s.Rise < 0 || s.Fall < 0 {
			bad("%s: interval, timeout, rise and fall must not be negative", key)
		}
		if s.Weight < MinWeight || s.Weight > MaxWeight {
			bad("%s: weight %d outside %d..%d", key, s.Weight, MinWeight, MaxWeight)
		}
		switch {
		case s.Check != nil && (s.Path != "" || s.RunAs != ""):
			bad("%s: a native check has no path or user", key)
		case s.Check == nil:
			if err := script.Check(s.Path); err != nil {
				errs = append(errs, fmt.Errorf("%w: %s: %w", ErrConfig, key, err))
			}
			if err := script.CheckUser(s.RunAs); err != nil {
				errs = append(errs, fmt.Errorf("%w: %s: %w", ErrConfig, key, err))
			}
		}
		if s.Interval == 0 {
			s.Interval = DefaultInterval
		}
		if s.Timeout == 0 {
			s.Timeout = s.Interval
		}
		s.Rise, s.Fall = max(s.Rise, 1), max(s.Fall, 1)
		s.Args = slices.Clone(s.Args)
		t.scripts = append(t.scripts, s)
		t.sstates = append(t.sstates, newScriptState(s.Rise, s.Fall, s.InitFail))
		t.reasons = append(t.reasons, "")
	}
	ifnames := map[string]bool{}
	for _, i := range ifaces {
		key := fmt.Sprintf("interface %q", i.Name)
		switch {
		case i.Name == "" || len(i.Name) > 15:
			bad("%s: name must be 1..15 characters", key)
		case ifnames[i.Name]:
			bad("%s: duplicate", key)
		}
		ifnames[i.Name] = true
		if i.Weight < MinWeight || i.Weight > MaxWeight {
			bad("%s: weight %d outside %d..%d", key, i.Weight, MinWeight, MaxWeight)
		}
		t.ifaces = append(t.ifaces, i)
		t.lstates = append(t.lstates, Unknown)
	}
	for _, o := range opts {
		o(t)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if base == OwnerPriority && slices.ContainsFunc(t.checks(), func(c Check) bool { return c.Weight != 0 }) {
		log.Warn("health: address owner (priority 255): track weights do not change its priority, only weight-0 items (FAULT) apply")
	}
	t.status = t.compute()
	return t, nil
}

// checks is the current view for Effective: scripts first, then links, in
// configuration order. Caller holds mu (or owns t exclusively).
func (t *Tracker) checks() []Check {
	cs := make([]Check, 0, len(t.scripts)+len(t.ifaces))
	for i, s := range t.scripts {
		kind := KindScript
		if s.Check != nil {
			kind = KindCheck
		}
		cs = append(cs, Check{Kind: kind, Name: s.Name, Weight: s.Weight, State: t.sstates[i].State()})
	}
	for i, l := range t.ifaces {
		cs = append(cs, Check{Kind: KindLink, Name: l.Name, Weight: l.Weight, State: t.lstates[i]})
	}
	return cs
}

func (t *Tracker) compute() Status {
	p, f, r := Effective(t.base, t.checks())
	return Status{Priority: p, Fault: f, Reasons: r}
}

// Status is the current effective priority and fault. Before Run, links are
// Unknown (a weight-0 link means FAULT) and scripts Unknown or, with
// init_fail, Down.
func (t *Tracker) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.status
	s.Reasons = slices.Clone(s.Reasons)
	return s
}

// Updates delivers the Status whenever it changes, starting with the
// first one Run computes. It is level-triggered: the channel holds at most
// one Status and a newer one replaces an unread older one, so a slow reader
// always gets the latest (intermediate ones may be skipped) and Run never
// blocks on it. The channel is never closed.
func (t *Tracker) Updates() <-chan Status { return t.updates }

// publish replaces any unread Status with s.
func (t *Tracker) publish(s Status) {
	for {
		select {
		case t.updates <- s:
			return
		default:
		}
		select {
		case <-t.updates:
		default:
		}
	}
}

// event is a result fed into Run's loop.
type event struct {
	script int // index into scripts, or -1
	res    script.Result
	link   int // index into ifaces, or -1
	ls     linkState
}

// Run runs each script at once and then every Interval (a run that takes
// longer than Interval delays the next; runs of one script never overlap),
// killing it at its Timeout (a failure), and watches the links through a
// netlink subscription. It returns nil when ctx ends, after every script
// it started has been killed and reaped.
func (t *Tracker) Run(ctx context.Context) error {
	t.mu.Lock()
	if t.running {
		t.mu.Unlock()
		return ErrRunning
	}
	t.running = true
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.running = false
		t.mu.Unlock()
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan event)
	var wg sync.WaitGroup
	defer wg.Wait()
	if len(t.ifaces) > 0 {
		w, err := newLinkWatch(t.nsPath, t.ifaces, t.log)
		if err != nil {
			return err
		}
		// The first snapshot is taken before anything is published, so the
		// first Status already knows every link.
		for i, st := range w.snapshot() {
			t.observeLink(i, st)
		}
		wg.Go(func() { w.run(ctx, events) })
	}
	for i, s := range t.scripts {
		wg.Go(func() { t.runScript(ctx, i, s, events) })
	}
	t.mu.Lock()
	t.status = t.compute()
	first := t.status
	t.mu.Unlock()
	t.publish(first)
	t.log.Info("health: tracking", "priority", first.Priority, "fault", first.Fault, "reasons", first.Reasons)

	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-events:
			t.mu.Lock()
			if ev.script >= 0 {
				t.observeScript(ev.script, ev.res)
			} else {
				t.observeLinkLogged(ev.link, ev.ls)
			}
			next := t.compute()
			changed := !next.equal(t.status)
			t.status = next
			t.mu.Unlock()
			if changed {
				t.log.Info("health: status changed", "priority", next.Priority, "fault", next.Fault, "reasons", next.Reasons)
				t.publish(next)
			}
		}
	}
}

func (t *Tracker) runScript(ctx context.Context, i int, s Script, events chan<- event) {
	cmd := script.Command{Path: s.Path, Args: s.Args, Env: t.env, Timeout: s.Timeout, RunAs: s.RunAs}
	tick := time.NewTicker(s.Interval)
	defer tick.Stop()
	for {
		var res script.Result
		if s.Check != nil {
			res = runCheck(ctx, s)
		} else {
			res = script.Run(ctx, cmd)
		}
		if ctx.Err() != nil {
			return
		}
		select {
		case events <- event{script: i, res: res, link: -1}:
		case <-ctx.Done():
			return
		}
		select {
		case <-tick.C: // a tick missed while the script ran is dropped: no back-to-back runs
		case <-ctx.Done():
			return
		}
	}
}

// runCheck runs a native check bounded by its Timeout, as a Result (a
// failure's Reason is the check's error).
func runCheck(ctx context.Context, s Script) script.Result {
	cctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	start := time.Now()
	err := s.Check(cctx)
	if err != nil && cctx.Err() != nil && ctx.Err() == nil {
		err = fmt.Errorf("timed out after %v: %w", s.Timeout, err)
	}
	res := script.Result{Err: err, Took: time.Since(start)}
	if err != nil {
		res.Exit = -1
	}
	return res
}

// observeScript feeds one result into script i's counter and logs when the
// outcome's reason or the script's state changes (a missing or unsafe
// script is thus logged once, not every interval). Caller holds mu.
func (t *Tracker) observeScript(i int, res script.Result) {
	st := &t.sstates[i]
	prevState := st.State()
	prevReason, reason := t.reasons[i], res.Reason()
	t.reasons[i] = reason
	changed := st.Observe(res.OK())
	s := t.scripts[i]
	attrs := []any{"script", s.Name, "path", s.Path, "result", reason, "state", st.State().String()}
	if !res.OK() && len(res.Output) > 0 {
		attrs = append(attrs, "output", string(res.Output))
	}
	switch {
	case changed:
		t.log.Info("health: script "+prevState.String()+" -> "+st.State().String(), attrs...)
	case reason != prevReason:
		t.log.Info("health: script now returns "+reason, attrs...)
	}
}

func (t *Tracker) observeLink(i int, ls linkState) { t.lstates[i] = ls.state }

func (t *Tracker) observeLinkLogged(i int, ls linkState) {
	if t.lstates[i] != ls.state {
		t.log.Info("health: link "+t.lstates[i].String()+" -> "+ls.state.String(), "link", t.ifaces[i].Name, "detail", ls.detail)
	}
	t.lstates[i] = ls.state
}
