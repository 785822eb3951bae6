package vmlab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/daemon"
	"github.com/leasehold/leasehold/fencing"
)

// TestGuestConfigPlans: the guests' configuration is a valid plan whose
// watchdog is needed, with a timeout inside the lease.
func TestGuestConfigPlans(t *testing.T) {
	o := Options{Binary: "x", Agent: "x", Etcd: "x"}
	if err := o.defaults(); err != nil {
		t.Fatal(err)
	}
	// The hook is checked where the plan is made: give it a stand-in.
	hook := filepath.Join(t.TempDir(), "resource.sh")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		o = Options{Binary: "x", Agent: "x", Etcd: "x", DRBD: i >= 2}
		if err := o.defaults(); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "leasehold.yaml")
		conf := strings.ReplaceAll(guestYAML("n1", i%2, o), "/etc/leasehold/resource.sh", hook)
		if err := os.WriteFile(f, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := daemon.Load(f)
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		if g, dc, err := p.DRBDGroup(DRBDResource); o.DRBD && (err != nil || g != "VI_1" || dc.Mount != DRBDMount || !dc.KillHolders) {
			t.Errorf("node %d: DRBD plan %q %+v %v", i, g, dc, err)
		} else if !o.DRBD && err == nil {
			t.Errorf("node %d: a drbd section without Options.DRBD", i)
		}
		w := p.Watchdog
		t.Logf("node %d (DRBD %v): ttl %v, demote budget %v, watchdog %v", i, o.DRBD, o.TTL, p.Quorum.DemoteBudget, w.Timeout)
		if !w.Needed || w.Mode != fencing.WatchdogRequired || w.Timeout < time.Second || w.Timeout >= o.TTL {
			t.Errorf("node %d: watchdog plan %+v: want needed, required, 1s <= timeout < ttl %v", i, w, o.TTL)
		}
	}
}
