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
)

func load(t *testing.T, path string) *config.Config {
	t.Helper()
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// uncomment returns the file with "backend: none" replaced by the
// commented "# backend: X" section below it.
func uncomment(t *testing.T, path, backend string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case l == "  backend: none":
			continue
		case l == "  # backend: "+backend:
			in = true
		case in && strings.HasPrefix(l, "  # ") && !strings.HasPrefix(l, "  # Or ") && !strings.HasPrefix(l, "  # With "):
		default:
			in = false
			out = append(out, l)
			continue
		}
		out = append(out, "  "+strings.TrimPrefix(l, "  # "))
	}
	return []byte(strings.Join(out, "\n"))
}

func TestPairs(t *testing.T) {
	pairs := [][2]string{
		{"nginx-pair-lb1.yaml", "nginx-pair-lb2.yaml"},
		{"lvs-director-1.yaml", "lvs-director-2.yaml"},
		{"mysql-dual-master-1.yaml", "mysql-dual-master-2.yaml"},
	}
	for _, p := range pairs {
		t.Run(p[0], func(t *testing.T) {
			a, b := load(t, p[0]), load(t, p[1])
			if a.Quorum.Backend != config.BackendNone || b.Quorum.Backend != config.BackendNone {
				t.Error("examples run with backend none until lease-gated ownership ships")
			}
			if strings.HasPrefix(p[0], "lvs") && (len(a.LVS.Services) != 1 || len(b.LVS.Services) != 1 ||
				!reflect.DeepEqual(a.LVS.Services[0].Keys, b.LVS.Services[0].Keys)) {
				t.Errorf("the directors differ in their virtual servers: %+v / %+v", a.LVS, b.LVS)
			}
			if a.Node.Name == b.Node.Name {
				t.Errorf("both nodes are named %q", a.Node.Name)
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
				if !reflect.DeepEqual(x.TrackScript, y.TrackScript) || !reflect.DeepEqual(a.Script, b.Script) {
					t.Errorf("%s: health checks differ", name)
				}
			}
			// The commented quorum sections are valid once filled in, and
			// the raft voters agree on the peer list.
			var peers [][]config.RaftPeer
			for _, f := range p {
				for _, q := range []string{config.BackendEtcd, config.BackendRaft} {
					c, err := config.Parse(f+" ("+q+")", uncomment(t, f, q))
					if err != nil {
						t.Errorf("commented %s section: %v", q, err)
						continue
					}
					if c.Quorum.Backend != q {
						t.Errorf("%s: uncommented backend is %q", f, c.Quorum.Backend)
					}
					if q == config.BackendRaft {
						peers = append(peers, c.Quorum.Raft.Peers)
					}
				}
			}
			if len(peers) == 2 && !reflect.DeepEqual(peers[0], peers[1]) {
				t.Errorf("raft peers differ: %v vs %v", peers[0], peers[1])
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
	}
	// It votes with the nginx pair: the same voters.
	w, err := config.LoadQuorum("witness/witness.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lb1, err := config.Parse("lb1", uncomment(t, "nginx-pair-lb1.yaml", config.BackendRaft))
	if err != nil {
		t.Fatal(err)
	}
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
			if s.VirtualRouterID != e.VirtualRouterID || s.Priority != e.Priority || s.State != e.State ||
				s.Interface != e.Interface || s.NoPreempt != e.NoPreempt || !reflect.DeepEqual(s.VIPs, e.VIPs) {
				t.Errorf("%s/%s differs from %s:\nseed    %+v\nexample %+v", tc.example, name, tc.seed, s, e)
			}
		}
	}
}
