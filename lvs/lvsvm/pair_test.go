package lvsvm_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
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

// TestDirectorPairKill9 runs an LVS-DR director pair on the VM lab
// (etcd lease, kernel fence, softdog) in lvs_mode owner in front of a
// real-server VM, and kills the active director's daemon with SIGKILL:
// the backup has no table while it is the backup; the killed director's
// VM is reset by its watchdog; the other director takes the lease, adds
// the table and the VIP, and the client's connections through the VIP
// continue there. Never two directors answer ARP for the VIP (probed
// every 100 ms from the host).
func TestDirectorPairKill9(t *testing.T) {
	img := needImage(t)
	bin, err := lhtest.GuestBinaries()
	if err != nil {
		t.Fatal(err)
	}
	etcd, err := lhtest.EtcdBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	l, err := vmlab.Up(ctx, vmlab.Options{Binary: filepath.Join(bin, "leasehold"), Agent: filepath.Join(bin, "leasehold-lab-guest"),
		Etcd: etcd, Dir: t.TempDir(), ExtraYAML: pairYAML, ExtraModules: []string{"ip_vs_rr"}})
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	defer func() {
		if t.Failed() {
			for _, n := range l.Nodes() {
				if b, err := os.ReadFile(l.LogPath(n)); err == nil {
					t.Logf("%s's daemon log:\n%s", n, b)
				}
			}
		}
		l.Down()
	}()
	const rMAC = "52:54:00:66:00:0b"
	r := startVM(ctx, t, vm.Config{Name: "rs", Kernel: img.Kernel, Initrd: img.Initrd, Append: dr.rsAppend,
		NICs: []vm.NIC{{ID: "l2", MAC: rMAC, Mcast: l.Segment()}}})
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
	bv, err := l.VM(backup)
	if err != nil {
		t.Fatal(err)
	}
	if out, _, _ := bv.Exec(ctx, "ipvsadm -Ln", 20*time.Second); strings.Contains(out, "10.66.0.100:80") {
		t.Fatalf("the backup %s has the table:\n%s", backup, out)
	}
	t.Logf("%s directs, %s is the backup without a table", owner, backup)

	c := startClient(ctx, t, l.Segment(), map[string]string{"52:54:00:66:00:01": "n1", "52:54:00:66:00:02": "n2", rMAC: "rs"},
		500*time.Millisecond)
	defer c.stop()
	arp, tb := c.arp, c.tb
	time.Sleep(3 * time.Second)

	if err := l.Signal(owner, syscall.SIGKILL); err != nil {
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
			t.Fatalf("%s does not direct within 1 min of %s's kill -9", backup, owner)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%s directs %v after %s's daemon was killed (its VM reset at +%v)", backup, took.Round(time.Millisecond), owner,
		resetAfter(l.ResetAt(owner), killed))
	time.Sleep(3 * time.Second)
	c.stop()

	if d := arp.DualRounds(); len(d) > 0 {
		t.Errorf("%d ARP rounds answered by two MACs, first %+v", len(d), d[0])
	}
	if reset := l.ResetAt(owner); reset.IsZero() || reset.Sub(killed) > took {
		t.Errorf("%s's VM reset at %v after the kill, %s directed at %v: want the reset first", owner, resetAfter(reset, killed), backup, took)
	}
	var before, after, failed int
	var outage, cur time.Duration
	var failStart int64 = -1
	samples := c.tcp.Samples()
	for _, s := range samples {
		at := time.Duration(s.At.MonoUS) * time.Microsecond
		switch {
		case !s.OK():
			failed++
			if failStart < 0 {
				failStart = s.At.MonoUS
			}
			continue
		case s.Node != "rs":
			t.Errorf("a connection answered by %q, not the real server", s.Node)
		case tb.Stamp(killed).MonoUS > s.At.MonoUS:
			before++
		default:
			after++
		}
		if failStart >= 0 {
			cur = at - time.Duration(failStart)*time.Microsecond
			outage = max(outage, cur)
			failStart = -1
		}
	}
	t.Logf("client through the VIP: %d answered before the kill, %d after, %d failed; longest outage %v", before, after, failed,
		outage.Round(time.Millisecond))
	if before == 0 || after == 0 {
		t.Errorf("the client was not served through the VIP before (%d) and after (%d) the failover", before, after)
	}
}

func resetAfter(reset, killed time.Time) time.Duration {
	if reset.IsZero() {
		return -1
	}
	return reset.Sub(killed).Round(time.Millisecond)
}
