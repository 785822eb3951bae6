package lvsvm_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/vm"
)

// manyReals are the side-by-side's real servers: n addresses outside any
// subnet of the director, each checked by a TCP connect to one listener
// (connect_ip, connect_port 81) on the real-server VM.
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
		fmt.Fprintf(&b, "  real_server %s 80 {\n    weight 1\n    TCP_CHECK {\n      connect_ip 10.66.0.11\n      connect_port 81\n      connect_timeout 1\n    }\n  }\n", ip)
	}
	b.WriteString("}\n")
	return b.String()
}

// leaseholdConf is the same virtual server in leasehold's configuration.
func leaseholdConf(n int) string {
	var b strings.Builder
	b.WriteString(`node: {name: d1}
quorum: {backend: none}
status: {pprof: true}
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
		fmt.Fprintf(&b, "      - {ip: %s, TCP_CHECK: {connect_ip: 10.66.0.11, connect_port: 81, connect_timeout: 1}}\n", ip)
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

// measureCPU measures the director daemon name running in d with the
// 1,000 real servers in its table: CPU of all its processes and the
// checks the real server r accepted over 20 s, after 5 s for the checks'
// warmup to spread them.
func measureCPU(ctx context.Context, t *testing.T, d, r *vm.VM, share, name string) cpuFigures {
	t.Helper()
	time.Sleep(5 * time.Second)
	c0, _ := strconv.Atoi(mustExec(ctx, t, d, cpuScript(name)))
	o0, _ := strconv.Atoi(mustExec(ctx, t, r, passiveOpens))
	t0 := time.Now()
	time.Sleep(20 * time.Second)
	c1, _ := strconv.Atoi(mustExec(ctx, t, d, cpuScript(name)))
	o1, _ := strconv.Atoi(mustExec(ctx, t, r, passiveOpens))
	wall := time.Since(t0)
	cpu := time.Duration(c1-c0) * 10 * time.Millisecond
	f := cpuFigures{
		checksPerSec:  float64(o1-o0) / wall.Seconds(),
		cpuPerCheckUS: float64(cpu.Microseconds()) / float64(max(o1-o0, 1)),
		vcpuPct:       100 * cpu.Seconds() / wall.Seconds(),
		inTable:       mustExec(ctx, t, d, "ipvsadm -Ln | grep -c Route || true"),
	}
	if out := os.Getenv("LVS_BENCH_PPROF"); out != "" && name == "leasehold" {
		// A CPU profile of the daemon over 10 s after the measurement
		// (not during it: profiling costs CPU too), written to the share
		// by a helper in the guest (the agent's replies are text).
		mustExec(ctx, t, d, "LVS_FETCH_UNIX="+statusSocket+" LVS_FETCH_PATH='/debug/pprof/profile?seconds=10' LVS_FETCH_OUT=/share/leasehold.pprof /usr/local/bin/lvs.test -test.run '^TestHelperFetchUnix$'")
		if b, err := os.ReadFile(filepath.Join(share, "leasehold.pprof")); err != nil {
			t.Error(err)
		} else if err := os.WriteFile(out, b, 0o644); err != nil {
			t.Error(err)
		}
	}
	t.Logf("%s: %.0f checks/s (connections the real server accepted); CPU %v in %v = %.1f%% of the guest's vCPU, %.0f µs a check; %s in the table at the end",
		name, f.checksPerSec, cpu, wall.Round(time.Millisecond), f.vcpuPct, f.cpuPerCheckUS, f.inTable)
	return f
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
