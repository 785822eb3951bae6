package lvsvm_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leasehold/leasehold/daemon"
	"github.com/leasehold/leasehold/lab/vm"
	"github.com/leasehold/leasehold/lab/vmlab"
	"github.com/leasehold/leasehold/test/lhtest"
)

// pairYAML is added to each VM lab node's configuration: the director
// pair's virtual server, following the lab's group VI_1 (lvs_mode owner:
// only the lease's owner has the table).
var pairYAML = "lvs_mode: owner\n" + virtualServerYAML("DR", dr.rs1, dr.rs2)

// nodeStatus reads a lab node's daemon status through its VM's agent.
func nodeStatus(ctx context.Context, l *vmlab.Lab, name string) (daemon.StatusDoc, error) {
	var doc daemon.StatusDoc
	v, err := l.VM(name)
	if err != nil {
		return doc, err
	}
	code, body, err := v.HTTP(ctx, vmlab.StatusSocket, "GET", "/status", nil)
	if err == nil && code == 200 {
		err = json.Unmarshal(body, &doc)
	}
	return doc, err
}

// directing: the node owns its group and its table has both real
// servers.
func directing(doc daemon.StatusDoc) bool {
	if len(doc.Groups) == 0 || doc.Groups[0].Role != "owner" || doc.LVS == nil || len(doc.LVS.VirtualServers) == 0 {
		return false
	}
	vs := doc.LVS.VirtualServers[0]
	return vs.Active && len(inTable(doc.LVS)) == 2
}

// pairFault is a failure of the active director.
type pairFault struct {
	name string
	// reset: the director's VM is reset by its watchdog (its daemon
	// stops feeding it) before the other director takes over.
	reset bool
	do    func(ctx context.Context, l *vmlab.Lab, node string) error
}

// TestDirectorPairFailover runs an LVS-DR director pair on the VM lab
// (etcd lease, kernel fence, softdog) in lvs_mode owner in front of a
// real-server VM, and fails the active director: kill -9 or SIGSTOP of
// its daemon (its watchdog resets its VM before the other director takes
// over) or isolation (both its links cut: it loses its lease, demotes and
// removes its table). The backup has no table while it is the backup; the
// other director takes the lease, adds the table and the VIP, and the
// client's connections through the VIP continue there. Never two
// directors answer ARP for the VIP (probed every 100 ms from the host),
// and an isolated director's table is gone by the time the other directs.
func TestDirectorPairFailover(t *testing.T) {
	for _, f := range []pairFault{
		{name: "kill9", reset: true, do: func(_ context.Context, l *vmlab.Lab, n string) error { return l.Signal(n, syscall.SIGKILL) }},
		{name: "freeze", reset: true, do: func(_ context.Context, l *vmlab.Lab, n string) error { return l.Signal(n, syscall.SIGSTOP) }},
		{name: "isolate", do: func(ctx context.Context, l *vmlab.Lab, n string) error { return l.Isolate(ctx, n, true) }},
	} {
		t.Run(f.name, func(t *testing.T) { testPairFailover(t, f) })
	}
}

func testPairFailover(t *testing.T, f pairFault) { pairFailover(t, f) }

// pairFailover runs one failover of the leasehold director pair and
// returns its figures; safety (never two directors answering, the
// watchdog's reset before the takeover, the isolated director's table
// gone) is checked as it goes.
func pairFailover(t *testing.T, f pairFault) failoverFigures {
	img := needImage(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	l := upPair(ctx, t, pairYAML)
	r := startVM(ctx, t, vm.Config{Name: "rs", Kernel: img.Kernel, Initrd: img.Initrd, Append: dr.rsAppend,
		NICs: []vm.NIC{{ID: "l2", MAC: rsMAC, Mcast: l.Segment()}}})
	if out, rc, err := r.Exec(ctx, dr.rsSetup+"httpd -p "+dr.rs2+":80 -h /var/www\n", 30*time.Second); err != nil || rc != 0 {
		t.Fatalf("real server setup: rc %d %v\n%s", rc, err, out)
	}

	owner, backup := "", ""
	deadline := time.Now().Add(2 * time.Minute)
	for owner == "" {
		for _, n := range l.Nodes() {
			if doc, err := nodeStatus(ctx, l, n); err == nil && directing(doc) {
				owner = n
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no director owns with both real servers in its table within 2 min")
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, n := range l.Nodes() {
		if n != owner {
			backup = n
		}
	}
	readyBackup(ctx, t, l, backup)
	bv, err := l.VM(backup)
	if err != nil {
		t.Fatal(err)
	}
	if out, _, _ := bv.Exec(ctx, "ipvsadm -Ln", 20*time.Second); strings.Contains(out, "10.66.0.100:80") {
		t.Fatalf("the backup %s has the table:\n%s", backup, out)
	}
	t.Logf("%s directs, %s is the backup without a table", owner, backup)

	c := startClient(ctx, t, l.Segment(), pairNames, 500*time.Millisecond)
	defer c.stop()
	time.Sleep(3 * time.Second)

	if err := f.do(ctx, l, owner); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var took time.Duration
	for {
		if doc, err := nodeStatus(ctx, l, backup); err == nil && directing(doc) {
			took = time.Since(killed)
			break
		}
		if time.Since(killed) > time.Minute {
			t.Fatalf("%s does not direct within 1 min of %s's %s", backup, owner, f.name)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%s directs %v after %s's %s (its VM reset: %s)", backup, took.Round(time.Millisecond), owner, f.name,
		resetAfter(l.ResetAt(owner), killed))
	if !f.reset {
		// Still running, cut off: it must have removed its table (its
		// agent answers over the VM's serial port, not the network).
		if ov, err := l.VM(owner); err != nil {
			t.Error(err)
		} else if out, _, _ := ov.Exec(ctx, "ipvsadm -Ln", 20*time.Second); strings.Contains(out, "10.66.0.100:80") {
			t.Errorf("the isolated %s still has the table while %s directs:\n%s", owner, backup, out)
		}
	}
	time.Sleep(max(3*time.Second, time.Until(killed.Add(observeFailover))))
	c.stop()

	fig := c.figures(killed, backup)
	if fig.dual > 0 {
		t.Errorf("%v of ARP rounds answered by two MACs after the %s, first %+v", fig.dual, f.name, c.arp.DualRounds()[0])
	}
	if reset := l.ResetAt(owner); f.reset && (reset.IsZero() || reset.Sub(killed) > took) {
		t.Errorf("%s's VM reset %s after the %s, %s directed at %v: want the reset first", owner, resetAfter(reset, killed), f.name, backup, took)
	}
	t.Logf("client through the VIP: %d answered before the %s, %d after, %d failed; longest outage %v; %s answered ARP for the VIP %v after the fault",
		fig.before, f.name, fig.after, fig.failed, fig.outage.Round(time.Millisecond), backup, fig.takeover.Round(time.Millisecond))
	if fig.others > 0 {
		t.Errorf("%d connections answered by another machine than the real server", fig.others)
	}
	if fig.before == 0 || fig.after == 0 {
		t.Errorf("the client was not served through the VIP before (%d) and after (%d) the failover", fig.before, fig.after)
	}
	return fig
}

// observeFailover is how long a failover is watched after the fault.
const observeFailover = 8 * time.Second

// rsMAC is the real-server VM's; pairNames names the director pair's
// MACs (the VM lab's n1 and n2, the keepalived pair the same) for the
// client.
const rsMAC = "52:54:00:66:00:0b"

var pairNames = map[string]string{"52:54:00:66:00:01": "n1", "52:54:00:66:00:02": "n2", rsMAC: "rs"}

// failoverFigures are one director failover seen by the client: when the
// other director first answered ARP for the VIP, the longest outage of
// connections through the VIP, and for how long two directors answered
// ARP for it (rounds × the probe interval; dualOpen: still so when the
// observation ended).
type failoverFigures struct {
	takeover, outage, dual        time.Duration
	dualOpen, tookOver            bool
	before, after, failed, others int
}

// figures reads the client's probes after a fault at fault: other is the
// director expected to take over.
func (c *client) figures(fault time.Time, other string) failoverFigures {
	var f failoverFigures
	from := c.tb.Stamp(fault)
	for _, s := range c.tcp.Samples() {
		switch {
		case !s.OK():
			if s.At.MonoUS >= from.MonoUS {
				f.failed++
			}
		case s.Node != "rs":
			f.others++
		case s.At.MonoUS < from.MonoUS:
			f.before++
		default:
			f.after++
		}
	}
	// Outages are clipped to the observation: an open one ends when stop
	// was called (the probers may end later on a starved machine).
	until := c.tb.Stamp(c.stopAt).MonoUS
	for _, o := range c.tcp.Outages() {
		if o.End.MonoUS > from.MonoUS {
			start, end := max(o.Start.MonoUS, from.MonoUS), min(o.End.MonoUS, until)
			f.outage = max(f.outage, time.Duration(end-start)*time.Microsecond)
		}
	}
	rounds := c.arp.Rounds()
	for i, r := range rounds {
		if r.At.MonoUS < from.MonoUS || r.At.MonoUS > until {
			continue
		}
		if !f.tookOver && slices.Contains(r.Hosts, other) {
			f.takeover, f.tookOver = time.Duration(r.At.MonoUS-from.MonoUS)*time.Microsecond, true
		}
		if len(r.MACs) >= 2 {
			f.dual += c.arp.Interval
			f.dualOpen = i == len(rounds)-1
		}
	}
	return f
}

// readyBackup waits until the backup director's daemon answers as its
// group's backup, so that it can take over. A lab under heavy load may
// have lost it before the fault (a late fence refresh demotes an owner,
// and a guest starved for its watchdog's 2 s is reset): its VM is booted
// again then, and the test says so.
func readyBackup(ctx context.Context, t *testing.T, l *vmlab.Lab, backup string) {
	t.Helper()
	if at := l.ResetAt(backup); !at.IsZero() {
		t.Logf("%s's VM was reset before the fault (at %s: the lab under load); booting it again", backup, at.Format(time.TimeOnly))
		if err := l.Restart(ctx, backup); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if doc, err := nodeStatus(ctx, l, backup); err == nil && len(doc.Groups) > 0 && doc.Groups[0].Role == "backup" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not its group's backup within 2 min", backup)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// upPair brings the VM lab's director pair up with extraYAML, for the
// test (its daemons' logs shown if it fails, the lab down at its end).
func upPair(ctx context.Context, t *testing.T, extraYAML string) *vmlab.Lab {
	t.Helper()
	bin, err := lhtest.GuestBinaries()
	if err != nil {
		t.Fatal(err)
	}
	etcd, err := lhtest.EtcdBinary()
	if err != nil {
		t.Fatal(err)
	}
	l, err := vmlab.Up(ctx, vmlab.Options{Binary: filepath.Join(bin, "leasehold"), Agent: filepath.Join(bin, "leasehold-lab-guest"),
		Etcd: etcd, Dir: t.TempDir(), ExtraYAML: extraYAML, ExtraModules: []string{"ip_vs_rr"}})
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range l.Nodes() {
				if b, err := os.ReadFile(l.LogPath(n)); err == nil {
					t.Logf("%s's daemon log:\n%s", n, lastLines(string(b), 80))
				}
			}
		}
		l.Down()
	})
	return l
}

// resetAfter says when a VM was reset after the fault ("never").
func resetAfter(reset, fault time.Time) string {
	if reset.IsZero() {
		return "never"
	}
	return "+" + reset.Sub(fault).Round(time.Millisecond).String()
}
