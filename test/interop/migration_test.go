package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leasehold/leasehold/config/keepalived"
	"github.com/leasehold/leasehold/lab/labdaemon"
	"github.com/leasehold/leasehold/lab/netlab"
	"github.com/leasehold/leasehold/test/lhtest"
)

// The rolling migration (docs/operating.md), steps 2 and 3. Step 2: the
// second node's own keepalived.conf is imported, as an operator would,
// and runs next to the keepalived node. Its file uses what the importer once got wrong: a
// password with a comment cut inside it (keepalived reads "secret", so
// both nodes must), a notify_master with arguments, and a per-instance
// track_script weight (+30 while the check passes: 100 + 30 beats
// keepalived's 120, so the imported node must take the VIP, as keepalived
// in its place would).
func TestImportedNodeNextToKeepalived(t *testing.T) {
	p := pair{version: 2, interval: time.Second, authPass: "secret", vrid: 61}
	w := newWorld(t, p)
	dir := t.TempDir()
	notified := filepath.Join(dir, "notified")
	notify := filepath.Join(dir, "notify.sh")
	if err := os.WriteFile(notify, []byte("#!/bin/sh\necho \"$@\" >> "+notified+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`! the second node's keepalived.conf
global_defs {
    router_id LVS_DEVEL
}
vrrp_script chk_up {
    script "/bin/sh -c 'exit 0'"
    interval 1
}
vrrp_instance VI_1 {
    state BACKUP
    interface %s
    virtual_router_id %d
    priority 100
    advert_int 1
    garp_master_delay 1
    authentication {
        auth_type PASS
        auth_pass secret#1     ! keepalived reads "secret"
    }
    virtual_ipaddress {
        %s
    }
    track_script {
        chk_up weight 30
    }
    notify_master "%s MASTER VI_1"
}
`, w.lh.Iface, p.vrid, w.vipPrefix(), notify)
	im, err := keepalived.Import("lh-keepalived.conf", []byte(conf), keepalived.Options{NodeName: "lh"})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	yaml := string(im.YAML) + "status: {listen: \"unix:%SOCK%\"}\nstate_dir: %DIR%/state\n"

	w.startKeepalived() // MASTER, priority 120
	w.waitFor("keepalived to hold the VIP", 10*time.Second, func() bool { return w.holds(w.ka.Name) })

	bin, err := lhtest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	d, err := labdaemon.Start(w.ctx, bin, w.lh, filepath.Join(dir, "lh"), yaml)
	if err != nil {
		t.Fatalf("leasehold: %v", err)
	}
	w.lhd = d
	if err := d.WaitReady(10 * time.Second); err != nil {
		t.Fatalf("%v\n%s", err, yaml)
	}
	// 100 + 30 > 120: leasehold preempts keepalived, which gives the VIP up.
	w.waitFor("the imported node to take the VIP (priority 130)", 15*time.Second, func() bool {
		h := w.holders()
		return len(h) == 1 && h[0] == w.lh.Name
	})
	if s, _ := w.lhd.Status(); s.Instances[0].Recv == 0 {
		t.Errorf("leasehold heard no adverts from keepalived (authentication?): %+v", s)
	}
	w.waitFor("notify_master to run with its arguments", 5*time.Second, func() bool {
		b, _ := os.ReadFile(notified)
		return strings.Contains(string(b), "MASTER VI_1")
	})

	// Stopped, it hands the VIP back to keepalived.
	if err := w.lhd.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	w.waitFor("keepalived to take the VIP back", 10*time.Second, func() bool {
		h := w.holders()
		return len(h) == 1 && h[0] == w.ka.Name
	})
	w.lhd.Proc.Wait(w.ctx)

	// Step 3: the first node's keepalived.conf is imported too, keepalived
	// stops, and both nodes run leasehold with a raft quorum (the witness
	// on x): one owner, and after kill -9 of the owner the other takes over
	// once the lease has run out.
	kaConf := strings.NewReplacer("state BACKUP", "state MASTER", "priority 100", "priority 120", w.lh.Iface, w.ka.Iface,
		"track_script {\n        chk_up weight 30\n    }", "").Replace(conf)
	imKA, err := keepalived.Import("ka-keepalived.conf", []byte(kaConf), keepalived.Options{NodeName: "ka"})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	const raftPort, raftClient = 7946, 7947
	var peers strings.Builder
	for _, h := range []*netlab.Host{w.ka, w.lh, w.x} {
		fmt.Fprintf(&peers, "      - {id: %s, addr: \"%s:%d\", client: \"%s:%d\"}\n", h.Name, h.IPv4, raftPort, h.IPv4, raftClient)
	}
	quorum := func(h *netlab.Host) string {
		return fmt.Sprintf("quorum:\n  backend: raft\n  ttl: 2s\n  raft:\n    bind: \"%s:%d\"\n    client_bind: \"%s:%d\"\n    data_dir: %%DIR%%/raft\n    peers:\n%s",
			h.IPv4, raftPort, h.IPv4, raftClient, peers.String())
	}
	withQuorum := func(yaml string, h *netlab.Host) string {
		if !strings.Contains(yaml, "quorum:\n") || !strings.Contains(yaml, "\n  backend: none\n") {
			t.Fatalf("no quorum section to switch:\n%s", yaml)
		}
		yaml = strings.Replace(yaml, "\n  backend: none\n", "\n", 1)
		return strings.Replace(yaml, "quorum:\n", quorum(h), 1) + "status: {listen: \"unix:%SOCK%\"}\nstate_dir: %DIR%/state\n"
	}
	if err := w.kad.Stop(w.ctx); err != nil {
		t.Fatalf("keepalived stop: %v", err)
	}
	witness := filepath.Join(dir, "witness.yaml")
	os.WriteFile(witness, []byte(fmt.Sprintf("node: {name: x}\n%s", strings.ReplaceAll(quorum(w.x), "%DIR%", dir))), 0o644)
	wc := w.x.Command(w.ctx, bin, "witness", "-c", witness)
	wlog := &labdaemon.SyncBuffer{}
	wc.Stdout, wc.Stderr = wlog, wlog
	if _, err := w.x.StartCmd(wc); err != nil {
		t.Fatalf("witness: %v", err)
	}
	nodes := map[string]*labdaemon.Daemon{}
	for _, n := range []struct {
		h    *netlab.Host
		yaml string
	}{{w.ka, string(imKA.YAML)}, {w.lh, string(im.YAML)}} {
		d, err := labdaemon.Start(w.ctx, bin, n.h, filepath.Join(dir, "q-"+n.h.Name), withQuorum(n.yaml, n.h))
		if err != nil {
			t.Fatalf("leasehold on %s: %v", n.h.Name, err)
		}
		if err := d.WaitReady(20 * time.Second); err != nil {
			t.Fatalf("%s: %v\n%s\nwitness: %s", n.h.Name, err, d.Tail(30), wlog.String())
		}
		nodes[n.h.Name] = d
		t.Cleanup(func() { d.Kill9() })
	}
	w.waitFor("one owner under the quorum (lh: priority 130)", 30*time.Second, func() bool {
		h := w.holders()
		return len(h) == 1 && h[0] == w.lh.Name
	})
	t0 := w.lab.Timebase().Now()
	nodes[w.lh.Name].Kill9()
	w.waitFor("ka to take over once lh's lease has run out", 30*time.Second, func() bool { return w.holds(w.ka.Name) })
	added := w.addedAt(w.ka.Name, t0)
	took := added.Sub(t0)
	t.Logf("ka took over %v after lh's kill -9", took)
	// The quorum's point: the dead owner's fence expired before the other
	// node added the VIP, so from then on only ka answers for it (the
	// address may stay on lh's interface: its nftables fence drops it).
	time.Sleep(2 * time.Second)
	if ans := w.arpAnswerers(added); ans[w.lh.Name] > 0 || ans[w.ka.Name] == 0 {
		t.Errorf("ARP answers for the VIP after ka added it: %v, want ka's only", ans)
	}
	if got := w.lastTCPAnswer(added); got != w.ka.Name {
		t.Errorf("after the takeover the TCP probe through the VIP reached %q, want ka", got)
	}
	for _, r := range netlab.DualRounds(w.arp.Rounds()) {
		if !r.At.Before(t0) {
			t.Errorf("ARP round at %v (after lh's kill -9) answered by %v: two holders", r.At, r.Hosts)
		}
	}
	if took < time.Second {
		t.Errorf("ka took over %v after lh's kill -9: before lh's lease (ttl 2s) could have run out", took)
	}
}
