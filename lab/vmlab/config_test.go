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
	// The hook and the writer's gate are checked where the plan is made:
	// give them stand-ins.
	hook := filepath.Join(t.TempDir(), "resource.sh")
	gate := filepath.Join(t.TempDir(), "lab-writer.sh")
	for _, f := range []string{hook, gate} {
		if err := os.WriteFile(f, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		o = Options{Binary: "x", Agent: "x", Etcd: "x", DRBD: i >= 2}
		if err := o.defaults(); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "leasehold.yaml")
		conf := strings.NewReplacer("/etc/leasehold/resource.sh", hook, writerGate, gate).Replace(guestYAML("n1", i%2, o))
		if err := os.WriteFile(f, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := daemon.Load(f)
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		if g, dc, err := p.DRBDGroup(DRBDResource); o.DRBD && (err != nil || g != "VI_1" || dc.Mount != DRBDMount || !dc.KillHolders ||
			len(dc.Services) != 1 || dc.Services[0].Script != gate) {
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

// Options.ExtraYAML reaches every guest's configuration (here an LVS
// director's virtual server, a valid plan with the lab's own keys), and
// Options.ExtraModules the guests' module list, once each.
func TestGuestConfigExtras(t *testing.T) {
	o := Options{Binary: "x", Agent: "x", Etcd: "x", ExtraModules: []string{"ip_vs_rr", "ip_vs", "ip_vs_wrr"},
		ExtraYAML: "lvs_mode: owner\nvirtual_server:\n  - {ip: 10.66.0.100, port: 80, follow: VI_1, lb_algo: rr, lb_kind: DR, " +
			"real_server: [{ip: 10.66.0.11, TCP_CHECK: {connect_timeout: 1}}]}\n"}
	if err := o.defaults(); err != nil {
		t.Fatal(err)
	}
	hook := filepath.Join(t.TempDir(), "resource.sh")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "leasehold.yaml")
	if err := os.WriteFile(f, []byte(strings.ReplaceAll(guestYAML("n1", 0, o), "/etc/leasehold/resource.sh", hook)), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := daemon.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	if l := p.Config.LVS; l.Mode != "owner" || len(l.Services) != 1 || l.Services[0].Follow != "VI_1" {
		t.Errorf("LVS from ExtraYAML: %+v", l)
	}
	l := &Lab{o: o}
	if got := strings.Join(l.modules(), ","); got != "softdog,nfnetlink,nf_tables,drbd,ip_vs,ip_vs_rr,ip_vs_wrr" {
		t.Errorf("modules %s", got)
	}
}
