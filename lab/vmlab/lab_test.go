package vmlab

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/drill"
	"github.com/leasehold/leasehold/test/lhtest"
	"github.com/leasehold/leasehold/test/nstest"
)

// TestVMDrills boots the VM lab and runs every drill it offers, each
// judged by the drill's invariant checkers: no ARP round answered by two
// MACs, a takeover where one is expected, and with the watchdog armed the
// old owner's VM reset before any other node took over (kill9, freeze).
func TestVMDrills(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	t0 := time.Now()
	l := upLab(ctx, t, Options{})
	rep := drill.Report{Target: l.Name(), Backend: "etcd", Created: time.Now().UTC()}
	for _, sc := range drill.ScenariosFor(l) {
		r, err := drill.Run(ctx, l, drill.Scenario{Name: sc})
		if err != nil {
			t.Errorf("drill %s: %v", sc, err)
			continue
		}
		r.Run = 1
		rep.Results = append(rep.Results, r)
		if !r.Pass {
			t.Errorf("drill %s: %s: %v", sc, r.Verdict, r.Reasons)
		}
		if r.DualARPRounds != 0 {
			t.Errorf("drill %s: %d ARP rounds answered by two MACs", sc, r.DualARPRounds)
		}
		if (sc == "kill9" || sc == "freeze") && (r.WatchdogResetUS <= 0 || r.TakeoverUS <= r.WatchdogResetUS) {
			t.Errorf("drill %s: watchdog reset %dµs, takeover %dµs: want a reset, before the takeover", sc, r.WatchdogResetUS, r.TakeoverUS)
		}
	}
	var b bytes.Buffer
	rep.WriteTable(&b, false)
	t.Logf("VM drills (%v):\n%s", time.Since(t0).Round(time.Second), b.String())
}

// upLab boots a lab with o (the binaries filled in) for a VM test, or
// skips the test; on failure it logs each node's daemon log, console and
// dmesg and the lab's log; the lab goes down at the test's end.
func upLab(ctx context.Context, t *testing.T, o Options) *Lab {
	t.Helper()
	if testing.Short() {
		t.Skip("boots VMs")
	}
	_, err := exec.LookPath("qemu-system-x86_64")
	nstest.Require(t, err == nil, "needs qemu-system-x86_64 (Debian package qemu-system-x86)")
	dir, err := lhtest.GuestBinaries()
	if err != nil {
		t.Fatal(err)
	}
	etcd, err := lhtest.EtcdBinary()
	if err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	o.Binary, o.Agent, o.Etcd = filepath.Join(dir, "leasehold"), filepath.Join(dir, "leasehold-lab-guest"), etcd
	o.Dir, o.Keep, o.Log = t.TempDir(), true, slog.New(slog.NewTextHandler(&logBuf, nil))
	t0 := time.Now()
	l, err := Up(ctx, o)
	if err != nil {
		t.Fatalf("lab up: %v\n%s", err, logBuf.String())
	}
	t.Cleanup(func() {
		if t.Failed() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for _, n := range l.Nodes() {
				if b, err := os.ReadFile(l.LogPath(n)); err == nil {
					t.Logf("%s's daemon log (tail):\n%s", n, lastLines(string(b), 40))
				}
				if nd, err := l.node(n); err == nil {
					if v := l.vmOf(nd); v != nil {
						t.Logf("%s's console (tail):\n%s", n, lastLines(v.Console(), 30))
						t.Logf("%s's dmesg (tail):\n%s", n, lastLines(v.Dmesg(ctx), 30))
					}
				}
			}
			t.Logf("lab log:\n%s", logBuf.String())
		}
		l.Down()
	})
	t.Logf("lab up in %v (boot times %v)", time.Since(t0).Round(time.Millisecond), l.BootTimes())
	return l
}
