package drbd

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// After a split brain (config after_split_brain).
const (
	// SplitBrainManual reports the split brain and waits for the operator
	// (the default).
	SplitBrainManual = "manual"
	// SplitBrainLease resolves it by the lease: the node that does not hold
	// the group's current lease discards its writes since the split and
	// resyncs from the holder, as seed 002 does by hand.
	SplitBrainLease = "lease"
)

// SplitBrainMarker is the file DRBD's split-brain handler (`leasehold drbd
// split-brain`) leaves in the state directory for resource: DRBD 8.4
// drops the connection (StandAlone) after "Split-Brain detected but
// unresolved" and calls the handler; the marker is what tells that
// StandAlone from a `drbdadm disconnect`.
func SplitBrainMarker(stateDir, resource string) string {
	return filepath.Join(stateDir, "drbd-split-brain."+resource)
}

// SplitBrainInput is what the split-brain decision looks at.
type SplitBrainInput struct {
	State State
	// Marked: the split-brain handler left its marker for this resource
	// (and DRBD has not been Connected since).
	Marked bool
	// Policy is after_split_brain (SplitBrainManual or SplitBrainLease).
	Policy string
	// HolderKnown: the group's lease could be read; Holder is its holder
	// ("" nobody).
	HolderKnown bool
	Holder      string
	// Self is this node's name.
	Self string
}

// SplitBrainAction is what to do about a split brain.
type SplitBrainAction int

const (
	// SplitBrainNone: no split brain.
	SplitBrainNone SplitBrainAction = iota
	// SplitBrainReport: report it and wait (for the operator, the lease,
	// or a marker that explains a StandAlone).
	SplitBrainReport
	// SplitBrainDiscardMine: this node does not hold the lease: demote
	// (unmount, Secondary) and reconnect with --discard-my-data.
	SplitBrainDiscardMine
	// SplitBrainReconnect: this node holds the lease: its data survives;
	// reconnect (the peer resyncs from it).
	SplitBrainReconnect
)

func (a SplitBrainAction) String() string {
	return [...]string{"none", "report", "discard-my-data", "reconnect"}[a]
}

// DecideSplitBrain decides what a node does about its resource's split
// brain, and says why. Only a StandAlone connection with the handler's
// marker is a split brain (a StandAlone without it may be an operator's
// disconnect: reported, never acted on); only after_split_brain: lease
// acts, and only on a lease it could read: the holder keeps its data and
// reconnects, any other node discards its own.
func DecideSplitBrain(in SplitBrainInput) (SplitBrainAction, string) {
	s := in.State
	switch {
	case s.Conn != StandAlone:
		return SplitBrainNone, ""
	case !in.Marked:
		return SplitBrainReport, fmt.Sprintf("StandAlone without DRBD's split-brain handler having run (disconnected by hand, or the handler is not configured): not acted on (%s)", s)
	case in.Policy != SplitBrainLease:
		return SplitBrainReport, fmt.Sprintf("split brain: after_split_brain is %s, waiting for the operator (%s)", in.Policy, s)
	case !in.HolderKnown:
		return SplitBrainReport, fmt.Sprintf("split brain: the lease cannot be read, waiting (%s)", s)
	case in.Holder == "":
		return SplitBrainReport, fmt.Sprintf("split brain: nobody holds the lease, waiting for a holder to decide (%s)", s)
	case in.Holder == in.Self:
		return SplitBrainReconnect, fmt.Sprintf("split brain: this node holds the lease, its data survives; reconnecting (%s)", s)
	default:
		return SplitBrainDiscardMine, fmt.Sprintf("split brain: %s holds the lease; this node discards its writes since the split and resyncs (%s)", in.Holder, s)
	}
}

// GenerationIDs reads the resource's data generation identifiers
// (`drbdadm get-gi`: current, bitmap and history UUIDs, then flags):
// what a discard gives up is named by this node's current UUID.
func (r *Resource) GenerationIDs(ctx context.Context) (string, error) {
	out, err := r.ex.Run(ctx, Command{Path: r.cfg.Paths.Drbdadm, Args: []string{"get-gi", r.cfg.Resource}, Timeout: r.cfg.StepTimeout})
	if err != nil {
		return "", fmt.Errorf("drbdadm get-gi %s: %w", r.cfg.Resource, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// ErrDecisionChanged: the split-brain decision no longer held when the
// resource was free to carry it out (the lease moved meanwhile).
var ErrDecisionChanged = errors.New("split brain: the decision no longer holds (the lease moved); deciding again")

// ResolveSplitBrain carries out a DiscardMine or Reconnect decision and
// returns this node's generation identifiers from before it (for the log:
// with DiscardMine they name the writes given up). DiscardMine demotes
// first (services, unmount, Secondary: a Primary without the lease), then
// `drbdadm connect --discard-my-data`; Reconnect runs `drbdadm connect`.
// It runs alone on the resource (no promotion or demotion beside it), and
// first asks still, if set, whether the decision holds now: a node that
// got the lease while it waited must not discard its data (ErrDecisionChanged).
func (r *Resource) ResolveSplitBrain(ctx context.Context, a SplitBrainAction, still func(context.Context) bool) (gi string, err error) {
	if err := r.acquire(ctx, "resolve split brain"); err != nil {
		return "", err
	}
	defer r.release()
	if still != nil && !still(ctx) {
		return "", ErrDecisionChanged
	}
	gi, gerr := r.GenerationIDs(ctx)
	if gerr != nil {
		gi = "unknown: " + gerr.Error()
	}
	p := r.cfg.Paths
	switch a {
	case SplitBrainDiscardMine:
		if err := r.demote(ctx, 0); err != nil {
			return gi, fmt.Errorf("split brain: demote before discarding: %w", err)
		}
		if err := r.run(ctx, 0, p.Drbdadm, "connect", "--discard-my-data", r.cfg.Resource); err != nil {
			return gi, r.stepError("drbdadm connect --discard-my-data "+r.cfg.Resource, err)
		}
	case SplitBrainReconnect:
		if err := r.run(ctx, 0, p.Drbdadm, "connect", r.cfg.Resource); err != nil {
			return gi, r.stepError("drbdadm connect "+r.cfg.Resource, err)
		}
	default:
		return gi, fmt.Errorf("split brain: nothing to carry out for %s", a)
	}
	return gi, nil
}
