package drbd

import "fmt"

// PromoteInput is what the promotion decision looks at.
type PromoteInput struct {
	State State
	// OutdatedAtQuorum: the quorum holds an outdated mark for this node
	// (recorded by the peer's fence-peer handler while this node was cut
	// off; cleared after a resync).
	OutdatedAtQuorum bool
}

// MayPromote decides whether this node may become DRBD Primary, and says
// why (or why not) in a reason fit for logs and status. It only allows
// data that is known to be the newest: the local disk UpToDate, or
// Consistent while the peer is known Outdated; never a disk the quorum
// marks outdated (unless connected and in sync with the peer: the resync
// is done and the mark is stale, see StaleMark), never beside a Primary
// peer.
func MayPromote(in PromoteInput) (ok bool, reason string) {
	s := in.State
	switch {
	case !s.Configured():
		return false, fmt.Sprintf("minor %d is not configured (drbdadm up)", s.Minor)
	case in.OutdatedAtQuorum && !StaleMark(s):
		return false, fmt.Sprintf("this node's disk is marked outdated at the quorum (the peer went on writing while it was cut off); resync from the peer first (%s)", s)
	case s.PeerRole == Primary:
		return false, fmt.Sprintf("the peer is Primary (DRBD allows one Primary): it must demote first (%s)", s)
	case s.Role == Primary && s.Disk == UpToDate:
		return true, fmt.Sprintf("already Primary (%s)", s)
	}
	switch s.Disk {
	case UpToDate:
		return true, fmt.Sprintf("local disk UpToDate (%s)", s)
	case Consistent:
		if s.PeerDisk == Outdated {
			return true, fmt.Sprintf("local disk Consistent and the peer's Outdated (%s)", s)
		}
		return false, fmt.Sprintf("local disk Consistent but the peer is not known Outdated (peer disk %s): the peer may have newer data (%s)", s.PeerDisk, s)
	case Outdated:
		return false, fmt.Sprintf("local disk Outdated: the peer has newer data; resync first (%s)", s)
	case Inconsistent:
		return false, fmt.Sprintf("local disk Inconsistent (never synced, or a resync target not finished): promoting would serve partial data (%s)", s)
	default:
		return false, fmt.Sprintf("no usable local disk (%s) (%s)", s.Disk, s)
	}
}

// StaleMark says whether an outdated mark at the quorum no longer
// describes the disk: DRBD is connected to the peer with both disks
// UpToDate (a resync finished; the after-resync-target handler may not
// have run).
func StaleMark(s State) bool {
	return s.Conn == Connected && s.Disk == UpToDate && s.PeerDisk == UpToDate
}

// DemoteNeeds is what a demotion has to do, from the observed state.
type DemoteNeeds struct {
	// Unmount: the configured mountpoint is mounted.
	Unmount bool
	// Secondary: `drbdadm secondary` is needed (Primary, or the state is
	// unknown: doubt means demote).
	Secondary bool
	// Reason says why, for logs.
	Reason string
}

// NeedsForDemote decides what a demotion must do. known is false when the
// state could not be read (then everything is done); mounted says whether
// the mountpoint is mounted (checked apart: a filesystem can stay mounted
// on a device DRBD no longer lists). Services are always stopped: a stop
// of a stopped unit is harmless, a service left running on a Secondary is
// not.
func NeedsForDemote(s State, known, mounted bool) DemoteNeeds {
	switch {
	case !known:
		return DemoteNeeds{Unmount: mounted, Secondary: true, Reason: "DRBD state unknown: demote anyway"}
	case !s.Configured():
		return DemoteNeeds{Unmount: mounted, Reason: fmt.Sprintf("minor %d not configured: nothing to demote in DRBD", s.Minor)}
	case s.Role == Primary:
		return DemoteNeeds{Unmount: mounted, Secondary: true, Reason: fmt.Sprintf("Primary (%s)", s)}
	default:
		return DemoteNeeds{Unmount: mounted, Reason: fmt.Sprintf("already %s (%s)", s.Role, s)}
	}
}

// Exit codes of a DRBD fence-peer handler (drbd.conf(5), handlers; what
// DRBD 8.4's conn_try_outdate_peer does with each).
const (
	FencePeerInconsistent = 3 // the peer's disk is Inconsistent or worse (DRBD sets pdsk Inconsistent)
	FencePeerOutdated     = 4 // the peer was outdated, or already was (pdsk Outdated)
	FencePeerUnreachable  = 5 // the peer is unreachable, assumed dead (pdsk Outdated if the local disk is UpToDate)
	FenceOutdateYourself  = 6 // the peer is (or may be) the active side: DRBD outdates the local disk
	FencePeerStonithed    = 7 // the peer was reset (STONITH; pdsk Outdated)
)

// FenceQuery is what the fence-peer decision knows when DRBD calls its
// handler (the replication link is gone; the quorum may still be there).
type FenceQuery struct {
	// QuorumReachable: the group's lease and marks could be read.
	QuorumReachable bool
	// Holder is the node holding the group's lease ("" none).
	Holder string
	// Self and Peer are this node's and the DRBD peer's node names.
	Self, Peer string
	// SelfOutdated: the quorum marks this node's disk outdated.
	SelfOutdated bool
	// PeerMarked: the quorum already holds the peer's outdated mark.
	PeerMarked bool
	// PeerInconsistent: DRBD says the peer's disk is Inconsistent or
	// worse (it cannot promote on its own data).
	PeerInconsistent bool
	// PeerReset: the peer lost the lease and its watchdog's deadline has
	// passed: it has reset (the lease's STONITH).
	PeerReset bool
	// PeerGone: the peer is known to have no session at the quorum
	// (unknown counts as alive).
	PeerGone bool
}

// FenceDecision is a fence-peer handler's answer.
type FenceDecision struct {
	Code   int // the exit code DRBD reads
	Reason string
	// MarkPeer: before exiting with Code the handler must record the
	// peer's outdated mark at the quorum (under this node's epoch); if
	// that fails it must not answer Code (see MarkFailed).
	MarkPeer bool
}

// FencePeer decides a fence-peer handler's exit code from the lease: only
// the lease holder may go on as Primary and have its peer outdated (the
// outdating is the quorum mark the peer's own leasehold honours); a node
// that does not hold the lease, or cannot prove it does, is told to
// outdate itself.
func FencePeer(q FenceQuery) FenceDecision {
	six := func(why string) FenceDecision { return FenceDecision{Code: FenceOutdateYourself, Reason: why} }
	switch {
	case !q.QuorumReachable:
		return six("quorum unreachable: this node cannot prove it holds the lease, so it must not go on as Primary")
	case q.Holder == "":
		return six("nobody holds the lease: this node must not be Primary")
	case q.Holder == q.Peer:
		return six(fmt.Sprintf("the peer %s holds the lease", q.Peer))
	case q.Holder != q.Self:
		return six(fmt.Sprintf("%s holds the lease, not this node (%s)", q.Holder, q.Self))
	case q.SelfOutdated:
		return six("this node holds the lease but the quorum marks its disk outdated")
	case q.PeerMarked:
		return FenceDecision{Code: FencePeerOutdated, Reason: fmt.Sprintf("lease held; the peer %s is already marked outdated at the quorum", q.Peer)}
	case q.PeerInconsistent:
		return FenceDecision{Code: FencePeerInconsistent, Reason: fmt.Sprintf("lease held; the peer %s's disk is Inconsistent (it cannot promote on it)", q.Peer)}
	case q.PeerReset:
		return FenceDecision{Code: FencePeerStonithed, MarkPeer: true,
			Reason: fmt.Sprintf("lease held; the peer %s lost its lease and its watchdog has reset it", q.Peer)}
	case q.PeerGone:
		return FenceDecision{Code: FencePeerUnreachable, MarkPeer: true,
			Reason: fmt.Sprintf("lease held; the peer %s has no session at the quorum (unreachable, assumed dead)", q.Peer)}
	default:
		return FenceDecision{Code: FencePeerOutdated, MarkPeer: true,
			Reason: fmt.Sprintf("lease held; the peer %s is marked outdated at the quorum", q.Peer)}
	}
}

// FenceHandlerFailed is the exit code of a handler that could not decide
// (DRBD logs the helper as broken; with `fencing resource-and-stonith`
// I/O stays frozen).
const FenceHandlerFailed = 1

// MarkFailed turns a decision whose peer mark could not be recorded into
// a failure: without the mark the peer could later promote stale data, so
// the handler must not claim the peer outdated. I/O stays frozen (with
// resource-and-stonith) until the lease decides: a lost lease demotes
// this node, or the watchdog resets it.
func (d FenceDecision) MarkFailed(err error) FenceDecision {
	if !d.MarkPeer {
		return d
	}
	return FenceDecision{Code: FenceHandlerFailed, Reason: fmt.Sprintf("%s, but recording the peer's outdated mark failed: %v", d.Reason, err)}
}
