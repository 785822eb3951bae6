package lvsvm_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/vm"
)

// syncPairYAML is the director pair's echo service (DR, port 9000, both
// real servers on the real-server VM), with or without the kernel's
// connection sync on the lab's segment.
func syncPairYAML(sync bool) string {
	y := `lvs_mode: owner
virtual_server:
  - ip: 10.66.0.100
    port: 9000
    follow: VI_1
    delay_loop: 1
    lb_algo: rr
    lb_kind: DR
    real_server:
      - {ip: 10.66.0.11, TCP_CHECK: {connect_timeout: 1}}
      - {ip: 10.66.0.12, TCP_CHECK: {connect_timeout: 1}}
`
	if sync {
		y += "lvs_sync_daemon: {interface: eth0, instance: VI_1, id: 7}\n"
	}
	return y
}

// TestConnectionSyncInAVM: an established connection through the VIP of
// an LVS-DR director pair (the VM lab: etcd lease, fence, watchdog;
// lvs_mode owner) survives the active director's kill -9 with
// lvs_sync_daemon (the other director received the connection as the
// sync backup and forwards its packets to the same real server), and
// does not without it (the new director knows nothing of it and resets
// it). The client is a VM of its own (a real TCP stack that retransmits
// through the failover), echoing a line every 100 ms.
func TestConnectionSyncInAVM(t *testing.T) {
	for _, sync := range []bool{true, false} {
		name := "without"
		if sync {
			name = "with"
		}
		t.Run(name, func(t *testing.T) { testConnectionSync(t, sync) })
	}
}

func testConnectionSync(t *testing.T, sync bool) {
	img := needImage(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	l := upPair(ctx, t, syncPairYAML(sync))
	share := t.TempDir()
	r := startVM(ctx, t, vm.Config{Name: "rs", Kernel: img.Kernel, Initrd: img.Initrd, Append: dr.rsAppend,
		NICs: []vm.NIC{{ID: "l2", MAC: rsMAC, Mcast: l.Segment()}}})
	cl := startVM(ctx, t, vm.Config{Name: "cl", Kernel: img.Kernel, Initrd: img.Initrd, Append: "lh.ip0=10.66.0.50/24", Share: share,
		NICs: []vm.NIC{{ID: "l2", MAC: "52:54:00:66:00:32", Mcast: l.Segment()}}})
	mustExec(ctx, t, r, dr.rsSetup)
	if _, err := r.Spawn(ctx, []string{"/bin/sh", "-c", "LVS_ECHO=0.0.0.0:9000 exec /usr/local/bin/lvs.test -test.run '^TestHelperEcho$'"}, "/dev/null"); err != nil {
		t.Fatal(err)
	}

	owner := ""
	for deadline := time.Now().Add(2 * time.Minute); owner == ""; {
		for _, n := range l.Nodes() {
			if doc, err := nodeStatus(ctx, l, n); err == nil && directing(doc) {
				owner = n
				if sync && (doc.LVSSync == nil || doc.LVSSync.State != "master") {
					t.Fatalf("%s directs, its sync daemon: %+v", n, doc.LVSSync)
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no director owns with both real servers in its table within 2 min")
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, n := range l.Nodes() {
		if n != owner {
			readyBackup(ctx, t, l, n)
		}
	}
	hold, err := cl.Spawn(ctx, []string{"/bin/sh", "-c", "LVS_HOLD=10.66.0.100:9000 LVS_HOLD_FOR=12s exec /usr/local/bin/lvs.test -test.v -test.run '^TestHelperHoldConn$'"},
		"/share/hold.log")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second) // connected, and synced (after 3 packets; sent within a second)
	if err := l.Signal(owner, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if alive, err := cl.Alive(ctx, hold); err == nil && !alive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the client did not end within 2 min")
		}
		time.Sleep(300 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(share, "hold.log"))
	out := strings.TrimSpace(string(b))
	t.Logf("client (%v after %s's kill -9):\n%s", time.Since(killed).Round(time.Millisecond), owner, lastLines(out, 8))
	held := strings.Contains(out, "--- PASS: TestHelperHoldConn")
	switch {
	case !strings.Contains(out, "connected"):
		t.Fatal("the client never connected through the VIP")
	case sync && !held:
		t.Error("with lvs_sync_daemon the connection did not survive the director's failover")
	case !sync && held:
		t.Error("without lvs_sync_daemon the connection survived the failover: the test does not show what sync does")
	}
}
