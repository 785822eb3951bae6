package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/config"
)

const reloadBase = `node: {name: lb1}
quorum: {backend: none}
status: {listen: "unix:/tmp/x.sock"}
vrrp_instance:
  VI_1:
    interface: eth0
    virtual_router_id: 51
    priority: 120
    virtual_ipaddress: [10.0.0.100]
`

func TestReloadRefusesUnsafeChanges(t *testing.T) {
	dir := t.TempDir()
	cur, err := config.Parse("cur.yaml", []byte(reloadBase))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := NewPlan(cur)
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{plan: plan, cfg: cur}
	reload := func(s string) (applied, refused []string, err error) {
		p := filepath.Join(dir, "next.yaml")
		os.WriteFile(p, []byte(s), 0o644)
		next, err := Load(p)
		if err != nil {
			return nil, nil, err
		}
		applied, refused = d.Reload(next)
		return applied, refused, nil
	}
	// No change.
	applied, refused, err := reload(reloadBase)
	if err != nil || len(applied)+len(refused) != 0 {
		t.Fatalf("unchanged file: %v %v %v", applied, refused, err)
	}
	// Invalid file: an error, nothing changes.
	if _, _, err := reload("vrrp_instance: ["); err == nil {
		t.Fatal("invalid file: no error")
	}
	// VRID and quorum changes are refused, naming the key (and the fence,
	// whose default follows the backend: auto without a quorum, required
	// with one).
	_, refused, err = reload(strings.Replace(strings.Replace(reloadBase, "virtual_router_id: 51", "virtual_router_id: 52", 1),
		"quorum: {backend: none}", "quorum:\n  backend: etcd\n  etcd: {endpoints: [\"http://127.0.0.1:2379\"]}", 1))
	if err != nil || len(refused) != 3 || !strings.Contains(strings.Join(refused, ";"), "quorum changed") ||
		!strings.Contains(strings.Join(refused, ";"), "fencing changed") ||
		!strings.Contains(strings.Join(refused, ";"), "vrrp_instance.VI_1: only priority") {
		t.Fatalf("refused = %v, %v", refused, err)
	}
	// A priority change is applied (to no running instance here) and recorded.
	applied, refused, err = reload(strings.Replace(reloadBase, "priority: 120", "priority: 90", 1))
	if err != nil || len(refused) != 0 || d.cfg.Instance["VI_1"].Priority != 90 {
		t.Fatalf("priority change: applied %v refused %v err %v prio %d", applied, refused, err, d.cfg.Instance["VI_1"].Priority)
	}
}
