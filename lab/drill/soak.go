package drill

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"text/tabwriter"
	"time"
)

// SoakOptions configure Soak.
type SoakOptions struct {
	Duration time.Duration
	Seed     int64
	// Progress receives one line per fault (may be nil).
	Progress io.Writer
	// HealthEvery is how often the daemons and the soak process are
	// sampled (RSS, RssAnon, Go heap, goroutines, fds), besides at the
	// start and the end; default 1 minute.
	HealthEvery time.Duration
}

// soakMix is the weighted mix of faults a soak draws from, with the range
// of fault durations.
var soakMix = []struct {
	name     string
	weight   int
	min, max time.Duration
}{
	{"kill9", 3, 0, 0},
	{"freeze", 2, 2 * time.Second, 8 * time.Second},
	{"vrrp-partition", 2, 2 * time.Second, 8 * time.Second},
	{"quorum-partition", 2, 1 * time.Second, 4 * time.Second},
	{"graceful", 2, 0, 0},
	{"link-flap", 1, 500 * time.Millisecond, 3 * time.Second},
	{"quorum-loss", 1, 2 * time.Second, 5 * time.Second},
	{"preempt", 1, 0, 0},
}

// SoakSummary is what a soak saw.
type SoakSummary struct {
	Seed     int64
	Elapsed  time.Duration
	Injected map[string]int
	Results  []Result
	// Health is the series of every daemon and of the soak process.
	Health Health
}

// Pass reports whether no fault broke an invariant and no health series
// grew without bound (HealthRule).
func (s SoakSummary) Pass() bool {
	for _, r := range s.Results {
		if !r.Pass {
			return false
		}
	}
	return len(s.Results) > 0 && s.Health.Pass
}

// Soak injects random faults (weighted mix, random durations) one after
// another until opts.Duration has passed; each is a full Run, so the
// checkers watch every fault from before it starts until the target is
// steady again. Meanwhile it samples the health of every daemon and of
// itself (at the start, every HealthEvery, at the end) and judges the
// series by HealthRule; the summary carries them also when it returns an
// error.
func Soak(ctx context.Context, t Target, opts SoakOptions) (sum SoakSummary, err error) {
	rng := rand.New(rand.NewPCG(uint64(opts.Seed), 0x1ea5e401d))
	sum = SoakSummary{Seed: opts.Seed, Injected: map[string]int{}}
	total := 0
	for _, m := range soakMix {
		total += m.weight
	}
	if opts.HealthEvery <= 0 {
		opts.HealthEvery = time.Minute
	}
	start := time.Now()
	health := newHealthRecorder(t, opts.HealthEvery, start)
	health.sample(ctx, start)
	hctx, stopHealth := context.WithCancel(context.WithoutCancel(ctx))
	hdone := make(chan struct{})
	go func() {
		defer close(hdone)
		health.run(hctx, opts.HealthEvery)
	}()
	defer func() {
		stopHealth()
		<-hdone
		health.sample(context.WithoutCancel(ctx), time.Now())
		health.h.judge()
		sum.Health = health.h
		sum.Elapsed = time.Since(start)
	}()
	for i := 1; time.Since(start) < opts.Duration && ctx.Err() == nil; i++ {
		k := rng.IntN(total)
		m := soakMix[0]
		for _, x := range soakMix {
			if k < x.weight {
				m = x
				break
			}
			k -= x.weight
		}
		sc := Scenario{Name: m.name}
		if m.max > 0 {
			sc.Duration = m.min + time.Duration(rng.Int64N(int64(m.max-m.min)))
			sc.Duration = sc.Duration.Round(100 * time.Millisecond)
		}
		r, err := Run(ctx, t, sc)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return sum, fmt.Errorf("fault %d (%s): %w", i, sc.Name, err)
		}
		r.Run = i
		sum.Injected[sc.Name]++
		if r.Pass {
			// A passing run keeps its figures, not its timeline: an hour
			// of faults would otherwise grow the soak by ~17 KiB a fault.
			r.Timeline, r.Transitions = Timeline{}, nil
		}
		sum.Results = append(sum.Results, r)
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "%s  fault %d: %-16s %-6s %s dual ARP rounds %d, outage %s\n",
				time.Now().Format("15:04:05"), i, sc.Name, sc.Duration, r.Verdict, r.DualARPRounds, us(r.OutageUS))
			for _, x := range r.Reasons {
				fmt.Fprintf(opts.Progress, "          FAIL: %s\n", x)
			}
		}
	}
	return sum, nil
}

// Write prints the soak's summary: faults injected, the dual-holder total,
// the distribution of client outages.
func (s SoakSummary) Write(w io.Writer) {
	fmt.Fprintf(w, "soak: %d faults in %v (seed %d)\n", len(s.Results), s.Elapsed.Round(time.Second), s.Seed)
	var names []string
	for n := range s.Injected {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FAULT\tINJECTED\tFAILED\tOUTAGE median\tOUTAGE max")
	dual, both, failed := 0, int64(0), 0
	var all []int64
	for _, n := range names {
		var out []int64
		f := 0
		for _, r := range s.Results {
			if r.Scenario != n {
				continue
			}
			out = append(out, r.OutageUS)
			if !r.Pass {
				f++
			}
		}
		failed += f
		all = append(all, out...)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", n, s.Injected[n], f, us(median(out)), us(maxOf(out)))
	}
	tw.Flush()
	for _, r := range s.Results {
		dual += r.DualARPRounds
		both += r.AddrBothUS
	}
	fmt.Fprintf(w, "dual holder (ARP rounds answered by two MACs), total: %d  (must be 0)\n", dual)
	fmt.Fprintf(w, "VIP configured on two nodes (netlink, fenced), total: %s\n", us(both))
	buckets := []struct {
		label string
		upTo  time.Duration
	}{{"0", 0}, {"≤50ms", 50 * time.Millisecond}, {"≤200ms", 200 * time.Millisecond}, {"≤1s", time.Second},
		{"≤2s", 2 * time.Second}, {"≤5s", 5 * time.Second}, {">5s", time.Duration(1<<62 - 1)}}
	counts := make([]int, len(buckets))
	for _, v := range all {
		d := time.Duration(v) * time.Microsecond
		for i, b := range buckets {
			if d <= b.upTo {
				counts[i]++
				break
			}
		}
	}
	fmt.Fprint(w, "client outage per fault:")
	for i, b := range buckets {
		fmt.Fprintf(w, "  %s: %d", b.label, counts[i])
	}
	fmt.Fprintln(w)
	for _, r := range s.Results {
		for _, x := range r.Reasons {
			fmt.Fprintf(w, "fault %d (%s) FAILED: %s\n", r.Run, r.Scenario, x)
		}
	}
	if failed > 0 {
		fmt.Fprintf(w, "%d fault(s) FAILED; the JSON or HTML report has their timelines\n", failed)
	}
	fmt.Fprintln(w)
	s.Health.Write(w)
}
