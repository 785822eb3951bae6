package lvsvm_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leasehold/leasehold/config/keepalived"
	"github.com/leasehold/leasehold/lab/vm"
	"github.com/leasehold/leasehold/lab/vm/image"
)

// seedLVS are seed 003's keepalived.conf of both directors and a file of
// keepalived's defaults and adjustments (the importer's test data).
var seedLVS = []string{"lvs-003-master.conf", "lvs-003-backup.conf", "corpus/families/lvs-vm.conf"}

// TestImportedSeedsTableAsKeepalived boots one director VM with IPVS and,
// for each of seed 003's keepalived.conf (and lvs-vm.conf: no protocol,
// a bare persistence_timeout, lb_kind dr, a DR real server's port, a
// fwmark's protocol and port, a virtual server without real servers), lets keepalived 2.2.7's checker
// (keepalived -C) build the IPVS table from the file, then leasehold from
// the file's import (`config import-keepalived`, with only the VRRP
// interface renamed to the VM's), and compares the two tables as ipvsadm
// lists them: services, schedulers, persistence, real servers, forwarding
// methods and weights. The seed's real servers are addresses of the VM
// itself with an httpd, so both keep them in the table.
func TestImportedSeedsTableAsKeepalived(t *testing.T) {
	if _, err := os.Stat(keepalivedBin); err != nil {
		skipOrFail(t, "no keepalived on the host (Debian package keepalived): "+err.Error())
	}
	if testing.Short() {
		t.Skip("boots a VM: not under -short")
	}
	img, skip, err := buildImage(t.TempDir(), image.File{Src: keepalivedBin})
	img = checkImage(t, img, skip, err)
	share := t.TempDir()
	for _, path := range seedLVS {
		src := filepath.Join("../../config/keepalived/testdata", path)
		name := filepath.Base(path)
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		im, err := keepalived.Import(src, data, keepalived.Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		yml := strings.ReplaceAll(string(im.YAML), "interface: enp0s3", "interface: eth0")
		base := strings.TrimSuffix(name, ".conf")
		if err := os.WriteFile(filepath.Join(share, base+".yaml"), []byte(yml), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(share, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	d := startVM(ctx, t, vm.Config{Name: "d1", Kernel: img.Kernel, Initrd: img.Initrd, Share: share,
		Append: "lh.ip0=10.66.0.1/24 lh.modules=" + ipvsModules, NICs: []vm.NIC{{ID: "l2", MAC: "52:54:00:66:00:01", Mcast: vm.NewMcastGroup()}}})
	run := func(script string) string {
		t.Helper()
		out, rc, err := d.Exec(ctx, script, time.Minute)
		if err != nil || rc != 0 {
			t.Fatalf("%s: rc %d %v\n%s", script, rc, err, out)
		}
		return out
	}
	// The seed's real servers, answering on the VM's loopback.
	run(`set -e
mkdir -p /var/www /etc/keepalived
echo rs > /var/www/index.html
for a in 192.168.1.13 192.168.1.14 10.66.5.1 10.66.5.2; do
  ip addr add $a/32 dev lo
  httpd -p $a:80 -h /var/www
done
`)
	// table runs argv until the IPVS table has a service and has not
	// changed for 8 s (more than the files' delay_loop, 6 s at most: every
	// real server checked at least once), stops it, and returns the table.
	table := func(who string, argv []string, log string) []string {
		t.Helper()
		p, err := d.Spawn(ctx, argv, log)
		if err != nil {
			t.Fatal(err)
		}
		var last []string
		stable := time.Now()
		for start := time.Now(); ; time.Sleep(500 * time.Millisecond) {
			cur := ipvsTable(run("ipvsadm -Ln"))
			if !slices.Equal(cur, last) {
				last, stable = cur, time.Now()
			}
			if len(cur) > 0 && time.Since(stable) >= 8*time.Second {
				break
			}
			if time.Since(start) > 90*time.Second {
				b, _ := os.ReadFile(filepath.Join(share, filepath.Base(log)))
				t.Fatalf("%s: no steady IPVS table within 90 s (last %q); log:\n%s", who, last, lastLines(string(b), 30))
			}
		}
		if err := d.Signal(ctx, p, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(300 * time.Millisecond) {
			if alive, err := d.Alive(ctx, p); err == nil && !alive {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not exit within 30 s of SIGTERM", who)
			}
		}
		run("ipvsadm -C")
		return last
	}
	for _, path := range seedLVS {
		name := filepath.Base(path)
		base := strings.TrimSuffix(name, ".conf")
		ka := table("keepalived "+name, []string{"/usr/local/bin/keepalived", "-C", "-n", "-l", "-D", "-f", "/share/" + name,
			"-p", "/run/keepalived-" + base + ".pid", "-c", "/run/checkers-" + base + ".pid"}, "/share/"+base+".keepalived.log")
		lh := table("leasehold "+base+".yaml", []string{"/usr/local/bin/leasehold", "run", "-c", "/share/" + base + ".yaml"}, "/share/"+base+".leasehold.log")
		t.Logf("%s: keepalived's table:\n%s", name, strings.Join(ka, "\n"))
		if !slices.ContainsFunc(ka, func(l string) bool { return strings.HasPrefix(l, "  -> ") }) {
			t.Errorf("%s: keepalived kept no real server (their checks failed?): nothing compared", name)
		}
		if !slices.Equal(ka, lh) {
			t.Errorf("%s: leasehold's table from the import differs:\n%s", name, strings.Join(lh, "\n"))
		}
	}
}
