package daemon_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/daemon"
	"github.com/leasehold/leasehold/daemon/daemontest"
)

// guardedDaemon starts a node whose group has a promote hook (a resource
// the kernel cannot fence) with fencing.watchdog required; the hook
// leaves a mark file. armErr makes the node's watchdog refuse to arm.
func guardedDaemon(t *testing.T, w *daemontest.World, armErr error) (*testDaemon, string) {
	t.Helper()
	dir := t.TempDir()
	mark := filepath.Join(dir, "promoted")
	hook := filepath.Join(dir, "promote.sh")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\necho \"$@\" >> "+mark+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(nodeConf("n1", 120, dir), "ttl: 1s", "ttl: 3s", 1)
	conf = strings.Replace(conf, "status:", "fencing: {watchdog: required}\nstatus:", 1)
	conf += "    promote: [{path: " + hook + "}]\n"
	path := filepath.Join(dir, "leasehold.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err := daemon.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Watchdog.Needed {
		t.Fatalf("watchdog not needed: %+v (warnings %v)", plan.Watchdog, plan.Warnings)
	}
	plat := w.Node("n1", vip)
	plat.Dog.ArmErr = armErr
	return runDaemon(t, plan, plat), mark
}

// A node arms its watchdog before it promotes a resource the kernel
// cannot fence, feeds it on renewals while it owns, and disarms it when it
// stops.
func TestWatchdogArmedWhileOwning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := daemontest.NewWorld(500 * time.Millisecond)
		n1, mark := guardedDaemon(t, w, nil)
		waitFor(t, 10*time.Second, "n1 owns", func() bool { return n1.role() == "owner" })
		if !n1.plat.Dog.Armed() {
			t.Fatal("owner with a promote hook and watchdog required: watchdog not armed")
		}
		if _, err := os.Stat(mark); err != nil {
			t.Fatalf("promote hook did not run: %v", err)
		}
		feeds := n1.plat.Dog.Feeds()
		time.Sleep(3 * time.Second)
		if n1.plat.Dog.Feeds() <= feeds {
			t.Errorf("no feed in 3 s of renewals (%d before, %d after)", feeds, n1.plat.Dog.Feeds())
		}
		n1.shutdown(t)
		if n1.plat.Dog.Armed() {
			t.Error("watchdog still armed after a graceful stop")
		}
	})
}

// A required watchdog that cannot be armed keeps the node from promoting:
// the hook never runs and the node never owns (doubt means demote).
func TestRequiredWatchdogThatCannotArmPreventsOwnership(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := daemontest.NewWorld(500 * time.Millisecond)
		n1, mark := guardedDaemon(t, w, errors.New("softdog: timeout refused"))
		for range 50 {
			if r := n1.role(); r == "owner" {
				t.Fatalf("owner although its required watchdog cannot be armed")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if _, err := os.Stat(mark); err == nil {
			t.Fatal("promote hook ran although the watchdog could not be armed")
		}
		if len(w.AnsweringNodes(vip)) != 0 {
			t.Fatalf("%v answer for the VIP", w.AnsweringNodes(vip))
		}
		n1.shutdown(t)
	})
}
