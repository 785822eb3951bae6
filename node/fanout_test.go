package node_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/node"
	"github.com/leasehold/leasehold/node/nodetest"
)

// One group's actuator hangs, ignoring its context: Addresses.Add (called
// in the group's loop while it adds the VIP: the loop is stuck) or
// Resources.Promote (called aside: the promotion step times out, again and
// again). Another group on the same node keeps owning its VIP: every
// renewal still reaches it and refreshes its fence, the session is never
// lost, and the renewals go on at their own pace. The stuck group never
// owns meanwhile and its kernel fence lapses by itself (or is never
// armed); once the call returns the group catches up (after the storm
// guard's backoff, when the stuck step cycled the lease).
func TestRenewalFanOutNeverBlocks(t *testing.T) {
	for _, c := range []struct {
		name string
		hang func(g *testGroup) *nodetest.Hang
	}{
		{"addresses.Add", func(g *testGroup) *nodetest.Hang { return &g.addrs.Hang }},
		{"resources.Promote", func(g *testGroup) *nodetest.Hang { return &g.res.Hang }},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testFanOut(t, c.hang) })
		})
	}
}

func testFanOut(t *testing.T, hangOf func(g *testGroup) *nodetest.Hang) {
	w := newWorld(t)
	n := w.startNode("n1", "ok", "stuck")
	ok, stuck := n.g("ok"), n.g("stuck")
	n.makeOwner("ok")
	hang := hangOf(stuck)
	hang.Set()
	stuck.Post(node.VRRPMaster{})
	until(t, time.Second, func() bool { return hang.Waiting() >= 1 }, "stuck group hangs")

	session := n.sup.Session()
	renewals0, _ := n.renewed()
	refreshes0 := ok.Status().FenceRefreshes
	// Far more renewals than any queue between the supervisor and a
	// group could hold (480 at 125 ms).
	const hold = time.Minute
	for end := time.Now().Add(hold); time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		if ok.Role() != node.RoleOwner {
			r, _ := n.renewed()
			t.Fatalf("ok group left owner (%v) after %d renewals: %+v", ok.Role(), r-renewals0, ok.Status().Transitions)
		}
		if !ok.fence.Passes(testVIP) {
			t.Fatal("ok group's fence lapsed while it owns the VIP")
		}
	}
	renewals, _ := n.renewed()
	renewals -= renewals0
	refreshes := int(ok.Status().FenceRefreshes - refreshes0)
	if n.sup.Session() != session || session.Err() != nil {
		t.Fatalf("session replaced or lost: %v", session.Err())
	}
	if want := int(hold / testOptions("n1").RenewInterval); renewals < want-1 {
		t.Errorf("%d renewals in %v, want about %d: the renewal loop was held up", renewals, hold, want)
	}
	if refreshes < renewals-1 {
		t.Errorf("ok group's fence refreshed %d times for %d renewals", refreshes, renewals)
	}
	t.Logf("%d renewals, %d fence refreshes of the healthy group in %v", renewals, refreshes, hold)
	if stuck.fence.Passes(testVIP) {
		t.Error("stuck group's fence still passes after a minute without refresh")
	}
	if stuck.Role() == node.RoleOwner {
		t.Error("stuck group became owner while its actuator hangs")
	}

	hang.Release()
	// A promotion that times out again and again cycles the lease: the
	// storm guard holds its acquires back for up to FlapBackoffMax.
	until(t, node.DefaultFlapBackoffMax+5*time.Second, func() bool { return stuck.Role() == node.RoleOwner && stuck.fence.Passes(testVIP) },
		"stuck group owns its VIP once Add returns")
	_, deadline := n.renewed()
	if left, _, _ := stuck.fence.Armed(testVIP); time.Now().Add(left).After(deadline) {
		t.Errorf("stuck group's fence armed %v past the local deadline", time.Now().Add(left).Sub(deadline))
	}
}
