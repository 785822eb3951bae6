package daemon_test

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/daemon/daemontest"
	"github.com/leasehold/leasehold/lvs"
)

var (
	vsKey = lvs.Key{Proto: lvs.TCP, Addr: netip.MustParseAddrPort("10.0.0.100:80")}
	real2 = netip.MustParseAddrPort("10.0.1.2:80")
)

// lvsConf is seed 003's virtual server (DR, lc, persistence 50) on the
// group's VIP with fast checks.
const lvsConf = `lvs_mode: %s
virtual_server:
  - ip: 10.0.0.100
    port: 80
    follow: VI_1
    delay_loop: 1
    lb_algo: lc
    lb_kind: DR
    persistence_timeout: 50
    real_server:
      - {ip: 10.0.1.1, weight: 1, TCP_CHECK: {connect_timeout: 0.5, retry: 1, delay_before_retry: 0.2}}
      - {ip: 10.0.1.2, weight: 2, TCP_CHECK: {connect_timeout: 0.5, retry: 1, delay_before_retry: 0.2}}
`

// twoDirectors starts n1 (priority 120) and n2 (100) with lvsConf in mode.
func twoDirectors(t *testing.T, w *daemontest.World, mode string) (n1, n2 *testDaemon) {
	t.Helper()
	start := func(name, addr string, prio int) *testDaemon {
		return startDaemonConf(t, w, name, addr, func(dir string) string {
			return nodeConf(name, prio, dir) + strings.Replace(lvsConf, "%s", mode, 1)
		})
	}
	return start("n1", "10.0.0.1", 120), start("n2", "10.0.0.2", 100)
}

func hasTable(td *testDaemon) bool { _, ok := td.plat.IPVS.Service(vsKey); return ok }

// lvs_mode owner: the table exists only on the owner, only while it owns
// (checked at every millisecond: a node answering for the VIP has its
// table; never two tables), and moves with the lease.
func TestLVSOwnerModeTableFollowsTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, stopWatch := watchedWorld()
		defer stopWatch()
		n1, n2 := twoDirectors(t, w, "owner")
		var bad []string
		stopSample := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			for {
				select {
				case <-stopSample:
					return
				case <-time.After(time.Millisecond):
				}
				if hasTable(n1) && hasTable(n2) {
					bad = append(bad, time.Now().String()+": two tables")
				}
				for _, td := range []*testDaemon{n1, n2} {
					if answering(w, td.name)() && !hasTable(td) {
						bad = append(bad, time.Now().String()+": "+td.name+" answers without its table")
					}
				}
			}
		}()
		waitFor(t, 10*time.Second, "n1 owns with its table", func() bool { return answering(w, "n1")() && hasTable(n1) })
		if hasTable(n2) {
			t.Fatal("the backup has the table")
		}
		v, _ := n1.plat.IPVS.Service(vsKey)
		if v.Scheduler != "lc" || v.Timeout != 50 || len(v.Dests) != 2 || v.Dests[0].Forward != lvs.DR {
			t.Errorf("table %+v", v)
		}
		st := n1.d.Status()
		if st.LVS == nil || len(st.LVS.VirtualServers) != 1 || !st.LVS.VirtualServers[0].Active ||
			st.LVS.VirtualServers[0].RealServers[1].TableWeight != 2 {
			t.Fatalf("status %+v", st.LVS)
		}
		if b, err := json.Marshal(st); err != nil || !strings.Contains(string(b), `"real_servers"`) {
			t.Errorf("status JSON %s (%v)", b, err)
		}

		w.Seg.Isolate("n1")
		w.Quorum.Partition("n1")
		waitFor(t, 10*time.Second, "n2 owns with its table", func() bool { return answering(w, "n2")() && hasTable(n2) })
		waitFor(t, time.Second, "n1 dropped its table", func() bool { return !hasTable(n1) })
		// n1 back (preempting), then graceful stops: each table goes with
		// its owner's lease. (A node still cut off from the in-memory
		// quorum does not finish its shutdown: its session's close waits.)
		w.Seg.Rejoin("n1")
		w.Quorum.Heal("n1")
		waitFor(t, 15*time.Second, "n1 owns again with its table", func() bool { return answering(w, "n1")() && hasTable(n1) })
		n1.shutdown(t)
		if hasTable(n1) {
			t.Error("table left after a graceful stop")
		}
		waitFor(t, 5*time.Second, "n2 owns with its table after n1's stop", func() bool { return answering(w, "n2")() && hasTable(n2) })
		n2.shutdown(t)
		if hasTable(n2) {
			t.Error("table left after a graceful stop")
		}
		time.Sleep(100 * time.Millisecond) // a group's last probe ends within its 20 ms wait
		close(stopSample)
		<-sampled
		if len(bad) > 0 {
			t.Fatalf("%d violations, first: %s", len(bad), bad[0])
		}
	})
}

// lvs_mode all: both directors keep the table (keepalived's behaviour)
// and follow their own checks.
func TestLVSAllModeBothTablesFollowChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, stopWatch := watchedWorld()
		defer stopWatch()
		n1, n2 := twoDirectors(t, w, "all")
		waitFor(t, 10*time.Second, "both tables", func() bool { return hasTable(n1) && hasTable(n2) })
		n2.plat.Checks.SetFailing(real2, "connection refused")
		took := waitFor(t, 5*time.Second, "n2 drops the failing real server", func() bool { return len(n2.plat.IPVS.Weights(vsKey)) == 1 })
		if max := time.Second + 200*time.Millisecond + 10*time.Millisecond; took > max {
			t.Errorf("detected after %v, want within delay_loop + retry × delay_before_retry (%v)", took, max)
		}
		if len(n1.plat.IPVS.Weights(vsKey)) != 2 {
			t.Error("n1's checks see both real servers alive: its table must keep both")
		}
		st := n2.d.Status().LVS.VirtualServers[0].RealServers[1]
		if st.Alive || st.Downs != 1 || st.TableWeight != -1 || st.Checks[0].LastError != "connection refused" {
			t.Errorf("status of the failed real server: %+v", st)
		}
		n1.shutdown(t)
		n2.shutdown(t)
		if hasTable(n1) || hasTable(n2) {
			t.Error("table left after stop (keepalived removes it on exit too)")
		}
		time.Sleep(100 * time.Millisecond) // a group's last probe ends within its 20 ms wait
	})
}

// syncRoles lists the sync daemons td's kernel runs ("master eth1").
func syncRoles(td *testDaemon) string {
	ds, _ := td.plat.IPVS.SyncDaemons()
	var out []string
	for _, d := range ds {
		out = append(out, d.State.String()+" "+d.Interface)
	}
	return strings.Join(out, ",")
}

// lvs_sync_daemon follows the lease: the owner runs the master, the other
// director the backup; they swap with the lease, and a graceful stop ends
// both.
func TestLVSSyncDaemonFollowsTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, stopWatch := watchedWorld()
		defer stopWatch()
		start := func(name, addr string, prio int) *testDaemon {
			return startDaemonConf(t, w, name, addr, func(dir string) string {
				return nodeConf(name, prio, dir) + strings.Replace(lvsConf, "%s", "owner", 1) +
					"lvs_sync_daemon: {interface: eth1, instance: VI_1, id: 3}\n"
			})
		}
		n1, n2 := start("n1", "10.0.0.1", 120), start("n2", "10.0.0.2", 100)
		waitFor(t, 10*time.Second, "n1 owns and syncs as the master, n2 as the backup", func() bool {
			return answering(w, "n1")() && syncRoles(n1) == "master eth1" && syncRoles(n2) == "backup eth1"
		})
		if st := n1.d.Status().LVSSync; st == nil || st.State != "master" || st.SyncID != 3 || st.Group != "VI_1" {
			t.Errorf("n1's sync status %+v", st)
		}
		w.Seg.Isolate("n1")
		w.Quorum.Partition("n1")
		waitFor(t, 10*time.Second, "n2 owns and is the master, n1 the backup", func() bool {
			return answering(w, "n2")() && syncRoles(n2) == "master eth1" && syncRoles(n1) == "backup eth1"
		})
		w.Seg.Rejoin("n1")
		w.Quorum.Heal("n1")
		waitFor(t, 15*time.Second, "n1 the master again", func() bool { return syncRoles(n1) == "master eth1" && syncRoles(n2) == "backup eth1" })
		n1.shutdown(t)
		n2.shutdown(t)
		if r1, r2 := syncRoles(n1), syncRoles(n2); r1 != "" || r2 != "" {
			t.Errorf("sync daemons left after graceful stops: n1 %q, n2 %q", r1, r2)
		}
		time.Sleep(100 * time.Millisecond) // a group's last probe ends within its 20 ms wait
	})
}
