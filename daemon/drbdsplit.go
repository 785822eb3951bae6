package daemon

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/storage/drbd"
)

// splitBrainInterval is how often a DRBD resource is checked for a split
// brain: one read of /proc/drbd and a stat of the handler's marker (no
// program is run unless there is something to resolve).
const splitBrainInterval = time.Second

// splitBrainRetry is the pause between two attempts to resolve one split
// brain (DRBD may refuse a connect while it tears the old one down).
const splitBrainRetry = 10 * time.Second

// splitBrainWatch follows one DRBD resource for split brains: DRBD 8.4
// detects them when the nodes reconnect, drops the connection
// (StandAlone) and calls its split-brain handler, which leaves a marker
// (storage/drbd.SplitBrainMarker). The watch reports what it sees (status,
// metric, log) and, with after_split_brain: lease, carries out the
// decision (storage/drbd.DecideSplitBrain). It removes the marker once
// DRBD is connected again.
type splitBrainWatch struct {
	group, self, marker string
	policy              string
	r                   *drbd.Resource
	q                   quorum.Backend // nil: no quorum (the lease cannot be read)
	log                 *slog.Logger

	mu        sync.Mutex
	active    bool      // a split brain is reported now
	since     time.Time // when it was first seen
	decision  string    // the last decision and its reason
	resolved  uint64    // split brains seen to end (connected again)
	lastTry   time.Time
	lastError string
	discarded string // generation identifiers this node gave up (the last discard)
}

// SplitBrainStatus is a DRBD resource's split-brain report in GET /status.
type SplitBrainStatus struct {
	Active    bool      `json:"active"`
	Since     time.Time `json:"since,omitzero"`
	Decision  string    `json:"decision,omitempty"`
	Resolved  uint64    `json:"resolved,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	// Discarded: the data generation identifiers (drbdadm get-gi) this
	// node had when it discarded its writes after the last split brain.
	Discarded string `json:"discarded_generation,omitempty"`
}

func (w *splitBrainWatch) status() SplitBrainStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	return SplitBrainStatus{Active: w.active, Since: w.since, Decision: w.decision, Resolved: w.resolved, LastError: w.lastError, Discarded: w.discarded}
}

// run checks every splitBrainInterval until ctx ends.
func (w *splitBrainWatch) run(ctx context.Context) {
	t := time.NewTicker(splitBrainInterval)
	defer t.Stop()
	for {
		w.check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check is one round: read, decide, report, act.
func (w *splitBrainWatch) check(ctx context.Context) {
	st, err := w.r.State()
	if err != nil && !st.Configured() {
		return
	}
	_, serr := os.Stat(w.marker)
	marked := serr == nil
	if marked && st.Connected {
		// Connected again: the split brain is over (resolved here, by the
		// peer, or by the operator).
		if err := os.Remove(w.marker); err != nil && !errors.Is(err, fs.ErrNotExist) {
			w.log.Warn("drbd: split brain over but its marker stays", "marker", w.marker, "err", err)
		}
		w.mu.Lock()
		was := w.active
		w.active, w.resolved = false, w.resolved+1
		w.decision = ""
		w.mu.Unlock()
		w.log.Info("drbd: split brain over: connected again", "state", st.String(), "was_reported", was)
		return
	}
	in := drbd.SplitBrainInput{State: st, Marked: marked, Policy: w.policy, Self: w.self}
	if marked && st.Conn == drbd.StandAlone && w.policy == drbd.SplitBrainLease && w.q != nil {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		h, held, err := w.q.Inspect(cctx, w.group)
		cancel()
		in.HolderKnown = err == nil
		if held {
			in.Holder = h.Node
		}
	}
	action, why := drbd.DecideSplitBrain(in)
	// Only a marked StandAlone is a split brain; a StandAlone alone is
	// logged once as a decision but not counted.
	active := marked && action != drbd.SplitBrainNone
	w.mu.Lock()
	first := active && !w.active
	changed := why != w.decision
	if first {
		w.since = time.Now()
	}
	w.active, w.decision = active, why
	try := (action == drbd.SplitBrainDiscardMine || action == drbd.SplitBrainReconnect) && time.Since(w.lastTry) >= splitBrainRetry
	if try {
		w.lastTry = time.Now()
	}
	w.mu.Unlock()
	switch {
	case first:
		w.log.Error("drbd: split brain", "decision", action.String(), "reason", why)
	case changed && why != "":
		w.log.Warn("drbd: split brain decision", "decision", action.String(), "reason", why)
	}
	if !try {
		return
	}
	// The lease read above may be stale by the time the resource is free
	// (a promotion may be under way): read it again under the resource's
	// lock, and act only on the same decision.
	still := func(ctx context.Context) bool {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		h, held, err := w.q.Inspect(cctx, w.group)
		now := in
		now.HolderKnown, now.Holder = err == nil, ""
		if held {
			now.Holder = h.Node
		}
		a, _ := drbd.DecideSplitBrain(now)
		return a == action
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	gi, err := w.r.ResolveSplitBrain(cctx, action, still)
	cancel()
	w.mu.Lock()
	w.lastError = ""
	if err != nil {
		w.lastError = err.Error()
	}
	if action == drbd.SplitBrainDiscardMine && err == nil {
		w.discarded = gi
	}
	w.mu.Unlock()
	switch {
	case errors.Is(err, drbd.ErrDecisionChanged):
		w.mu.Lock()
		w.lastTry = time.Time{} // decide again at the next round
		w.mu.Unlock()
		w.log.Warn("drbd: split brain: not carried out, the lease moved while waiting for the resource", "decision", action.String())
	case err != nil:
		w.log.Error("drbd: resolving the split brain failed; retrying", "decision", action.String(), "generation", gi, "err", err, "retry_in", splitBrainRetry)
	case action == drbd.SplitBrainDiscardMine:
		w.log.Warn("drbd: split brain: discarded this node's writes since the split (the lease holder's data wins); reconnected with --discard-my-data",
			"discarded_generation", gi)
	default:
		w.log.Warn("drbd: split brain: this node holds the lease and keeps its data; reconnected", "generation", gi)
	}
}
