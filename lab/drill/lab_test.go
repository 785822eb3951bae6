package drill_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/drill"
	"github.com/leasehold/leasehold/lab/labctl"
	"github.com/leasehold/leasehold/lab/labdaemon"
	"github.com/leasehold/leasehold/lab/netlab"
	"github.com/leasehold/leasehold/lab/netlab/netlabtest"
	"github.com/leasehold/leasehold/test/lhtest"
)

// TestLabDrills drives the product end to end through the CLI: `lab up`
// (2 nodes, raft), `drill kill9` and `drill graceful` with their verdicts,
// `lab down` leaving no namespace and no process behind.
func TestLabDrills(t *testing.T) {
	lh, bin, parent, name, dir, l := upCLILab(t, "t", "--nodes", "2", "--quorum", "raft")
	meta := l.Meta()

	for _, sc := range []string{"kill9", "graceful"} {
		out, err := lh("drill", sc, "--dir", parent, "--lab", name, "--json")
		if err != nil {
			t.Errorf("drill %s: %v", sc, err) // a failed verdict exits 1: the JSON still tells why
		}
		rep, perr := drill.ReadJSON([]byte(out))
		if perr != nil || len(rep.Results) != 1 {
			t.Fatalf("drill %s: no result (%v):\n%s", sc, perr, out)
		}
		r := rep.Results[0]
		t.Logf("%s: %s dual ARP rounds %d of %d, VIP on both %dus, client outage %dus, new owner %s after %dus, epochs %v -> %v",
			sc, r.Verdict, r.DualARPRounds, r.ARPRounds, r.AddrBothUS, r.OutageUS, r.NewOwner, r.TimeToNewOwnerUS, r.EpochBefore, r.EpochAfter)
		if r.DualARPRounds != 0 {
			t.Errorf("%s: SPLIT BRAIN: %d ARP rounds answered by two MACs", sc, r.DualARPRounds)
		}
		if r.ARPRounds < 10 {
			t.Errorf("%s: only %d ARP rounds: the prober did not run", sc, r.ARPRounds)
		}
		if r.NewOwner == "" || r.NewOwner == r.OldOwner {
			t.Errorf("%s: no new owner (old %q, new %q)", sc, r.OldOwner, r.NewOwner)
		}
		if !r.Pass {
			t.Errorf("%s: verdict %s: %v", sc, r.Verdict, r.Reasons)
		}
		if len(r.Transitions) == 0 {
			t.Errorf("%s: no logged transitions", sc)
		}
	}

	// Live drills, run the way an operator runs them on a real node: from
	// inside a node's namespace, against its own config and daemon.
	owner := meta.Nodes[0]
	od := labdaemon.Attach(filepath.Join(dir, owner, "lh.sock"))
	defer od.Close()
	for _, sc := range []string{"freeze", "vrrp-partition"} {
		for end := time.Now().Add(20 * time.Second); ; {
			if st, err := od.Status(); err == nil && len(st.Groups) > 0 && st.Groups[0].Role == "owner" {
				break
			}
			if time.Now().After(end) {
				t.Fatalf("%s did not take its group back before the live %s drill", owner, sc)
			}
			time.Sleep(100 * time.Millisecond)
		}
		cmd := exec.Command("ip", "netns", "exec", meta.ID+"-"+owner, bin, "drill", sc, "--live", "--yes-disrupt",
			"--duration", "3s", "-c", filepath.Join(dir, owner, "leasehold.yaml"), "--json")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("live drill %s on %s: %v\n%s", sc, owner, err, stderr.String())
		}
		rep, perr := drill.ReadJSON(out)
		if perr != nil || len(rep.Results) != 1 {
			t.Fatalf("live drill %s: no result (%v):\n%s\n%s", sc, perr, out, stderr.String())
		}
		r := rep.Results[0]
		t.Logf("live %s on %s: %s dual ARP rounds %d of %d, epochs %v -> %v, reasons %v", sc, owner, r.Verdict,
			r.DualARPRounds, r.ARPRounds, r.EpochBefore, r.EpochAfter, r.Reasons)
		if !r.Pass || r.DualARPRounds != 0 || r.ARPRounds < 10 {
			t.Errorf("live drill %s: verdict %s, %d dual of %d ARP rounds: %v", sc, r.Verdict, r.DualARPRounds, r.ARPRounds, r.Reasons)
		}
		if r.OldOwner != owner {
			t.Errorf("live drill %s: %s was not the owner when the fault was injected (%q)", sc, owner, r.OldOwner)
		}
	}
	// Without the explicit flag a live drill refuses.
	if out, err := exec.Command(bin, "drill", "freeze", "--live", "-c", filepath.Join(dir, owner, "leasehold.yaml")).CombinedOutput(); err == nil ||
		!strings.Contains(string(out), "--yes-disrupt") {
		t.Errorf("live drill without --yes-disrupt: %v\n%s", err, out)
	}

	// The daemons the drills restarted are recorded too.
	meta = l.Meta()
	if fresh, err := labctl.Open(dir, nil); err == nil {
		meta = fresh.Meta()
	}
	var recs []netlab.ProcRecord
	for _, r := range meta.Daemons {
		recs = append(recs, r)
	}
	for _, r := range meta.Responder {
		recs = append(recs, r)
	}
	recs = append(recs, meta.QuorumPID)
	if out, err := lh("lab", "down", "--dir", parent, "--lab", name); err != nil {
		t.Fatal(err)
	} else {
		t.Log(strings.TrimSpace(out))
	}
	ns, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(ns), meta.ID+"-") {
		t.Errorf("namespaces of lab %s left after lab down:\n%s", meta.ID, ns)
	}
	for _, r := range recs {
		if r.Alive() {
			t.Errorf("process %d (%s on %s) still running after lab down", r.PID, r.Argv0, r.Host)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("lab directory %s left after lab down", dir)
	}
}

// upCLILab brings a lab up through the CLI (`lab up` with upArgs, named
// prefix and the test's PID, under a temporary directory), with `lab down`
// as the test's cleanup. It returns the CLI runner (stdout; stderr in the
// error), the binary, the lab's parent directory, name and directory, and
// the lab opened in this process.
func upCLILab(t *testing.T, prefix string, upArgs ...string) (lh func(...string) (string, error), bin, parent, name, dir string, l *labctl.Lab) {
	t.Helper()
	netlabtest.Require(t)
	bin, err := lhtest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	parent = t.TempDir()
	name = fmt.Sprintf("%s%d", prefix, os.Getpid())
	lh = func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return string(out), fmt.Errorf("leasehold %s: %w\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		return string(out), nil
	}
	t.Cleanup(func() { lh("lab", "down", "--dir", parent, "--lab", name) })
	start := time.Now()
	out, err := lh(append([]string{"lab", "up", "--dir", parent, "--name", name}, upArgs...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("lab up %v in %v:\n%s", upArgs, time.Since(start).Round(time.Millisecond), out)
	if dir, err = labctl.Resolve(parent, name); err != nil {
		t.Fatal(err)
	}
	if l, err = labctl.Open(dir, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return lh, bin, parent, name, dir, l
}
