// Package examples holds example configurations; this test keeps them
// loadable, consistent pair by pair, and true to the seed documents.
package examples

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/config"
	"github.com/leasehold/leasehold/config/keepalived"
	"github.com/leasehold/leasehold/daemon"
	"github.com/leasehold/leasehold/deploy/examples/examplestest"
)

func load(t *testing.T, path string) *config.Config {
	t.Helper()
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// nodeFiles are the node examples: every *.yaml here.
func nodeFiles(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob("*.yaml")
	if len(files) < 8 {
		t.Fatalf("%d node examples", len(files))
	}
	return files
}

// Every example is lease-gated, unless the file says why it is not (a
// line "# backend none because ..."), and passes `config check` (the
// plan `run` builds) once its site programs exist.
func TestLeaseGatedAndChecked(t *testing.T) {
	for _, f := range append(nodeFiles(t), "../leasehold.yaml") {
		c := load(t, f)
		if c.Quorum.Backend == config.BackendNone {
			b, _ := os.ReadFile(f)
			if !strings.Contains(string(b), "# backend none because") {
				t.Errorf("%s: backend none without a line \"# backend none because ...\"", f)
			}
		} else if c.Fencing.NFTables != "required" {
			t.Errorf("%s: lease-gated with fencing.nftables %q: the example should keep the default, required", f, c.Fencing.NFTables)
		}
		plan, err := daemon.Load(examplestest.WithStubPrograms(t, f))
		if err != nil {
			t.Errorf("config check %s: %v", f, err)
			continue
		}
		for _, w := range plan.Warnings {
			t.Errorf("config check %s: warning: %s", f, w)
		}
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), "...") {
			t.Errorf("%s: a \"...\" placeholder", f)
		}
	}
}

func TestPairs(t *testing.T) {
	pairs := [][2]string{
		{"nginx-pair-lb1.yaml", "nginx-pair-lb2.yaml"},
		{"nginx-pair-etcd-lb1.yaml", "nginx-pair-etcd-lb2.yaml"},
		{"lvs-director-1.yaml", "lvs-director-2.yaml"},
		{"lvs-nat-director-1.yaml", "lvs-nat-director-2.yaml"},
		{"mysql-dual-master-1.yaml", "mysql-dual-master-2.yaml"},
		{"drbd-pair-nod1.yaml", "drbd-pair-nod2.yaml"},
	}
	for _, p := range pairs {
		t.Run(p[0], func(t *testing.T) {
			a, b := load(t, p[0]), load(t, p[1])
			if strings.HasPrefix(p[0], "lvs") && (len(a.LVS.Services) != 1 || len(b.LVS.Services) != 1 ||
				!reflect.DeepEqual(a.LVS.Services[0].Keys, b.LVS.Services[0].Keys)) {
				t.Errorf("the directors differ in their virtual servers: %+v / %+v", a.LVS, b.LVS)
			}
			if a.Node.Name == b.Node.Name {
				t.Errorf("both nodes are named %q", a.Node.Name)
			}
			// The same quorum: the same voters, or the same etcd and prefix.
			qa, qb := a.Quorum, b.Quorum
			if qa.Backend != qb.Backend || qa.TTL != qb.TTL || !reflect.DeepEqual(qa.Raft.Peers, qb.Raft.Peers) ||
				!reflect.DeepEqual(qa.Etcd.Endpoints, qb.Etcd.Endpoints) || qa.Etcd.Prefix != qb.Etcd.Prefix {
				t.Errorf("the two nodes' quorums differ:\n%+v\n%+v", qa, qb)
			}
			if qa.Backend == config.BackendRaft && (qa.Raft.Bind == qb.Raft.Bind || qa.Raft.ID == qb.Raft.ID) {
				t.Errorf("raft: both nodes bind %s as %s", qa.Raft.Bind, qa.Raft.ID)
			}
			if !reflect.DeepEqual(a.Fencing, b.Fencing) {
				t.Errorf("fencing differs: %+v vs %+v", a.Fencing, b.Fencing)
			}
			for _, name := range a.Names() {
				x, y := a.Instance[name], b.Instance[name]
				if y == nil {
					t.Fatalf("%s has no instance %s", p[1], name)
				}
				if x.VirtualRouterID != y.VirtualRouterID || x.Interface != y.Interface || x.Version != y.Version ||
					x.AdvertInt != y.AdvertInt || x.AuthKey != y.AuthKey || !reflect.DeepEqual(x.VIPs, y.VIPs) {
					t.Errorf("%s differs where peers must agree:\n%+v\n%+v", name, x, y)
				}
				if x.Priority <= y.Priority {
					t.Errorf("%s: node 1 priority %d not above node 2's %d", name, x.Priority, y.Priority)
				}
				if !reflect.DeepEqual(x.TrackScript, y.TrackScript) || !reflect.DeepEqual(a.Script, b.Script) ||
					!reflect.DeepEqual(x.Promote, y.Promote) || !reflect.DeepEqual(x.Demote, y.Demote) {
					t.Errorf("%s: health checks or resource hooks differ", name)
				}
			}
		})
	}
}

// The witness is a raft voter without instances: LoadQuorum, not Load.
func TestWitness(t *testing.T) {
	files, _ := filepath.Glob("witness/*.yaml")
	if len(files) == 0 {
		t.Fatal("no witness examples")
	}
	for _, f := range files {
		c, err := config.LoadQuorum(f)
		if err != nil {
			t.Fatal(err)
		}
		if c.Quorum.Backend != config.BackendRaft || len(c.Instance) != 0 {
			t.Errorf("%s: backend %q, %d instances: a witness is a raft voter without VIPs", f, c.Quorum.Backend, len(c.Instance))
		}
		if _, err := config.Load(f); err == nil {
			t.Errorf("%s loads as a node config: it would belong in deploy/examples/", f)
		}
		if _, err := daemon.LoadQuorum(f, true); err != nil {
			t.Errorf("witness --check %s: %v", f, err)
		}
	}
	// It votes with the nginx pair: the same voters.
	w, err := config.LoadQuorum("witness/witness.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lb1 := load(t, "nginx-pair-lb1.yaml")
	if !reflect.DeepEqual(w.Quorum.Raft.Peers, lb1.Quorum.Raft.Peers) {
		t.Errorf("witness peers %v, lb1's %v", w.Quorum.Raft.Peers, lb1.Quorum.Raft.Peers)
	}
}

// The examples carry the seeds' values: importing the seeds' keepalived.conf
// gives the same VRRP parameters.
func TestExamplesMatchSeeds(t *testing.T) {
	seeds := "../../config/keepalived/testdata/"
	cases := []struct{ example, seed string }{
		{"nginx-pair-lb1.yaml", "nginx-000-master.conf"},
		{"nginx-pair-lb2.yaml", "nginx-000-backup.conf"},
		{"nginx-pair-etcd-lb1.yaml", "nginx-000-master.conf"},
		{"nginx-pair-etcd-lb2.yaml", "nginx-000-backup.conf"},
		{"lvs-director-1.yaml", "lvs-003-master.conf"},
		{"lvs-director-2.yaml", "lvs-003-backup.conf"},
		{"mysql-dual-master-1.yaml", "mysql-002-master.conf"},
		{"mysql-dual-master-2.yaml", "mysql-002-backup.conf"},
	}
	for _, tc := range cases {
		b, err := os.ReadFile(seeds + tc.seed)
		if err != nil {
			t.Fatal(err)
		}
		im, err := keepalived.Import(tc.seed, b, keepalived.Options{})
		if err != nil {
			t.Fatalf("%s: %v", tc.seed, err)
		}
		ex := load(t, tc.example)
		for _, name := range im.Config.Names() {
			s, e := im.Config.Instance[name], ex.Instance[name]
			if e == nil {
				t.Errorf("%s lacks %s of %s", tc.example, name, tc.seed)
				continue
			}
			// vrrp_strict starts keepalived's non-owners as BACKUP (the
			// import says so); the examples keep the author's MASTER: the
			// priority decides who is master either way.
			strict := strings.Contains(string(b), "\nvrrp_strict") || strings.Contains(string(b), " vrrp_strict")
			if s.VirtualRouterID != e.VirtualRouterID || s.Priority != e.Priority || s.State != e.State && !strict ||
				s.Interface != e.Interface || s.NoPreempt != e.NoPreempt || !reflect.DeepEqual(s.VIPs, e.VIPs) {
				t.Errorf("%s/%s differs from %s:\nseed    %+v\nexample %+v", tc.example, name, tc.seed, s, e)
			}
		}
	}
}

// Every configuration docs/install.md shows is a file here, verbatim: a
// ```yaml block whose first line names it ("# deploy/examples/FILE").
// (The files themselves are checked above.)
func TestInstallGuide(t *testing.T) {
	if n := docCopies(t, "../../docs/install.md", true); n < 3 {
		t.Fatalf("docs/install.md shows %d configurations, want the raft pair, the witness and the etcd pair", n)
	}
}

// docs/operating.md shows both LVS director pairs (DR and NAT), both
// nodes, and the README the first director of each, all verbatim.
func TestLVSPairsInDocs(t *testing.T) {
	for doc, want := range map[string][]string{
		"../../docs/operating.md": {"lvs-director-1.yaml", "lvs-director-2.yaml", "lvs-nat-director-1.yaml", "lvs-nat-director-2.yaml"},
		"../../README.md":         {"lvs-director-1.yaml", "lvs-nat-director-1.yaml"},
	} {
		docCopies(t, doc, false)
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range want {
			if !strings.Contains(string(b), "```yaml\n# deploy/examples/"+f+"\n") {
				t.Errorf("%s does not show %s", doc, f)
			}
		}
	}
}

// docCopies checks that the ```yaml blocks of doc named by their first
// line ("# deploy/examples/FILE") are that file, verbatim (all: every
// block must be one), and returns how many blocks there are.
func docCopies(t *testing.T, doc string, all bool) int {
	t.Helper()
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(b), "```yaml\n")[1:]
	for i, blk := range blocks {
		blk, _, ok := strings.Cut(blk, "```")
		name, body, _ := strings.Cut(blk, "\n")
		file, named := strings.CutPrefix(name, "# deploy/examples/")
		if !named && !all {
			continue
		}
		if !ok || !named {
			t.Errorf("%s block %d starts %q: want \"# deploy/examples/FILE\"", doc, i+1, name)
			continue
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Errorf("%s shows %s: %v", doc, file, err)
			continue
		}
		if body != string(want) {
			t.Errorf("%s's copy of %s differs from the file", doc, file)
		}
	}
	return len(blocks)
}
