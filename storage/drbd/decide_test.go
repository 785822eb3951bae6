package drbd

import (
	"errors"
	"strings"
	"testing"
)

func st(cs ConnState, ro, pro Role, ds, pds DiskState) State {
	return State{Conn: cs, Role: ro, PeerRole: pro, Disk: ds, PeerDisk: pds, Connected: connectedStates[cs]}
}

func TestMayPromote(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     PromoteInput
		ok     bool
		reason string // a piece of the reason
	}{
		{"uptodate connected", PromoteInput{State: st(Connected, Secondary, Secondary, UpToDate, UpToDate)}, true, "UpToDate"},
		{"uptodate alone", PromoteInput{State: st(WFConnection, Secondary, RoleUnknown, UpToDate, DUnknown)}, true, "UpToDate"},
		{"already primary", PromoteInput{State: st(Connected, Primary, Secondary, UpToDate, UpToDate)}, true, "already Primary"},
		{"consistent, peer outdated", PromoteInput{State: st(WFConnection, Secondary, RoleUnknown, Consistent, Outdated)}, true, "Outdated"},
		{"consistent, peer unknown", PromoteInput{State: st(WFConnection, Secondary, RoleUnknown, Consistent, DUnknown)}, false, "not known Outdated"},
		{"outdated", PromoteInput{State: st(WFConnection, Secondary, RoleUnknown, Outdated, DUnknown)}, false, "Outdated: the peer has newer data"},
		{"inconsistent", PromoteInput{State: st(Connected, Secondary, Secondary, Inconsistent, Inconsistent)}, false, "Inconsistent"},
		{"sync target", PromoteInput{State: st(SyncTarget, Secondary, Secondary, Inconsistent, UpToDate)}, false, "Inconsistent"},
		{"diskless", PromoteInput{State: st(Connected, Secondary, Secondary, Diskless, UpToDate)}, false, "no usable local disk"},
		{"failed disk", PromoteInput{State: st(StandAlone, Secondary, RoleUnknown, Failed, DUnknown)}, false, "no usable local disk"},
		{"peer primary", PromoteInput{State: st(Connected, Secondary, Primary, UpToDate, UpToDate)}, false, "peer is Primary"},
		{"unconfigured", PromoteInput{State: State{Minor: 3, Conn: Unconfigured}}, false, "minor 3 is not configured"},
		{"zero state", PromoteInput{}, false, "not configured"},
		{"marked at the quorum", PromoteInput{State: st(WFConnection, Secondary, RoleUnknown, UpToDate, DUnknown), OutdatedAtQuorum: true},
			false, "marked outdated at the quorum"},
		{"marked, even if primary", PromoteInput{State: st(WFConnection, Primary, RoleUnknown, UpToDate, DUnknown), OutdatedAtQuorum: true},
			false, "marked outdated at the quorum"},
		{"marked, connected but the peer Outdated", PromoteInput{State: st(Connected, Secondary, Secondary, UpToDate, Outdated), OutdatedAtQuorum: true},
			false, "marked outdated at the quorum"},
		// Connected and in sync: the resync is done, the mark is stale.
		{"marked, connected and in sync", PromoteInput{State: st(Connected, Secondary, Secondary, UpToDate, UpToDate), OutdatedAtQuorum: true},
			true, "UpToDate"},
	} {
		ok, reason := MayPromote(tc.in)
		if ok != tc.ok || !strings.Contains(reason, tc.reason) {
			t.Errorf("%s: %v %q, want %v and a reason with %q", tc.name, ok, reason, tc.ok, tc.reason)
		}
	}
}

func TestNeedsForDemote(t *testing.T) {
	for _, tc := range []struct {
		name               string
		s                  State
		known, mounted     bool
		unmount, secondary bool
	}{
		{"primary mounted", st(Connected, Primary, Secondary, UpToDate, UpToDate), true, true, true, true},
		{"primary", st(WFConnection, Primary, RoleUnknown, UpToDate, DUnknown), true, false, false, true},
		{"secondary", st(Connected, Secondary, Primary, UpToDate, UpToDate), true, false, false, false},
		{"secondary, stale mount", st(Connected, Secondary, Primary, UpToDate, UpToDate), true, true, true, false},
		{"unconfigured", State{Conn: Unconfigured}, true, false, false, false},
		{"unknown", State{}, false, false, false, true},
		{"unknown mounted", State{}, false, true, true, true},
	} {
		n := NeedsForDemote(tc.s, tc.known, tc.mounted)
		if n.Unmount != tc.unmount || n.Secondary != tc.secondary || n.Reason == "" {
			t.Errorf("%s: %+v, want unmount %v secondary %v", tc.name, n, tc.unmount, tc.secondary)
		}
	}
}

func TestFencePeerEveryCode(t *testing.T) {
	held := FenceQuery{QuorumReachable: true, Holder: "a", Self: "a", Peer: "b"}
	with := func(f func(*FenceQuery)) FenceQuery { q := held; f(&q); return q }
	for _, tc := range []struct {
		name   string
		q      FenceQuery
		code   int
		mark   bool
		reason string
	}{
		{"holder, peer alive", held, FencePeerOutdated, true, "marked outdated at the quorum"},
		{"holder, peer already marked", with(func(q *FenceQuery) { q.PeerMarked = true }), FencePeerOutdated, false, "already marked"},
		{"holder, peer Inconsistent", with(func(q *FenceQuery) { q.PeerInconsistent = true }), FencePeerInconsistent, false, "Inconsistent"},
		{"holder, peer without session", with(func(q *FenceQuery) { q.PeerGone = true }), FencePeerUnreachable, true, "no session"},
		{"holder, peer reset by its watchdog", with(func(q *FenceQuery) { q.PeerReset, q.PeerGone = true, true }), FencePeerStonithed, true, "watchdog"},
		{"peer holds the lease", with(func(q *FenceQuery) { q.Holder = "b" }), FenceOutdateYourself, false, "peer b holds the lease"},
		{"nobody holds it", with(func(q *FenceQuery) { q.Holder = "" }), FenceOutdateYourself, false, "nobody"},
		{"a third node holds it", with(func(q *FenceQuery) { q.Holder = "c" }), FenceOutdateYourself, false, "c holds the lease"},
		{"quorum unreachable", with(func(q *FenceQuery) { q.QuorumReachable = false }), FenceOutdateYourself, false, "cannot prove"},
		{"holder marked outdated", with(func(q *FenceQuery) { q.SelfOutdated = true }), FenceOutdateYourself, false, "marks its disk outdated"},
		// Marked beats reset: nothing to record.
		{"holder, peer marked and reset", with(func(q *FenceQuery) { q.PeerMarked, q.PeerReset = true, true }), FencePeerOutdated, false, "already"},
	} {
		d := FencePeer(tc.q)
		if d.Code != tc.code || d.MarkPeer != tc.mark || !strings.Contains(d.Reason, tc.reason) {
			t.Errorf("%s: %+v, want code %d mark %v reason with %q", tc.name, d, tc.code, tc.mark, tc.reason)
		}
	}
}

func TestFenceMarkFailed(t *testing.T) {
	boom := errors.New("etcd: request timed out")
	d := FencePeer(FenceQuery{QuorumReachable: true, Holder: "a", Self: "a", Peer: "b"}).MarkFailed(boom)
	if d.Code != FenceHandlerFailed || d.MarkPeer || !strings.Contains(d.Reason, "request timed out") {
		t.Fatalf("%+v", d)
	}
	// A decision without a mark is unchanged.
	six := FencePeer(FenceQuery{})
	if got := six.MarkFailed(boom); got != six {
		t.Fatalf("%+v", got)
	}
}
