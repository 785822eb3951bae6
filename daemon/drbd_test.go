package daemon_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/quorum/quorumtest"
	"github.com/leasehold/leasehold/storage/drbd"
	"github.com/leasehold/leasehold/storage/drbd/drbdtest"
)

const drbdSection = "drbd: {resource: r0, device: /dev/drbd0, mount: /srv, fstype: ext4}"

// Two daemons with a DRBD resource on fake DRBD hosts: n1 starts as a
// leftover Primary with the filesystem mounted (an earlier run was
// killed) and demotes before it joins VRRP; the owner is Primary and
// mounted, the backup Secondary; when the owner is cut off (L2, quorum
// and the replication link), it demotes and the other promotes. Never two
// Primaries (sampled every 10 ms).
func TestDRBDFollowsTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, stopWatch := watchedWorld()
		defer stopWatch()
		h1, h2 := w.DRBDHost("n1"), w.DRBDHost("n2")
		drbdtest.Link(h1, h2)
		h1.Set(drbd.Primary, drbd.UpToDate, drbd.Connected)
		h1.Mount("/dev/drbd0", "/srv")

		primaries := func() (n int) {
			for _, h := range []*drbdtest.Host{h1, h2} {
				if h.Role() == drbd.Primary {
					n++
				}
			}
			return n
		}
		check := func(cond func() bool) func() bool {
			return func() bool {
				if n := primaries(); n > 1 {
					t.Fatalf("%d Primaries", n)
				}
				return cond()
			}
		}

		n1 := startDaemon(t, w, "n1", "10.0.0.1", 120, drbdSection)
		n2 := startDaemon(t, w, "n2", "10.0.0.2", 100, drbdSection)
		waitFor(t, 10*time.Second, "n1 owns, Primary and mounted", check(func() bool {
			_, mounted := h1.Mounted("/srv")
			return answering(w, "n1")() && h1.Role() == drbd.Primary && mounted && h2.Role() == drbd.Secondary
		}))
		calls := h1.Calls()
		if len(calls) < 3 || calls[0] != "umount /srv" || calls[1] != "drbdadm secondary r0" {
			t.Fatalf("n1 did not demote its leftover first: %q", calls)
		}
		if st := n1.d.Status().DRBD; len(st) != 1 || st[0].Group != "VI_1" || st[0].Resource != "r0" || st[0].Role != "Primary" ||
			st[0].PeerRole != "Secondary" || st[0].CState != "Connected" || st[0].Disk != "UpToDate" || st[0].Error != "" {
			t.Fatalf("n1 status drbd: %+v", st)
		}

		w.Seg.Isolate("n1")
		w.Quorum.Partition("n1")
		drbdtest.Cut(h1)
		waitFor(t, 10*time.Second, "n2 takes over as Primary", check(func() bool {
			_, mounted := h2.Mounted("/srv")
			return answering(w, "n2")() && h2.Role() == drbd.Primary && mounted
		}))
		if h1.Role() != drbd.Secondary {
			t.Fatalf("n1 still %s after losing the lease", h1.Role())
		}
		// (A daemon cut off from the in-memory quorum does not shut down
		// within a synctest bubble: heal first, as the other tests do.)
		w.Quorum.Heal("n1")
		w.Seg.Rejoin("n1")
		n2.shutdown(t)
		n1.shutdown(t)
		for name, h := range map[string]*drbdtest.Host{"n1": h1, "n2": h2} {
			if _, mounted := h.Mounted("/srv"); h.Role() != drbd.Secondary || mounted {
				t.Fatalf("%s still %s (mounted %v) after its shutdown", name, h.Role(), mounted)
			}
		}
	})
}

// A DRBD resource that cannot be demoted keeps the watchdog armed: the
// daemon stops (its session ends, the feeds stop) and the machine
// would reset, never a Primary left without its guard.
func TestDRBDDemoteFailureLeavesTheWatchdogArmed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, stopWatch := watchedWorld()
		defer stopWatch()
		h := w.DRBDHost("n1")
		n1 := startDaemonConf(t, w, "n1", "10.0.0.1", func(dir string) string {
			c := nodeConf("n1", 120, dir) + "    " + drbdSection + "\n"
			c = strings.Replace(c, "  ttl: 1s\n", "  ttl: 4s\n", 1)
			return strings.Replace(c, "status:", "fencing: {watchdog: auto}\nstatus:", 1)
		})
		waitFor(t, 15*time.Second, "n1 owns, Primary, watchdog armed", func() bool {
			return answering(w, "n1")() && h.Role() == drbd.Primary && n1.plat.Dog.Armed()
		})
		h.Fail("drbdadm secondary", &drbd.ExitError{Code: 11, Output: "State change failed: (-12) Device is held open by someone"})
		n1.shutdown(t)
		if h.Role() != drbd.Primary || !n1.plat.Dog.Armed() {
			t.Fatalf("after a failed demote: DRBD %s, watchdog armed %v", h.Role(), n1.plat.Dog.Armed())
		}
	})
}

// A demotion that fails while the node runs (a better node appears and
// n1's DRBD cannot be made Secondary) escalates: n1 does not release its
// lease — the peer would promote beside a Primary that may still be
// writing — and its watchdog, left armed, is no longer fed although the
// session's renewals go on, so the machine would reset; only then could
// the lease expire. n2 meanwhile never gets the lease.
func TestDRBDDemoteFailureKeepsTheLeaseAndStarvesTheWatchdog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, stopWatch := watchedWorld()
		defer stopWatch()
		h1, h2 := w.DRBDHost("n1"), w.DRBDHost("n2")
		drbdtest.Link(h1, h2)
		conf := func(name string, prio int) func(dir string) string {
			return func(dir string) string {
				c := nodeConf(name, prio, dir) + "    " + drbdSection + "\n"
				c = strings.Replace(c, "  ttl: 1s\n", "  ttl: 4s\n", 1)
				return strings.Replace(c, "status:", "fencing: {watchdog: auto}\nstatus:", 1)
			}
		}
		n1 := startDaemonConf(t, w, "n1", "10.0.0.1", conf("n1", 120))
		waitFor(t, 15*time.Second, "n1 owns, Primary, watchdog armed", func() bool {
			return answering(w, "n1")() && h1.Role() == drbd.Primary && n1.plat.Dog.Armed()
		})
		h1.Fail("drbdadm secondary", &drbd.ExitError{Code: 11, Output: "State change failed: (-12) Device is held open by someone"})
		n2 := startDaemonConf(t, w, "n2", "10.0.0.2", conf("n2", 130))
		waitFor(t, 15*time.Second, "n1 tried to demote", func() bool {
			return slices.Contains(h1.Calls(), "drbdadm secondary r0")
		})
		time.Sleep(time.Second)
		op := w.Quorum.Client("operator", quorumtest.Options(w.Quorum.Cluster(), "operator"))
		defer op.Close()
		feeds := n1.plat.Dog.Feeds()
		for range 50 {
			hold, held, err := op.Inspect(context.Background(), "VI_1")
			if err != nil || !held || hold.Node != "n1" {
				t.Fatalf("VI_1 at the quorum while n1 is still Primary: %+v held %v %v", hold, held, err)
			}
			if h2.Role() == drbd.Primary {
				t.Fatal("n2 Primary beside n1")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if got := n1.plat.Dog.Feeds(); got != feeds || !n1.plat.Dog.Armed() || h1.Role() != drbd.Primary {
			t.Fatalf("after the failed demotion: %d feeds in 5 s (want none), armed %v, DRBD %s", got-feeds, n1.plat.Dog.Armed(), h1.Role())
		}
		n2.shutdown(t)
		n1.shutdown(t)
		time.Sleep(2 * time.Second)
	})
}

// A node whose disk is not known to be the newest gets the lease but
// never serves: the promotion is refused, the group demotes, the VIP never
// goes up, and status says why.
func TestDRBDRefusalInStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, stopWatch := watchedWorld()
		defer stopWatch()
		h := w.DRBDHost("n1")
		h.Set(drbd.Secondary, drbd.Inconsistent, drbd.WFConnection)
		n1 := startDaemon(t, w, "n1", "10.0.0.1", 120, drbdSection)
		waitFor(t, 10*time.Second, "a refusal in status", func() bool {
			if got := w.AnsweringNodes(vip); len(got) != 0 {
				t.Fatalf("%v answer for the VIP with an Inconsistent disk", got)
			}
			st := n1.d.Status().DRBD
			return len(st) == 1 && st[0].Refusals > 0
		})
		st := n1.d.Status().DRBD[0]
		if !strings.Contains(st.LastRefusal, "local disk Inconsistent") || st.Disk != "Inconsistent" || h.Role() != drbd.Secondary {
			t.Fatalf("status %+v, role %s", st, h.Role())
		}
		n1.shutdown(t)
		// The group's asynchronous steps (a probe of the next attempt) may
		// outlive Run by up to a step timeout: let them end in the bubble.
		time.Sleep(2 * time.Second)
	})
}

// The replication link alone is cut while n1 owns: n1's fence-peer
// handler marks n2 outdated at the quorum (written here as the handler
// would, under n1's epoch). Then n1 is cut off entirely: n2 gets the lease
// but refuses to promote its stale disk, the VIP stays down and status
// says why, until the operator clears the mark (the override); then n2
// promotes.
func TestDRBDOutdatedMarkRefusesTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, stopWatch := watchedWorld()
		defer stopWatch()
		h1, h2 := w.DRBDHost("n1"), w.DRBDHost("n2")
		drbdtest.Link(h1, h2)
		n1 := startDaemon(t, w, "n1", "10.0.0.1", 120, drbdSection)
		n2 := startDaemon(t, w, "n2", "10.0.0.2", 100, drbdSection)
		waitFor(t, 10*time.Second, "n1 owns and is Primary", func() bool {
			return answering(w, "n1")() && h1.Role() == drbd.Primary
		})
		ctx := context.Background()
		op := w.Quorum.Client("operator", quorumtest.Options(w.Quorum.Cluster(), "operator"))
		defer op.Close()
		drbdtest.Cut(h1)
		hold, held, err := op.Inspect(ctx, "VI_1")
		if err != nil || !held || hold.Node != "n1" {
			t.Fatalf("VI_1 at the quorum: %+v %v %v", hold, held, err)
		}
		d := drbd.Handler{Q: op, Group: "VI_1", Self: "n1", Peer: "n2"}.FencePeer(ctx)
		if d.Code != drbd.FencePeerOutdated {
			t.Fatalf("n1's fence-peer: %+v", d)
		}

		w.Seg.Isolate("n1")
		w.Quorum.Partition("n1")
		waitFor(t, 10*time.Second, "n2 refuses to promote, and says why", func() bool {
			if got := w.AnsweringNodes(vip); slices.Contains(got, "n2") || h2.Role() == drbd.Primary {
				t.Fatalf("n2 serves (answering %v, DRBD %s) while marked outdated", got, h2.Role())
			}
			st := n2.d.Status().DRBD
			return h1.Role() == drbd.Secondary && len(st) == 1 && st[0].Refusals > 0
		})
		if st := n2.d.Status().DRBD[0]; !strings.Contains(st.LastRefusal, "marked outdated at the quorum") || !st.OutdatedAtQuorum || h2.Role() != drbd.Secondary {
			t.Fatalf("n2 status %+v, role %s", st, h2.Role())
		}
		// The operator's override: clear n2's mark (leasehold drbd unfence --force).
		if err := op.ClearOutdated(ctx, "VI_1", "n2"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 15*time.Second, "n2 promotes once the mark is cleared", func() bool {
			return answering(w, "n2")() && h2.Role() == drbd.Primary
		})
		if st := n2.d.Status().DRBD[0]; st.OutdatedAtQuorum {
			t.Fatalf("n2 status still marked after promoting: %+v", st)
		}
		w.Quorum.Heal("n1")
		w.Seg.Rejoin("n1")
		n2.shutdown(t)
		n1.shutdown(t)
		time.Sleep(2 * time.Second)
	})
}

// Seed 002's split brain, resolved by the lease: n1 owns (Primary,
// mounted); the operator forced n2 Primary and mounted it while the
// replication link was down, and on reconnect DRBD found both sides
// written (StandAlone on both, its split-brain handler's marker in each
// state_dir). With after_split_brain: lease, n2 — not the holder —
// unmounts, becomes Secondary and reconnects with --discard-my-data,
// noting the generation it gave up; n1 reconnects; both are connected
// again with n1's data, the markers go, status and the metric say it is
// over.
func TestDRBDSplitBrainResolvedByTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, stopWatch := watchedWorld()
		defer stopWatch()
		h1, h2 := w.DRBDHost("n1"), w.DRBDHost("n2")
		drbdtest.Link(h1, h2)
		dirs := map[string]string{}
		conf := func(name string, prio int) func(dir string) string {
			return func(dir string) string {
				dirs[name] = dir
				return nodeConf(name, prio, dir) + "    drbd: {resource: r0, device: /dev/drbd0, mount: /srv, fstype: ext4, after_split_brain: lease}\n"
			}
		}
		n1 := startDaemonConf(t, w, "n1", "10.0.0.1", conf("n1", 120))
		n2 := startDaemonConf(t, w, "n2", "10.0.0.2", conf("n2", 100))
		waitFor(t, 10*time.Second, "n1 owns and is Primary", func() bool {
			return answering(w, "n1")() && h1.Role() == drbd.Primary
		})
		// The split brain: n2 made Primary and mounted by hand, both sides
		// written, DRBD StandAlone on both, the handler's markers.
		drbdtest.Cut(h1)
		h2.Set(drbd.Primary, drbd.UpToDate, drbd.WFConnection)
		h2.Mount("/dev/drbd0", "/srv")
		drbdtest.SplitBrain(h1, h2)
		for _, name := range []string{"n1", "n2"} {
			if err := os.MkdirAll(dirs[name]+"/state", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(drbd.SplitBrainMarker(dirs[name]+"/state", "r0"), []byte("2026-11-27T00:00:00Z resource r0\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 30*time.Second, "connected again, n1 Primary, n2 Secondary and unmounted", func() bool {
			_, mounted := h2.Mounted("/srv")
			s1, s2 := n1.d.Status().DRBD, n2.d.Status().DRBD
			return h1.Role() == drbd.Primary && h2.Role() == drbd.Secondary && !mounted && len(s1) == 1 && len(s2) == 1 &&
				s1[0].CState == "Connected" && s2[0].CState == "Connected" && s2[0].SplitBrain.Resolved > 0 && s1[0].SplitBrain.Resolved > 0
		})
		s2 := n2.d.Status().DRBD[0].SplitBrain
		if s2.Active || s2.Discarded == "" || !strings.HasPrefix(s2.Discarded, "0000000000000002:") {
			t.Fatalf("n2's split brain status %+v: want over, with the generation it discarded", s2)
		}
		if s1 := n1.d.Status().DRBD[0].SplitBrain; s1.Active || s1.Discarded != "" {
			t.Fatalf("n1 (the holder) status %+v: it discards nothing", s1)
		}
		calls := h2.Calls()
		if i, j := slices.Index(calls, "umount /srv"), slices.Index(calls, "drbdadm connect --discard-my-data r0"); i < 0 || j < i {
			t.Fatalf("n2's calls %q: want umount, then connect --discard-my-data", calls)
		}
		for _, name := range []string{"n1", "n2"} {
			if _, err := os.Stat(drbd.SplitBrainMarker(dirs[name]+"/state", "r0")); err == nil {
				t.Errorf("%s's split-brain marker still there once connected", name)
			}
		}
		n2.shutdown(t)
		n1.shutdown(t)
	})
}

// With after_split_brain manual (the default) a split brain is reported
// and nothing is done.
func TestDRBDSplitBrainReportedAndLeftToTheOperator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, stopWatch := watchedWorld()
		defer stopWatch()
		h := w.DRBDHost("n1")
		var dir string
		n1 := startDaemonConf(t, w, "n1", "10.0.0.1", func(d string) string {
			dir = d
			return nodeConf("n1", 120, d) + "    " + drbdSection + "\n"
		})
		waitFor(t, 10*time.Second, "n1 owns", func() bool { return answering(w, "n1")() && h.Role() == drbd.Primary })
		h.Set(drbd.Primary, drbd.UpToDate, drbd.StandAlone)
		os.MkdirAll(dir+"/state", 0o755)
		if err := os.WriteFile(drbd.SplitBrainMarker(dir+"/state", "r0"), []byte("2026-11-27T00:00:00Z resource r0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the split brain in status", func() bool {
			st := n1.d.Status().DRBD
			return len(st) == 1 && st[0].SplitBrain.Active
		})
		time.Sleep(15 * time.Second)
		st := n1.d.Status().DRBD[0].SplitBrain
		if !st.Active || !strings.Contains(st.Decision, "waiting for the operator") || slices.ContainsFunc(h.Calls(), func(c string) bool { return strings.HasPrefix(c, "drbdadm connect") }) {
			t.Fatalf("status %+v, calls %q: want reported and nothing done", st, h.Calls())
		}
		n1.shutdown(t)
	})
}
