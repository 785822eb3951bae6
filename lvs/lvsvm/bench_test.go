package lvsvm_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/vm"
	"github.com/leasehold/leasehold/lab/vm/image"
	"github.com/leasehold/leasehold/lab/vmlab"
)

// keepalivedBin is Debian's keepalived 2.2.7 (DEB_PKGS), copied into the
// bench's image at the same path with its libraries. Only the bench's
// image carries it: its libraries (net-snmp, OpenSSL, glib…, 26 MB)
// would slow every other VM's boot.
const keepalivedBin = "/usr/sbin/keepalived"

var benchImage builtImage

// needKeepalivedImage is the tests' image with keepalived in /usr/sbin.
func needKeepalivedImage(t *testing.T) image.Image {
	t.Helper()
	if _, err := os.Stat(keepalivedBin); err != nil {
		skipOrFail(t, "no keepalived on the host (Debian package keepalived): "+err.Error())
	}
	return benchImage.get(t, image.File{Src: keepalivedBin, Dest: keepalivedBin})
}

// keepalivedVirtualServer is virtualServerYAML in keepalived.conf.
func keepalivedVirtualServer(kind, rs1, rs2 string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "virtual_server 10.66.0.100 80 {\n  delay_loop 1\n  lb_algo rr\n  lb_kind %s\n  protocol TCP\n", kind)
	for _, rs := range []string{rs1, rs2} {
		fmt.Fprintf(&b, "  real_server %s 80 {\n    weight 1\n    TCP_CHECK {\n      connect_timeout 1\n      retry 1\n      delay_before_retry 1\n    }\n  }\n", rs)
	}
	b.WriteString("}\n")
	return b.String()
}

// keepalivedPairConf is director i's keepalived.conf in the keepalived
// pair: the VM lab's VRRP settings (VRRPv3, advert_int 0.1 s, priority
// 120 and 100, the first MASTER) and the same virtual server.
func keepalivedPairConf(i int) string {
	state := "MASTER"
	if i > 0 {
		state = "BACKUP"
	}
	return fmt.Sprintf(`global_defs {
  router_id n%d
}
vrrp_instance VI_1 {
  state %s
  interface eth0
  virtual_router_id 1
  priority %d
  version 3
  advert_int 0.1
  virtual_ipaddress {
    10.66.0.100/24
  }
}
`, i+1, state, 120-20*i) + keepalivedVirtualServer("DR", dr.rs1, dr.rs2)
}

// benchRuns is the environment variable env's run count (default def).
func benchRuns(env string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(env)); err == nil && n > 0 {
		return n
	}
	return def
}

// TestBenchLVS is make bench-lvs: leasehold and keepalived 2.2.7 as LVS
// directors in the same VMs with the same virtual server, in one run:
//
//   - real-server failure detection and recovery: one director VM and a
//     real-server VM (DR), delay_loop 1 s, TCP_CHECK connect_timeout 1 s,
//     retry 1, delay_before_retry 1 s; the second real server's httpd is
//     killed and started again at a random phase of the checks, and the
//     kernel's table (ipvsadm, polled through the VM's agent) says when
//     it left and came back;
//   - director failover: a director pair (leasehold: the VM lab with its
//     etcd lease, fence and watchdog, lvs_mode owner; keepalived: the same
//     VRRP settings, its table on both) in front of the real server, the
//     active director's daemon killed (-9: for keepalived every process of
//     it, seed 004's split brain), frozen (SIGSTOP) or isolated (its link
//     cut); a client on the host's end of the segment connects through the
//     VIP every 50 ms and probes ARP for it every 100 ms: when the other
//     director answers, the client's outage, and how long two directors
//     answered for the VIP (leasehold: 0, checked in every run);
//   - CPU at 1,000 TCP-checked real servers at delay_loop 1 s (checks per
//     second counted by the real server, CPU of all the daemon's
//     processes).
//
// It prints the tables between BENCH-LVS markers for test/benchrecord; a
// measurement, whose only verdicts are the pair's safety checks.
func TestBenchLVS(t *testing.T) {
	if os.Getenv("LVS_BENCH") == "" {
		t.Skip("a measurement: set LVS_BENCH=1 (make bench-lvs)")
	}
	img := needKeepalivedImage(t)
	// Detection depends on where in the check period the server fails
	// (delay_loop 1 s plus a retry: 1-2 s): 20 runs make the medians of
	// the two directors comparable; 5 left them 0.1 s apart by chance.
	runs := benchRuns("LVS_BENCH_RUNS", 20)
	load := []string{loadAvg()}
	var (
		checks = map[string]*checkFigures{}
		cpu    = map[string]cpuFigures{}
		fo     = map[string]map[string][]failoverFigures{"leasehold": {}, "keepalived": {}}
	)
	t.Run("checks", func(t *testing.T) { benchChecks(t, img, runs, checks, cpu) })
	faults := []pairFault{
		{name: "kill9", reset: true, do: func(_ context.Context, l *vmlab.Lab, n string) error { return l.Signal(n, syscall.SIGKILL) }},
		{name: "freeze", reset: true, do: func(_ context.Context, l *vmlab.Lab, n string) error { return l.Signal(n, syscall.SIGSTOP) }},
		{name: "isolate", do: func(ctx context.Context, l *vmlab.Lab, n string) error { return l.Isolate(ctx, n, true) }},
	}
	failoverRuns := benchRuns("LVS_BENCH_FAILOVER_RUNS", 1)
	for _, f := range faults {
		for i := range failoverRuns {
			t.Run(fmt.Sprintf("failover/leasehold/%s/%d", f.name, i), func(t *testing.T) {
				fo["leasehold"][f.name] = append(fo["leasehold"][f.name], pairFailover(t, f))
			})
			t.Run(fmt.Sprintf("failover/keepalived/%s/%d", f.name, i), func(t *testing.T) {
				fo["keepalived"][f.name] = append(fo["keepalived"][f.name], keepalivedPairFailover(t, img, f.name))
			})
		}
	}
	load = append(load, loadAvg())
	fmt.Println(benchTables(runs, checks, cpu, fo, faults, load))
}

// loadAvg is the host's 1-minute load average now (/proc/loadavg).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

// checkFigures are one director's detection and recovery times.
type checkFigures struct{ detect, recover []time.Duration }

// cpuFigures are one director's checking cost.
type cpuFigures struct {
	checksPerSec, cpuPerCheckUS, vcpuPct float64
	inTable                              string
}

// benchChecks measures detection, recovery and checking CPU for
// keepalived and leasehold, one after the other, in the same two VMs.
func benchChecks(t *testing.T, img image.Image, runs int, checks map[string]*checkFigures, cpu map[string]cpuFigures) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Minute)
	defer cancel()
	const n = 1000
	share := t.TempDir()
	for name, body := range map[string]string{
		"keepalived.conf":      "global_defs {\n  router_id d1\n}\n" + keepalivedVirtualServer("DR", dr.rs1, dr.rs2),
		"leasehold.yaml":       directorYAML("DR", dr.rs1, dr.rs2),
		"keepalived-1000.conf": keepalivedConf(n),
		"leasehold-1000.yaml":  leaseholdConf(n),
	} {
		if err := os.WriteFile(filepath.Join(share, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, r, _ := directorAndRealServer(ctx, t, img, share, "10.66.0.1/24", dr.rsAppend)
	mustExec(ctx, t, r, dr.rsSetup)
	// The 1,000 real servers' checks all reach one accept loop on :81.
	if _, err := r.Spawn(ctx, []string{"/bin/sh", "-c", "LVS_ACCEPT=10.66.0.11:81 exec /usr/local/bin/lvs.test -test.run '^TestHelperAcceptLoop$'"},
		"/dev/null"); err != nil {
		t.Fatal(err)
	}
	rs2 := []string{"/bin/busybox", "httpd", "-f", "-p", dr.rs2 + ":80", "-h", "/var/www"}
	httpd, err := r.Spawn(ctx, rs2, "/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	directors := []struct{ name, conf1, conf1000 string }{
		{"keepalived", "/share/keepalived.conf", "/share/keepalived-1000.conf"},
		{"leasehold", "/share/leasehold.yaml", "/share/leasehold-1000.yaml"},
	}
	argv := func(name, conf string) []string {
		if name == "keepalived" {
			return []string{keepalivedBin, "-C", "-n", "-l", "-f", conf}
		}
		return []string{"/usr/local/bin/leasehold", "run", "-c", conf}
	}
	for _, dir := range directors {
		name := dir.name
		fig := &checkFigures{}
		checks[name] = fig
		p := startDirector(ctx, t, d, share, name, argv(name, dir.conf1), 2)
		time.Sleep(2 * time.Second)
		for i := range runs {
			if err := r.Signal(ctx, httpd, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			stopped := time.Now()
			fig.detect = append(fig.detect, waitTable(ctx, t, d, stopped, dr.rs2, false))
			time.Sleep(rand.N(time.Second))
			if httpd, err = r.Spawn(ctx, rs2, "/dev/null"); err != nil {
				t.Fatal(err)
			}
			started := time.Now()
			fig.recover = append(fig.recover, waitTable(ctx, t, d, started, dr.rs2, true))
			t.Logf("%s run %d: failed real server out of the table after %v, back %v after its restart", name, i+1,
				fig.detect[i].Round(time.Millisecond), fig.recover[i].Round(time.Millisecond))
			time.Sleep(time.Second + rand.N(time.Second))
		}
		stopDirector(ctx, t, d, name, p)

		p = startDirector(ctx, t, d, share, name, argv(name, dir.conf1000), n)
		cpu[name] = measureCPU(ctx, t, d, r, share, name)
		stopDirector(ctx, t, d, name, p)
	}
}

// startDirector starts a director daemon in d and waits until the
// kernel's table has want real servers.
func startDirector(ctx context.Context, t *testing.T, d *vm.VM, share, name string, argv []string, want int) vm.Proc {
	t.Helper()
	log := name + "-" + strconv.Itoa(want) + ".log"
	p, err := d.Spawn(ctx, argv, "/share/"+log)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		out, _, _ := d.Exec(ctx, "ipvsadm -Ln | grep -c Route || true", time.Minute)
		if strings.TrimSpace(out) == strconv.Itoa(want) {
			return p
		}
		if time.Since(start) > 2*time.Minute {
			b, _ := os.ReadFile(filepath.Join(share, log))
			t.Fatalf("%s: %d real servers not in the table within 2 min; log:\n%s", name, want, lastLines(string(b), 30))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// stopDirector ends a director daemon (SIGTERM) and clears the table.
func stopDirector(ctx context.Context, t *testing.T, d *vm.VM, name string, p vm.Proc) {
	t.Helper()
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
		time.Sleep(300 * time.Millisecond)
	}
	if out, rc, err := d.Exec(ctx, "ipvsadm -C", time.Minute); err != nil || rc != 0 {
		t.Fatalf("ipvsadm -C: rc %d %v\n%s", rc, err, out)
	}
}

// waitTable polls the kernel's table through the VM's agent until real
// server rs is in it (present) or not, and returns the time since from.
// Its resolution is one agent round trip and ipvsadm run (tens of ms).
func waitTable(ctx context.Context, t *testing.T, d *vm.VM, from time.Time, rs string, present bool) time.Duration {
	t.Helper()
	for {
		out, rc, err := d.Exec(ctx, "ipvsadm -Ln -t 10.66.0.100:80", 20*time.Second)
		if err != nil || rc != 0 {
			t.Fatalf("ipvsadm: rc %d %v\n%s", rc, err, out)
		}
		if strings.Contains(out, rs+":80") == present {
			return time.Since(from)
		}
		if time.Since(from) > time.Minute {
			t.Fatalf("%s not %s the table within 1 min:\n%s", rs, map[bool]string{true: "back in", false: "out of"}[present], out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// keepalivedPairFailover runs a keepalived director pair (keepalivedPairConf)
// in front of the real server and fails the MASTER's keepalived as fault
// says: kill9 (every keepalived process stopped, then killed: nothing
// runs its exit path, as in seed 004), freeze (every process stopped) or
// isolate (its link cut). Nothing is restored within the observation.
func keepalivedPairFailover(t *testing.T, img image.Image, fault string) failoverFigures {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	mcast := vm.NewMcastGroup()
	share := t.TempDir()
	for i := range 2 {
		if err := os.WriteFile(filepath.Join(share, fmt.Sprintf("keepalived-n%d.conf", i+1)), []byte(keepalivedPairConf(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	vms := make([]*vm.VM, 3)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			vms[i] = startVM(ctx, t, vm.Config{Name: fmt.Sprintf("n%d", i+1), Kernel: img.Kernel, Initrd: img.Initrd, Share: share,
				Append: fmt.Sprintf("lh.ip0=10.66.0.%d/24 lh.modules=%s", i+1, ipvsModules),
				NICs:   []vm.NIC{{ID: "l2", MAC: fmt.Sprintf("52:54:00:66:00:%02d", i+1), Mcast: mcast}}})
		})
	}
	wg.Go(func() {
		vms[2] = startVM(ctx, t, vm.Config{Name: "rs", Kernel: img.Kernel, Initrd: img.Initrd, Append: dr.rsAppend,
			NICs: []vm.NIC{{ID: "l2", MAC: rsMAC, Mcast: mcast}}})
	})
	wg.Wait()
	if slices.Contains(vms, nil) {
		t.FailNow()
	}
	n1, n2, r := vms[0], vms[1], vms[2]
	if out, rc, err := r.Exec(ctx, dr.rsSetup+"httpd -p "+dr.rs2+":80 -h /var/www\n", 30*time.Second); err != nil || rc != 0 {
		t.Fatalf("real server setup: rc %d %v\n%s", rc, err, out)
	}
	for i, v := range []*vm.VM{n1, n2} {
		conf := fmt.Sprintf("/share/keepalived-n%d.conf", i+1)
		if _, err := v.Spawn(ctx, []string{keepalivedBin, "-n", "-l", "-D", "-f", conf}, fmt.Sprintf("/share/keepalived-n%d.log", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i := range 2 {
				b, _ := os.ReadFile(filepath.Join(share, fmt.Sprintf("keepalived-n%d.log", i+1)))
				t.Logf("n%d's keepalived log:\n%s", i+1, lastLines(string(b), 40))
			}
		}
	})
	// n1 holds the VIP; both have the table with both real servers.
	for start := time.Now(); ; {
		a, _, _ := n1.Exec(ctx, "ip -4 addr show dev eth0 | grep -c 10.66.0.100; ipvsadm -Ln | grep -c Route", 20*time.Second)
		b, _, _ := n2.Exec(ctx, "ipvsadm -Ln | grep -c Route", 20*time.Second)
		if strings.Fields(a) != nil && strings.Join(strings.Fields(a), " ") == "1 2" && strings.TrimSpace(b) == "2" {
			break
		}
		if time.Since(start) > 2*time.Minute {
			t.Fatalf("keepalived pair not directing within 2 min: n1 %q, n2 %q", a, b)
		}
		time.Sleep(300 * time.Millisecond)
	}
	c := startClient(ctx, t, mcast, pairNames, 500*time.Millisecond)
	defer c.stop()
	time.Sleep(3 * time.Second)
	var script string
	switch fault {
	case "kill9":
		script = "kill -STOP $(pidof keepalived); kill -KILL $(pidof keepalived)"
	case "freeze":
		script = "kill -STOP $(pidof keepalived)"
	}
	if script != "" {
		if out, rc, err := n1.Exec(ctx, script, 20*time.Second); err != nil || rc != 0 {
			t.Fatalf("%s: rc %d %v\n%s", script, rc, err, out)
		}
	} else if err := n1.SetLink(ctx, "l2", false); err != nil {
		t.Fatal(err)
	}
	faultAt := time.Now()
	time.Sleep(observeFailover)
	c.stop()
	fig := c.figures(faultAt, "n2")
	t.Logf("keepalived %s: n2 answered ARP for the VIP %v after the fault (%v), longest client outage %v, two directors answering %v (open %v); %d answered before, %d after, %d failed",
		fault, fig.takeover.Round(time.Millisecond), fig.tookOver, fig.outage.Round(time.Millisecond), fig.dual, fig.dualOpen, fig.before, fig.after, fig.failed)
	return fig
}

// benchTables renders the bench's figures as markdown.
func benchTables(runs int, checks map[string]*checkFigures, cpu map[string]cpuFigures, fo map[string]map[string][]failoverFigures, faults []pairFault, load []string) string {
	var b strings.Builder
	b.WriteString("BENCH-LVS-BEGIN\n")
	fmt.Fprintf(&b, "Host load average (1 min) at the start and the end of the run: %s (2 cores; every VM is a qemu TCG process).\n\n", strings.Join(load, ", "))
	b.WriteString("Both directors in the same qemu/TCG VMs (Debian's kernel, IPVS), the same virtual server: 10.66.0.100:80, rr, DR, two real servers, delay_loop 1 s, TCP_CHECK connect_timeout 1 s, retry 1, delay_before_retry 1 s. Times are host-side: the kernel's table polled with ipvsadm through the VM's agent (resolution tens of ms), the client on the host's end of the VMs' segment (a SYN every 50 ms, an ARP probe every 100 ms).\n\n")
	fmt.Fprintf(&b, "**Real-server failure detection and recovery** (%d runs each; the real server's httpd killed at a random phase of the checks; detection = kill → out of the kernel's table, recovery = restart → back in it)\n\n", runs)
	b.WriteString("| director | detection median | detection max | recovery median | recovery max |\n|---|---|---|---|---|\n")
	for _, name := range []string{"leasehold", "keepalived"} {
		f := checks[name]
		if f == nil || len(f.detect) == 0 {
			fmt.Fprintf(&b, "| %s | not measured | | | |\n", name)
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", name, fmtDur(median(f.detect)), fmtDur(slices.Max(f.detect)),
			fmtDur(median(f.recover)), fmtDur(slices.Max(f.recover)))
	}
	if l, k := checks["leasehold"], checks["keepalived"]; l != nil && k != nil && len(l.detect) > 0 && len(k.detect) > 0 {
		fmt.Fprintf(&b, "\nTarget detection ≤ keepalived's with the same settings (medians): **%s** (%s vs %s).\n",
			metMissed(median(l.detect) <= median(k.detect)), fmtDur(median(l.detect)), fmtDur(median(k.detect)))
	}
	b.WriteString("\n**Director failover** (a director pair in front of the real server; leasehold: the VM lab's pair, etcd lease with TTL 3 s, kernel fence, softdog, lvs_mode owner; keepalived: the same VRRP settings — VRRPv3, advert_int 0.1 s, priority 120/100 — and its table on both directors; the active director's daemon killed with -9 (keepalived: every process, seed 004), frozen with SIGSTOP, or its link cut; watched 8 s after the fault, nothing restored)\n\n")
	b.WriteString("| director | fault | other director answers ARP | client outage | two directors answering ARP |\n|---|---|---|---|---|\n")
	for _, name := range []string{"leasehold", "keepalived"} {
		for _, f := range faults {
			figs := fo[name][f.name]
			if len(figs) == 0 {
				fmt.Fprintf(&b, "| %s | %s | not measured | | |\n", name, f.name)
				continue
			}
			var takeover, outage, dual []string
			for _, x := range figs {
				if x.tookOver {
					takeover = append(takeover, fmtDur(x.takeover))
				} else {
					takeover = append(takeover, "never")
				}
				outage = append(outage, fmtDur(x.outage))
				d := fmtDur(x.dual)
				if x.dualOpen {
					d = "≥ " + d + " (still at the end)"
				}
				dual = append(dual, d)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", name, f.name, strings.Join(takeover, ", "), strings.Join(outage, ", "), strings.Join(dual, ", "))
		}
	}
	b.WriteString("\nThe client's outage is 0 where the old director's kernel keeps answering for the VIP and forwarding to the real server: keepalived's after kill -9 and SIGSTOP, with two directors answering ARP at once (seed 004's split brain). leasehold's old director is reset by its watchdog or has given up the VIP (isolated) before the other takes the lease.\n")
	b.WriteString("\n**Checking cost: 1,000 TCP-checked real servers at delay_loop 1 s** (one virtual server, every check a TCP connect to one accept loop on the real-server VM; CPU = user+system of all the daemon's processes over 20 s, from /proc/PID/stat; checks counted by the real server's kernel, Tcp PassiveOpens)\n\n")
	b.WriteString("| director | checks/s | CPU per check | CPU (% of the guest's vCPU) | real servers in the table at the end |\n|---|---|---|---|---|\n")
	for _, name := range []string{"leasehold", "keepalived"} {
		c, ok := cpu[name]
		if !ok {
			fmt.Fprintf(&b, "| %s | not measured | | | |\n", name)
			continue
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.0f µs | %.1f %% | %s |\n", name, c.checksPerSec, c.cpuPerCheckUS, c.vcpuPct, c.inTable)
	}
	if l, k := cpu["leasehold"], cpu["keepalived"]; l.checksPerSec > 0 && k.checksPerSec > 0 {
		fmt.Fprintf(&b, "\nTarget CPU per check ≤ keepalived's: **%s** (%.0f vs %.0f µs, ratio %.2f). Under TCG both are slowed alike; the ratio is the figure.\n",
			metMissed(l.cpuPerCheckUS <= k.cpuPerCheckUS), l.cpuPerCheckUS, k.cpuPerCheckUS, l.cpuPerCheckUS/k.cpuPerCheckUS)
	}
	b.WriteString("BENCH-LVS-END")
	return b.String()
}

func metMissed(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtDur(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}
