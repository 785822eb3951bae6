package drill

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// HealthRule is the growth rule a soak applies to every health series; it
// is printed with the report.
const HealthRule = "a series grows without bound when the median of its last third of samples exceeds the median of its " +
	"first third by more than max(50 %, a floor): 20 MiB for RSS, RssAnon and Go heap in use, 200 goroutines, 64 open fds; " +
	"series with fewer than 3 samples are not judged"

// healthMetric is one column of a HealthSample with the floor of the rule.
type healthMetric struct {
	name  string
	unit  string // "MiB" or ""
	floor int64
	get   func(HealthSample) int64
}

var healthMetrics = []healthMetric{
	{"rss", "MiB", 20 << 20, func(s HealthSample) int64 { return s.RSS }},
	{"rss_anon", "MiB", 20 << 20, func(s HealthSample) int64 { return s.RSSAnon }},
	{"heap_inuse", "MiB", 20 << 20, func(s HealthSample) int64 { return s.HeapInuse }},
	{"goroutines", "", 200, func(s HealthSample) int64 { return s.Goroutines }},
	{"fds", "", 64, func(s HealthSample) int64 { return s.FDs }},
}

// HealthSample is one reading of a process; -1 is "could not be read"
// (process gone, /metrics not answering while frozen).
type HealthSample struct {
	AtS        float64 `json:"at_s"` // seconds since the soak started
	PID        int     `json:"pid"`
	RSS        int64   `json:"rss_bytes"`        // VmRSS, /proc/PID/status
	RSSAnon    int64   `json:"rss_anon_bytes"`   // RssAnon, /proc/PID/status
	HeapInuse  int64   `json:"heap_inuse_bytes"` // go_memstats_heap_inuse_bytes (/metrics)
	Goroutines int64   `json:"goroutines"`       // go_goroutines (/metrics)
	FDs        int64   `json:"fds"`              // entries of /proc/PID/fd
}

// Growth is the rule applied to one metric of one series.
type Growth struct {
	Metric    string `json:"metric"`
	Samples   int    `json:"samples"`
	Judged    bool   `json:"judged"`
	First     int64  `json:"first_third_median"`
	Last      int64  `json:"last_third_median"`
	Limit     int64  `json:"limit"` // allowed growth: max(50 % of First, floor)
	Unbounded bool   `json:"unbounded"`
}

// HealthSeries is the samples of one process: a node's daemon (across
// its restarts: see PID) or "soak", the soak process itself.
type HealthSeries struct {
	Process string         `json:"process"`
	Samples []HealthSample `json:"samples"`
	Growth  []Growth       `json:"growth"`
}

// Health is what a soak saw of its processes over time.
type Health struct {
	Rule   string         `json:"rule"`
	Every  string         `json:"every"`
	Series []HealthSeries `json:"series"`
	// Load is the host's 1-minute load average at each sample instant (-1
	// unknown): a soak's figures from a busy machine say so.
	Load    []float64 `json:"load1,omitempty"`
	Pass    bool      `json:"pass"`
	Reasons []string  `json:"reasons,omitempty"`
}

// judgeGrowth applies HealthRule to values (negative ones are skipped).
func judgeGrowth(metric string, values []int64, floor int64) Growth {
	var v []int64
	for _, x := range values {
		if x >= 0 {
			v = append(v, x)
		}
	}
	g := Growth{Metric: metric, Samples: len(v)}
	if len(v) < 3 {
		return g
	}
	k := len(v) / 3
	g.Judged = true
	g.First, g.Last = median(v[:k]), median(v[len(v)-k:])
	g.Limit = max(g.First/2, floor)
	g.Unbounded = g.Last-g.First > g.Limit
	return g
}

// judge applies the rule to every series and sets the verdict.
func (h *Health) judge() {
	h.Rule, h.Reasons = HealthRule, nil
	for i := range h.Series {
		s := &h.Series[i]
		s.Growth = nil
		for _, m := range healthMetrics {
			vals := make([]int64, len(s.Samples))
			for j, x := range s.Samples {
				vals[j] = m.get(x)
			}
			g := judgeGrowth(m.name, vals, m.floor)
			s.Growth = append(s.Growth, g)
			if g.Unbounded {
				h.Reasons = append(h.Reasons, fmt.Sprintf("%s: %s grows without bound: median of the last third %s, of the first third %s (allowed growth %s)",
					s.Process, m.name, fmtValue(g.Last, m.unit), fmtValue(g.First, m.unit), fmtValue(g.Limit, m.unit)))
			}
		}
	}
	h.Pass = len(h.Reasons) == 0
}

func fmtValue(v int64, unit string) string {
	switch {
	case v < 0:
		return "?"
	case unit == "MiB":
		return strconv.FormatFloat(float64(v)/(1<<20), 'f', 1, 64) + " MiB"
	}
	return strconv.FormatInt(v, 10)
}

// healthSource is a target whose daemons' /metrics can be read (labctl.Lab).
type healthSource interface {
	Metrics(ctx context.Context, node string) (string, error)
}

// sampleNode reads a node's daemon: /proc by the PID the target reports,
// and the Go collector's figures from its /metrics.
func sampleNode(ctx context.Context, t Target, node string, at float64) HealthSample {
	s := HealthSample{AtS: at, RSS: -1, RSSAnon: -1, HeapInuse: -1, Goroutines: -1, FDs: -1}
	st, _ := t.Status(ctx, node)
	if !st.Running || st.PID <= 0 {
		return s
	}
	s.PID = st.PID
	s.RSS, s.RSSAnon, s.FDs = procMemFDs(st.PID)
	if hs, ok := t.(healthSource); ok {
		mctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if text, err := hs.Metrics(mctx, node); err == nil {
			s.HeapInuse = promValue(text, "go_memstats_heap_inuse_bytes")
			s.Goroutines = promValue(text, "go_goroutines")
		}
	}
	return s
}

// sampleSelf reads this process (the soak).
func sampleSelf(at float64) HealthSample {
	pid := os.Getpid()
	s := HealthSample{AtS: at, PID: pid, Goroutines: int64(runtime.NumGoroutine())}
	s.RSS, s.RSSAnon, s.FDs = procMemFDs(pid)
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	s.HeapInuse = int64(m.HeapInuse)
	return s
}

// procMemFDs returns VmRSS and RssAnon (bytes) and the number of open
// fds of pid; -1 for what cannot be read.
func procMemFDs(pid int) (rss, anon, fds int64) {
	rss, anon, fds = -1, -1, -1
	if f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if !ok || (k != "VmRSS" && k != "RssAnon") {
				continue
			}
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				continue
			}
			if k == "VmRSS" {
				rss = kb << 10
			} else {
				anon = kb << 10
			}
		}
		f.Close()
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		fds = int64(len(ents))
	}
	return rss, anon, fds
}

// promValue returns the value of an unlabelled sample in Prometheus text
// (-1: absent).
func promValue(text, name string) int64 {
	for line := range strings.Lines(text) {
		v, ok := strings.CutPrefix(line, name+" ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return -1
		}
		return int64(f)
	}
	return -1
}

// healthRecorder samples every node and the soak process.
type healthRecorder struct {
	t     Target
	start time.Time
	h     Health
}

func newHealthRecorder(t Target, every time.Duration, start time.Time) *healthRecorder {
	r := &healthRecorder{t: t, start: start, h: Health{Every: every.String()}}
	for _, n := range t.Nodes() {
		r.h.Series = append(r.h.Series, HealthSeries{Process: n})
	}
	r.h.Series = append(r.h.Series, HealthSeries{Process: "soak"})
	return r
}

// sample takes one sample of every process, at now.
func (r *healthRecorder) sample(ctx context.Context, now time.Time) {
	at := now.Sub(r.start).Seconds()
	r.h.Load = append(r.h.Load, hostLoad())
	for i := range r.h.Series {
		s := &r.h.Series[i]
		if s.Process == "soak" {
			s.Samples = append(s.Samples, sampleSelf(at))
		} else {
			s.Samples = append(s.Samples, sampleNode(ctx, r.t, s.Process, at))
		}
	}
}

// hostLoad returns the host's 1-minute load average (-1 if unknown).
func hostLoad() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// run samples every interval until ctx ends.
func (r *healthRecorder) run(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			r.sample(ctx, now)
		}
	}
}

// series returns the values of metric m of s formatted in its unit, a
// "↻" before a sample whose PID differs from the one before (a restart).
func (s HealthSeries) series(m healthMetric) string {
	var b strings.Builder
	for i, x := range s.Samples {
		if i > 0 {
			b.WriteByte(' ')
			if x.PID != s.Samples[i-1].PID && x.PID != 0 && s.Samples[i-1].PID != 0 {
				b.WriteString("↻")
			}
		}
		v := m.get(x)
		switch {
		case v < 0:
			b.WriteString("?")
		case m.unit == "MiB":
			b.WriteString(strconv.FormatFloat(float64(v)/(1<<20), 'f', 1, 64))
		default:
			b.WriteString(strconv.FormatInt(v, 10))
		}
	}
	return b.String()
}

// sampleTimes returns the sample instants of the longest series.
func (h Health) sampleTimes() string {
	var longest []HealthSample
	for _, s := range h.Series {
		if len(s.Samples) > len(longest) {
			longest = s.Samples
		}
	}
	var parts []string
	for _, x := range longest {
		parts = append(parts, (time.Duration(x.AtS) * time.Second).String())
	}
	return strings.Join(parts, " ")
}

// Write prints the series, one line per process and metric, with the
// rule's figures and verdict.
func (h Health) Write(w io.Writer) {
	fmt.Fprintf(w, "health of the daemons and of the soak process, sampled every %s at: %s\n", h.Every, h.sampleTimes())
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tMETRIC\tFIRST ⅓\tLAST ⅓\tALLOWED\tVERDICT\tSERIES (↻ restart)")
	for _, s := range h.Series {
		for i, m := range healthMetrics {
			g := s.growth(i, m)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Process, m.name, fmtValue(g.First, m.unit), fmtValue(g.Last, m.unit),
				fmtValue(g.Limit, m.unit), growthVerdict(g), s.series(m))
		}
	}
	tw.Flush()
	if len(h.Load) > 0 {
		loads := make([]string, len(h.Load))
		for i, l := range h.Load {
			loads[i] = strconv.FormatFloat(l, 'f', 1, 64)
		}
		fmt.Fprintf(w, "host load average (1 min) at the samples: %s\n", strings.Join(loads, " "))
	}
	fmt.Fprintf(w, "rule: %s\n", h.Rule)
	for _, r := range h.Reasons {
		fmt.Fprintf(w, "FAIL: %s\n", r)
	}
}

// growth returns the judgement of the i-th metric (zero if not judged yet).
func (s HealthSeries) growth(i int, m healthMetric) Growth {
	if i < len(s.Growth) {
		return s.Growth[i]
	}
	return Growth{Metric: m.name}
}

func growthVerdict(g Growth) string {
	switch {
	case !g.Judged:
		return "not judged"
	case g.Unbounded:
		return "GROWS"
	}
	return "ok"
}
