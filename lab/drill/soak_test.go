package drill_test

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/drill"
)

// TestLabSoak is issue 15 in small: a 90 s soak (seed 42) on a lab of 3
// nodes and 3 groups, run in this process so that this process is the
// soak tool. Its goroutines and open fds are the same after the last fault
// as after the first (the status clients reuse their connections; nothing
// is left behind per fault), every health series passes HealthRule, and
// every failed fault says why.
func TestLabSoak(t *testing.T) {
	_, _, _, _, _, l := upCLILab(t, "s", "--nodes", "3", "--groups", "3")

	// After each fault: this process's goroutines and open fds.
	type reading struct{ goroutines, fds int }
	var mu sync.Mutex
	var after []reading
	var progress bytes.Buffer
	pw := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		progress.Write(p)
		if bytes.Contains(p, []byte(" fault ")) {
			ents, _ := os.ReadDir("/proc/self/fd")
			after = append(after, reading{runtime.NumGoroutine(), len(ents)})
		}
		return len(p), nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sum, err := drill.Soak(ctx, l, drill.SoakOptions{Duration: 90 * time.Second, Seed: 42, Progress: pw, HealthEvery: 15 * time.Second})
	var out bytes.Buffer
	sum.Write(&out)
	t.Logf("progress:\n%s\nsummary:\n%s", progress.String(), out.String())
	if err != nil {
		t.Fatalf("soak: %v", err)
	}
	if len(after) < 3 {
		t.Fatalf("only %d faults in 90 s", len(after))
	}
	first, last := after[0], after[len(after)-1]
	t.Logf("soak process after each fault (goroutines, fds): %v", after)
	// A leak per poll (the pre-fix client) is hundreds per fault.
	if last.goroutines > first.goroutines+20 || last.fds > first.fds+16 {
		t.Errorf("the soak process grew between the first and the last fault: goroutines %d -> %d, fds %d -> %d",
			first.goroutines, last.goroutines, first.fds, last.fds)
	}
	// Between faults the checkers are stopped and the lab's three status
	// clients hold at most 4 connections each: a few dozen goroutines and
	// fds. A client per call, even one closing idle connections after 2 s,
	// holds 250-350 goroutines and 130-180 fds.
	for i, x := range after {
		if x.goroutines > 100 || x.fds > 64 {
			t.Errorf("after fault %d the soak process holds %d goroutines and %d fds (want at most 100 and 64)", i+1, x.goroutines, x.fds)
		}
	}
	if !sum.Health.Pass {
		t.Errorf("health: %v", sum.Health.Reasons)
	}
	for _, s := range sum.Health.Series {
		if len(s.Samples) < 6 {
			t.Errorf("%s: %d health samples in 90 s every 15 s", s.Process, len(s.Samples))
		}
		read, fromMetrics := 0, 0
		for _, x := range s.Samples {
			if x.PID == 0 {
				continue // the daemon was down (kill9, graceful) at that instant
			}
			if x.RSS <= 0 || x.RSSAnon <= 0 || x.FDs <= 0 {
				t.Errorf("%s: sample of pid %d without /proc figures: %+v", s.Process, x.PID, x)
			}
			read++
			if x.HeapInuse > 0 && x.Goroutines > 0 {
				fromMetrics++
			}
		}
		if fromMetrics < read/2 {
			t.Errorf("%s: only %d of %d samples have the Go collector's figures", s.Process, fromMetrics, read)
		}
	}
	for _, r := range sum.Results {
		if !r.Pass {
			if len(r.Reasons) == 0 {
				t.Errorf("fault %d (%s): bare FAIL", r.Run, r.Scenario)
			}
			t.Errorf("fault %d (%s) failed: %v", r.Run, r.Scenario, r.Reasons)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
