package node_test

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/fencing/fencingtest"
	"github.com/leasehold/leasehold/node"
	"github.com/leasehold/leasehold/node/nodetest"
	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/quorum/quorumtest"
)

// The tests in this package run whole nodes (Supervisor + Groups) against a
// quorumtest.Memory inside a testing/synctest bubble, with the nodetest
// fakes at the OS edges. They assert invariants (one VIP holder, fences
// lapsing before anyone else's grant) and the fakes' recorded calls.

const testTTL = time.Second

var testVIP = netip.MustParseAddr("192.0.2.10")

func testOptions(node string) quorum.Options {
	o := quorum.ScaledOptions(testTTL) // renew 125ms, drift 10ms, margin 50ms, budget 150ms
	o.Node, o.Addr = node, "127.0.0.1"
	return o
}

// world is the quorum and a ledger of which node has the VIP configured and
// until when each node's kernel fence lets its traffic pass.
type world struct {
	t *testing.T
	m *quorumtest.Memory

	mu      sync.Mutex
	up      map[string]map[string]bool      // group → node → VIP configured
	upSince map[string]map[string]time.Time // group → node → when added
	downAt  map[string]map[string]time.Time // group → node → last removal
	fenceTo map[string]map[string]time.Time // group → node → latest fence expiry armed

	restore time.Duration // the nodes' restore window (node.Config.RestoreWindow)
}

func newWorld(t *testing.T) *world {
	return &world{t: t, m: quorumtest.NewMemory(testTTL),
		up: map[string]map[string]bool{}, upSince: map[string]map[string]time.Time{},
		downAt: map[string]map[string]time.Time{}, fenceTo: map[string]map[string]time.Time{}}
}

func at[V any](m map[string]map[string]V, group string) map[string]V {
	if m[group] == nil {
		m[group] = map[string]V{}
	}
	return m[group]
}

// vipChanged records a node adding or removing a group's VIP and fails the
// test if two nodes have it at once.
func (w *world) vipChanged(group, node string, up bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	at(w.up, group)[node] = up
	if !up {
		at(w.downAt, group)[node] = time.Now()
		return
	}
	at(w.upSince, group)[node] = time.Now()
	for other, on := range w.up[group] {
		if on && other != node {
			w.t.Errorf("%s: VIP on %s and %s at once", group, node, other)
		}
	}
}

func (w *world) fenceArmed(group, node string, until time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if until.After(at(w.fenceTo, group)[node]) {
		at(w.fenceTo, group)[node] = until
	}
}

func (w *world) since(group, node string) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return at(w.upSince, group)[node]
}

func (w *world) removedAt(group, node string) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return at(w.downAt, group)[node]
}

func (w *world) fenceUntil(group, node string) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return at(w.fenceTo, group)[node]
}

// testGroup is one group on one node with its fakes.
type testGroup struct {
	*node.Group
	vrrp  *nodetest.VRRP
	addrs *nodetest.Addrs
	fence *fencingtest.Fence
	res   *nodetest.Resources
	peer  *nodetest.PeerFencer
}

// testNode is one node: a client of the quorum, a supervisor and groups.
type testNode struct {
	name   string
	w      *world
	b      quorum.Backend
	sup    *node.Supervisor
	groups map[string]*testGroup

	mu       sync.Mutex
	renewals int
	deadline time.Time // the latest local deadline reported by a renewal

	stopGroups, stopSup context.CancelFunc
	groupsDone, supDone sync.WaitGroup
	stopped             bool
}

// startNode starts a node with the named groups (all backups, VRRP not
// master); it is stopped in t.Cleanup.
func (w *world) startNode(name string, groups ...string) *testNode {
	t := w.t
	t.Helper()
	n := &testNode{name: name, w: w, b: w.m.Backend(t, name, testOptions(name)), groups: map[string]*testGroup{}}
	var gs []*node.Group
	for _, gname := range groups {
		tg := &testGroup{vrrp: &nodetest.VRRP{}, addrs: &nodetest.Addrs{}, fence: fencingtest.New(time.Now),
			res: &nodetest.Resources{}, peer: &nodetest.PeerFencer{}}
		if err := tg.fence.Install(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := tg.fence.Manage([]netip.Addr{testVIP}); err != nil {
			t.Fatal(err)
		}
		tg.addrs.OnChange = func(up bool) { w.vipChanged(gname, name, up) }
		tg.fence.OnArm = func() {
			if left, ok, _ := tg.fence.Armed(testVIP); ok {
				w.fenceArmed(gname, name, time.Now().Add(left))
			}
		}
		g, err := node.NewGroup(node.GroupConfig{
			Machine: node.Config{Group: gname, StepTimeout: 500 * time.Millisecond, RetryInterval: 100 * time.Millisecond,
				HandoverDelay: 20 * time.Millisecond, DemoteBudget: testOptions(name).DemoteBudget, RestoreWindow: w.restore},
			Priority: 100, VIPs: []netip.Addr{testVIP}, FenceMargin: 20 * time.Millisecond, StopBudget: time.Second,
		}, node.GroupDeps{VRRP: tg.vrrp, Addrs: tg.addrs, Fence: tg.fence, Resources: tg.res, PeerFence: tg.peer,
			Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		tg.Group = g
		// A real instance becomes master when claimed and tells the group.
		tg.vrrp.OnClaim = func() { g.Post(node.VRRPMaster{}) }
		n.groups[gname] = tg
		gs = append(gs, g)
	}
	n.sup = node.NewSupervisor(n.b, gs, slog.New(slog.DiscardHandler))
	n.sup.OnRenew = func(rtt time.Duration, d time.Time) {
		n.mu.Lock()
		n.renewals++
		n.deadline = d
		n.mu.Unlock()
	}
	gctx, stopGroups := context.WithCancel(context.Background())
	sctx, stopSup := context.WithCancel(context.Background())
	n.stopGroups, n.stopSup = stopGroups, stopSup
	for _, g := range gs {
		n.groupsDone.Go(func() { g.Run(gctx) })
	}
	n.supDone.Go(func() { n.sup.Run(sctx) })
	t.Cleanup(n.stop)
	until(t, 5*time.Second, func() bool { return n.sup.Session() != nil && n.allRoles(node.RoleBackup) },
		name+": session up, groups backup")
	return n
}

func (n *testNode) g(name string) *testGroup { return n.groups[name] }

func (n *testNode) allRoles(r node.Role) bool {
	for _, g := range n.groups {
		if g.Role() != r {
			return false
		}
	}
	return true
}

// renewed returns the number of acknowledged renewals and the latest local
// deadline.
func (n *testNode) renewed() (int, time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.renewals, n.deadline
}

// stop shuts the node down as the daemon does: groups demote and release
// (within their stop budget), then the session is revoked.
func (n *testNode) stop() {
	if n.stopped {
		return
	}
	n.stopped = true
	for _, g := range n.groups {
		g.addrs.Hang.Release()
		g.res.Hang.Release()
	}
	n.stopGroups()
	n.groupsDone.Wait()
	n.stopSup()
	n.supDone.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	n.sup.Close(ctx)
}

// makeOwner makes VRRP master on n for group and waits until n owns it.
func (n *testNode) makeOwner(group string) uint64 {
	t := n.w.t
	t.Helper()
	g := n.g(group)
	g.Post(node.VRRPMaster{})
	until(t, 2*time.Second, func() bool { return g.Role() == node.RoleOwner }, n.name+" owns "+group)
	return g.Status().Epoch
}

// until advances the bubble's clock in 1 ms steps until cond holds, and
// fails the test if it does not within limit.
func until(t *testing.T, limit time.Duration, cond func() bool, what string) {
	t.Helper()
	end := time.Now().Add(limit)
	for {
		synctest.Wait()
		if cond() {
			return
		}
		if !time.Now().Before(end) {
			t.Fatalf("not within %v: %s", limit, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// holder reads who holds group at the quorum.
func (w *world) holder(b quorum.Backend, group string) (quorum.Holder, bool) {
	w.t.Helper()
	h, ok, err := b.Inspect(context.Background(), group)
	if err != nil {
		w.t.Fatalf("inspect %s: %v", group, err)
	}
	return h, ok
}

func contains(log []string, s string) bool {
	for _, l := range log {
		if l == s {
			return true
		}
	}
	return false
}

func prefixed(log []string, p string) int {
	n := 0
	for _, l := range log {
		if len(l) >= len(p) && l[:len(p)] == p {
			n++
		}
	}
	return n
}
