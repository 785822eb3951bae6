package vmlab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leasehold/leasehold/daemon"
	"github.com/leasehold/leasehold/lab/drill"
	"github.com/leasehold/leasehold/storage/drbd"
)

// daemonDRBD reads the DRBD part of node's daemon status.
func daemonDRBD(ctx context.Context, l *Lab, name string) (daemon.DRBDStatus, error) {
	n, err := l.node(name)
	if err != nil {
		return daemon.DRBDStatus{}, err
	}
	v := l.vmOf(n)
	if v == nil {
		return daemon.DRBDStatus{}, fmt.Errorf("%s is not running", name)
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	code, body, err := v.HTTP(cctx, statusSocket, "GET", "/status", nil)
	if err != nil || code != 200 {
		return daemon.DRBDStatus{}, fmt.Errorf("%s: GET /status: %d %v", name, code, err)
	}
	var st daemon.StatusDoc
	if err := json.Unmarshal(body, &st); err != nil || len(st.DRBD) != 1 {
		return daemon.DRBDStatus{}, fmt.Errorf("%s: status %.300s: %v", name, body, err)
	}
	return st.DRBD[0], nil
}

// waitCond polls cond every 200 ms for at most d.
func waitCond(t *testing.T, d time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	t0 := time.Now()
	last := ""
	for time.Since(t0) < d {
		ok, s := cond()
		if ok {
			return time.Since(t0)
		}
		last = s
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v (last: %s)", what, d, last)
	return 0
}

// TestVMDRBDReplicationCut: real DRBD 8.4 in two VMs with leasehold's
// fence-peer handler. Only n1's replication link is cut while it is
// Primary: DRBD calls the handler, n1 holds the lease and marks n2
// outdated at the quorum (DRBD: peer disk Outdated); n1 goes on writing.
// Then n1 loses power: n2 gets the lease but refuses to promote its
// stale disk, and says why (status, the mark); never two Primaries
// (both nodes sampled over 10×/s). The operator's override (unfence --force)
// lets n2 promote what it has: the record written before the cut is
// there, the one written after is not (that loss is what the override
// accepts).
func TestVMDRBDReplicationCut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	t0 := time.Now()
	l := upLab(ctx, t, Options{DRBD: true})
	run := func(node, script string) string {
		t.Helper()
		out, err := l.Exec(ctx, node, script)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	primaryMounted := func(node string) func() (bool, string) {
		return func() (bool, string) {
			st, err := l.DRBDState(ctx, node)
			if err != nil {
				return false, err.Error()
			}
			out, _ := l.Exec(ctx, node, "grep -c ' "+DRBDMount+" ' /proc/mounts || true")
			return st.Role == drbd.Primary && strings.TrimSpace(out) == "1", st.String() + ", mounts " + strings.TrimSpace(out)
		}
	}
	waitCond(t, 60*time.Second, "n1 Primary with /srv mounted", primaryMounted("n1"))
	sampler := samplePrimaries(l)
	run("n1", "echo before-the-cut > "+DRBDMount+"/before && sync")

	tCut := time.Now()
	if err := l.CutReplication(ctx, "n1", true); err != nil {
		t.Fatal(err)
	}
	fenced := waitCond(t, 60*time.Second, "n1's fence-peer outdated n2 (pdsk Outdated)", func() (bool, string) {
		st, err := l.DRBDState(ctx, "n1")
		if err != nil {
			return false, err.Error()
		}
		return st.Role == drbd.Primary && st.PeerDisk == drbd.Outdated, st.String()
	})
	t.Logf("replication cut → n1's handler answered 4 (peer Outdated): %v", fenced.Round(time.Millisecond))
	marks := run("n2", guestBinary+" drbd marks -c "+guestConfig)
	if !strings.Contains(marks, "VI_1") || !strings.Contains(marks, "n2") {
		t.Fatalf("no mark for n2 at the quorum:\n%s", marks)
	}
	run("n1", "echo after-the-cut > "+DRBDMount+"/after && sync")

	tPower := time.Now()
	if err := l.PowerCut(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	refused := waitCond(t, 60*time.Second, "n2 refuses to promote, marked outdated", func() (bool, string) {
		st, err := daemonDRBD(ctx, l, "n2")
		if err != nil {
			return false, err.Error()
		}
		return st.OutdatedAtQuorum && st.Refusals > 0 && strings.Contains(st.LastRefusal, "marked outdated at the quorum"),
			fmt.Sprintf("%+v", st)
	})
	st, _ := daemonDRBD(ctx, l, "n2")
	t.Logf("power cut → n2's first refusal seen after %v: %q", refused.Round(time.Millisecond), st.LastRefusal)
	// It stays refused while marked (a few more attempts).
	time.Sleep(5 * time.Second)
	if s, err := l.DRBDState(ctx, "n2"); err != nil || s.Role != drbd.Secondary {
		t.Fatalf("n2 while marked: %v %v", s, err)
	}

	// The operator's override.
	out := run("n2", guestBinary+" drbd unfence -c "+guestConfig+" --force VI_1 n2 2>&1")
	t.Logf("override: %s", strings.TrimSpace(out))
	promoted := waitCond(t, 60*time.Second, "n2 Primary with /srv mounted after the override", primaryMounted("n2"))
	t.Logf("override → n2 Primary and mounted: %v", promoted.Round(time.Millisecond))
	files := run("n2", "cat "+DRBDMount+"/before; ls "+DRBDMount)
	if !strings.Contains(files, "before-the-cut") || strings.Contains(files, "after") {
		t.Fatalf("n2's /srv after the override:\n%s\nwant the record from before the cut and none from after", files)
	}
	sr := sampler.halt()
	t.Logf("samples %d (%.1f/s per node), two Primaries %d samples / %v, Primary samples %v; cut at +%v, power cut at +%v, whole test %v",
		sr.samples, sr.rate, sr.both, sr.overlap, sr.primary, tCut.Sub(t0).Round(time.Second), tPower.Sub(t0).Round(time.Second), time.Since(t0).Round(time.Second))
	if sr.both != 0 || sr.overlap != 0 {
		t.Errorf("two Primaries: %d samples, %v", sr.both, sr.overlap)
	}
	if sr.rate < 10 {
		t.Errorf("sampled %.1f/s: want at least 10 samples a second", sr.rate)
	}
}

// drbdDrills are the drills run on the DRBD lab. In graceful the old
// owner's handback demotes the other node while the writer runs: the
// writer is the drbd section's service (writerGate), stopped before the
// unmount, as a user's service on /srv would be.
var drbdDrills = []string{"graceful", "kill9", "freeze", "power-cut", "quorum-partition", "isolation"}

// TestVMDRBDDrills runs drills on the lab with DRBD, each judged by the
// drill's checkers and by the data guard: both nodes' roles sampled over
// 10×/s (never two Primaries), a writer on the Primary whose
// acknowledged records (fsync'd, protocol C) must all be on the Primary
// after the drill, intact.
func TestVMDRBDDrills(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	t0 := time.Now()
	l := upLab(ctx, t, Options{DRBD: true})
	target := l.DrillTarget()
	rep := drill.Report{Target: l.Name() + "+drbd", Backend: "etcd", Created: time.Now().UTC()}
	var lines []string
	for _, sc := range drbdDrills {
		if !slices.Contains(drill.ScenariosFor(target), sc) {
			t.Errorf("the DRBD lab does not offer %s", sc)
			continue
		}
		r, err := drill.Run(ctx, target, drill.Scenario{Name: sc})
		if err != nil {
			t.Errorf("drill %s: %v", sc, err)
			continue
		}
		r.Run = 1
		rep.Results = append(rep.Results, r)
		d := r.Data
		if d == nil {
			t.Errorf("drill %s: no data check", sc)
			continue
		}
		lines = append(lines, fmt.Sprintf("%-16s %s  samples %4d (%4.1f/s per node)  two-Primary %d (%v)  acked %4d  lost %d  writer gap %v  Primary %s",
			sc, r.Verdict, d.Samples, d.SampleRate, d.TwoPrimary, time.Duration(d.TwoPrimaryUS)*time.Microsecond, d.Acked, d.Lost,
			(time.Duration(d.WriterGapUS)*time.Microsecond).Round(time.Millisecond), d.Primary))
		if !r.Pass {
			t.Errorf("drill %s: %s: %v", sc, r.Verdict, r.Reasons)
		}
		if d.SampleRate < 10 {
			t.Errorf("drill %s: roles sampled %.1f/s: want at least 10", sc, d.SampleRate)
		}
		if d.Acked == 0 {
			t.Errorf("drill %s: the writer got no record acknowledged", sc)
		}
	}
	var b bytes.Buffer
	rep.WriteTable(&b, false)
	t.Logf("DRBD drills (%v):\n%s\n%s", time.Since(t0).Round(time.Second), strings.Join(lines, "\n"), b.String())
}

// TestVMDRBDSplitBrainByTheLease is seed 002's manual split brain on real
// DRBD 8.4, resolved by the lease (after_split_brain: lease). n1 owns and
// writes; its replication link is cut (its fence-peer handler marks n2
// outdated) and it writes on; on n2 the operator forces DRBD Primary by
// hand (leasehold's handler refuses the plain `drbdadm primary`, so
// `--force`, as one would to "get the service back") and writes there.
// When the link heals DRBD finds both sides written: StandAlone on both,
// its split-brain handler runs. n2, not the lease holder, unmounts,
// becomes Secondary and reconnects with --discard-my-data, logging the
// generation it discarded; n1 reconnects and keeps its data: n1's
// post-cut write survives, n2's by-hand write is gone, both connected and
// UpToDate.
func TestVMDRBDSplitBrainByTheLease(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	t0 := time.Now()
	l := upLab(ctx, t, Options{DRBD: true, AfterSplitBrain: "lease"})
	run := func(node, script string) string {
		t.Helper()
		out, err := l.Exec(ctx, node, script)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	waitCond(t, 60*time.Second, "n1 Primary with /srv mounted", func() (bool, string) {
		st, err := l.DRBDState(ctx, "n1")
		return err == nil && st.Role == drbd.Primary && l.mounted(ctx, l.nodes[0]), fmt.Sprint(st, err)
	})
	if err := l.CutReplication(ctx, "n1", true); err != nil {
		t.Fatal(err)
	}
	waitCond(t, 60*time.Second, "n1's fence-peer outdated n2", func() (bool, string) {
		st, err := l.DRBDState(ctx, "n1")
		return err == nil && st.PeerDisk == drbd.Outdated, fmt.Sprint(st, err)
	})
	run("n1", "echo n1-after-the-cut > "+DRBDMount+"/n1 && sync")
	out := run("n2", "drbdadm primary "+DRBDResource+" 2>&1; echo rc=$?")
	t.Logf("n2, plain drbdadm primary: %s", strings.TrimSpace(out))
	run("n2", fmt.Sprintf("drbdadm primary --force %[1]s && mount -t ext4 %[2]s %[3]s && echo n2-by-hand > %[3]s/n2 && sync", DRBDResource, DRBDDevice, DRBDMount))
	tHeal := time.Now()
	if err := l.CutReplication(ctx, "n1", false); err != nil {
		t.Fatal(err)
	}
	resolved := waitCond(t, 90*time.Second, "connected again, n1 Primary, n2 Secondary UpToDate", func() (bool, string) {
		s1, e1 := l.DRBDState(ctx, "n1")
		s2, e2 := l.DRBDState(ctx, "n2")
		return e1 == nil && e2 == nil && s1.Role == drbd.Primary && s2.Role == drbd.Secondary && s1.Conn == drbd.Connected &&
			s2.Disk == drbd.UpToDate && s1.PeerDisk == drbd.UpToDate, fmt.Sprint(s1, " / ", s2, e1, e2)
	})
	t.Logf("link healed → split brain resolved by the lease, connected and in sync: %v", resolved.Round(time.Millisecond))
	st, err := daemonDRBD(ctx, l, "n2")
	if err != nil {
		t.Fatal(err)
	}
	if st.SplitBrain.Active || st.SplitBrain.Resolved == 0 || st.SplitBrain.Discarded == "" {
		t.Fatalf("n2's split-brain status %+v: want resolved, with the generation it discarded", st.SplitBrain)
	}
	t.Logf("n2 discarded generation %s", st.SplitBrain.Discarded)
	// DRBD 8.4 has no unfence-peer handler: the mark n1's fence-peer left
	// for n2 is cleared by n2's after-resync-target handler when its
	// resync from n1 has finished.
	cleared := waitCond(t, 30*time.Second, "n2's after-resync-target cleared its mark at the quorum", func() (bool, string) {
		out, err := l.Exec(ctx, "n2", guestBinary+" drbd marks -c "+guestConfig)
		return err == nil && !strings.Contains(out, "\nVI_1"), fmt.Sprint(strings.TrimSpace(out), err)
	})
	t.Logf("resynced → n2's mark cleared: %v", cleared.Round(time.Millisecond))
	files := run("n1", "cat "+DRBDMount+"/n1; ls "+DRBDMount)
	if !strings.Contains(files, "n1-after-the-cut") || strings.Contains(files, "n2\n") {
		t.Fatalf("n1's /srv:\n%s\nwant n1's post-cut write and not n2's", files)
	}
	dm := run("n2", "dmesg | grep -c 'Split-Brain detected' || true")
	if strings.TrimSpace(dm) == "0" {
		t.Errorf("n2's kernel did not report a split brain: the scenario did not reproduce it")
	}
	log := run("n2", "grep -h 'split brain' "+guestLog+" | head -5")
	t.Logf("n2's log:\n%s", log)
	t.Logf("whole test %v (heal at +%v)", time.Since(t0).Round(time.Second), tHeal.Sub(t0).Round(time.Second))
}

// TestVMDRBDDemoteBlocked: a demotion that cannot finish. n1 is Primary
// with the writer on /srv; a process opens /dev/drbd0 itself (not a file
// on the mount, so kill_holders does not find it, as a backup reading
// the raw device would) and n1's daemon is stopped (SIGTERM). The
// writer's service stops, /srv unmounts, but `drbdadm secondary` fails
// (held open): the group escalates, keeps the lease and stops feeding
// the watchdog, which resets n1; n2 gets the lease only after that and
// promotes. Never two Primaries (both nodes sampled over 10×/s), every
// acknowledged record on the new Primary.
func TestVMDRBDDemoteBlocked(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	l := upLab(ctx, t, Options{DRBD: true})
	waitCond(t, 60*time.Second, "n1 Primary with /srv mounted", func() (bool, string) {
		st, err := l.DRBDState(ctx, "n1")
		return err == nil && st.Role == drbd.Primary && l.mounted(ctx, l.nodes[0]), fmt.Sprint(st, err)
	})
	dw, err := drbdTarget{l}.GuardData(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w := dw.(*dataWatch)
	waitCond(t, 30*time.Second, "three records acknowledged on n1", func() (bool, string) {
		return w.ackCount() >= 3, fmt.Sprint(w.ackCount())
	})
	if _, err := l.Exec(ctx, "n1", "setsid sh -c 'exec 3<"+DRBDDevice+"; exec sleep 600' </dev/null >/dev/null 2>&1 &"); err != nil {
		t.Fatal(err)
	}
	tStop := time.Now()
	if err := l.Signal("n1", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	reset := waitCond(t, 60*time.Second, "n1 reset by its watchdog", func() (bool, string) {
		return !l.ResetAt("n1").IsZero(), "not reset"
	})
	var first ack
	waitCond(t, 60*time.Second, "n2 Primary, a record acknowledged there", func() (bool, string) {
		a, ok := w.firstAckOn("n1", tStop)
		first = a
		return ok, fmt.Sprint(w.ackCount(), " acknowledged")
	})
	resetAt := l.ResetAt("n1")
	t.Logf("SIGTERM → n1 reset: %v; → first record on %s: %v (%v after the reset)", reset.Round(time.Millisecond),
		first.node, first.at.Sub(tStop).Round(time.Millisecond), first.at.Sub(resetAt).Round(time.Millisecond))
	if first.at.Before(resetAt) {
		t.Errorf("%s acknowledged a record %v before n1's reset", first.node, resetAt.Sub(first.at))
	}
	// What n1 said before its reset (its log is on the share).
	if b, err := os.ReadFile(l.LogPath("n1")); err != nil || !strings.Contains(string(b), "not released") {
		t.Errorf("n1's log does not say it kept the lease after the failed demotion (%v):\n%s", err, lastLines(string(b), 15))
	}
	if err := l.Restart(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if err := l.waitSteadyDRBD(ctx, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	rep := w.Check(ctx)
	t.Logf("samples %d (%.1f/s per node), two-Primary %d (%v), acknowledged %d, lost %d, Primary %s; whole test %v",
		rep.Samples, rep.SampleRate, rep.TwoPrimary, time.Duration(rep.TwoPrimaryUS)*time.Microsecond, rep.Acked, rep.Lost, rep.Primary,
		time.Since(t0).Round(time.Second))
	if rep.Err != "" || rep.TwoPrimary != 0 || rep.TwoPrimaryUS != 0 || rep.Lost != 0 {
		t.Errorf("data check: %+v", rep)
	}
	if rep.SampleRate < 10 {
		t.Errorf("roles sampled %.1f/s: want at least 10", rep.SampleRate)
	}
}
