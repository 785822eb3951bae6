package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leasehold/leasehold/script"
)

// States a group reports, as keepalived names them.
const (
	Master = "MASTER"
	Backup = "BACKUP"
	Fault  = "FAULT"
	Stop   = "STOP"
)

// Defaults.
const (
	DefaultTimeout  = 10 * time.Second
	DefaultQueueLen = 16
)

// Kinds for keepalived's first generic argument.
const (
	KindInstance = "INSTANCE" // a vrrp_instance (default)
	KindGroup    = "GROUP"    // a vrrp_sync_group: priority passed as 0
)

// ErrConfig: a Config is invalid.
var ErrConfig = errors.New("notify: invalid config")

// Config is keepalived's notify_master / notify_backup / notify_fault /
// notify_stop / notify for one group. Each is a command line, split as
// keepalived splits it (script.ParseLine): an absolute program path and
// its own arguments, e.g. `/usr/local/bin/vrrp.sh MASTER VI_1`. Empty ones
// are not run.
type Config struct {
	Master, Backup, Fault, Stop string // run with their own arguments only, on entering that state
	Generic                     string // run with its own arguments, then KIND NAME STATE PRIORITY, on every state
	Timeout                     time.Duration
	RunAs                       string // user to run as; "" = the daemon's user
	// Kind is $1 of the generic script: KindInstance (default) or KindGroup.
	Kind string
	// QueueLen bounds the notifications waiting to run; 0 = DefaultQueueLen.
	QueueLen int
}

// Counters are cumulative, for metrics.
type Counters struct {
	Runs     uint64 // script runs finished (any outcome)
	Failures uint64 // runs that did not exit 0, timeouts included
	Timeouts uint64 // runs killed at Timeout
	Dropped  uint64 // notifications dropped: queue full (oldest dropped) or unknown state
}

type item struct {
	state    string
	priority uint8
	epoch    uint64
}

// Notifier runs one group's notify scripts, one at a time, in the order
// notifications were made.
type Notifier struct {
	group string
	cfg   Config
	cmds  map[string]script.Command // by state; "" = the generic script
	log   *slog.Logger

	mu    sync.Mutex
	queue []item
	wake  chan struct{}

	runMu sync.Mutex // held while running one notification: Run and Flush never overlap

	runs, failures, timeouts, dropped atomic.Uint64
}

// New validates cfg (every non-empty command line with script.ParseLine
// and its program with script.Check, the RunAs user, Kind) and fills in
// defaults. It starts nothing.
func New(group string, cfg Config, log *slog.Logger) (*Notifier, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	if group == "" {
		errs = append(errs, fmt.Errorf("%w: group name must be set", ErrConfig))
	}
	cmds := map[string]script.Command{}
	for _, s := range []struct{ key, state, line string }{{"notify_master", Master, cfg.Master}, {"notify_backup", Backup, cfg.Backup},
		{"notify_fault", Fault, cfg.Fault}, {"notify_stop", Stop, cfg.Stop}, {"notify", "", cfg.Generic}} {
		if s.line == "" {
			continue
		}
		c, err := script.ParseLine(s.line)
		if err == nil {
			err = script.Check(c.Path)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %s %q: %w", ErrConfig, s.key, s.line, err))
			continue
		}
		cmds[s.state] = c
	}
	if err := script.CheckUser(cfg.RunAs); err != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrConfig, err))
	}
	switch cfg.Kind {
	case "":
		cfg.Kind = KindInstance
	case KindInstance, KindGroup:
	default:
		errs = append(errs, fmt.Errorf("%w: kind %q: want %s or %s", ErrConfig, cfg.Kind, KindInstance, KindGroup))
	}
	if cfg.Timeout < 0 || cfg.QueueLen < 0 {
		errs = append(errs, fmt.Errorf("%w: timeout and queue length must not be negative", ErrConfig))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.QueueLen == 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	return &Notifier{group: group, cfg: cfg, cmds: cmds, log: log.With("group", group), wake: make(chan struct{}, 1)}, nil
}

// Notify queues a notification and returns at once. state is MASTER,
// BACKUP, FAULT or STOP (anything else is logged and dropped). When the
// queue is full the oldest waiting notification is dropped and counted.
func (n *Notifier) Notify(state string, priority uint8, epoch uint64) {
	switch state {
	case Master, Backup, Fault, Stop:
	default:
		n.dropped.Add(1)
		n.log.Error("notify: unknown state dropped", "state", state, "epoch", epoch)
		return
	}
	n.mu.Lock()
	if len(n.queue) >= n.cfg.QueueLen {
		old := n.queue[0]
		n.queue = append(n.queue[:0], n.queue[1:]...)
		n.dropped.Add(1)
		n.log.Warn("notify: queue full, oldest notification dropped", "state", old.state, "epoch", old.epoch, "queue", n.cfg.QueueLen)
	}
	n.queue = append(n.queue, item{state: state, priority: priority, epoch: epoch})
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Pending is the number of notifications waiting to run.
func (n *Notifier) Pending() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.queue)
}

// Counters returns the cumulative counters.
func (n *Notifier) Counters() Counters {
	return Counters{Runs: n.runs.Load(), Failures: n.failures.Load(), Timeouts: n.timeouts.Load(), Dropped: n.dropped.Load()}
}

// Run runs queued notifications until ctx ends; a script running then is
// killed with its process group, and Run returns nil once it is reaped.
// Notifications still queued stay queued (see Flush).
func (n *Notifier) Run(ctx context.Context) error {
	for {
		for n.runNext(ctx) {
		}
		select {
		case <-ctx.Done():
			return nil
		case <-n.wake:
		}
	}
}

// Flush runs every queued notification now, in order, one at a time (after
// a run in progress in Run), until the queue is empty or ctx ends: for
// shutdown, after Notify(STOP) and after Run has returned, under a
// time-boxed context. It returns ctx's error if it ended first.
func (n *Notifier) Flush(ctx context.Context) error {
	for n.runNext(ctx) {
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("notify: flush: %w (%d left)", err, n.Pending())
	}
	return nil
}

// runNext runs the oldest notification and reports whether there was one
// (false also when ctx has ended).
func (n *Notifier) runNext(ctx context.Context) bool {
	n.runMu.Lock()
	defer n.runMu.Unlock()
	if ctx.Err() != nil {
		return false
	}
	n.mu.Lock()
	if len(n.queue) == 0 {
		n.mu.Unlock()
		return false
	}
	it := n.queue[0]
	n.queue = append(n.queue[:0], n.queue[1:]...)
	n.mu.Unlock()
	for _, c := range n.commands(it) {
		n.run(ctx, c, it)
	}
	return true
}

// commands is what keepalived runs for a notification, in its order: the
// state's own script with its own arguments, then the generic one with its
// own arguments followed by KIND NAME STATE PRIORITY (priority 0 for a
// GROUP).
func (n *Notifier) commands(it item) []script.Command {
	env := []string{
		"LEASEHOLD_GROUP=" + n.group,
		"LEASEHOLD_EPOCH=" + strconv.FormatUint(it.epoch, 10),
		"LEASEHOLD_STATE=" + it.state,
		"LEASEHOLD_PRIORITY=" + strconv.Itoa(int(it.priority)),
	}
	var out []script.Command
	if c, ok := n.cmds[it.state]; ok {
		out = append(out, script.Command{Path: c.Path, Args: c.Args, Env: env, Timeout: n.cfg.Timeout, RunAs: n.cfg.RunAs})
	}
	if c, ok := n.cmds[""]; ok {
		prio := int(it.priority)
		if n.cfg.Kind == KindGroup {
			prio = 0
		}
		args := append(slices.Clip(c.Args), n.cfg.Kind, n.group, it.state, strconv.Itoa(prio))
		out = append(out, script.Command{Path: c.Path, Args: args, Env: env, Timeout: n.cfg.Timeout, RunAs: n.cfg.RunAs})
	}
	return out
}

func (n *Notifier) run(ctx context.Context, c script.Command, it item) {
	res := script.Run(ctx, c)
	// Failures and timeouts are counted before the run itself, so a reader
	// that sees Runs == N sees the outcome of all N.
	if !res.OK() {
		n.failures.Add(1)
		if res.TimedOut {
			n.timeouts.Add(1)
		}
	}
	n.runs.Add(1)
	attrs := []any{"state", it.state, "epoch", it.epoch, "script", c.Path, "result", res.Reason(), "took", res.Took}
	if len(res.Output) > 0 {
		attrs = append(attrs, "output", string(res.Output))
	}
	if res.OK() {
		n.log.Info("notify: script done", attrs...)
		return
	}
	n.log.Warn("notify: script failed", append(attrs, "err", res.Err)...)
}
