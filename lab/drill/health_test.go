package drill

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

const mib = 1 << 20

// TestGrowthRule applies HealthRule to synthetic series.
func TestGrowthRule(t *testing.T) {
	flat := func(n int, v int64) []int64 {
		s := make([]int64, n)
		for i := range s {
			s[i] = v
		}
		return s
	}
	ramp := func(n int, from, step int64) []int64 {
		s := make([]int64, n)
		for i := range s {
			s[i] = from + int64(i)*step
		}
		return s
	}
	for _, tc := range []struct {
		name      string
		values    []int64
		floor     int64
		judged    bool
		unbounded bool
	}{
		{"too few samples", []int64{10, 1000}, 200, false, false},
		{"unknown samples do not count", []int64{-1, 10, -1, 5000}, 200, false, false},
		{"flat goroutines", flat(16, 40), 200, true, false},
		// Issue 15: a backup's goroutines, 38 to 6,359 in 5.5 minutes.
		{"goroutine leak", ramp(7, 38, 1050), 200, true, true},
		{"noise below the floor", []int64{40, 90, 45, 200, 60, 230}, 200, true, false},
		// RSS of a small daemon: +15 MiB is under the 20 MiB floor.
		{"rss within the floor", ramp(10, 20*mib, 3*mib/2), 20 << 20, true, false},
		// The field's RSS: 30 MiB to 310 MiB.
		{"rss leak", ramp(10, 30*mib, 31*mib), 20 << 20, true, true},
		// Big process: +60 % of 200 MiB is above max(50 %, 20 MiB).
		{"60 % growth of a large heap", append(flat(4, 200*mib), flat(4, 320*mib)...), 20 << 20, true, true},
		{"40 % growth of a large heap", append(flat(4, 200*mib), flat(4, 280*mib)...), 20 << 20, true, false},
		// A restart in the middle (values drop) is not growth.
		{"restart", []int64{30, 35, 40, 12, 14, 16}, 64, true, false},
		{"fd leak", ramp(9, 20, 30), 64, true, true},
	} {
		g := judgeGrowth("x", tc.values, tc.floor)
		if g.Judged != tc.judged || g.Unbounded != tc.unbounded {
			t.Errorf("%s: %v: judged %v unbounded %v (first %d last %d limit %d), want judged %v unbounded %v",
				tc.name, tc.values, g.Judged, g.Unbounded, g.First, g.Last, g.Limit, tc.judged, tc.unbounded)
		}
	}
}

// TestHealthVerdictAndReport: a growing series fails the soak, with a
// reason naming the process and metric, in the text, JSON and HTML.
func TestHealthVerdictAndReport(t *testing.T) {
	h := Health{Every: "1m0s"}
	var n2, soak []HealthSample
	for i := range 9 {
		n2 = append(n2, HealthSample{AtS: float64(60 * i), PID: 100, RSS: 30 * mib, RSSAnon: 20 * mib, HeapInuse: 5 * mib,
			Goroutines: 38 + int64(i)*700, FDs: 20 + int64(i)*700})
		soak = append(soak, HealthSample{AtS: float64(60 * i), PID: 7, RSS: 40 * mib, RSSAnon: 30 * mib, HeapInuse: 8 * mib, Goroutines: 30, FDs: 12})
	}
	n2[4].HeapInuse, n2[4].Goroutines = -1, -1 // frozen at that sample
	h.Series = []HealthSeries{{Process: "n2", Samples: n2}, {Process: "soak", Samples: soak}}
	h.judge()
	if h.Pass || len(h.Reasons) != 2 || !strings.Contains(h.Reasons[0], "n2: goroutines grows without bound") ||
		!strings.Contains(h.Reasons[1], "n2: fds grows without bound") {
		t.Fatalf("verdict %v, reasons %q", h.Pass, h.Reasons)
	}
	sum := SoakSummary{Results: []Result{{Scenario: "kill9", Pass: true, Verdict: "PASS"}}, Health: h}
	if sum.Pass() {
		t.Error("soak passes although n2's goroutines grow")
	}
	var txt bytes.Buffer
	sum.Write(&txt)
	for _, want := range []string{"rule: " + HealthRule, "FAIL: n2: goroutines grows", "GROWS", "38 738 1438 2138 ? 3538"} {
		if !strings.Contains(txt.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, txt.String())
		}
	}
	rep := Report{Results: sum.Results, Health: &sum.Health}
	if rep.Pass() {
		t.Error("report passes although n2's goroutines grow")
	}
	var js bytes.Buffer
	rep.WriteJSON(&js)
	back, err := ReadJSON(js.Bytes())
	if err != nil || back.Health == nil || len(back.Health.Series) != 2 || back.Health.Series[0].Samples[8].Goroutines != n2[8].Goroutines {
		t.Fatalf("JSON round trip: %v %+v", err, back.Health)
	}
	var page bytes.Buffer
	if err := WriteHTML(&page, rep); err != nil {
		t.Fatal(err)
	}
	if c := strings.Count(page.String(), `<svg class="health"`); c != 2*len(healthMetrics) {
		t.Errorf("%d health charts, want %d", c, 2*len(healthMetrics))
	}
	if !strings.Contains(page.String(), "n2: goroutines grows without bound") {
		t.Error("HTML lacks the reason")
	}
	// A restart shows in the series.
	n2[5].PID = 101
	if s := (HealthSeries{Samples: n2}).series(healthMetrics[3]); !strings.Contains(s, "↻") {
		t.Errorf("restart not marked: %s", s)
	}
}

// TestSampleSelf reads this process like the soak reads itself and a daemon.
func TestSampleSelf(t *testing.T) {
	s := sampleSelf(0)
	if s.RSS <= 0 || s.RSSAnon <= 0 || s.FDs <= 0 || s.Goroutines <= 0 || s.HeapInuse <= 0 || s.PID != os.Getpid() {
		t.Errorf("sample of self: %+v", s)
	}
	if v := promValue("# HELP go_goroutines x\ngo_goroutines 12\ngo_memstats_heap_inuse_bytes 1.368064e+06\n", "go_memstats_heap_inuse_bytes"); v != 1368064 {
		t.Errorf("promValue: %d", v)
	}
	if v := promValue("go_goroutines_total 3\n", "go_goroutines"); v != -1 {
		t.Errorf("promValue matched a longer name: %d", v)
	}
}
