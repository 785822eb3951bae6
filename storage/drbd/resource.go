package drbd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrRefused: the promotion decision said no (MayPromote's reason
// follows).
var ErrRefused = errors.New("drbd: promotion refused")

// ErrStillPrimary: a demotion ran but DRBD still reports Primary.
var ErrStillPrimary = errors.New("drbd: still Primary after demote")

// Resource is one DRBD resource of a group as a node/resource.Resource:
// Promote makes this node Primary, mounts and starts the services;
// Demote undoes it in reverse; Start (before the group runs) demotes a
// Primary left by an earlier run. Promote, Demote and Start are for one
// chain (it serialises them); State and Refusals may be called from
// anywhere.
type Resource struct {
	cfg   Config
	minor int
	ex    Executor
	log   *slog.Logger
	// OutdatedAtQuorum, if set, tells whether the quorum marks this node
	// outdated; an error refuses the promotion (doubt means no).
	OutdatedAtQuorum func(ctx context.Context) (bool, error)
	// ClearOutdated, if set, removes this node's mark at the quorum; a
	// promotion calls it (best effort) when the mark is stale (StaleMark).
	ClearOutdated func(ctx context.Context) error
	// wait sleeps between unmount attempts (a timer; tests run in a
	// synctest bubble).
	wait func(ctx context.Context, d time.Duration) error
	// ops admits one promotion, demotion or split-brain resolution at a
	// time (the group's chain and the split-brain watch both act on the
	// resource); a caller waits for it no longer than its context.
	ops chan struct{}

	mu          sync.Mutex
	refusals    uint64
	lastRefusal string
	marked      int // the last promotion's reading of the mark: 0 not read, 1 none, 2 marked
}

// OutdatedMark returns what the last promotion read of this node's
// outdated mark at the quorum (known false: never read, or unreadable).
func (r *Resource) OutdatedMark() (marked, known bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.marked == 2, r.marked != 0
}

// Refusals returns how many promotions the decision refused and the last
// refusal's reason (for status and metrics).
func (r *Resource) Refusals() (n uint64, last string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refusals, r.lastRefusal
}

func (r *Resource) refused(reason string) error {
	r.mu.Lock()
	r.refusals++
	r.lastRefusal = reason
	r.mu.Unlock()
	return fmt.Errorf("%w: %s", ErrRefused, reason)
}

// New returns the resource for cfg (validated; defaults filled in). It
// starts and reads nothing.
func New(cfg Config, ex Executor, log *slog.Logger) (*Resource, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	minor, _ := MinorOf(cfg.Device)
	cfg = cfg.withDefaults()
	return &Resource{cfg: cfg, minor: minor, ex: ex, log: log.With("drbd", cfg.Resource), wait: sleep, ops: make(chan struct{}, 1)}, nil
}

// acquire takes ops, or fails when ctx ends first; release gives it back.
func (r *Resource) acquire(ctx context.Context, what string) error {
	select {
	case r.ops <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("drbd %s: %s: waiting for another operation on the resource: %w", r.cfg.Resource, what, ctx.Err())
	}
}

func (r *Resource) release() { <-r.ops }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Name implements resource.Resource.
func (r *Resource) Name() string { return "drbd " + r.cfg.Resource }

// State reads the resource's minor from /proc/drbd. An unconfigured minor
// returns its State (Conn Unconfigured) with an error wrapping ErrNoMinor.
func (r *Resource) State() (State, error) { return readMinor(r.ex, r.cfg.Paths.ProcDRBD, r.minor) }

// readMinor reads minor's state from the /proc/drbd at path.
func readMinor(ex Executor, path string, minor int) (State, error) {
	b, err := ex.ReadFile(path)
	if err != nil {
		return State{Minor: minor}, fmt.Errorf("drbd: read %s (is the drbd module loaded?): %w", path, err)
	}
	p, err := ParseProc(b)
	if err != nil {
		return State{Minor: minor}, err
	}
	return p.Minor(minor)
}

// describe is the state for an error message: what DRBD says now.
func (r *Resource) describe() string {
	s, err := r.State()
	if err != nil && !errors.Is(err, ErrNoMinor) {
		return "DRBD state unreadable: " + err.Error()
	}
	return "DRBD now " + s.String()
}

// stepError names the failed step and what DRBD says afterwards.
func (r *Resource) stepError(step string, err error) error {
	return fmt.Errorf("%s: %w (%s)", step, err, r.describe())
}

// run runs one step bounded by the step timeout and ctx.
func (r *Resource) run(ctx context.Context, epoch uint64, path string, args ...string) error {
	c := Command{Path: path, Args: args, Timeout: r.cfg.StepTimeout,
		Env: []string{"LEASEHOLD_EPOCH=" + strconv.FormatUint(epoch, 10), "LEASEHOLD_DRBD_RESOURCE=" + r.cfg.Resource}}
	start := time.Now()
	out, err := r.ex.Run(ctx, c)
	if err != nil {
		if o := strings.TrimSpace(string(out)); o != "" && !strings.Contains(err.Error(), o) {
			err = fmt.Errorf("%w: %s", err, o)
		}
		return err
	}
	r.log.Debug("drbd: step done", "cmd", c.String(), "took", time.Since(start))
	return nil
}

// Promote implements resource.Resource: check the decision, drbdadm
// primary, mount, start the services in order. On a failure it undoes
// what it did (Demote) and returns the failure.
func (r *Resource) Promote(ctx context.Context, epoch uint64) error {
	if err := r.acquire(ctx, "promote"); err != nil {
		return err
	}
	defer r.release()
	s, err := r.State()
	if err != nil && !errors.Is(err, ErrNoMinor) {
		return fmt.Errorf("read state: %w", err)
	}
	marked := false
	if r.OutdatedAtQuorum != nil {
		marked, err = r.OutdatedAtQuorum(ctx)
		r.mu.Lock()
		switch {
		case err != nil:
			r.marked = 0
		case marked:
			r.marked = 2
		default:
			r.marked = 1
		}
		r.mu.Unlock()
		if err != nil {
			return r.refused(fmt.Sprintf("cannot read this node's outdated mark at the quorum: %v", err))
		}
	}
	ok, reason := MayPromote(PromoteInput{State: s, OutdatedAtQuorum: marked})
	if !ok {
		r.log.Warn("drbd: promotion refused", "epoch", epoch, "reason", reason)
		return r.refused(reason)
	}
	if marked && StaleMark(s) && r.ClearOutdated != nil {
		err := r.ClearOutdated(ctx)
		if err == nil {
			r.mu.Lock()
			r.marked = 1
			r.mu.Unlock()
		}
		r.log.Info("drbd: cleared this node's stale outdated mark at the quorum (connected and in sync)", "state", s.String(), "err", err)
	}
	r.log.Info("drbd: promoting", "epoch", epoch, "reason", reason)
	if err := r.promote(ctx, epoch, s); err != nil {
		if undo := r.demote(ctx, epoch); undo != nil {
			return errors.Join(err, fmt.Errorf("undo: %w", undo))
		}
		return err
	}
	return nil
}

func (r *Resource) promote(ctx context.Context, epoch uint64, s State) error {
	p := r.cfg.Paths
	if s.Role != Primary {
		if err := r.run(ctx, epoch, p.Drbdadm, "primary", r.cfg.Resource); err != nil {
			return r.stepError("drbdadm primary "+r.cfg.Resource, err)
		}
		if now, err := r.State(); err != nil || now.Role != Primary {
			return r.stepError("drbdadm primary "+r.cfg.Resource, errors.New("DRBD does not report Primary afterwards"))
		}
	}
	if r.cfg.Mount != "" {
		mounted, err := r.mounted()
		if err != nil {
			return r.stepError("check mount "+r.cfg.Mount, err)
		}
		if !mounted {
			args := []string{"-t", r.cfg.FSType}
			if r.cfg.MountOptions != "" {
				args = append(args, "-o", r.cfg.MountOptions)
			}
			if err := r.run(ctx, epoch, p.Mount, append(args, r.cfg.Device, r.cfg.Mount)...); err != nil {
				return r.stepError(fmt.Sprintf("mount %s on %s", r.cfg.Device, r.cfg.Mount), err)
			}
		}
	}
	for _, sv := range r.cfg.Services {
		if err := r.service(ctx, epoch, sv, "start"); err != nil {
			return r.stepError("start "+sv.String(), err)
		}
	}
	return nil
}

func (r *Resource) service(ctx context.Context, epoch uint64, sv Service, verb string) error {
	if sv.Script != "" {
		return r.run(ctx, epoch, sv.Script, verb)
	}
	return r.run(ctx, epoch, r.cfg.Paths.Systemctl, verb, sv.Unit)
}

// Demote implements resource.Resource: stop the services in reverse,
// unmount (bounded retries; the holders killed if configured), drbdadm
// secondary. Every step runs even after a failure; the error names each
// failed step and DRBD's state. ctx bounds it all (the group's demote
// budget), the step timeout each program.
func (r *Resource) Demote(ctx context.Context, epoch uint64) error {
	if err := r.acquire(ctx, "demote"); err != nil {
		return err
	}
	defer r.release()
	return r.demote(ctx, epoch)
}

func (r *Resource) demote(ctx context.Context, epoch uint64) error {
	s, serr := r.State()
	// Known: read, or the minor is down, or the module is not loaded (no
	// /proc/drbd: nothing can be Primary). Anything else is doubt.
	known := serr == nil || errors.Is(serr, ErrNoMinor) || errors.Is(serr, fs.ErrNotExist)
	if errors.Is(serr, fs.ErrNotExist) {
		s = State{Minor: r.minor, Conn: Unconfigured}
	}
	mounted := false
	if r.cfg.Mount != "" {
		var err error
		switch mounted, err = r.mounted(); {
		case errors.Is(err, errForeignMount):
			r.log.Warn("drbd: not unmounting a filesystem that is not the device's", "err", err)
		case err != nil:
			mounted = true // cannot tell: try to unmount
		}
	}
	need := NeedsForDemote(s, known, mounted)
	r.log.Info("drbd: demoting", "epoch", epoch, "reason", need.Reason)
	var errs []error
	for _, sv := range slices.Backward(r.cfg.Services) {
		if err := r.service(ctx, epoch, sv, "stop"); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", sv, err))
		}
	}
	if need.Unmount {
		if err := r.unmount(ctx, epoch); err != nil {
			errs = append(errs, err)
		}
	}
	if need.Secondary {
		if err := r.run(ctx, epoch, r.cfg.Paths.Drbdadm, "secondary", r.cfg.Resource); err != nil {
			errs = append(errs, fmt.Errorf("drbdadm secondary %s: %w", r.cfg.Resource, err))
		}
		if now, err := r.State(); err == nil && now.Role == Primary {
			errs = append(errs, ErrStillPrimary)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w (%s)", errors.Join(errs...), r.describe())
	}
	return nil
}

// unmount unmounts the mountpoint, retrying while it is busy (killing its
// holders before each retry if configured), at most UnmountAttempts
// times.
func (r *Resource) unmount(ctx context.Context, epoch uint64) error {
	p := r.cfg.Paths
	var last error
	for attempt := 1; ; attempt++ {
		err := r.run(ctx, epoch, p.Umount, r.cfg.Mount)
		if err == nil {
			return nil
		}
		if m, merr := r.mounted(); (merr == nil && !m) || errors.Is(merr, errForeignMount) {
			return nil // gone anyway (not mounted, or unmounted meanwhile)
		}
		last = err
		if attempt >= r.cfg.UnmountAttempts || ctx.Err() != nil {
			break
		}
		if r.cfg.KillHolders {
			pids, kerr := r.ex.KillHolders(r.cfg.Mount, r.cfg.Device)
			if len(pids) > 0 || kerr != nil {
				r.log.Warn("drbd: killed the mount's holders", "mount", r.cfg.Mount, "pids", pids, "err", kerr)
			}
			if kerr != nil {
				last = errors.Join(last, kerr)
			}
		}
		if err := r.wait(ctx, r.cfg.RetryInterval); err != nil {
			break
		}
	}
	hint := ""
	if !r.cfg.KillHolders {
		hint = " (kill_holders is off)"
	}
	return fmt.Errorf("umount %s: still mounted after %d attempts%s: %w", r.cfg.Mount, r.cfg.UnmountAttempts, hint, last)
}

// errForeignMount: another filesystem than the device's is mounted on the
// mountpoint (not ours to serve, nor to unmount).
var errForeignMount = errors.New("drbd: another filesystem is mounted there")

// mounted reports whether the device is mounted on the mountpoint (the
// last mount there, the visible one); something else mounted there is an
// error wrapping errForeignMount.
func (r *Resource) mounted() (bool, error) {
	b, err := r.ex.ReadFile(r.cfg.Paths.Mountinfo)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", r.cfg.Paths.Mountinfo, err)
	}
	src, ok := MountSource(b, r.cfg.Mount)
	switch {
	case !ok:
		return false, nil
	case src == r.cfg.Device:
		return true, nil
	}
	// A symlink to the device (/dev/drbd/by-res/r0/0) is the device.
	if real, err := filepath.EvalSymlinks(src); err == nil && real == r.cfg.Device {
		return true, nil
	}
	return false, fmt.Errorf("%w: %s is mounted on %s, not %s", errForeignMount, src, r.cfg.Mount, r.cfg.Device)
}

// Start implements resource.Starter: a node starting finds its own
// leftovers (no lease is held yet): a Primary, a mounted filesystem or an
// unreadable state is demoted before the group joins VRRP. A Secondary with nothing mounted
// is left alone (its services too). An unloaded module or an
// unconfigured minor is nothing to demote.
func (r *Resource) Start(ctx context.Context) error {
	s, serr := r.State()
	mounted := false
	if r.cfg.Mount != "" {
		var err error
		if mounted, err = r.mounted(); err != nil && !errors.Is(err, errForeignMount) {
			return fmt.Errorf("start: %w", err)
		}
	}
	switch {
	case mounted:
	case errors.Is(serr, fs.ErrNotExist):
		r.log.Warn("drbd: no /proc/drbd at start (module not loaded): nothing to demote; promotion is refused until it is", "err", serr)
		return nil
	case (serr == nil || errors.Is(serr, ErrNoMinor)) && s.Role != Primary:
		r.log.Info("drbd: at start", "state", s.String())
		return nil
	}
	// Primary, mounted, or a state that cannot be read: demote (doubt
	// means demote).
	r.log.Warn("drbd: Primary, mounted or unknown at start without the lease: demoting before joining VRRP",
		"state", s.String(), "mounted", mounted, "err", serr)
	if err := r.Demote(ctx, 0); err != nil {
		return fmt.Errorf("start: demote a leftover Primary: %w", err)
	}
	return nil
}

// MountSource finds mountpoint in /proc/self/mountinfo text and returns
// its source (the device). The last mount on a mountpoint is the visible
// one.
func MountSource(mountinfo []byte, mountpoint string) (source string, ok bool) {
	for line := range strings.SplitSeq(string(mountinfo), "\n") {
		f := strings.Fields(line)
		// id parent maj:min root mountpoint options [optional...] - fstype source superopts
		if len(f) < 10 || unescapeMount(f[4]) != mountpoint {
			continue
		}
		for i := 6; i+2 < len(f); i++ {
			if f[i] == "-" {
				source, ok = unescapeMount(f[i+2]), true
				break
			}
		}
	}
	return source, ok
}

// unescapeMount undoes the kernel's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
