package drbd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/leasehold/leasehold/quorum"
)

// Marks is what the fence-peer handlers and the promotion check need of
// the quorum (a quorum.Backend has it all).
type Marks interface {
	Inspect(ctx context.Context, group string) (quorum.Holder, bool, error)
	Outdated(ctx context.Context, group string) ([]quorum.Mark, error)
	MarkOutdated(ctx context.Context, m quorum.Mark) error
	ClearOutdated(ctx context.Context, group, node string) error
}

// Handler answers DRBD's fence-peer and after-resync-target handlers for
// one group's resource, from the quorum: it runs apart from the daemon
// (DRBD starts it), with its own quorum client.
type Handler struct {
	Q Marks
	// Group is the lease's group; Self this node's name, Peer the DRBD
	// peer's (both as the quorum knows them: leasehold node names).
	Group, Self, Peer string
	// State reads the resource's local DRBD state (nil: not read).
	State func() (State, error)
	// Now stamps marks (time.Now when nil).
	Now func() time.Time
}

// markOf returns node's mark among ms.
func markOf(ms []quorum.Mark, node string) (quorum.Mark, bool) {
	for _, m := range ms {
		if m.Node == node {
			return m, true
		}
	}
	return quorum.Mark{}, false
}

// FencePeer decides the fence-peer exit code (see FencePeer, the
// function) and, when the decision says so, records the peer's outdated
// mark under the epoch this node holds; a mark that cannot be recorded
// turns the answer into FenceHandlerFailed (MarkFailed).
func (h Handler) FencePeer(ctx context.Context) FenceDecision {
	q := FenceQuery{Self: h.Self, Peer: h.Peer}
	holder, held, herr := h.Q.Inspect(ctx, h.Group)
	marks, merr := h.Q.Outdated(ctx, h.Group)
	if err := errors.Join(herr, merr); err != nil {
		d := FencePeer(q)
		d.Reason = fmt.Sprintf("%s: %v", d.Reason, err)
		return d
	}
	q.QuorumReachable = true
	switch {
	case held && holder.Unknown:
		q.Holder = "(an unknown value)"
	case held:
		q.Holder = holder.Node
	}
	_, q.SelfOutdated = markOf(marks, h.Self)
	_, q.PeerMarked = markOf(marks, h.Peer)
	if h.State != nil {
		if s, err := h.State(); err == nil {
			q.PeerInconsistent = s.PeerDisk == Inconsistent || s.PeerDisk == Failed || s.PeerDisk == Diskless
		}
	}
	d := FencePeer(q)
	if d.MarkPeer {
		now := time.Now
		if h.Now != nil {
			now = h.Now
		}
		m := quorum.Mark{Group: h.Group, Node: h.Peer, Epoch: holder.Epoch, By: h.Self, At: now().UTC()}
		if err := h.Q.MarkOutdated(ctx, m); err != nil {
			return d.MarkFailed(err)
		}
		d.Reason = fmt.Sprintf("%s (epoch %d)", d.Reason, holder.Epoch)
	}
	return d
}

// ErrNotSynced: DRBD is not connected with both disks UpToDate, so the
// marks stay.
var ErrNotSynced = errors.New("drbd: not connected and in sync with the peer")

// Unfence clears the outdated marks a finished resync made stale: only
// when DRBD says Connected with both disks UpToDate (StaleMark; a
// disconnected disk that calls itself UpToDate may be the stale one), it
// clears this node's mark (DRBD's after-resync-target runs on the node
// that was the resync target) and the peer's (DRBD 8.4's own unfence-peer
// helper runs on the resync source). State must be set. It returns the
// marks it cleared.
func (h Handler) Unfence(ctx context.Context) ([]quorum.Mark, error) {
	if h.State == nil {
		return nil, errors.New("drbd: unfence: no DRBD state to check")
	}
	s, err := h.State()
	if err != nil {
		return nil, fmt.Errorf("drbd: unfence: %w", err)
	}
	if !StaleMark(s) {
		return nil, fmt.Errorf("%w (%s): the outdated marks in %s stay", ErrNotSynced, s, h.Group)
	}
	marks, err := h.Q.Outdated(ctx, h.Group)
	if err != nil {
		return nil, fmt.Errorf("drbd: unfence: read the marks of %s: %w", h.Group, err)
	}
	var cleared []quorum.Mark
	for _, node := range []string{h.Self, h.Peer} {
		m, ok := markOf(marks, node)
		if !ok || node == "" {
			continue
		}
		if err := h.Q.ClearOutdated(ctx, h.Group, node); err != nil {
			return cleared, fmt.Errorf("drbd: unfence: %w", err)
		}
		cleared = append(cleared, m)
	}
	return cleared, nil
}

// MarkedAtQuorum returns a Resource.OutdatedAtQuorum reading node's mark
// in group.
func MarkedAtQuorum(q Marks, group, node string) func(ctx context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		ms, err := q.Outdated(ctx, group)
		if err != nil {
			return false, err
		}
		_, ok := markOf(ms, node)
		return ok, nil
	}
}
