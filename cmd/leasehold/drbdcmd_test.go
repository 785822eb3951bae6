package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/quorum/etcd/etcdtest"
	"github.com/leasehold/leasehold/storage/drbd"
)

// drbdNodeConf writes node's config with an etcd quorum and a drbd
// section for r0 in VI_1, and a /proc/drbd with the given line for minor 0.
func drbdNodeConf(t *testing.T, node string, endpoints []string, proc string) (conf, procFile string) {
	t.Helper()
	dir := t.TempDir()
	conf = filepath.Join(dir, node+".yaml")
	body := fmt.Sprintf(`node: {name: %s}
quorum:
  backend: etcd
  ttl: 2s
  etcd: {endpoints: [%s]}
fencing: {watchdog: off}
vrrp_instance:
  VI_1:
    interface: eth0
    virtual_router_id: 51
    priority: 100
    virtual_ipaddress: [10.0.0.100/24]
    drbd: {resource: r0, device: /dev/drbd0, mount: /srv, fstype: ext4}
`, node, strings.Join(endpoints, ", "))
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	procFile = filepath.Join(dir, "proc-drbd")
	writeProc(t, procFile, proc)
	return conf, procFile
}

// writeProc writes a DRBD 8.4 /proc/drbd with line for minor 0.
func writeProc(t *testing.T, file, line string) {
	t.Helper()
	if err := os.WriteFile(file, []byte("version: 8.4.11 (api:1/proto:86-101)\n"+line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func runDRBD(t *testing.T, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cmdDRBDCtx(context.Background(), args, func(k string) string { return env[k] }, &out, &errb)
	return out.String(), errb.String(), code
}

// Every exit code of the handlers through the CLI, against a real etcd:
// the holder outdates its peer (4, the mark at the quorum under its
// epoch), again (4, already marked), a peer seen Inconsistent (3), the
// node without the lease (6), a config naming another resource or the
// quorum gone (1); unfence-peer clears a node's mark only once UpToDate;
// the operator's unfence needs --force.
func TestDRBDHandlersCLI(t *testing.T) {
	c := etcdtest.Start(t, 1)
	opts := quorum.DefaultOptions()
	opts.Node = "n1"
	g := holdGroup(t, c.Backend(t, "n1", opts), "VI_1")
	disconnected := " 0: cs:WFConnection ro:Primary/Unknown ds:UpToDate/DUnknown C r-----"
	n1, n1proc := drbdNodeConf(t, "n1", c.Endpoints(), disconnected)
	n2, n2proc := drbdNodeConf(t, "n2", c.Endpoints(), " 0: cs:WFConnection ro:Secondary/Unknown ds:UpToDate/DUnknown C r-----")
	env := map[string]string{"DRBD_RESOURCE": "r0", "DRBD_PEER": "n2", "DRBD_MINOR": "0"}

	_, errs, code := runDRBD(t, env, "fence-peer", "-c", n1, "--proc", n1proc)
	if code != drbd.FencePeerOutdated || !strings.Contains(errs, "marked outdated") {
		t.Fatalf("fence-peer on the holder = %d: %s", code, errs)
	}
	out, _, code := runDRBD(t, env, "marks", "-c", n1)
	if code != 0 || !strings.Contains(out, "VI_1") || !strings.Contains(out, "n2") || !strings.Contains(out, fmt.Sprint(g.Epoch)) {
		t.Fatalf("marks = %d:\n%s", code, out)
	}
	if _, errs, code = runDRBD(t, env, "fence-peer", "-c", n1, "--proc", n1proc); code != drbd.FencePeerOutdated || !strings.Contains(errs, "already marked") {
		t.Fatalf("fence-peer again = %d: %s", code, errs)
	}
	// n2 without the lease: outdate yourself.
	env2 := map[string]string{"DRBD_RESOURCE": "r0", "DRBD_PEER": "n1"}
	if _, errs, code = runDRBD(t, env2, "fence-peer", "-c", n2); code != drbd.FenceOutdateYourself || !strings.Contains(errs, "peer n1 holds the lease") {
		t.Fatalf("fence-peer on the node without the lease = %d: %s", code, errs)
	}
	// n2 is not UpToDate yet: its mark stays; then the resync is done.
	writeProc(t, n2proc, " 0: cs:SyncTarget ro:Secondary/Primary ds:Inconsistent/UpToDate C r-----")
	if _, errs, code = runDRBD(t, env2, "unfence-peer", "-c", n2, "--proc", n2proc); code != 1 || !strings.Contains(errs, "not connected and in sync") {
		t.Fatalf("unfence-peer while Inconsistent = %d: %s", code, errs)
	}
	writeProc(t, n2proc, " 0: cs:Connected ro:Secondary/Primary ds:UpToDate/UpToDate C r-----")
	if _, errs, code = runDRBD(t, env2, "unfence-peer", "-c", n2, "--proc", n2proc); code != 0 || !strings.Contains(errs, "cleared n2's outdated mark") {
		t.Fatalf("unfence-peer after the resync = %d: %s", code, errs)
	}
	// A peer DRBD sees Inconsistent: 3, nothing recorded.
	_, inconsistent := drbdNodeConf(t, "n1", c.Endpoints(), " 0: cs:WFConnection ro:Primary/Unknown ds:UpToDate/Inconsistent C r-----")
	if _, errs, code = runDRBD(t, env, "fence-peer", "-c", n1, "--proc", inconsistent); code != drbd.FencePeerInconsistent {
		t.Fatalf("fence-peer with the peer Inconsistent = %d: %s", code, errs)
	}
	if out, _, _ = runDRBD(t, env, "marks", "-c", n1, "VI_1"); strings.Contains(out, "n2") {
		t.Fatalf("a mark recorded for an Inconsistent peer:\n%s", out)
	}
	// The operator's override needs --force.
	runDRBD(t, env, "fence-peer", "-c", n1, "--proc", n1proc)
	if _, errs, code = runDRBD(t, env, "unfence", "-c", n1, "VI_1", "n2"); code != 2 || !strings.Contains(errs, "--force") {
		t.Fatalf("unfence without --force = %d: %s", code, errs)
	}
	if _, errs, code = runDRBD(t, env, "unfence", "-c", n1, "--force", "VI_1", "n2"); code != 0 || !strings.Contains(errs, "cleared n2's outdated mark") {
		t.Fatalf("unfence --force = %d: %s", code, errs)
	}
	// Broken: an unknown resource, no peer, the quorum gone.
	if _, errs, code = runDRBD(t, map[string]string{"DRBD_RESOURCE": "r7", "DRBD_PEER": "n2"}, "fence-peer", "-c", n1); code != drbd.FenceHandlerFailed || !strings.Contains(errs, `resource "r7"`) {
		t.Fatalf("fence-peer for an unknown resource = %d: %s", code, errs)
	}
	if _, errs, code = runDRBD(t, map[string]string{"DRBD_RESOURCE": "r0"}, "fence-peer", "-c", n1); code != drbd.FenceHandlerFailed || !strings.Contains(errs, "DRBD_PEER") {
		t.Fatalf("fence-peer with no peer = %d: %s", code, errs)
	}
	c.StopAll(t)
	if _, errs, code = runDRBD(t, env, "fence-peer", "-c", n1, "--proc", n1proc, "--timeout", "3s"); code != drbd.FenceOutdateYourself || !strings.Contains(errs, "quorum unreachable") {
		t.Fatalf("fence-peer with the quorum down = %d: %s", code, errs)
	}
}
