// Command drbdbench is `make bench-drbd`: DRBD failover in the VM lab
// (two VMs, real DRBD 8.4, protocol C), leasehold against keepalived 2.2.7
// set up as seed 002 sets it up, in one run. For each system it boots the
// lab (lab/vmlab, Options.DRBD, Options.Keepalived for the baseline) and
// repeats kill -9 and freeze (SIGSTOP) of the daemon on the DRBD Primary,
// alternating, each measured by vmlab.Lab.Failover: the fault to the new
// Primary's first acknowledged write, two-Primary samples and time (both
// nodes sampled over 10×/s), split brains DRBD reported when the nodes
// reconnected, acknowledged records lost. It prints a table per run and a
// summary, and records them in docs/benchmarks.md.
//
// A time budget (-budget) bounds the whole run: each system gets its
// share, and a cell that cannot start another run in its share stops with
// the runs it has; the summary says how many each cell got.
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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/leasehold/leasehold/lab/vmlab"
	"github.com/leasehold/leasehold/test/benchdoc"
)

type options struct {
	guest, etcd, record string
	runs, partitionRuns int
	keepalivedRuns      int
	budget, window      time.Duration
	systems, faults     []string
	keep                bool
}

func main() {
	var o options
	var systems, faults string
	flag.StringVar(&o.guest, "guest", "bin/vm", "directory of the guests' static binaries (leasehold, leasehold-lab-guest)")
	flag.StringVar(&o.etcd, "etcd", "bin/leasehold-lab-etcd", "the lab's etcd server")
	flag.IntVar(&o.runs, "runs", 20, "runs per system and fault")
	flag.IntVar(&o.keepalivedRuns, "keepalived-runs", 5, "runs per fault for keepalived (its outcome does not vary: it never took over after kill9 or freeze)")
	flag.IntVar(&o.partitionRuns, "partition-runs", 3, "runs of seed 002's partition per system (in the first rounds; 0: none)")
	flag.DurationVar(&o.budget, "budget", 60*time.Minute, "time for the whole benchmark (each system gets a share in proportion to its runs)")
	flag.DurationVar(&o.window, "window", 20*time.Second, "how long to wait for another node to accept writes after the fault")
	flag.StringVar(&systems, "systems", "leasehold,keepalived", "systems, in order")
	flag.StringVar(&faults, "faults", vmlab.FailoverKill9+","+vmlab.FailoverFreeze, "faults, alternated")
	flag.StringVar(&o.record, "record", "", "record the figures in this markdown file (docs/benchmarks.md)")
	flag.BoolVar(&o.keep, "keep", false, "keep the labs' directories (logs, consoles)")
	flag.Parse()
	o.systems, o.faults = strings.Split(systems, ","), strings.Split(faults, ",")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "drbdbench:", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) {
	fmt.Printf("%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// cell is one system and fault: its runs and errors.
type cell struct {
	system, fault string
	runs          []vmlab.FailoverResult
	errors        []string
}

func run(ctx context.Context, o options) error {
	t0 := time.Now()
	end := t0.Add(o.budget)
	var cells []*cell
	var labInfo []string
	for i, sys := range o.systems {
		if sys != "leasehold" && sys != "keepalived" {
			return fmt.Errorf("system %q: want leasehold or keepalived", sys)
		}
		mine, rest := o.runsOf(sys), 0
		for _, other := range o.systems[i:] {
			rest += o.runsOf(other)
		}
		share := time.Until(end) * time.Duration(mine) / time.Duration(max(rest, 1))
		cs, info, err := bench(ctx, o, sys, time.Now().Add(share))
		cells = append(cells, cs...)
		if info != "" {
			labInfo = append(labInfo, info)
		}
		if err != nil {
			say("%s: %v", sys, err)
			labInfo = append(labInfo, fmt.Sprintf("%s: lab error: %v", sys, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	body := summary(o, cells, labInfo, time.Since(t0))
	fmt.Println()
	fmt.Println(body)
	if o.record != "" {
		if err := benchdoc.Record(o.record, "drbd", "DRBD failover: leasehold against keepalived (make bench-drbd)", body); err != nil {
			return err
		}
		say("recorded in %s", o.record)
	}
	for _, c := range cells {
		if c.system == "leasehold" && (len(c.errors) > 0 || len(c.runs) == 0) {
			return fmt.Errorf("leasehold %s: %d runs, %d errors", c.fault, len(c.runs), len(c.errors))
		}
	}
	return nil
}

// runsOf is the number of runs sys is asked for (every fault).
func (o options) runsOf(sys string) int {
	n := o.runs
	if sys == "keepalived" {
		n = o.keepalivedRuns
	}
	return n*len(o.faults) + o.partitionRuns
}

// loads are the host's 1-minute load averages read before each run.
var loads []float64

// bench boots sys's lab and runs its cells until runs each or deadline.
func bench(ctx context.Context, o options, sys string, deadline time.Time) ([]*cell, string, error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	t0 := time.Now()
	l, err := vmlab.Up(ctx, vmlab.Options{Binary: filepath.Join(o.guest, "leasehold"), Agent: filepath.Join(o.guest, "leasehold-lab-guest"),
		Etcd: o.etcd, Keep: o.keep, Log: log, DRBD: true, Keepalived: sys == "keepalived"})
	if err != nil {
		return nil, "", err
	}
	defer func() {
		if err := l.Down(); err != nil {
			say("lab down: %v", err)
		}
		if o.keep {
			say("lab directory kept: %s", l.Dir())
		}
	}()
	info := fmt.Sprintf("%s: %s up in %v (kernel %s, lease TTL %v); host load average at the start %s", sys, l.Name(), time.Since(t0).Round(time.Second),
		l.Image().KernelVersion, l.TTL(), loadavg())
	say("%s", info)
	defer func() { say("%s: done, host load average %s", sys, loadavg()) }()
	var cells []*cell
	for _, f := range o.faults {
		cells = append(cells, &cell{system: sys, fault: f})
	}
	if o.partitionRuns > 0 {
		cells = append(cells, &cell{system: sys, fault: vmlab.FailoverPartition})
	}
	var longest time.Duration
	runs := o.runs
	if sys == "keepalived" {
		runs = o.keepalivedRuns
	}
	for i := 1; i <= max(runs, o.partitionRuns) && ctx.Err() == nil; i++ {
		for _, c := range cells {
			if c.fault == vmlab.FailoverPartition && i > o.partitionRuns || c.fault != vmlab.FailoverPartition && i > runs {
				continue
			}
			if time.Until(deadline) < longest {
				say("%s: budget spent after %d runs of %s", sys, len(c.runs)+len(c.errors), c.fault)
				return cells, info, nil
			}
			if f, err := strconv.ParseFloat(strings.Fields(loadavg())[0], 64); err == nil {
				loads = append(loads, f)
			}
			t1 := time.Now()
			r, err := l.Failover(ctx, c.fault, o.window)
			took := time.Since(t1)
			longest = max(longest, took)
			if err != nil {
				c.errors = append(c.errors, err.Error())
				say("%-10s %-6s run %2d ERROR %v (%v)", sys, c.fault, i, err, took.Round(time.Second))
				if len(c.errors) >= 3 {
					return cells, info, fmt.Errorf("%s %s: three errors, stopping", sys, c.fault)
				}
				continue
			}
			c.runs = append(c.runs, r)
			say("%-10s %-6s run %2d %s→%s writable after %s, reset %s, two-Primary %d samples (%v), split brain %v, lost %d of %d (%v)%s",
				sys, c.fault, i, r.From, or(r.To, "-"), dur(r.Writable), dur(r.Reset), r.TwoPrimarySample, r.TwoPrimary.Round(time.Millisecond),
				r.SplitBrain, r.Lost, r.Acked, took.Round(time.Second), note(r.Note))
		}
	}
	return cells, info, nil
}

// loadavg is the host's 1, 5 and 15 minute load averages.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func note(s string) string {
	if s == "" {
		return ""
	}
	return "  [" + s + "]"
}

func dur(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return d.Round(10 * time.Millisecond).String()
}

// summary is the benchmarks.md section (also printed).
func summary(o options, cells []*cell, labInfo []string, took time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Two VMs (TCG, 1 vCPU, 256 MiB each), DRBD 8.4 r0 protocol C on a replication link of its own, ext4 on /srv; "+
		"a writer appends fsync'd, checksummed records on whichever node /proc/drbd calls Primary (acknowledged only after sync); "+
		"both nodes' /proc/drbd sampled over 10×/s. leasehold: etcd quorum, lease TTL 4 s, softdog 2 s, fence-peer handlers. "+
		"keepalived 2.2.7 as seed 002 sets it up: VRRPv2 advert_int 1, n1 MASTER 120 / n2 BACKUP 100, notify_master "+
		"`drbdadm primary r0 && mount`, notify_backup `umount; drbdadm secondary r0`, no DRBD fencing. "+
		"Faults on the node that is Primary: kill9 = kill -9 of the daemon (keepalived: parent and VRRP child), "+
		"freeze = SIGSTOP (keepalived: SIGCONT after the %[1]v window; leasehold's node is reset by its watchdog), "+
		"partition = seed 002's split-brain scenario: the Primary's VRRP/client and replication links cut for the %[1]v window, its quorum link up, then healed "+
		"(a split brain left behind is resolved as the seed does by hand, --discard-my-data on the node that is not Primary). "+
		"Asked for %[2]d runs of kill9 and freeze (keepalived: %[6]d) and %[3]d of partition per system within %[4]v; whole benchmark %[5]v. "+
		"Host 1-minute load average before each run: %[7]s (2 cores; the two emulated guests alone keep about 2 busy).\n\n",
		o.window, o.runs, o.partitionRuns, o.budget, took.Round(time.Second), o.keepalivedRuns, loadSummary())
	for _, s := range labInfo {
		fmt.Fprintf(&b, "- %s\n", s)
	}
	b.WriteString("\n| system | fault | runs | took over | fault → writable on the peer, median / max | watchdog reset, median | two-Primary samples / time | split brains | lost / acknowledged records | errors |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range cells {
		var writable, resets []time.Duration
		var both int
		var bothT time.Duration
		sb, lost, acked := 0, 0, 0
		for _, r := range c.runs {
			if r.To != "" {
				writable = append(writable, r.Writable)
			}
			if r.Reset > 0 {
				resets = append(resets, r.Reset)
			}
			both += r.TwoPrimarySample
			bothT += r.TwoPrimary
			if r.SplitBrain {
				sb++
			}
			lost += r.Lost
			acked += r.Acked
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %s | %s | %d / %v | %d | %d / %d | %d |\n", c.system, c.fault, len(c.runs), len(writable),
			medMax(writable), median(resets), both, bothT.Round(time.Millisecond), sb, lost, acked, len(c.errors))
	}
	target := 4*time.Second + 400*time.Millisecond + 2*time.Second
	fmt.Fprintf(&b, "\nTarget for leasehold: 0 two-Primary samples, 0 split brains, 0 lost records, and fault → writable ≤ TTL + fence margin + 2 s = %v.\n", target)
	for _, c := range cells {
		for _, r := range c.runs {
			if r.Note != "" {
				fmt.Fprintf(&b, "\nWhat happened without a takeover (%s %s, first run): %s\n", c.system, c.fault, r.Note)
				break
			}
		}
		for i, e := range c.errors {
			if i == 0 {
				fmt.Fprintf(&b, "\nErrors (%s %s): %s\n", c.system, c.fault, e)
			}
		}
	}
	return b.String()
}

// loadSummary is the median and max of loads.
func loadSummary() string {
	if len(loads) == 0 {
		return "not read"
	}
	s := slices.Clone(loads)
	slices.Sort(s)
	return fmt.Sprintf("median %.1f, max %.1f", s[len(s)/2], s[len(s)-1])
}

func medMax(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("%v / %v", s[len(s)/2].Round(10*time.Millisecond), s[len(s)-1].Round(10*time.Millisecond))
}

func median(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(10 * time.Millisecond).String()
}
