// Package acceptance runs two leasehold nodes with a real quorum (a
// separate etcd process, or the embedded raft group with a witness) in
// network namespaces and injects the faults keepalived cannot survive:
// kill -9, SIGSTOP, a VRRP partition, the owner cut from the quorum, the
// whole quorum down, and a graceful stop. The invariant checkers run
// throughout; the test fails on any ARP probe round answered by two MACs.
package acceptance

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/netlab"
	"github.com/leasehold/leasehold/test/lhtest"
)

var backends = []string{"etcd", "raft"}

func each(t *testing.T, f func(t *testing.T, w *world)) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			w := newWorld(t, b)
			w.up()
			f(t, w)
			w.checkNoDualARP()
		})
	}
}

// takeover waits for n2 to own the VIP and checks that after that only n2
// answers, and that n1's last ARP answer came before n2's first.
func (w *world) takeover(fault netlab.Stamp, timeout time.Duration) netlab.Stamp {
	w.t.Helper()
	w.waitFor("n2 to own the VIP", timeout, func() bool { return w.d["n2"].Role() == "owner" && w.holds("n2") })
	at := w.now()
	time.Sleep(1500 * time.Millisecond)
	first2, _ := w.arpAnswers("n2", fault)
	_, last1 := w.arpAnswers("n1", fault)
	if first2.IsZero() {
		w.t.Errorf("n2 owns the VIP but never answered ARP for it")
	}
	if !last1.IsZero() && !last1.Before(first2) {
		w.t.Errorf("n1 answered ARP at %v, after n2 first answered at %v", last1, first2)
	}
	if got := w.lastTCP(at); got != "n2" {
		w.t.Errorf("client reached %q through the VIP after the takeover, want n2", got)
	}
	// A round counts GARPs heard until the next round starts: the one in
	// progress at the fault counts too (a graceful handover can announce
	// within a few tens of milliseconds of it).
	garps := 0
	rounds := w.arp.Rounds()
	for i, r := range rounds {
		if i+1 == len(rounds) || rounds[i+1].At.Sub(fault) > 0 {
			garps += r.GARPs["n2"]
		}
	}
	if garps == 0 {
		w.t.Errorf("n2 sent no gratuitous ARP after taking over")
	}
	return at
}

// 1. kill -9 of the owner's daemon.
func TestKill9(t *testing.T) {
	each(t, func(t *testing.T, w *world) {
		t0 := w.now()
		w.d["n1"].Kill9()
		at := w.takeover(t0, 20*time.Second)
		_, last1 := w.arpAnswers("n1", t0)
		t.Logf("kill -9: n1 last answered ARP %v after the kill; n2 owner after %v; client outage %v",
			durOr(last1, t0), at.Sub(t0), w.outage(t0))
		if !last1.IsZero() && last1.Sub(t0) > ttl+500*time.Millisecond {
			t.Errorf("the dead node answered ARP %v after the kill: its fence should expire within the TTL", last1.Sub(t0))
		}
	})
}

func durOr(s, from netlab.Stamp) any {
	if s.IsZero() {
		return "never"
	}
	return s.Sub(from)
}

// 2. SIGSTOP of the owner for 10 s, then SIGCONT.
func TestFreeze(t *testing.T) {
	each(t, func(t *testing.T, w *world) {
		pid := w.d["n1"].Proc.PID
		if st, _ := w.d["n1"].Status(); len(st.Groups) > 0 {
			w.epochBefore = st.Groups[0].Epoch
		}
		t0 := w.now()
		if err := w.n1.Freeze(pid); err != nil {
			t.Fatal(err)
		}
		w.takeover(t0, 20*time.Second)
		time.Sleep(time.Until(t0.Time().Add(10 * time.Second)))
		thaw := w.now()
		if err := w.n1.Thaw(pid); err != nil {
			t.Fatal(err)
		}
		w.waitFor("n1 to step down after resuming", 15*time.Second, func() bool {
			r := w.d["n1"].Role()
			return r != "owner" && r != "demoting" && r != ""
		})
		// n1 (priority 120, preempt) takes the group back, but only
		// through the lease: after n2 let go, under a newer epoch. It
		// must never answer as the stale owner it was when frozen. (A new
		// session that came while n1 was still demoting once left its VRRP
		// in fault for good: n1 never became owner again.)
		w.waitFor("n1 to take the group back (preemption through the lease)", 15*time.Second, func() bool {
			return w.d["n1"].Role() == "owner"
		})
		time.Sleep(time.Second)
		first1, _ := w.arpAnswers("n1", thaw)
		_, last2 := w.arpAnswers("n2", thaw)
		if !first1.IsZero() && !last2.IsZero() && !last2.Before(first1) {
			t.Errorf("n1 answered ARP at %v after resuming while n2 still answered until %v: a stale owner spoke", first1, last2)
		}
		if st, _ := w.d["n1"].Status(); w.d["n1"].Role() == "owner" && len(st.Groups) > 0 && st.Groups[0].Epoch <= w.epochBefore {
			t.Errorf("n1 owns again under epoch %d, not newer than before the freeze (%d)", st.Groups[0].Epoch, w.epochBefore)
		}
		t.Logf("freeze: after resuming n1 is %s, n2 is %s", w.d["n1"].Role(), w.d["n2"].Role())
	})
}

// 3. VRRP dropped between the nodes for 10 s: both VRRP masters, one owner.
func TestVRRPPartition(t *testing.T) {
	each(t, func(t *testing.T, w *world) {
		ctx := context.Background()
		t0 := w.now()
		if err := w.n1.DropVRRP(ctx, true); err != nil {
			t.Fatal(err)
		}
		w.waitFor("n2 to become a candidate (VRRP master without the lease)", 10*time.Second, func() bool {
			return w.d["n2"].Role() == "candidate"
		})
		time.Sleep(10 * time.Second)
		if err := w.n1.DropVRRP(ctx, false); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		if d := w.mon.DualIntervals(); len(d) > 0 {
			t.Errorf("both nodes had the VIP configured: %+v", d)
		}
		if first, _ := w.arpAnswers("n2", t0); !first.IsZero() {
			t.Errorf("n2 answered ARP at %v during the VRRP partition", first)
		}
		if w.d["n1"].Role() != "owner" || w.d["n2"].Role() == "owner" {
			t.Errorf("after the partition roles are n1=%s n2=%s, want n1 owner only", w.d["n1"].Role(), w.d["n2"].Role())
		}
		t.Logf("VRRP partition: client outage %v (the owner never changed)", w.outage(t0))
		for _, iv := range w.tcp.Outages() {
			if !iv.End.Before(t0) {
				t.Logf("  outage %v..%v", iv.Start.Sub(t0), iv.End.Sub(t0))
			}
		}
	})
}

// cutQuorum drops n1's traffic to the quorum (and, for raft, to the other
// voters).
func (w *world) cutQuorum(h *netlab.Host, on bool) {
	w.t.Helper()
	ctx := context.Background()
	var targets []string
	switch w.backend {
	case "etcd":
		targets = []string{w.q.IPv4.String() + ":2379"}
	case "raft":
		for _, o := range []*netlab.Host{w.n1, w.n2, w.q} {
			if o != h {
				targets = append(targets, o.IPv4.String()+":7000", o.IPv4.String()+":7001")
			}
		}
	}
	for _, tg := range targets {
		if err := h.DropTCPTo(ctx, mustAddrPort(tg), on); err != nil {
			w.t.Fatal(err)
		}
	}
}

// 4. The owner is cut from the quorum: it stops answering before its local
// deadline; the other takes over after.
func TestOwnerCutFromQuorum(t *testing.T) {
	each(t, func(t *testing.T, w *world) {
		t0 := w.now()
		w.cutQuorum(w.n1, true)
		w.waitFor("n1 to lose ownership", 10*time.Second, func() bool { return w.d["n1"].Role() != "owner" })
		w.takeover(t0, 30*time.Second)
		_, last1 := w.arpAnswers("n1", t0)
		t.Logf("quorum partition: n1 last answered ARP %v after the cut", durOr(last1, t0))
		if !last1.IsZero() && last1.Sub(t0) > ttl {
			t.Errorf("n1 answered ARP %v after being cut from the quorum, beyond its TTL %v", last1.Sub(t0), ttl)
		}
		w.cutQuorum(w.n1, false)
	})
}

// 5. The whole quorum stopped: the owner stops answering before its
// deadline, nobody owns; after the quorum returns, one owner.
func TestQuorumLoss(t *testing.T) {
	each(t, func(t *testing.T, w *world) {
		t0 := w.now()
		if w.backend == "etcd" {
			w.quorum.Signal(syscall.SIGSTOP)
		} else {
			// The raft quorum is the three voters: freeze the witness
			// and cut the nodes from each other, both ways.
			w.quorum.Signal(syscall.SIGSTOP)
			w.cutQuorum(w.n1, true)
			w.cutQuorum(w.n2, true)
		}
		w.waitFor("n1 to give up the VIP", 10*time.Second, func() bool { return !w.holds("n1") })
		time.Sleep(3 * time.Second)
		if w.holds("n1") || w.holds("n2") {
			t.Errorf("a node holds the VIP without a quorum: %v", w.mon.Holders(w.now()))
		}
		_, last1 := w.arpAnswers("n1", t0)
		if !last1.IsZero() && last1.Sub(t0) > ttl {
			t.Errorf("n1 answered ARP %v after the quorum stopped, beyond its TTL", last1.Sub(t0))
		}
		back := w.now()
		w.quorum.Signal(syscall.SIGCONT)
		if w.backend == "raft" {
			w.cutQuorum(w.n1, false)
			w.cutQuorum(w.n2, false)
		}
		w.waitFor("one owner after the quorum returned", 30*time.Second, func() bool {
			return w.d["n1"].Role() == "owner" || w.d["n2"].Role() == "owner"
		})
		time.Sleep(2 * time.Second)
		owners := 0
		for _, n := range []string{"n1", "n2"} {
			if w.d[n].Role() == "owner" {
				owners++
			}
		}
		if owners != 1 {
			t.Errorf("%d owners after the quorum returned", owners)
		}
		t.Logf("quorum loss: n1 last ARP answer %v after the stop; an owner again %v after the quorum returned",
			durOr(last1, t0), w.now().Sub(back))
	})
}

// 6. Graceful SIGTERM: handover with the client outage recorded.
func TestGracefulHandover(t *testing.T) {
	each(t, func(t *testing.T, w *world) {
		t0 := w.now()
		w.d["n1"].Signal(syscall.SIGTERM)
		at := w.takeover(t0, 15*time.Second)
		select {
		case <-w.d["n1"].Proc.Done():
		case <-time.After(10 * time.Second):
			t.Errorf("n1 did not exit within 10 s of SIGTERM")
		}
		t.Logf("graceful: n2 owner %v after SIGTERM; client outage %v", at.Sub(t0), w.outage(t0))
		// The operator's view: `leasehold status` as a table.
		bin, _ := lhtest.Binary()
		out, err := exec.Command(bin, "status", "--socket", "unix:"+w.d["n2"].Sock).CombinedOutput()
		if err != nil || !regexp.MustCompile(`VI_1\s+owner\s+100\s+\d+\s+n2@\d+`).Match(out) || !strings.Contains(string(out), "fence: nftables") {
			t.Errorf("leasehold status on n2: %v\n%s", err, out)
		}
		m, err := w.d["n2"].Metrics()
		if err != nil {
			t.Fatalf("metrics: %v", err)
		}
		for _, want := range []string{`leasehold_group_role{group="VI_1",role="owner"} 1`, `leasehold_quorum_session_up 1`,
			`leasehold_transitions_total{group="VI_1",to="owner"} 1`, `leasehold_renew_latency_seconds_count`,
			`leasehold_release_retrying{group="VI_1"} 0`, `leasehold_fence_refreshes_total{group="VI_1",result="failed"} 0`} {
			if !strings.Contains(m, want) {
				t.Errorf("n2 /metrics lacks %q", want)
			}
		}
		if w.holds("n1") {
			t.Errorf("n1 left its VIP behind after a graceful stop")
		}
	})
}

// 7. A garbage config is refused with file, line and key.
func TestGarbageConfig(t *testing.T) {
	bin, err := lhtest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("quorum: {backend: etcd}\nvrrp_instance:\n  VI_1:\n    interface: eth0\n    virtual_router_id: 300\n    virtual_ipaddress: [10.0.0.1]\n"), 0o644)
	out, err := exec.Command(bin, "run", "-c", path).CombinedOutput()
	var ee *exec.ExitError
	if err == nil || !errorsAs(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("leasehold run with a bad config: err %v, want exit 1\n%s", err, out)
	}
	for _, want := range []string{"bad.yaml:5: vrrp_instance.VI_1.virtual_router_id: 300: want 1-255", "quorum.etcd.endpoints"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// 7a. A failing vrrp_script with weight 0 faults the owner: VRRP leaves
// master, the owner hands over through the lease; a hanging notify script
// is killed at its timeout and does not hold anything up.
func TestHealthFaultAndHangingNotify(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			w := newWorld(t, b)
			dir := filepath.Join(w.dir, "scripts")
			os.MkdirAll(dir, 0o755)
			okFile := filepath.Join(dir, "healthy")
			os.WriteFile(okFile, nil, 0o644)
			check := filepath.Join(dir, "check.sh")
			os.WriteFile(check, []byte("#!/bin/sh\ntest -f "+okFile+"\n"), 0o755)
			hang := filepath.Join(dir, "hang.sh")
			pids := filepath.Join(dir, "hang.pids")
			os.WriteFile(hang, []byte("#!/bin/sh\necho $$ >> "+pids+"\nsleep 600\n"), 0o755)
			w.extra["n1"] = "    track_script: [chk]\n    notify_master: " + hang + "\n    notify_timeout: 1\n"
			w.extra["n1"] = "vrrp_script:\n  chk: {script: \"" + check + "\", interval: 0.2, fall: 2, rise: 2, weight: 0}\n" + w.extra["n1"]
			w.upWithExtra()
			// The hanging notify_master ran and was killed at its timeout.
			w.waitFor("notify_master to have run", 10*time.Second, func() bool { b, _ := os.ReadFile(pids); return len(b) > 0 })
			time.Sleep(1500 * time.Millisecond)
			b, _ := os.ReadFile(pids)
			for _, f := range strings.Fields(string(b)) {
				if _, err := os.Stat("/proc/" + f); err == nil {
					t.Errorf("hanging notify script (pid %s) still runs after its 1 s timeout", f)
				}
			}
			if w.d["n1"].Role() != "owner" {
				t.Fatalf("n1 is %s, want owner despite the hanging notify script", w.d["n1"].Role())
			}
			if m, err := w.d["n1"].Metrics(); err != nil || !strings.Contains(m, `leasehold_notify_scripts_total{group="VI_1",outcome="timeout"} 1`) {
				t.Errorf("n1 /metrics does not count the notify timeout (%v):\n%s", err, grepLines(m, "notify"))
			}
			// The health check fails: n1 faults and n2 takes over.
			t0 := w.now()
			os.Remove(okFile)
			w.takeover(t0, 15*time.Second)
			if !strings.Contains(w.d["n1"].Log(), "fault") {
				t.Errorf("n1's log does not mention the fault")
			}
			w.checkNoDualARP()
		})
	}
}

// SIGHUP with a lower priority drains the owner: the higher-priority peer
// takes over through the lease; a refused change leaves it running.
func TestReloadPriorityDrainsOwner(t *testing.T) {
	w := newWorld(t, "etcd")
	w.up()
	conf := filepath.Join(w.d["n1"].Dir, "leasehold.yaml")
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	// A refused change (the VRID) first: nothing moves.
	os.WriteFile(conf, []byte(strings.Replace(string(b), "virtual_router_id: 51", "virtual_router_id: 52", 1)), 0o644)
	w.d["n1"].Signal(syscall.SIGHUP)
	w.waitFor("the refusal in n1's log", 5*time.Second, func() bool { return strings.Contains(w.d["n1"].Log(), "reload refused") })
	if w.d["n1"].Role() != "owner" {
		t.Fatalf("n1 is %s after a refused reload", w.d["n1"].Role())
	}
	t0 := w.now()
	os.WriteFile(conf, []byte(strings.Replace(string(b), "priority: 120", "priority: 90", 1)), 0o644)
	w.d["n1"].Signal(syscall.SIGHUP)
	w.takeover(t0, 15*time.Second)
	if !strings.Contains(w.d["n1"].Log(), "reload applied") {
		t.Errorf("n1's log lacks \"reload applied\"")
	}
	t.Logf("reload drain: client outage %v", w.outage(t0))
	w.checkNoDualARP()
}

// A group with resource hooks (unfenceable resources) arms the watchdog
// while owned, feeds it on renewals and disarms it (magic close) on
// handover. The device is a plain file standing in for /dev/watchdog (the
// VM suite proves it against softdog).
func TestWatchdogWithResourceHooks(t *testing.T) {
	w := newWorld(t, "etcd")
	w.ttl = 3 * time.Second
	dir := filepath.Join(w.dir, "hooks")
	os.MkdirAll(dir, 0o755)
	promote := filepath.Join(dir, "promote.sh")
	marker := filepath.Join(dir, "promoted")
	os.WriteFile(promote, []byte("#!/bin/sh\necho \"$LEASEHOLD_GROUP $LEASEHOLD_EPOCH\" >> "+marker+"\n"), 0o755)
	dev := filepath.Join(dir, "watchdog")
	os.WriteFile(dev, nil, 0o644)
	w.extra["n1"] = "fencing: {watchdog: auto, watchdog_device: \"" + dev + "\"}\n    promote: [{path: \"" + promote + "\"}]\n"
	w.up()
	w.waitFor("the promote hook to run with the epoch", 10*time.Second, func() bool {
		b, _ := os.ReadFile(marker)
		return strings.HasPrefix(string(b), "VI_1 ")
	})
	w.waitFor("the watchdog to be fed", 10*time.Second, func() bool {
		b, _ := os.ReadFile(dev)
		return strings.Count(string(b), "1") >= 3
	})
	t0 := w.now()
	w.d["n1"].Signal(syscall.SIGTERM)
	w.takeover(t0, 20*time.Second)
	w.waitFor("the watchdog's magic close", 10*time.Second, func() bool {
		b, _ := os.ReadFile(dev)
		return strings.HasSuffix(string(b), "V")
	})
}

// vrrp_sync_group: two instances move together under one lease, named
// after the sync group, through kill -9 of the owner; the group's own
// notify script hears GROUP G1 MASTER 0 on the new owner.
func TestSyncGroupMovesTogether(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			w := newWorld(t, b)
			vip2 := w.lab.Addr4(101)
			// One script per node (in the node's own %DIR%): it logs its
			// arguments next to itself.
			for _, n := range []string{"n1", "n2"} {
				os.MkdirAll(filepath.Join(w.dir, n), 0o755)
				os.WriteFile(filepath.Join(w.dir, n, "group-notify.sh"), []byte("#!/bin/sh\necho \"$*\" >> \"$0.log\"\n"), 0o755)
			}
			w.tail = "  VI_2:\n    interface: %IFACE%\n    virtual_router_id: 52\n    priority: %PRIO%\n    version: 3\n    advert_int: 0.1\n" +
				"    virtual_ipaddress: [\"" + vip2.String() + "/24\"]\nvrrp_sync_group:\n  G1:\n    group: [VI_1, VI_2]\n    notify: %DIR%/group-notify.sh\n"
			w.up()
			if st, _ := w.d["n1"].Status(); len(st.Groups) != 1 || st.Groups[0].Group != "G1" {
				t.Fatalf("n1 groups %+v, want the one sync group G1", st.Groups)
			}
			w.waitFor("n1 to hold both VIPs", 10*time.Second, func() bool { ok, _ := w.n1.HasAddr(vip2); return ok })
			t0 := w.now()
			w.d["n1"].Kill9()
			w.takeover(t0, 20*time.Second)
			w.waitFor("n2 to hold the second VIP too", 10*time.Second, func() bool { ok, _ := w.n2.HasAddr(vip2); return ok })
			w.checkNoDualARP()
			for _, n := range []string{"n1", "n2"} {
				log := filepath.Join(w.dir, n, "group-notify.sh.log")
				w.waitFor(n+"'s group notify to say MASTER", 10*time.Second, func() bool {
					b, _ := os.ReadFile(log)
					return strings.Contains(string(b), "GROUP G1 MASTER 0\n")
				})
			}
		})
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
