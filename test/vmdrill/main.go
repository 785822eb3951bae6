// Command vmdrill is `make bench-vm`: it boots the VM lab (lab/vmlab),
// runs every drill the lab offers RUNS times, prints the table, writes the
// HTML report and records the figures — boot times, suite time, the
// watchdog's reset against the takeover, takeover and outage times — in
// docs/benchmarks.md. Exit status 1 if any drill failed.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/leasehold/leasehold/lab/drill"
	"github.com/leasehold/leasehold/lab/vmlab"
	"github.com/leasehold/leasehold/test/benchdoc"
)

func main() {
	guest := flag.String("guest", "bin/vm", "directory of the guests' static binaries (leasehold, leasehold-lab-guest)")
	etcd := flag.String("etcd", "bin/leasehold-lab-etcd", "the lab's etcd server")
	runs := flag.Int("runs", 1, "runs per scenario")
	htmlOut := flag.String("html", "", "write the HTML report here")
	record := flag.String("record", "", "record the figures in this markdown file (docs/benchmarks.md)")
	keep := flag.Bool("keep", false, "keep the lab's directory (logs, consoles)")
	only := flag.String("scenarios", "", "comma-separated scenarios (default: every one the lab offers)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *guest, *etcd, *only, *runs, *htmlOut, *record, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "vmdrill:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, guest, etcd, only string, runs int, htmlOut, record string, keep bool) error {
	say := func(format string, args ...any) {
		fmt.Printf("%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	t0 := time.Now()
	l, err := vmlab.Up(ctx, vmlab.Options{Binary: filepath.Join(guest, "leasehold"), Agent: filepath.Join(guest, "leasehold-lab-guest"),
		Etcd: etcd, Keep: keep, Log: log})
	if err != nil {
		return err
	}
	up := time.Since(t0)
	defer func() {
		if err := l.Down(); err != nil {
			say("lab down: %v", err)
		}
		if keep {
			say("lab directory kept: %s", l.Dir())
		}
	}()
	say("%s up in %v (image %s, kernel %s)", l.Name(), up.Round(time.Millisecond), l.Image().Hash[:12], l.Image().KernelVersion)
	host, _ := os.Hostname()
	rep := drill.Report{Target: l.Name(), Backend: "etcd", Host: host, Created: time.Now().UTC()}
	tDrills := time.Now()
	scenarios := drill.ScenariosFor(l)
	if only != "" {
		scenarios = strings.Split(only, ",")
	}
	for _, sc := range scenarios {
		for i := 1; i <= max(runs, 1) && ctx.Err() == nil; i++ {
			t1 := time.Now()
			r, err := drill.Run(ctx, l, drill.Scenario{Name: sc})
			if err != nil {
				say("drill %-16s run %d ERROR %v", sc, i, err)
				r = drill.Result{Scenario: sc, Verdict: "ERROR", Reasons: []string{err.Error()}}
			}
			r.Run, r.Target = i, rep.Target
			rep.Results = append(rep.Results, r)
			wd := ""
			if r.WatchdogResetUS > 0 {
				wd = fmt.Sprintf(", watchdog reset +%v, takeover +%v", us(r.WatchdogResetUS), us(r.TakeoverUS))
			}
			say("drill %-16s run %d %s  dual ARP rounds %d, client outage %v%s (%v)", sc, i, r.Verdict, r.DualARPRounds,
				us(r.OutageUS), wd, time.Since(t1).Round(100*time.Millisecond))
		}
	}
	suite := time.Since(tDrills)
	rep.WriteTable(os.Stdout, false)
	if htmlOut != "" {
		f, err := os.Create(htmlOut)
		if err != nil {
			return err
		}
		werr := drill.WriteHTML(f, rep)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return werr
		}
		say("HTML report: %s", htmlOut)
	}
	if record != "" {
		if err := benchdoc.Record(record, "vm", "VM lab: drills on real guest kernels (make bench-vm)", figures(l, rep, up, suite)); err != nil {
			return err
		}
		say("recorded in %s", record)
	}
	if !rep.Pass() {
		return fmt.Errorf("%d of %d drills failed", failed(rep), len(rep.Results))
	}
	return nil
}

func us(v int64) time.Duration { return (time.Duration(v) * time.Microsecond).Round(time.Millisecond) }

func failed(rep drill.Report) int {
	n := 0
	for _, r := range rep.Results {
		if !r.Pass {
			n++
		}
	}
	return n
}

// figures is the benchmarks.md section.
func figures(l *vmlab.Lab, rep drill.Report, up, suite time.Duration) string {
	var b strings.Builder
	var boots []time.Duration
	for _, bs := range l.BootTimes() {
		boots = append(boots, bs...)
	}
	slices.Sort(boots)
	fmt.Fprintf(&b, "Lab: %s; guest kernel %s; TCG (no KVM), 1 vCPU and 256 MiB per VM; quorum: etcd on the host's loopback "+
		"through each VM's own user-network NIC; lease TTL 3 s, softdog armed by the daemon (watchdog: required, 2 s).\n\n", l.Name(), l.Image().KernelVersion)
	fmt.Fprintf(&b, "- lab up (image from cache, etcd, VMs booted in parallel, daemons steady): %v\n", up.Round(time.Millisecond))
	if len(boots) > 0 {
		fmt.Fprintf(&b, "- VM boot, qemu start to agent answering: %d boots, min %v, median %v, max %v\n", len(boots),
			boots[0].Round(time.Millisecond), boots[len(boots)/2].Round(time.Millisecond), boots[len(boots)-1].Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "- drills: %d runs in %v (%d failed)\n\n", len(rep.Results), suite.Round(time.Second), failed(rep))
	fmt.Fprintf(&b, "| drill | run | verdict | dual-ARP rounds | client outage | new owner serving after | watchdog reset after | takeover (status) after |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range rep.Results {
		dash := func(v int64) string {
			if v <= 0 {
				return "-"
			}
			return us(v).String()
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %d | %v | %s | %s | %s |\n", r.Scenario, r.Run, r.Verdict, r.DualARPRounds, us(r.OutageUS),
			dash(r.TimeToNewOwnerUS), dash(r.WatchdogResetUS), dash(r.TakeoverUS))
	}
	b.WriteString(watchdogNote)
	return b.String()
}

// watchdogNote explains the watchdog columns (also the arithmetic they
// check).
const watchdogNote = `
Times are from the fault. The watchdog must reset the old owner's VM before another node takes over
(kill9, freeze): the reset is qemu ending (-no-reboot), the takeover the first status poll (100 ms)
showing another owner. The arithmetic: the daemon feeds softdog on every renewal (every TTL/8 = 375 ms)
with a 2 s timeout (TTL − drift − margin − demotion budget, whole seconds), so the VM resets at most
2 s after the last renewal; the lease expires at etcd no earlier than 3 s after it, and the peer then
needs its acquisition round trip: reset before takeover with about a second to spare.
`
