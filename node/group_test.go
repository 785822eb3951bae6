package node_test

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/node"
)

// VRRP master with a session: acquire → hooks → promote → fence armed →
// VIP added → announce; the quorum shows this node at the group's epoch;
// renewals keep the fence armed, never past the local deadline.
func TestGroupAcquireToOwner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		n := w.startNode("n1", "g1")
		g := n.g("g1")
		epoch := n.makeOwner("g1")

		h, held := w.holder(n.b, "g1")
		if !held || h.Node != "n1" || h.Epoch != epoch {
			t.Fatalf("quorum shows %+v (held %v); want n1 at epoch %d", h, held, epoch)
		}
		if !g.addrs.Up() || !g.fence.Passes(testVIP) {
			t.Fatalf("owner without VIP (%v) or armed fence (%v)", g.addrs.Up(), g.fence.Passes(testVIP))
		}
		// Order: hooks with the epoch, promote under it, fence before the
		// address, then GARP.
		if got := g.peer.Log(); len(got) != 1 || got[0] != fmt.Sprintf("fence group=g1 epoch=%d prev=", epoch) {
			t.Errorf("peer-fence hooks: %q", got)
		}
		if got := g.res.Log(); len(got) != 1 || got[0] != fmt.Sprintf("promote %d", epoch) {
			t.Errorf("resources: %q", got)
		}
		if !contains(g.vrrp.Log(), "announce") {
			t.Errorf("no announce: %q", g.vrrp.Log())
		}
		if f := g.fence.Log(); prefixed(f, "arm ") == 0 || prefixed(g.addrs.Log(), "add ") != 1 {
			t.Errorf("fence %q, addresses %q", f, g.addrs.Log())
		}

		// Renewals refresh the fence and the address lifetime, never past
		// the local deadline.
		refreshes0 := g.Status().FenceRefreshes
		for range 200 {
			time.Sleep(10 * time.Millisecond)
			synctest.Wait()
			deadline := n.sup.Session().Deadline()
			if w.fenceUntil("g1", "n1").After(deadline) {
				t.Fatalf("fence armed %v past the local deadline", w.fenceUntil("g1", "n1").Sub(deadline))
			}
			if g.Role() != node.RoleOwner || !g.fence.Passes(testVIP) {
				t.Fatalf("lost ownership or fence while renewing: %v", g.Status())
			}
		}
		if r := g.Status().FenceRefreshes - refreshes0; r < 15 {
			t.Errorf("%d fence refreshes in 2 s of renewals every 125 ms", r)
		}
		if a := prefixed(g.addrs.Log(), "add "); a < 15 {
			t.Errorf("address lifetime extended %d times", a)
		}
	})
}

// A graceful handover: the owner hears a better advert and releases; the
// backup sees the key deleted on its watch and acquires at once (after its
// skew), without waiting for any VRRP timer, and claims VRRP master. The
// VIP is never on both.
func TestGroupHandoverOnKeyDeletion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		a, b := w.startNode("a", "g1"), w.startNode("b", "g1")
		ea := a.makeOwner("g1")
		if b.g("g1").Role() != node.RoleBackup {
			t.Fatalf("b is %v", b.g("g1").Role())
		}

		a.g("g1").Post(node.VRRPNotMaster{Reason: "higher priority advert"})
		start := time.Now()
		until(t, time.Second, func() bool { return b.g("g1").Role() == node.RoleOwner }, "b owns g1")
		// The watch path: the skew (20 ms), not a master-down timer or a
		// retry interval.
		if took := time.Since(start); took > 50*time.Millisecond {
			t.Errorf("handover took %v", took)
		}
		eb := b.g("g1").Status().Epoch
		if eb <= ea {
			t.Errorf("epoch %d after %d", eb, ea)
		}
		until(t, time.Second, func() bool { return a.g("g1").Role() == node.RoleBackup }, "a back to backup")
		if a.g("g1").addrs.Up() || a.g("g1").fence.Passes(testVIP) {
			t.Error("a still has the VIP or an armed fence")
		}
		if got := a.g("g1").res.Log(); !contains(got, fmt.Sprintf("demote %d", ea)) {
			t.Errorf("a's resources: %q", got)
		}
		if !contains(b.g("g1").vrrp.Log(), "inject vrrp.Claim") {
			t.Errorf("b did not claim VRRP master: %q", b.g("g1").vrrp.Log())
		}
		if !w.removedAt("g1", "a").Before(w.since("g1", "b")) {
			t.Error("b added the VIP before a removed it")
		}
		// a's own release does not send it after the key again.
		time.Sleep(time.Second)
		synctest.Wait()
		if a.g("g1").Role() != node.RoleBackup || b.g("g1").Role() != node.RoleOwner {
			t.Errorf("after a second: a %v, b %v", a.g("g1").Role(), b.g("g1").Role())
		}
	})
}

// The quorum goes away under an owner: the session's loss is signalled
// before the local deadline and the group demotes (fence off, VIP removed,
// VRRP held in fault) before that deadline. When the quorum is back the
// supervisor opens a new session, VRRP leaves fault, and the group owns
// again under a higher epoch once the old lease has expired.
func TestGroupSessionLossAndReopen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		n := w.startNode("n1", "g1")
		g := n.g("g1")
		e1 := n.makeOwner("g1")
		time.Sleep(300 * time.Millisecond)
		synctest.Wait()
		first := n.sup.Session()

		w.m.StopAll()
		until(t, 2*time.Second, func() bool { return g.Role() == node.RoleFault }, "g1 in fault")
		_, deadline := n.renewed()
		removed := w.removedAt("g1", "n1")
		if removed.IsZero() || !removed.Before(deadline) {
			t.Errorf("VIP removed %v after the local deadline", removed.Sub(deadline))
		}
		if until := w.fenceUntil("g1", "n1"); until.After(deadline) {
			t.Errorf("fence was armed %v past the local deadline", until.Sub(deadline))
		}
		if g.addrs.Up() || g.fence.Passes(testVIP) {
			t.Error("VIP or fence left up after the session's loss")
		}
		if !contains(g.vrrp.Log(), "fault quorum true") {
			t.Errorf("VRRP not held in fault: %q", g.vrrp.Log())
		}
		if first.Err() == nil {
			t.Error("session not lost")
		}

		w.m.StartAll()
		until(t, 5*time.Second, func() bool { return g.Role() == node.RoleBackup }, "g1 back to backup")
		if s := n.sup.Session(); s == nil || s.ID() == first.ID() {
			t.Fatalf("no new session (%v)", s)
		}
		if log := g.vrrp.Log(); log[len(log)-1] != "fault quorum false" {
			t.Errorf("VRRP still in fault: %q", log)
		}
		// The old key lives until its lease expires at the quorum (full
		// TTL after the restart); the group takes it back then.
		g.Post(node.VRRPMaster{})
		until(t, 3*time.Second, func() bool { return g.Role() == node.RoleOwner }, "g1 owned again")
		if e2 := g.Status().Epoch; e2 <= e1 {
			t.Errorf("epoch %d after %d", e2, e1)
		}
	})
}

// The owner is cut off from the quorum while the other node's VRRP makes
// it master: the cut-off owner demotes (and its fence lapses) before its
// lease can expire at the quorum, so the other node's grant comes after.
// After the heal the old owner's watch resyncs and it stays backup.
func TestGroupPartitionedHolderDemotesFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		a, b := w.startNode("a", "g1"), w.startNode("b", "g1")
		ea := a.makeOwner("g1")
		time.Sleep(300 * time.Millisecond)
		synctest.Wait()

		w.m.Partition("a")
		cut := time.Now()
		b.g("g1").Post(node.VRRPMaster{}) // a's adverts stop reaching b
		until(t, 3*time.Second, func() bool { return b.g("g1").Role() == node.RoleOwner }, "b owns g1")
		hist, err := b.b.History(t.Context(), "g1")
		if err != nil || len(hist) != 2 || hist[0].Epoch != ea {
			t.Fatalf("history %+v, %v", hist, err)
		}
		granted := hist[1].AcquiredAt
		_, deadline := a.renewed()
		fenced := w.fenceUntil("g1", "a")
		removed := w.removedAt("g1", "a")
		t.Logf("after the cut: a's deadline %v, a's fence lapsed %v, VIP removed %v, b granted %v",
			deadline.Sub(cut), fenced.Sub(cut), removed.Sub(cut), granted.Sub(cut))
		switch {
		case removed.IsZero() || !removed.Before(deadline):
			t.Errorf("a removed its VIP %v after its deadline", removed.Sub(deadline))
		case fenced.After(deadline):
			t.Errorf("a's fence outlived its deadline by %v", fenced.Sub(deadline))
		case !granted.After(deadline):
			t.Errorf("b granted %v before a's deadline", deadline.Sub(granted))
		}
		if !contains(a.g("g1").vrrp.Log(), "fault quorum true") {
			t.Error("a's VRRP not held in fault while cut off")
		}

		w.m.Heal("a")
		until(t, 5*time.Second, func() bool {
			s := a.g("g1").Status()
			return s.Role == "backup" && s.Holder == "b"
		}, "a back to backup, seeing b hold g1")
		if b.g("g1").Role() != node.RoleOwner {
			t.Errorf("b lost g1 after the heal: %v", b.g("g1").Role())
		}
	})
}

// The quorum deletes the owner's key (its lease expired there, e.g. the
// node froze): the owner demotes at once on the watch event without
// trying to release, raises lease-deleted, and the supervisor reopens the
// session the quorum no longer knows.
func TestGroupKeyDeletedUnderOwner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		n := w.startNode("n1", "g1")
		g := n.g("g1")
		n.makeOwner("g1")
		first := n.sup.Session()
		w.m.Expire("n1")
		synctest.Wait()
		if g.Role() == node.RoleOwner || g.addrs.Up() || g.fence.Passes(testVIP) {
			t.Fatalf("still owner after its key was deleted: %+v", g.Status())
		}
		until(t, 2*time.Second, func() bool {
			s := n.sup.Session()
			return s != nil && s != first && g.Role() == node.RoleBackup
		}, "new session, group backup")
		if first.Err() == nil {
			t.Error("old session not lost")
		}
	})
}

// Shutdown: every group demotes and releases its key before the session is
// revoked, so another node can take over at once from its watch.
func TestGroupShutdownReleasesKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		a, b := w.startNode("a", "g1", "g2"), w.startNode("b", "g1", "g2")
		e1, e2 := a.makeOwner("g1"), a.makeOwner("g2")

		a.stopGroups()
		a.groupsDone.Wait() // the groups' Run returned: demoted within their budget
		for name, e := range map[string]uint64{"g1": e1, "g2": e2} {
			if h, held := w.holder(b.b, name); held {
				t.Errorf("%s still held after a's groups stopped: %+v", name, h)
			}
			g := a.g(name)
			if g.Role() != node.RoleStopped || g.addrs.Up() || g.fence.Passes(testVIP) {
				t.Errorf("%s on a: %+v", name, g.Status())
			}
			if !contains(g.res.Log(), fmt.Sprintf("demote %d", e)) {
				t.Errorf("%s: resources not demoted: %q", name, g.res.Log())
			}
			if g.Status().ReleasePending != 0 {
				t.Errorf("%s: release pending", name)
			}
		}
		if a.sup.Session().Err() != nil {
			t.Error("session lost before the groups released")
		}
		a.stop()
		// b saw the deletions: it takes over through the handover path.
		until(t, time.Second, func() bool { return b.allRoles(node.RoleOwner) }, "b owns both groups")
	})
}

// Status reads the kernel (how long the fence stays armed) without the
// group's lock: while that read hangs, the group goes on renewing and
// answering.
func TestGroupStatusDoesNotHoldTheGroupAcrossKernelReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		n := w.startNode("n1", "g1")
		g := n.g("g1")
		n.makeOwner("g1")
		block := make(chan struct{})
		g.fence.BlockReads(block)
		done := make(chan node.GroupStatus)
		go func() { done <- g.Status() }()
		synctest.Wait()
		before, _ := n.renewed()
		time.Sleep(time.Second)
		synctest.Wait()
		if after, _ := n.renewed(); after <= before || g.Role() != node.RoleOwner {
			t.Fatalf("renewals %d → %d, role %v while a status read hangs", before, after, g.Role())
		}
		close(block)
		if s := <-done; s.Role != "owner" || s.FenceLeft == "" {
			t.Fatalf("status %+v", s)
		}
	})
}

// In the restore window after its session opens, a node whose VRRP becomes
// master while a member of higher priority is registered waits: no acquire
// until the window ends (that member never took over here). Outside the
// window, the same event acquires at once.
func TestGroupRestoreWindowDefers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		w.restore = time.Second
		n := w.startNode("n2", "g1")
		g := n.g("g1")
		g.vrrp.Higher.Store(true)
		opened := time.Now() // the session opened within startNode's first poll
		g.Post(node.VRRPMaster{})
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		if g.Role() != node.RoleBackup || g.Status().Epoch != 0 {
			t.Fatalf("in the window with a higher member registered: %+v", g.Status())
		}
		until(t, time.Second, func() bool { return g.Role() == node.RoleOwner }, "n2 owns g1 after the window")
		if took := time.Since(opened); took < 900*time.Millisecond {
			t.Errorf("owner %v after the session opened, inside the 1 s window", took)
		}

		// Outside the window: a higher member registered does not hold
		// the VRRP master back.
		m := w.startNode("n3", "g2")
		time.Sleep(1100 * time.Millisecond)
		m.g("g2").vrrp.Higher.Store(true)
		start := time.Now()
		m.g("g2").Post(node.VRRPMaster{})
		until(t, time.Second, func() bool { return m.g("g2").Role() == node.RoleOwner }, "n3 owns g2")
		if took := time.Since(start); took > 100*time.Millisecond {
			t.Errorf("outside the window the owner came %v after VRRP master", took)
		}
	})
}
