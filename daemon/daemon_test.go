package daemon_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/daemon"
	"github.com/leasehold/leasehold/daemon/daemontest"
	"github.com/leasehold/leasehold/node"
)

var vip = netip.MustParseAddr("10.0.0.100")

// nodeConf is a lease-mode node on the in-memory platform (the etcd
// endpoint is never dialled: the platform brings its own quorum).
func nodeConf(name string, prio int, dir string) string {
	return fmt.Sprintf(`node: {name: %s}
quorum:
  backend: etcd
  ttl: 1s
  etcd: {endpoints: ["http://127.0.0.1:1"]}
status: {listen: "unix:%s/lh.sock"}
state_dir: %s/state
vrrp_instance:
  VI_1:
    interface: eth0
    virtual_router_id: 51
    priority: %d
    version: 3
    advert_int: 0.1
    virtual_ipaddress: [10.0.0.100/24]
`, name, dir, dir, prio)
}

// testDaemon is one running daemon on the in-memory platform.
type testDaemon struct {
	name string
	d    *daemon.Daemon
	plat *daemontest.Node
	stop context.CancelFunc
	done chan error
}

// startDaemon starts a daemon; extra lines go into its instance's block.
func startDaemon(t *testing.T, w *daemontest.World, name string, addr string, prio int, extra ...string) *testDaemon {
	t.Helper()
	return startConf(t, w, name, addr, func(dir string) string {
		conf := nodeConf(name, prio, dir)
		for _, x := range extra {
			conf += "    " + x + "\n"
		}
		return conf
	})
}

// startConf starts a daemon from the file conf writes for a directory of
// its own.
func startConf(t *testing.T, w *daemontest.World, name, addr string, conf func(dir string) string) *testDaemon {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "leasehold.yaml")
	if err := os.WriteFile(path, []byte(conf(dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err := daemon.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return runDaemon(t, plan, w.Node(name, netip.MustParseAddr(addr)))
}

// runDaemon assembles and runs a daemon from plan on plat.
func runDaemon(t *testing.T, plan *daemon.Plan, plat *daemontest.Node) *testDaemon {
	t.Helper()
	d, err := daemon.New(plan, plat, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	td := &testDaemon{name: plat.Name, d: d, plat: plat, stop: cancel, done: make(chan error, 1)}
	go func() { td.done <- d.Run(ctx) }()
	return td
}

// shutdown stops the daemon gracefully and waits for Run to return.
func (td *testDaemon) shutdown(t *testing.T) {
	t.Helper()
	td.stop()
	if err := <-td.done; err != nil {
		t.Fatalf("%s: Run: %v", td.name, err)
	}
}

func (td *testDaemon) role() string {
	s := td.d.Status()
	if len(s.Groups) == 0 {
		return ""
	}
	return s.Groups[0].Role
}

// waitFor polls cond every 10 ms of (bubble) time, failing after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("not within %v: %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func answering(w *daemontest.World, names ...string) func() bool {
	return func() bool {
		got := w.AnsweringNodes(vip)
		if len(got) != len(names) {
			return false
		}
		for i := range got {
			if got[i] != names[i] {
				return false
			}
		}
		return true
	}
}

// watchedWorld returns a world (quorum TTLs from 500 ms) whose VIP is
// sampled every millisecond for two answering nodes; stop ends that.
func watchedWorld() (w *daemontest.World, stop func()) {
	w = daemontest.NewWorld(500 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { w.Watch(ctx, time.Millisecond, vip) })
	return w, func() { cancel(); wg.Wait() }
}

// Two daemons, assembled by daemon.New from plans on an in-memory
// platform, elect an owner; then owner loss (cut off from the L2 and the
// quorum), its return and preemption, a graceful handover, and a quorum
// loss. Never two nodes answer for the VIP (sampled every millisecond and
// at every address change).
func TestTwoDaemonsOwnerLossHandoverQuorumLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, stopWatch := watchedWorld()
		defer stopWatch()

		n1 := startDaemon(t, w, "n1", "10.0.0.1", 120)
		n2 := startDaemon(t, w, "n2", "10.0.0.2", 100)
		took := waitFor(t, 10*time.Second, "n1 (priority 120) owns and alone answers", func() bool {
			return answering(w, "n1")() && n1.role() == "owner" && n2.role() == "backup"
		})
		t.Logf("n1 owner after %v", took)

		// Owner loss: n1 is cut off from the segment and the quorum. n2
		// answers only after n1 stopped answering (its fence lapsed).
		w.Seg.Isolate("n1")
		w.Quorum.Partition("n1")
		took = waitFor(t, 10*time.Second, "n2 takes over from the cut-off n1", answering(w, "n2"))
		t.Logf("n2 answers %v after n1 was cut off", took)
		if n1.role() == "owner" {
			t.Fatalf("n1 still owner while cut off")
		}

		// n1 comes back: it has the higher priority and preempts through a
		// release by n2 (a handover, never two).
		w.Seg.Rejoin("n1")
		w.Quorum.Heal("n1")
		waitFor(t, 15*time.Second, "n1 back as owner", func() bool { return answering(w, "n1")() && n1.role() == "owner" })

		// Graceful handover: n1 stops; n2 owns soon after.
		n1.shutdown(t)
		took = waitFor(t, 5*time.Second, "n2 owns after n1's graceful stop", answering(w, "n2"))
		t.Logf("n2 answers %v after n1's stop", took)
		if took > time.Second {
			t.Errorf("graceful handover took %v (the lease was released: no VRRP timer to wait for)", took)
		}

		// Quorum loss: n2 withdraws the VIP before its local deadline;
		// nobody answers; when the quorum returns, n2 owns again.
		w.Quorum.StopAll()
		lost := time.Now()
		took = waitFor(t, 2*time.Second, "n2 withdraws the VIP without a quorum", answering(w))
		if took > time.Second {
			t.Errorf("VIP withdrawn %v after the quorum went (TTL 1 s)", took)
		}
		if r := n2.role(); r == "owner" {
			t.Fatalf("n2 still owner %v after the quorum went", time.Since(lost))
		}
		time.Sleep(2 * time.Second)
		if got := w.AnsweringNodes(vip); len(got) != 0 {
			t.Fatalf("%v answer without a quorum", got)
		}
		w.Quorum.StartAll()
		waitFor(t, 10*time.Second, "n2 owns again after the quorum returns", answering(w, "n2"))
		n2.shutdown(t)

		if v := w.Violations(); len(v) > 0 {
			t.Fatalf("two nodes answered for the VIP:\n%v", v)
		}
		if st := n2.d.Status(); len(st.Groups) != 1 || st.Groups[0].Role != node.RoleStopped.String() {
			t.Errorf("after shutdown: %+v", st.Groups)
		}
	})
}
