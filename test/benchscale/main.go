// Command benchscale measures the CPU and memory of one leasehold process
// running N VRRP instances as master (VRRPv3, advert_int 0.1 s) against
// keepalived with the same N instances, in the same namespace set-up, and
// records the figures in docs/benchmarks.md. Needs root.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/leasehold/leasehold/lab/procstat"
	"github.com/leasehold/leasehold/test/benchdoc"
)

func main() {
	bin := flag.String("bin", "bin/leasehold", "leasehold binary")
	n := flag.Int("instances", 200, "VRRP instances (VRIDs 1..N)")
	dur := flag.Duration("duration", 60*time.Second, "measurement window")
	out := flag.String("out", "docs/benchmarks.md", "markdown file to record into (\"\" = print only)")
	flag.Parse()
	if *n < 1 || *n > 255 {
		fail("instances must be 1-255")
	}
	abs, err := filepath.Abs(*bin)
	if err != nil {
		fail(err.Error())
	}
	dir, err := os.MkdirTemp("", "leasehold-benchscale-")
	if err != nil {
		fail(err.Error())
	}
	defer os.RemoveAll(dir)
	ns := fmt.Sprintf("lhbs%d", os.Getpid()%100000)
	a, b := ns+"a", ns+"b"
	created = []string{a, b}
	defer cleanup()
	for _, c := range [][]string{
		{"netns", "add", a}, {"netns", "add", b},
		{"link", "add", "bsa" + ns[4:], "type", "veth", "peer", "name", "bsb" + ns[4:]},
		{"link", "set", "bsa" + ns[4:], "netns", a, "name", "eth0"},
		{"link", "set", "bsb" + ns[4:], "netns", b, "name", "eth0"},
		{"-n", a, "addr", "add", "10.98.0.1/24", "dev", "eth0"},
		{"-n", b, "addr", "add", "10.98.0.2/24", "dev", "eth0"},
		{"-n", a, "link", "set", "eth0", "up"}, {"-n", b, "link", "set", "eth0", "up"},
		{"-n", a, "link", "set", "lo", "up"},
	} {
		if o, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			fail(fmt.Sprintf("ip %v: %v: %s", c, err, o))
		}
	}
	lh := measure("leasehold", a, b, *dur, *n, func() *exec.Cmd {
		conf := filepath.Join(dir, "leasehold.yaml")
		os.WriteFile(conf, []byte(leaseholdConf(*n, dir)), 0o644)
		return exec.Command("ip", "netns", "exec", a, abs, "run", "-c", conf, "-log-level", "warn")
	})
	ka := measure("keepalived", a, b, *dur, *n, func() *exec.Cmd {
		conf := filepath.Join(dir, "keepalived.conf")
		os.WriteFile(conf, []byte(keepalivedConf(*n)), 0o644)
		return exec.Command("ip", "netns", "exec", a, "keepalived", "-n", "-P", "-f", conf,
			"-p", filepath.Join(dir, "ka.pid"), "-r", filepath.Join(dir, "kav.pid"))
	})
	table := fmt.Sprintf(`%d VRRP instances (VRIDs 1–%d), VRRPv3, advert_int 0.1 s, all master, one VIP each, on a veth in a network namespace; %v window after a 5 s warm-up. CPU = user+system of the whole process tree. keepalived %s.

| | CPU seconds | CPU %% of one core | RSS MiB | adverts/s seen by the peer | masters |
|---|---|---|---|---|---|
| leasehold | %.2f | %.1f | %.1f | %.0f | %d |
| keepalived | %.2f | %.1f | %.1f | %.0f | %d |
| ratio leasehold/keepalived | %.2f | | %.2f | | |

leasehold's RSS: %.1f MiB anonymous (Go heap and goroutine stacks), %.1f MiB file-backed (pages of the %.0f MiB binary). Targets (DESIGN.md, 200 groups): CPU ≤ keepalived's: **%s**; RSS ≤ keepalived's: **%s**.
`, *n, *n, *dur, keepalivedVersion(),
		lh.cpu, 100*lh.cpu/dur.Seconds(), lh.rss, lh.pps, lh.masters,
		ka.cpu, 100*ka.cpu/dur.Seconds(), ka.rss, ka.pps, ka.masters,
		lh.cpu/ka.cpu, lh.rss/ka.rss,
		lh.anon, lh.file, binMiB(abs), verdict(lh.cpu <= ka.cpu, "%.2f vs %.2f CPU-s", lh.cpu, ka.cpu),
		verdict(lh.rss <= ka.rss, "%.1f vs %.1f MiB", lh.rss, ka.rss))
	fmt.Print(table)
	if *out != "" {
		if err := benchdoc.Record(*out, "scale", fmt.Sprintf("%d VRRP instances: CPU and memory against keepalived (make bench-scale)", *n), table); err != nil {
			fail(err.Error())
		}
		fmt.Println("recorded in", *out)
	}
}

type result struct {
	cpu, rss, pps float64
	anon, file    float64 // of the main process, MiB
	masters       int
}

// verdict says met or missed, with the figures.
func verdict(met bool, format string, args ...any) string {
	if met {
		return "met (" + fmt.Sprintf(format, args...) + ")"
	}
	return "missed (" + fmt.Sprintf(format, args...) + ")"
}

// binMiB is the size of a file in MiB.
func binMiB(path string) float64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return float64(st.Size()) / (1 << 20)
}

// rssParts reads RssAnon and RssFile (MiB) of one process.
func rssParts(pid int) (anon, file float64) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "RssAnon:":
			anon = kb / 1024
		case "RssFile:":
			file = kb / 1024
		}
	}
	return anon, file
}

func measure(name, a, b string, dur time.Duration, n int, start func() *exec.Cmd) result {
	cmd := start()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		fail(fmt.Sprintf("%s: %v", name, err))
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	time.Sleep(5 * time.Second)
	pid := cmd.Process.Pid
	cpu0, _ := treeCPU(pid)
	rx0 := rxPackets(b)
	t0 := time.Now()
	time.Sleep(dur)
	cpu1, rss := treeCPU(pid)
	rx1 := rxPackets(b)
	el := time.Since(t0).Seconds()
	r := result{cpu: cpu1 - cpu0, rss: rss, pps: float64(rx1-rx0) / el, masters: vipCount(a)}
	r.anon, r.file = rssParts(pid) // ip netns exec execs: pid is the program
	fmt.Fprintf(os.Stderr, "%s: %.2f CPU-s, %.1f MiB RSS, %.0f adverts/s, %d VIPs up\n", name, r.cpu, r.rss, r.pps, r.masters)
	if r.masters != n {
		fmt.Fprintf(os.Stderr, "warning: %s has %d of %d VIPs up\n", name, r.masters, n)
	}
	return r
}

// treeCPU sums utime+stime (seconds) and VmRSS (MiB) of pid and its descendants.
func treeCPU(root int) (cpu, rssMiB float64) {
	tick := 100.0 // USER_HZ on Linux
	ents, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	stat := map[int]procstat.Stat{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := procstat.Read(pid)
		if err != nil {
			continue
		}
		parent[pid], stat[pid] = st.PPID, st
	}
	in := func(pid int) bool {
		for p := pid; p > 1; p = parent[p] {
			if p == root {
				return true
			}
		}
		return false
	}
	for pid, f := range stat {
		if !in(pid) {
			continue
		}
		cpu += float64(f.UTime+f.STime) / tick
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
					kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
					rssMiB += kb / 1024
				}
			}
		}
	}
	return cpu, rssMiB
}

func rxPackets(ns string) uint64 {
	o, err := exec.Command("ip", "netns", "exec", ns, "cat", "/sys/class/net/eth0/statistics/rx_packets").Output()
	if err != nil {
		fail(err.Error())
	}
	v, _ := strconv.ParseUint(strings.TrimSpace(string(o)), 10, 64)
	return v
}

func vipCount(ns string) int {
	o, _ := exec.Command("ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "eth0").Output()
	return strings.Count(string(o), "10.97.")
}

func vip(i int) string { return fmt.Sprintf("10.97.%d.%d", i/250, i%250+1) }

func leaseholdConf(n int, dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node: {name: bench}\nquorum: {backend: none}\nstatus: {listen: \"unix:%s/lh.sock\"}\nstate_dir: %s/state\nvrrp_instance:\n", dir, dir)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "  VI_%d:\n    state: MASTER\n    interface: eth0\n    virtual_router_id: %d\n    priority: 150\n    version: 3\n    advert_int: 0.1\n    garp_master_delay: 0\n    virtual_ipaddress: [%s/32]\n", i, i, vip(i))
	}
	return b.String()
}

func keepalivedConf(n int) string {
	var b strings.Builder
	b.WriteString("global_defs {\n  router_id bench\n  vrrp_garp_master_delay 0\n}\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "vrrp_instance VI_%d {\n  state MASTER\n  interface eth0\n  virtual_router_id %d\n  priority 150\n  version 3\n  advert_int 0.1\n  virtual_ipaddress {\n    %s/32\n  }\n}\n", i, i, vip(i))
	}
	return b.String()
}

func keepalivedVersion() string {
	o, _ := exec.Command("keepalived", "--version").CombinedOutput()
	l, _, _ := strings.Cut(string(o), "\n")
	return strings.TrimSpace(l)
}

// created lists the namespaces to remove, also when fail exits early.
var created []string

func cleanup() {
	for _, ns := range created {
		exec.Command("ip", "netns", "del", ns).Run()
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "benchscale:", msg)
	cleanup()
	os.Exit(1)
}
