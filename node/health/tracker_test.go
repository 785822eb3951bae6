package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leasehold/leasehold/script"
	"github.com/leasehold/leasehold/script/scripttest"
)

// waitLimit bounds every wait for a Status; generous, timing is not asserted.
const waitLimit = 10 * time.Second

// logBuf is a concurrency-safe buffer for a test logger.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testLogger(t *testing.T) (*slog.Logger, *logBuf) {
	lb := &logBuf{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// start runs tr until the test ends and returns a function that stops it
// and waits for Run to return.
func start(t *testing.T, tr *Tracker) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(waitLimit):
				err = errors.New("Run did not return after cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// waitStatus returns once tr's Status satisfies ok, reading Updates for at
// most waitLimit; it reports the last Status seen on failure.
func waitStatus(tr *Tracker, what string, ok func(Status) bool) error {
	limit := time.After(waitLimit)
	last := tr.Status()
	if ok(last) {
		return nil
	}
	for {
		select {
		case s := <-tr.Updates():
			last = s
			if ok(s) {
				return nil
			}
		case <-limit:
			return fmt.Errorf("no status %s within %v; last %+v", what, waitLimit, last)
		}
	}
}

func prio(p uint8) func(Status) bool {
	return func(s Status) bool { return s.Priority == p && !s.Fault }
}

func TestNewTrackerValidates(t *testing.T) {
	dir := scripttest.Dir(t)
	ok := scripttest.Write(t, dir, "ok", "exit 0")
	unsafe := scripttest.Write(t, dir, "unsafe", "exit 0")
	if err := os.Chmod(unsafe, 0o777); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		base    uint8
		scripts []Script
		ifaces  []Interface
		is      error
	}{
		{"priority 0", 0, nil, nil, ErrConfig},
		{"weight 254", 100, []Script{{Name: "a", Path: ok, Weight: 254}}, nil, ErrConfig},
		{"weight -254", 100, []Script{{Name: "a", Path: ok, Weight: -254}}, nil, ErrConfig},
		{"no name", 100, []Script{{Path: ok}}, nil, ErrConfig},
		{"duplicate script", 100, []Script{{Name: "a", Path: ok}, {Name: "a", Path: ok}}, nil, ErrConfig},
		{"negative rise", 100, []Script{{Name: "a", Path: ok, Rise: -1}}, nil, ErrConfig},
		{"relative path", 100, []Script{{Name: "a", Path: "ok"}}, nil, script.ErrUnsafe},
		{"world-writable", 100, []Script{{Name: "a", Path: unsafe}}, nil, script.ErrUnsafe},
		{"missing", 100, []Script{{Name: "a", Path: filepath.Join(dir, "nope")}}, nil, os.ErrNotExist},
		{"unknown user", 100, []Script{{Name: "a", Path: ok, RunAs: "no-such-user-leasehold"}}, nil, ErrConfig},
		{"link weight", 100, nil, []Interface{{Name: "eth0", Weight: 300}}, ErrConfig},
		{"link name too long", 100, nil, []Interface{{Name: "abcdefghijklmnop"}}, ErrConfig},
		{"duplicate link", 100, nil, []Interface{{Name: "eth0"}, {Name: "eth0"}}, ErrConfig},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewTracker(c.base, c.scripts, c.ifaces, nil)
			if !errors.Is(err, c.is) {
				t.Errorf("NewTracker: %v, want %v", err, c.is)
			}
		})
	}
	tr, err := NewTracker(100, []Script{{Name: "a", Path: ok, Weight: -253, Rise: 3, Fall: 2}}, []Interface{{Name: "eth0", Weight: 253}}, nil)
	if err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	if s := tr.scripts[0]; s.Interval != DefaultInterval || s.Timeout != DefaultInterval {
		t.Errorf("defaults: interval %v timeout %v, want %v each", s.Interval, s.Timeout, DefaultInterval)
	}
}

// TestTrackerRiseFall drives a real script through failure and recovery and
// checks, from the script's own run log, that the priority changed only
// after fall consecutive failures and rise consecutive successes.
func TestTrackerRiseFall(t *testing.T) {
	dir := scripttest.Dir(t)
	flag, runs := filepath.Join(dir, "fail"), filepath.Join(dir, "runs")
	p := scripttest.Write(t, dir, "chk", fmt.Sprintf(`if [ -e %s ]; then echo F >> %s; exit 1; fi
echo S >> %s`, flag, runs, runs))
	const rise, fall = 3, 2
	log, _ := testLogger(t)
	tr, err := NewTracker(100, []Script{{Name: "chk", Path: p, Interval: 20 * time.Millisecond, Timeout: 5 * time.Second, Weight: -30, Rise: rise, Fall: fall}}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	start(t, tr)
	// Unknown and Up both give 100 with a negative weight: wait for a success
	// in the run log (the first failure of an Unknown script decides at once).
	if !eventually(func() bool { b, _ := os.ReadFile(runs); return bytes.Contains(b, []byte("S")) }) {
		t.Fatal("script never succeeded")
	}
	// trailing counts the last run of identical outcomes in the run log.
	trailing := func(c string) int {
		b, _ := os.ReadFile(runs)
		lines := strings.Fields(string(b))
		n := 0
		for i := len(lines) - 1; i >= 0 && lines[i] == c; i-- {
			n++
		}
		return n
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := waitStatus(tr, "70 after fall failures", prio(70)); err != nil {
		t.Fatal(err)
	}
	if n := trailing("F"); n < fall {
		t.Errorf("priority dropped after %d consecutive failures, want >= %d", n, fall)
	}
	if s := tr.Status(); len(s.Reasons) != 1 || !strings.Contains(s.Reasons[0], "script chk down (-30)") {
		t.Errorf("reasons %q", s.Reasons)
	}
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	if err := waitStatus(tr, "100 after rise successes", prio(100)); err != nil {
		t.Fatal(err)
	}
	if n := trailing("S"); n < rise {
		t.Errorf("priority restored after %d consecutive successes, want >= %d", n, rise)
	}
}

// TestTrackerInitFail: with init_fail the negative weight applies before
// the first run and is lifted only after rise successes.
func TestTrackerInitFail(t *testing.T) {
	dir := scripttest.Dir(t)
	runs := filepath.Join(dir, "runs")
	p := scripttest.Write(t, dir, "chk", "echo S >> "+runs)
	tr, err := NewTracker(100, []Script{{Name: "chk", Path: p, Interval: 20 * time.Millisecond, Weight: -10, Rise: 2, InitFail: true}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := tr.Status(); s.Priority != 90 || s.Fault {
		t.Fatalf("before Run: %+v, want priority 90", s)
	}
	start(t, tr)
	if err := waitStatus(tr, "100 after 2 successes", prio(100)); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(runs)
	if n := len(strings.Fields(string(b))); n < 2 {
		t.Errorf("up after %d runs, want >= 2", n)
	}
}

// TestTrackerWeightZeroFault: a failing weight-0 script puts the group in
// FAULT (and Unknown before its first result does too).
func TestTrackerWeightZeroFault(t *testing.T) {
	dir := scripttest.Dir(t)
	flag := filepath.Join(dir, "ok")
	p := scripttest.Write(t, dir, "chk", "[ -e "+flag+" ]")
	tr, err := NewTracker(100, []Script{{Name: "chk", Path: p, Interval: 20 * time.Millisecond}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := tr.Status(); !s.Fault {
		t.Fatalf("before the first result: %+v, want FAULT", s)
	}
	start(t, tr)
	if err := waitStatus(tr, "FAULT", func(s Status) bool {
		return s.Fault && len(s.Reasons) == 1 && s.Reasons[0] == "script chk down (fault)"
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := waitStatus(tr, "no fault", prio(100)); err != nil {
		t.Fatal(err)
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestTrackerHungScript: a script that hangs is a failure at its timeout,
// and it and its background child are killed.
func TestTrackerHungScript(t *testing.T) {
	dir := scripttest.Dir(t)
	pidf, childf := filepath.Join(dir, "pid"), filepath.Join(dir, "child")
	p := scripttest.Write(t, dir, "hang", fmt.Sprintf(`echo $$ > %s.tmp && mv %s.tmp %s
sleep 1000 &
echo $! > %s.tmp && mv %s.tmp %s
sleep 1000`, pidf, pidf, pidf, childf, childf, childf))
	log, logs := testLogger(t)
	tr, err := NewTracker(100, []Script{{Name: "hang", Path: p, Interval: time.Hour, Timeout: 300 * time.Millisecond, Weight: -10}}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, tr)
	if err := waitStatus(tr, "90 after the timeout", prio(90)); err != nil {
		t.Fatal(err)
	}
	pid, child := readPID(t, pidf), readPID(t, childf)
	// SIGKILL to the group is delivered asynchronously: wait for both to go.
	if !eventually(func() bool { return !alive(pid) && !alive(child) }) {
		t.Errorf("after the timeout: script %d alive %v, its child %d alive %v", pid, alive(pid), child, alive(child))
	}
	if !strings.Contains(logs.String(), "timed out (process group killed)") {
		t.Errorf("log does not say the script timed out:\n%s", logs)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it holds or waitLimit passes.
func eventually(cond func() bool) bool {
	limit := time.After(waitLimit)
	for !cond() {
		select {
		case <-limit:
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
	return true
}

// TestTrackerRunKillsOnCancel: cancelling Run kills a running script and
// Run returns only after that.
func TestTrackerRunKillsOnCancel(t *testing.T) {
	dir := scripttest.Dir(t)
	pidf := filepath.Join(dir, "pid")
	p := scripttest.Write(t, dir, "hang", fmt.Sprintf("echo $$ > %s.tmp && mv %s.tmp %s\nsleep 1000", pidf, pidf, pidf))
	tr, err := NewTracker(100, []Script{{Name: "hang", Path: p, Interval: time.Hour, Timeout: time.Hour, Weight: -10}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, tr)
	if !eventually(func() bool { _, err := os.Stat(pidf); return err == nil }) {
		t.Fatal("script never started")
	}
	pid := readPID(t, pidf)
	if !alive(pid) {
		t.Fatalf("script %d not running before cancel", pid)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Errorf("script %d still alive after Run returned", pid)
	}
}

// TestTrackerMissingScriptLoggedOnce: a script deleted after NewTracker fails
// every run, but the log says so once.
func TestTrackerMissingScriptLoggedOnce(t *testing.T) {
	dir := scripttest.Dir(t)
	gone := scripttest.Write(t, dir, "gone", "exit 0")
	runs := filepath.Join(dir, "runs")
	counter := scripttest.Write(t, dir, "count", "echo x >> "+runs)
	log, logs := testLogger(t)
	tr, err := NewTracker(100, []Script{
		{Name: "gone", Path: gone, Interval: 20 * time.Millisecond, Weight: -10},
		{Name: "count", Path: counter, Interval: 20 * time.Millisecond, Weight: 1},
	}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	start(t, tr)
	if err := waitStatus(tr, "91", prio(91)); err != nil {
		t.Fatal(err)
	}
	// Let both scripts run several more times.
	countRuns := func() int { b, _ := os.ReadFile(runs); return len(strings.Fields(string(b))) }
	target := countRuns() + 6
	if !eventually(func() bool { return countRuns() >= target }) {
		t.Fatal("counter script stopped running")
	}
	n := strings.Count(logs.String(), "no such file or directory")
	if n != 1 {
		t.Errorf("missing script logged %d times, want 1:\n%s", n, logs)
	}
}

func TestTrackerRunTwice(t *testing.T) {
	tr, err := NewTracker(100, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	start(t, tr)
	select {
	case <-tr.Updates(): // the first Status: Run is running
	case <-time.After(waitLimit):
		t.Fatal("Run published nothing")
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := tr.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run: %v, want ErrRunning", err)
	}
}

// TestTrackerNativeCheck: a Script with Check runs the function on the
// schedule with the same rise/fall and weight; a check that outlives its
// Timeout fails with a timeout; a native check with a path is refused.
func TestTrackerNativeCheck(t *testing.T) {
	var fail, hang atomic.Bool
	var runs atomic.Int64
	check := func(ctx context.Context) error {
		runs.Add(1)
		if hang.Load() {
			<-ctx.Done()
			return ctx.Err()
		}
		if fail.Load() {
			return errors.New("replication SQL thread No")
		}
		return nil
	}
	if _, err := NewTracker(100, []Script{{Name: "mysql", Path: "/bin/true", Check: check}}, nil, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("native check with a path: %v", err)
	}
	log, lb := testLogger(t)
	tr, err := NewTracker(100, []Script{{Name: "mysql", Check: check, Interval: 10 * time.Millisecond, Timeout: 50 * time.Millisecond,
		Weight: -30, Fall: 2}}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	start(t, tr)
	if !eventually(func() bool { return runs.Load() > 0 }) {
		t.Fatal("check never ran")
	}
	fail.Store(true)
	if err := waitStatus(tr, "70 after failures", prio(70)); err != nil {
		t.Fatal(err)
	}
	if s := tr.Status(); len(s.Reasons) != 1 || s.Reasons[0] != "check mysql down (-30)" {
		t.Errorf("reasons %q", s.Reasons)
	}
	if !strings.Contains(lb.String(), "replication SQL thread No") {
		t.Errorf("the check's error is not logged: %s", lb.String())
	}
	fail.Store(false)
	if err := waitStatus(tr, "100 after success", prio(100)); err != nil {
		t.Fatal(err)
	}
	hang.Store(true)
	if err := waitStatus(tr, "70 after timeouts", prio(70)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(lb.String(), "timed out after 50ms") {
		t.Errorf("a hung check is not reported as a timeout: %s", lb.String())
	}
}
