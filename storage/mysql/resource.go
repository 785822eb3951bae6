package mysql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
)

// ErrRefused: the promotion decision said no (MayPromote's reason
// follows).
var ErrRefused = errors.New("mysql: promotion refused")

// ErrStillWritable: a demotion ran but the server still reports
// read_only off.
var ErrStillWritable = errors.New("mysql: still writable after demote")

// Resource is the local MySQL/MariaDB server of a group as a
// node/resource.Resource: Promote makes it writable for the grant's
// epoch, Demote read-only with its clients disconnected, Start (before
// the group runs) makes a server left writable read-only. Check is the
// health check and the watch of a server that must be read-only. Promote,
// Demote and Start are for one chain (it serialises them); Check and
// Stats may be called from anywhere.
type Resource struct {
	cfg  Config
	name string
	srv  Server
	peer Server // nil: no peer fence
	log  *slog.Logger
	now  func() time.Time

	// act is held by Promote, Demote, Start and the watch's corrections,
	// so the watch never makes a server read-only halfway through a
	// promotion.
	act      sync.Mutex
	promoted uint64 // epoch the server is writable for; 0: it must be read-only
	// behind: the last promotion was refused because the relay log was
	// not applied in time (a node back from a partition whose replication
	// has not caught up): the health check fails until this server has
	// applied what the peer wrote, so the group does not keep taking the
	// lease from the serving peer by preemption only to refuse again.
	behind bool

	mu    sync.Mutex
	stats Stats
}

// Stats are a Resource's counters and last outcomes, for status and
// metrics.
type Stats struct {
	Promoted       uint64 // epoch promoted under (0: read-only)
	Refusals       uint64
	LastRefusal    string
	PromotedAnyway uint64 // promotions allowed by promote_anyway
	LastCatchup    string
	// Killed counts client connections ended (demotions, the watch, the
	// peer fence); BypassKilled those of accounts that ignore read_only
	// found on a read-only server by the watch.
	Killed, BypassKilled uint64
	// Corrected counts the times the watch found the server writable
	// without the lease and made it read-only.
	Corrected uint64
	// Reasserted counts the times the watch found the server read-only
	// while it must be writable (promoted for the current epoch: someone
	// else set read_only, or mysqld restarted read-only) and set read_only
	// OFF again after checking the epoch table; LastReassert says what it
	// last found and did (also when it did not re-assert).
	Reasserted   uint64
	LastReassert string
	// SemiSync is what the server says of semi-synchronous replication:
	// "" (not available), "off", "on" (a commit waits for the peer) or
	// "on, fallen back to asynchronous" (no answer from the peer within
	// the timeout; it resumes when the peer's replica reconnects).
	SemiSync      string
	LastPeerFence string
	LastCheck     string
	Healthy       bool
}

// New returns the resource for cfg (validated; defaults filled in) over
// srv, and peer for the peer fence (nil: none). It connects to nothing.
func New(cfg Config, srv, peer Server, log *slog.Logger) (*Resource, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.Defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	where := cfg.Socket
	if where == "" {
		where = cfg.Address
	}
	r := &Resource{cfg: cfg, name: "mysql " + where, srv: srv, log: log.With("mysql", where), now: time.Now}
	if peer != nil { // a nil *SQL must not become a non-nil Server
		r.peer = peer
	}
	return r, nil
}

// Dial returns the resource for cfg over go-sql-driver/mysql (Servers).
func Dial(cfg Config, log *slog.Logger) (*Resource, error) {
	srv, peer, err := Servers(cfg)
	if err != nil {
		return nil, err
	}
	return New(cfg, srv, peer, log)
}

// Servers returns the real Servers of cfg: the local server by its socket
// or address, and the peer over TCP (nil without a peer), reading the
// credentials files. It connects to nothing yet.
func Servers(cfg Config) (local, peer Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	cfg = cfg.Defaults()
	QuietDriverLog()
	cred, err := ReadCredentials(cfg.CredentialsFile)
	if err != nil {
		return nil, nil, fmt.Errorf("mysql: %w", err)
	}
	e := Endpoint{Net: "unix", Addr: cfg.Socket}
	if cfg.Socket == "" {
		e = Endpoint{Net: "tcp", Addr: cfg.Address}
	}
	srv, err := Open(e, cred, cfg.StepTimeout)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Peer == "" {
		return srv, nil, nil
	}
	pc, err := ReadCredentials(cfg.PeerCredentialsFile)
	if err != nil {
		srv.Close()
		return nil, nil, fmt.Errorf("mysql: peer: %w", err)
	}
	ps, err := Open(Endpoint{Net: "tcp", Addr: cfg.Peer}, pc, cfg.PeerTimeout)
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	// The peer fence is rare, and an idle session of ours on the peer is
	// one its own watch kills (our account ignores read_only): keep none.
	ps.db.SetMaxIdleConns(0)
	return srv, ps, nil
}

// Close closes the connections to the server and the peer.
func (r *Resource) Close() error {
	var errs []error
	for _, s := range []Server{r.srv, r.peer} {
		if c, ok := s.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// QuietDriverLog silences go-sql-driver/mysql's global logger (once, for
// the process): it writes to stderr about connections the server closed
// (killed by a demotion or a fence, as intended here) and its errors are
// returned to the caller anyway.
func QuietDriverLog() { quietDriver.Do(func() { gomysql.SetLogger(discard{}) }) }

var quietDriver sync.Once

type discard struct{}

func (discard) Print(...any) {}

// Config is the resource's configuration, defaults filled in.
func (r *Resource) Config() Config { return r.cfg }

// Name implements resource.Resource.
func (r *Resource) Name() string { return r.name }

// Stats returns the counters and last outcomes.
func (r *Resource) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

func (r *Resource) update(f func(*Stats)) {
	r.mu.Lock()
	f(&r.stats)
	r.mu.Unlock()
}

// step runs one call bounded by the step timeout and ctx.
func step[T any](ctx context.Context, d time.Duration, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return f(ctx)
}

func (r *Resource) setReadOnly(ctx context.Context, srv Server, on bool) error {
	_, err := step(ctx, r.cfg.StepTimeout, func(ctx context.Context) (struct{}, error) { return struct{}{}, srv.SetReadOnly(ctx, on) })
	return err
}

func (r *Resource) refused(reason string) error {
	r.update(func(s *Stats) { s.Refusals++; s.LastRefusal = reason })
	r.log.Warn("mysql: promotion refused", "reason", reason)
	return fmt.Errorf("%w: %s", ErrRefused, reason)
}

// Promote implements resource.Resource: fence the peer (best effort),
// wait for the relay log to be applied, check the epoch against the
// epoch table, record it, and set read_only off. A refusal is ErrRefused
// with the reason; a failure after read_only went off sets it on again.
func (r *Resource) Promote(ctx context.Context, epoch uint64) error {
	r.act.Lock()
	defer r.act.Unlock()
	st, err := step(ctx, r.cfg.StepTimeout, r.srv.Status)
	if err != nil {
		return fmt.Errorf("read status: %w", err)
	}
	// A stale epoch is refused before anything is done to the peer: a
	// late promotion from an old grant must not fence the real owner.
	rows, err := step(ctx, r.cfg.StepTimeout, r.srv.Epochs)
	if err != nil {
		return r.refused(fmt.Sprintf("cannot read the epoch table: %v", err))
	}
	if d := MayPromote(PromoteInput{Epoch: epoch, ServerID: st.ServerID, Epochs: rows}); !d.OK {
		return r.refused(d.Reason)
	}
	peerTarget := ""
	if r.peer != nil {
		peerTarget = r.fencePeer(ctx, epoch, st.ServerID)
	}
	cu := r.catchup(ctx, st.ServerID, peerTarget)
	// Again after the catch-up: the peer's newer row may have arrived.
	rows, err = step(ctx, r.cfg.StepTimeout, r.srv.Epochs)
	if err != nil {
		return r.refused(fmt.Sprintf("cannot read the epoch table: %v", err))
	}
	d := MayPromote(PromoteInput{Epoch: epoch, ServerID: st.ServerID, Epochs: rows, Catchup: cu, Policy: r.cfg.CatchupPolicy, Timeout: r.cfg.CatchupTimeout})
	r.update(func(s *Stats) { s.LastCatchup = d.Reason })
	if !d.OK {
		r.behind = cu.Needed && !cu.Applied
		return r.refused(d.Reason)
	}
	r.behind = false
	if d.Anyway {
		r.update(func(s *Stats) { s.PromotedAnyway++ })
		r.log.Warn("mysql: promoting although the relay log is not applied", "epoch", epoch, "reason", d.Reason)
	}
	if _, err := step(ctx, r.cfg.StepTimeout, func(ctx context.Context) (struct{}, error) { return struct{}{}, r.srv.RecordEpoch(ctx, epoch) }); err != nil {
		return fmt.Errorf("record epoch: %w", err)
	}
	if err := r.setReadOnly(ctx, r.srv, false); err != nil {
		return errors.Join(fmt.Errorf("set read_only off: %w", err), r.undo(ctx))
	}
	r.promoted = epoch
	r.update(func(s *Stats) { s.Promoted = epoch })
	r.log.Info("mysql: writable", "epoch", epoch, "reason", d.Reason)
	return nil
}

// undo sets read_only on again after a failed promotion.
func (r *Resource) undo(ctx context.Context) error {
	if err := r.setReadOnly(ctx, r.srv, true); err != nil {
		return fmt.Errorf("undo: set read_only on: %w", err)
	}
	return nil
}

// catchup waits, at most the catch-up timeout, until what this server
// received (Gtid_IO_Pos) and what the fenced peer wrote (peerTarget) is
// applied.
func (r *Resource) catchup(ctx context.Context, self uint32, peerTarget string) CatchupResult {
	rep, err := step(ctx, r.cfg.StepTimeout, r.srv.Replica)
	if err != nil {
		return CatchupResult{Needed: true, Err: err.Error()}
	}
	target := MergeTargets(WaitTarget(rep.IOPos, self), peerTarget)
	if target == "" {
		return CatchupResult{}
	}
	if rep.Configured && rep.SQLRunning != "Yes" {
		return CatchupResult{Needed: true, Target: target, Err: fmt.Sprintf("replication SQL thread %s: %s", rep.SQLRunning, rep.LastError)}
	}
	start := r.now()
	wctx, cancel := context.WithTimeout(ctx, r.cfg.CatchupTimeout+r.cfg.StepTimeout)
	defer cancel()
	ok, err := r.srv.WaitApplied(wctx, target, r.cfg.CatchupTimeout)
	cu := CatchupResult{Needed: true, Applied: ok && err == nil, Target: target, Waited: r.now().Sub(start)}
	if err != nil {
		cu.Err = err.Error()
	}
	return cu
}

// fencePeer sets the peer read-only and ends its client connections,
// bounded by the peer timeout; a failure is logged, never returned (the
// peer may be down: that is why this node is promoted). It returns the
// GTIDs the peer wrote that this server must apply (from its binlog
// position once read-only).
func (r *Resource) fencePeer(ctx context.Context, epoch uint64, self uint32) string {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.PeerTimeout)
	defer cancel()
	report := func(msg string, err error) {
		r.update(func(s *Stats) { s.LastPeerFence = msg })
		if err != nil {
			r.log.Warn("mysql: peer fence: "+msg, "peer", r.cfg.Peer, "epoch", epoch, "err", err)
		} else {
			r.log.Info("mysql: peer fence: "+msg, "peer", r.cfg.Peer, "epoch", epoch)
		}
	}
	if err := r.peer.SetReadOnly(ctx, true); err != nil {
		report("failed (peer unreachable or refused)", err)
		return ""
	}
	n, kerr := r.killRound(ctx, r.peer, AllClients)
	st, err := r.peer.Status(ctx)
	if err != nil || !st.ReadOnly {
		report("read_only not confirmed", errors.Join(err, kerr))
		return ""
	}
	report(fmt.Sprintf("peer read-only, %d client connections killed", n), kerr)
	return WaitTarget(st.BinlogPos, self)
}

// killRound ends the sessions of scope on srv and returns how many.
func (r *Resource) killRound(ctx context.Context, srv Server, scope KillScope) (int, error) {
	ss, err := srv.Sessions(ctx)
	if err != nil {
		return 0, fmt.Errorf("list sessions: %w", err)
	}
	var errs []error
	n := 0
	for _, s := range ToKill(ss, scope) {
		if err := srv.Kill(ctx, s.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
		r.log.Info("mysql: killed a client connection", "id", s.ID, "user", s.User, "host", s.Host, "bypasses_read_only", s.Bypass)
	}
	r.update(func(st *Stats) {
		st.Killed += uint64(n)
		if scope == BypassOnly {
			st.BypassKilled += uint64(n)
		}
	})
	return n, errors.Join(errs...)
}

// Demote implements resource.Resource: read_only on first, then every
// client connection is killed (replication threads and ours spared), so
// no client write succeeds afterwards, including those of accounts that
// ignore read_only. Every step runs even after a failure; the error names
// each failed step; ErrStillWritable when the server still says
// writable.
func (r *Resource) Demote(ctx context.Context, epoch uint64) error {
	r.act.Lock()
	defer r.act.Unlock()
	return r.demote(ctx, epoch)
}

func (r *Resource) demote(ctx context.Context, epoch uint64) error {
	r.promoted = 0
	r.update(func(s *Stats) { s.Promoted = 0 })
	// A server that is not running (connection refused, no socket) takes
	// no writes: nothing to demote. A server that does not answer (a
	// timeout) is doubt, and an error.
	if _, err := step(ctx, r.cfg.StepTimeout, r.srv.Status); IsDown(err) {
		r.log.Warn("mysql: server not running: nothing to demote (it must come back read-only: read_only=ON in my.cnf; the watch checks)", "epoch", epoch, "err", err)
		return nil
	}
	var errs []error
	// SET GLOBAL read_only waits for write statements in flight (a long
	// UPDATE holds it up): give it a third of the budget; if that is not
	// enough, kill the clients (their statements roll back) and try again.
	first := r.cfg.StepTimeout
	if dl, ok := ctx.Deadline(); ok {
		first = min(first, time.Until(dl)/3)
	}
	ro := r.setReadOnlyWithin(ctx, first)
	n, err := r.killAll(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("kill client connections: %w", err))
	}
	if ro != nil {
		r.log.Warn("mysql: read_only held up (a write in flight?): clients killed, trying again", "err", ro)
		if ro = r.setReadOnly(ctx, r.srv, true); ro != nil {
			errs = append(errs, fmt.Errorf("set read_only on: %w", ro))
		}
		// Clients that connected between the kill round and read_only.
		m, err := r.killAll(ctx)
		n += m
		if err != nil {
			errs = append(errs, fmt.Errorf("kill client connections: %w", err))
		}
	}
	st, err := step(ctx, r.cfg.StepTimeout, r.srv.Status)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("confirm read_only: %w", err))
	case !st.ReadOnly:
		errs = append(errs, ErrStillWritable)
	}
	r.log.Info("mysql: demoted", "epoch", epoch, "killed", n, "errors", len(errs))
	return errors.Join(errs...)
}

func (r *Resource) setReadOnlyWithin(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return r.srv.SetReadOnly(ctx, true)
}

// killAll kills every client connection, bounded by the step timeout.
func (r *Resource) killAll(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.StepTimeout)
	defer cancel()
	return r.killRound(ctx, r.srv, AllClients)
}

// Start implements resource.Starter: a node starting holds no lease, so a
// writable server is demoted (read-only, clients killed) before the group
// joins VRRP, and on a read-only one the connections of accounts that
// ignore read_only are killed. An unreachable server is not an error
// (mysqld may start later): the watch (Check) makes it read-only when it
// answers; configure read_only=ON in my.cnf so it starts that way.
func (r *Resource) Start(ctx context.Context) error {
	r.act.Lock()
	defer r.act.Unlock()
	st, err := step(ctx, r.cfg.StepTimeout, r.srv.Status)
	switch {
	case err != nil:
		r.log.Warn("mysql: server unreachable at start: the watch makes it read-only when it answers", "err", err)
		return nil
	case !st.ReadOnly:
		r.log.Warn("mysql: writable at start without the lease: demoting before joining VRRP", "server_id", st.ServerID)
		if err := r.demote(ctx, 0); err != nil {
			return fmt.Errorf("start: demote a writable server: %w", err)
		}
		r.update(func(s *Stats) { s.Corrected++ })
		return nil
	}
	kctx, cancel := context.WithTimeout(ctx, r.cfg.StepTimeout)
	defer cancel()
	if _, err := r.killRound(kctx, r.srv, BypassOnly); err != nil {
		return fmt.Errorf("start: kill connections that bypass read_only: %w", err)
	}
	return nil
}

// Check is the native health check (connect, SELECT, replication
// threads, lag; see Health), run by the group's health tracker on the
// check interval; nil is success. It is also the watch of the server's
// read_only (see watch). A promotion or demotion in flight is left alone.
func (r *Resource) Check(ctx context.Context) error {
	st, err := r.srv.Status(ctx)
	var rep Replica
	var rerr, werr error
	if err == nil {
		rep, rerr = r.srv.Replica(ctx)
		werr = r.watch(ctx, st)
	}
	ok, reason := Health(err, rep, rerr, r.cfg.Check.MaxLag)
	if ok && werr != nil {
		ok, reason = false, werr.Error()
	}
	if ok && err == nil {
		if why := r.stillBehind(ctx, st.ServerID, rep); why != "" {
			ok, reason = false, why
		}
	}
	r.update(func(s *Stats) {
		s.LastCheck, s.Healthy = reason, ok
		if err == nil {
			s.SemiSync = semiSyncState(st)
		}
	})
	if !ok {
		return errors.New(reason)
	}
	return nil
}

// stillBehind, after a promotion refused for catch-up, says why this
// server is still behind the peer ("" once it has applied what the peer
// wrote, or when the peer does not answer: then this node may be needed).
func (r *Resource) stillBehind(ctx context.Context, self uint32, rep Replica) string {
	if !r.act.TryLock() {
		return ""
	}
	defer r.act.Unlock()
	if !r.behind || r.promoted != 0 || r.peer == nil {
		r.behind = false
		return ""
	}
	pctx, cancel := context.WithTimeout(ctx, r.cfg.PeerTimeout)
	pst, err := r.peer.Status(pctx)
	cancel()
	if err != nil {
		r.behind = false
		r.log.Info("mysql: the peer does not answer: no longer waiting to catch up with it", "err", err)
		return ""
	}
	target := MergeTargets(WaitTarget(rep.IOPos, self), WaitTarget(pst.BinlogPos, self))
	ok, err := r.srv.WaitApplied(ctx, target, 10*time.Millisecond)
	if err == nil && ok {
		r.behind = false
		r.log.Info("mysql: caught up with the peer after a refused promotion", "applied", target)
		return ""
	}
	return fmt.Sprintf("catching up with the peer after a refused promotion: not applied up to %s yet", target)
}

func semiSyncState(st Status) string {
	switch {
	case !st.HasSemiSync:
		return ""
	case !st.SemiSyncEnabled:
		return "off"
	case !st.SemiSyncActive:
		return "on, fallen back to asynchronous"
	}
	return "on"
}

// watch keeps read_only where the lease says. A server that must be
// read-only (no promotion held) and is found writable is made read-only
// and its clients killed; on a read-only one the connections of accounts
// that ignore read_only are killed, so such an account's writes are cut
// within one interval. A server promoted for the current epoch and found
// read-only (an operator's SET GLOBAL read_only = ON, or mysqld restarted
// with read_only=ON in my.cnf) is made writable again, but only when the
// epoch table shows no newer epoch (nor this one recorded by another
// server): the lease says this server takes the writes, and a VIP in
// front of a read-only server is an outage no failover ends. When the
// epoch table says otherwise, or cannot be read, or read_only cannot be
// set, the returned error fails the health check, so the group leaves
// the lease to the peer (doubt means demote).
func (r *Resource) watch(ctx context.Context, st Status) error {
	if !r.act.TryLock() {
		return nil
	}
	defer r.act.Unlock()
	if r.promoted != 0 {
		if st.ReadOnly {
			return r.reassert(ctx, st)
		}
		return nil
	}
	if !st.ReadOnly {
		r.log.Warn("mysql: writable without the lease: setting read_only and killing client connections", "server_id", st.ServerID)
		r.update(func(s *Stats) { s.Corrected++ })
		if err := r.demote(ctx, 0); err != nil {
			r.log.Error("mysql: watch: demotion failed", "err", err)
		}
		return nil
	}
	if _, err := r.killRound(ctx, r.srv, BypassOnly); err != nil {
		r.log.Warn("mysql: watch: cannot kill connections that bypass read_only", "err", err)
	}
	return nil
}

// reassert sets read_only OFF again on the owner's server found
// read-only, after checking the epoch table (act held).
func (r *Resource) reassert(ctx context.Context, st Status) error {
	epoch := r.promoted
	fail := func(what string) error {
		r.update(func(s *Stats) { s.LastReassert = what })
		r.log.Error("mysql: the owner's server is read-only: "+what, "epoch", epoch, "server_id", st.ServerID)
		return errors.New("read-only although this node owns the group: " + what)
	}
	rows, err := r.srv.Epochs(ctx)
	if err != nil {
		return fail(fmt.Sprintf("not made writable again: cannot read the epoch table: %v", err))
	}
	if d := MayPromote(PromoteInput{Epoch: epoch, ServerID: st.ServerID, Epochs: rows}); !d.OK {
		return fail("not made writable again: " + d.Reason)
	}
	if err := r.srv.SetReadOnly(ctx, false); err != nil {
		return fail(fmt.Sprintf("setting read_only OFF again failed: %v", err))
	}
	what := fmt.Sprintf("found read-only while promoted for epoch %d (set by someone else, or mysqld restarted); read_only OFF again", epoch)
	r.update(func(s *Stats) { s.Reasserted++; s.LastReassert = what })
	r.log.Warn("mysql: "+what+" (to keep a server read-only, stop or demote its leasehold group instead)", "epoch", epoch, "server_id", st.ServerID)
	return nil
}
