// Command soakrun is `make soak`: a lab (3 nodes × 3 groups) on one
// backend, `drill soak` against it for the duration, the lab down; the
// summary as JSON. With -record it writes the summaries of earlier runs
// into docs/benchmarks.md (faults, failures, dual-ARP rounds, the memory
// series per process). Needs root.
//
//	soakrun -bin bin/leasehold -quorum raft -duration 1h -json /tmp/soak-raft.json
//	soakrun -record docs/benchmarks.md /tmp/soak-raft.json /tmp/soak-etcd.json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/leasehold/leasehold/lab/drill"
	"github.com/leasehold/leasehold/lab/labctl"
	"github.com/leasehold/leasehold/test/benchdoc"
)

// run is one soak's outcome as soakrun stores it.
type run struct {
	Quorum   string            `json:"quorum"`
	Nodes    int               `json:"nodes"`
	Groups   int               `json:"groups"`
	Duration string            `json:"duration"`
	Summary  drill.SoakSummary `json:"summary"`
	Err      string            `json:"error,omitempty"`
	Pass     bool              `json:"pass"`
	Started  time.Time         `json:"started"`
}

func main() {
	bin := flag.String("bin", "bin/leasehold", "leasehold binary")
	quorum := flag.String("quorum", "raft", "raft or etcd")
	dur := flag.Duration("duration", time.Hour, "how long to inject faults")
	seed := flag.Int64("seed", 42, "fault sequence seed")
	out := flag.String("json", "", "write the run as JSON here")
	record := flag.String("record", "", "record the JSON runs named as arguments into this markdown file, and exit")
	flag.Parse()
	if *record != "" {
		if err := recordRuns(*record, flag.Args()); err != nil {
			fmt.Fprintln(os.Stderr, "soakrun:", err)
			os.Exit(1)
		}
		return
	}
	r, err := soak(*bin, *quorum, *dur, *seed)
	if err != nil {
		r.Err = err.Error()
		fmt.Fprintln(os.Stderr, "soakrun:", err)
	}
	if *out != "" {
		b, _ := json.MarshalIndent(r, "", "  ")
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "soakrun:", err)
			os.Exit(1)
		}
	}
	if !r.Pass {
		os.Exit(1)
	}
}

func soak(bin, quorum string, dur time.Duration, seed int64) (run, error) {
	r := run{Quorum: quorum, Nodes: 3, Groups: 3, Duration: dur.String(), Started: time.Now().UTC()}
	if os.Geteuid() != 0 {
		return r, fmt.Errorf("needs root (network namespaces)")
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return r, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	l, err := labctl.Up(ctx, labctl.Options{Nodes: r.Nodes, Groups: r.Groups, Quorum: quorum, Binary: abs,
		Name: fmt.Sprintf("soak%s%d", quorum[:1], os.Getpid()%100000)}, log)
	if err != nil {
		return r, fmt.Errorf("lab up: %w", err)
	}
	defer func() {
		if err := l.Down(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "soakrun: lab down:", err)
		}
	}()
	fmt.Printf("%s  soak on lab %s (%s, %d nodes × %d groups) for %v, seed %d\n", time.Now().Format("15:04:05"), l.Name(), quorum, r.Nodes, r.Groups, dur, seed)
	sum, err := drill.Soak(ctx, l, drill.SoakOptions{Duration: dur, Seed: seed, Progress: os.Stdout})
	r.Summary = sum
	sum.Write(os.Stdout)
	r.Pass = err == nil && sum.Pass()
	return r, err
}

// recordRuns writes the runs' summaries as the "soak" section.
func recordRuns(doc string, files []string) error {
	if len(files) == 0 {
		return fmt.Errorf("-record: name the JSON runs")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Each backend: a lab of 3 nodes × 3 groups (VRRPv3 0.1 s, lease TTL 1 s), faults drawn from the soak mix "+
		"(kill9, freeze, partitions, quorum loss, graceful, link flap, preempt; seed fixed) one after another; every fault is a full "+
		"drill with the invariant checkers. Memory: %s.\n", drill.HealthRule)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var r run
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		s := r.Summary
		dual, failed, nonHolder := 0, 0, 0
		var worst int64
		for _, x := range s.Results {
			dual += x.DualARPRounds
			if !x.Pass {
				failed++
			}
			for _, n := range x.NonHolderGARPs {
				nonHolder += n
			}
			worst = max(worst, x.OutageMaxUS)
		}
		verdict := "PASS"
		if !r.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(&b, "\n**%s** (started %s, %v of faults): **%s** — %d faults, %d failed, %d dual-ARP rounds, %d GARPs from nodes without the VIP, "+
			"longest client outage %v; memory %s.\n", r.Quorum, r.Started.Format("2006-01-02 15:04 UTC"), s.Elapsed.Round(time.Second), verdict,
			len(s.Results), failed, dual, nonHolder, (time.Duration(worst) * time.Microsecond).Round(time.Millisecond), passWord(s.Health.Pass))
		if r.Err != "" {
			fmt.Fprintf(&b, "\nError: %s\n", r.Err)
		}
		if l := s.Health.Load; len(l) > 0 {
			fmt.Fprintf(&b, "\nHost load average (1 min) at the samples: median %.1f, max %.1f (%d CPUs).\n", median(l), slices.Max(l), runtime.NumCPU())
		}
		for _, x := range s.Health.Reasons {
			fmt.Fprintf(&b, "\n- %s\n", x)
		}
		fmt.Fprintf(&b, "\n| process | samples | RSS at start | RSS at ~5 min | RSS at end | end / 5 min | Go heap start → end | goroutines start → end | fds start → end |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, ser := range s.Health.Series {
			if len(ser.Samples) == 0 {
				continue
			}
			first, last := ser.Samples[0], ser.Samples[len(ser.Samples)-1]
			five := first
			for _, x := range ser.Samples {
				if x.AtS <= 330 && x.RSS > 0 {
					five = x
				}
			}
			ratio := "-"
			if five.RSS > 0 && last.RSS > 0 {
				ratio = fmt.Sprintf("%.2f", float64(last.RSS)/float64(five.RSS))
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s → %s | %d → %d | %d → %d |\n", ser.Process, len(ser.Samples),
				mib(first.RSS), mib(five.RSS), mib(last.RSS), ratio, mib(first.HeapInuse), mib(last.HeapInuse),
				first.Goroutines, last.Goroutines, first.FDs, last.FDs)
		}
	}
	if err := benchdoc.Record(doc, "soak", "Soak: an hour of faults per backend (make soak)", b.String()); err != nil {
		return err
	}
	fmt.Println("recorded soak in", doc)
	return nil
}

func passWord(ok bool) string {
	if ok {
		return "flat"
	}
	return "GREW"
}

func mib(v int64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(v)/(1<<20))
}

// median returns the median of v (v non-empty).
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
