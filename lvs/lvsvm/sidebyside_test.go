package lvsvm_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/vm"
	"github.com/leasehold/leasehold/lab/vm/image"
)

const keepalivedBin = "/usr/sbin/keepalived"

// manyReals are the side-by-side's real servers: n addresses outside any
// subnet of the director, each checked by a TCP connect to one listener
// (connect_ip, connect_port) on the real-server VM.
func manyReals(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("10.70.%d.%d", i/250, i%250+1)
	}
	return out
}

// keepalivedConf is the virtual server with n TCP-checked real servers at
// delay_loop 1 s, as keepalived.conf.
func keepalivedConf(n int) string {
	var b strings.Builder
	b.WriteString("global_defs {\n  router_id d1\n}\nvirtual_server 10.66.0.100 80 {\n  delay_loop 1\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n")
	for _, ip := range manyReals(n) {
		fmt.Fprintf(&b, "  real_server %s 80 {\n    weight 1\n    TCP_CHECK {\n      connect_ip 10.66.0.11\n      connect_port 80\n      connect_timeout 1\n    }\n  }\n", ip)
	}
	b.WriteString("}\n")
	return b.String()
}

// leaseholdConf is the same virtual server in leasehold's configuration.
func leaseholdConf(n int) string {
	var b strings.Builder
	b.WriteString(`node: {name: d1}
quorum: {backend: none}
vrrp_instance:
  VI_1: {interface: eth0, state: MASTER, virtual_router_id: 51, priority: 150, advert_int: 1, virtual_ipaddress: [10.66.0.100/24]}
lvs_mode: all
virtual_server:
  - ip: 10.66.0.100
    port: 80
    follow: VI_1
    delay_loop: 1
    lb_algo: rr
    lb_kind: DR
    real_server:
`)
	for _, ip := range manyReals(n) {
		fmt.Fprintf(&b, "      - {ip: %s, TCP_CHECK: {connect_ip: 10.66.0.11, connect_port: 80, connect_timeout: 1}}\n", ip)
	}
	return b.String()
}

// cpuScript prints the CPU clock ticks (utime + stime, /proc/PID/stat
// fields 14 and 15, 100 a second) of every process named name.
func cpuScript(name string) string {
	return fmt.Sprintf(`t=0; for p in $(pidof %s); do set -- $(cut -d')' -f2 /proc/$p/stat); t=$((t + ${12} + ${13})); done; echo $t`, name)
}

// passiveOpens prints the TCP connections a machine accepted so far
// (/proc/net/snmp Tcp PassiveOpens).
const passiveOpens = `awk '/^Tcp:/ { if (h) { print $7; exit } h = 1 }' /proc/net/snmp`

// TestCheckerCPUSideBySide measures keepalived's checker and leasehold
// in the same director VM with the same 1,000 TCP-checked real servers at
// delay_loop 1 s: CPU used (all their processes) over 20 s, and the real
// servers in the kernel's table. A measurement (LVS_BENCH=1), printed,
// not asserted: under TCG both are slowed alike, so the ratio is the
// figure.
func TestCheckerCPUSideBySide(t *testing.T) {
	if os.Getenv("LVS_BENCH") == "" {
		t.Skip("a measurement: set LVS_BENCH=1")
	}
	if _, err := os.Stat(keepalivedBin); err != nil {
		skipOrFail(t, "no keepalived on the host (Debian package keepalived): "+err.Error())
	}
	img, skip, err := buildImage(t.TempDir(), image.File{Src: keepalivedBin})
	img = checkImage(t, img, skip, err)
	const n = 1000
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	share := t.TempDir()
	for name, body := range map[string]string{"keepalived.conf": keepalivedConf(n), "leasehold.yaml": leaseholdConf(n)} {
		if err := os.WriteFile(filepath.Join(share, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mcast := vm.NewMcastGroup()
	d := startVM(ctx, t, vm.Config{Name: "d1", Kernel: img.Kernel, Initrd: img.Initrd, Share: share,
		Append: "lh.ip0=10.66.0.1/24 lh.modules=" + ipvsModules, NICs: []vm.NIC{{ID: "l2", MAC: "52:54:00:66:00:01", Mcast: mcast}}})
	r := startVM(ctx, t, vm.Config{Name: "rs", Kernel: img.Kernel, Initrd: img.Initrd,
		Append: "lh.ip0=10.66.0.11/24", NICs: []vm.NIC{{ID: "l2", MAC: "52:54:00:66:00:0b", Mcast: mcast}}})
	if _, err := r.Spawn(ctx, []string{"/bin/sh", "-c", "LVS_ACCEPT=10.66.0.11:80 exec /usr/local/bin/lvs.test -test.run '^TestHelperAcceptLoop$'"},
		"/dev/null"); err != nil {
		t.Fatal(err)
	}
	run := func(v *vm.VM, script string) string {
		t.Helper()
		out, rc, err := v.Exec(ctx, script, time.Minute)
		if err != nil || rc != 0 {
			t.Fatalf("%s: rc %d %v\n%s", script, rc, err, out)
		}
		return strings.TrimSpace(out)
	}
	run(d, "mkdir -p /etc/keepalived /etc/leasehold && cp /share/keepalived.conf /etc/keepalived/ && cp /share/leasehold.yaml /etc/leasehold/")
	measure := func(name string, argv []string) {
		p, err := d.Spawn(ctx, argv, "/share/"+name+".log")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for {
			if out := run(d, "ipvsadm -Ln | grep -c Route || true"); out == strconv.Itoa(n) {
				break
			}
			if time.Since(start) > 90*time.Second {
				b, _ := os.ReadFile(filepath.Join(share, name+".log"))
				t.Fatalf("%s: %d real servers not in the table within 90 s; log:\n%s", name, n, lastLines(string(b), 30))
			}
			time.Sleep(time.Second)
		}
		loaded := time.Since(start)
		time.Sleep(5 * time.Second) // checks spread by warmup
		c0, _ := strconv.Atoi(run(d, cpuScript(name)))
		o0, _ := strconv.Atoi(run(r, passiveOpens))
		t0 := time.Now()
		time.Sleep(20 * time.Second)
		c1, _ := strconv.Atoi(run(d, cpuScript(name)))
		o1, _ := strconv.Atoi(run(r, passiveOpens))
		wall := time.Since(t0)
		inTable := run(d, "ipvsadm -Ln | grep -c Route || true")
		cpu := time.Duration(c1-c0) * 10 * time.Millisecond
		t.Logf("%s: %d real servers in the table after %v; %.0f checks/s (connections the real server accepted); CPU %v in %v = %.1f%% of the guest's vCPU, %.0f µs a check; %s in the table at the end",
			name, n, loaded.Round(time.Second), float64(o1-o0)/wall.Seconds(), cpu, wall.Round(time.Millisecond), 100*cpu.Seconds()/wall.Seconds(),
			float64(cpu.Microseconds())/float64(max(o1-o0, 1)), inTable)
		if name == "leasehold" {
			if st, err := directorStatus(ctx, d); err == nil {
				var ups, downs uint64
				for _, r := range st.VirtualServers[0].RealServers {
					ups, downs = ups+r.Ups, downs+r.Downs
				}
				t.Logf("leasehold: %d real servers went down and %d up; %d table changes, %d failed passes", downs, ups, st.Ops, st.ReconcileErrors)
			}
		}
		if err := d.Signal(ctx, p, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); ; {
			if alive, err := d.Alive(ctx, p); err == nil && !alive {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not exit within 30 s of SIGTERM", name)
			}
			time.Sleep(500 * time.Millisecond)
		}
		run(d, "ipvsadm -C")
	}
	measure("keepalived", []string{"/usr/local/bin/keepalived", "-C", "-n", "-l", "-f", "/etc/keepalived/keepalived.conf"})
	measure("leasehold", []string{"/usr/local/bin/leasehold", "run", "-c", "/etc/leasehold/leasehold.yaml"})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
