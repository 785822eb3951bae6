package notify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leasehold/leasehold/script"
	"github.com/leasehold/leasehold/script/scripttest"
)

const waitLimit = 10 * time.Second

func lines(path string) []string {
	b, _ := os.ReadFile(path)
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
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

// start runs n until the test ends; stop cancels it and waits for Run.
func start(t *testing.T, n *Notifier) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(waitLimit):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// recorder is a script body appending its name, arguments and environment.
func recorder(log string) string {
	return `echo "$(basename "$0") [$*] group=$LEASEHOLD_GROUP epoch=$LEASEHOLD_EPOCH state=$LEASEHOLD_STATE prio=$LEASEHOLD_PRIORITY secret=${LEASEHOLD_TEST_SECRET:-none}" >> ` + log
}

func TestNotifyOrderArgumentsEnvironment(t *testing.T) {
	t.Setenv("LEASEHOLD_TEST_SECRET", "daemon-env-must-not-leak")
	dir := scripttest.Dir(t)
	log := filepath.Join(dir, "log")
	cfg := Config{
		Master:  scripttest.Write(t, dir, "master", recorder(log)),
		Backup:  scripttest.Write(t, dir, "backup", recorder(log)),
		Fault:   scripttest.Write(t, dir, "fault", recorder(log)),
		Stop:    scripttest.Write(t, dir, "stop", recorder(log)),
		Generic: scripttest.Write(t, dir, "generic", recorder(log)),
		Timeout: 5 * time.Second,
	}
	n, err := New("vi_1", cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	n.Notify(Backup, 100, 0)
	n.Notify(Master, 120, 7)
	n.Notify(Fault, 120, 7)
	n.Notify(Stop, 0, 7)
	start(t, n)
	want := []string{
		"backup [] group=vi_1 epoch=0 state=BACKUP prio=100 secret=none",
		"generic [INSTANCE vi_1 BACKUP 100] group=vi_1 epoch=0 state=BACKUP prio=100 secret=none",
		"master [] group=vi_1 epoch=7 state=MASTER prio=120 secret=none",
		"generic [INSTANCE vi_1 MASTER 120] group=vi_1 epoch=7 state=MASTER prio=120 secret=none",
		"fault [] group=vi_1 epoch=7 state=FAULT prio=120 secret=none",
		"generic [INSTANCE vi_1 FAULT 120] group=vi_1 epoch=7 state=FAULT prio=120 secret=none",
		"stop [] group=vi_1 epoch=7 state=STOP prio=0 secret=none",
		"generic [INSTANCE vi_1 STOP 0] group=vi_1 epoch=7 state=STOP prio=0 secret=none",
	}
	if !eventually(func() bool { return len(lines(log)) >= len(want) }) {
		t.Fatalf("ran %d of %d scripts", len(lines(log)), len(want))
	}
	if got := lines(log); !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The last script has written its line before the runner counts it.
	eventually(func() bool { return n.Counters().Runs == 8 })
	if c := n.Counters(); c != (Counters{Runs: 8}) {
		t.Errorf("counters %+v, want 8 runs and nothing else", c)
	}
}

// A notify command line with arguments (keepalived's own sample
// `notify_master "/usr/local/bin/vrrp.sh MASTER VI_1"`) runs its program
// with them; the generic script's own arguments come before keepalived's
// four. keepalived 2.2.7 (Debian), run in a network namespace with
// notify "/x/rec.sh generic 'own arg'", gave <generic><own arg><INSTANCE>
// <VI_1><MASTER><100>.
func TestNotifyCommandLineArguments(t *testing.T) {
	dir := filepath.Join(scripttest.Dir(t), "my scripts")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "argv")
	// One line per run: each argument between <>.
	p := scripttest.Write(t, dir, "vrrp.sh", `printf '<%s>' "$@" >> "`+log+`"; echo >> "`+log+`"`)
	n, err := New("VI_1", Config{
		Master:  `"` + p + `" MASTER VI_1`,
		Generic: `'` + p + `' "two words" \$x ''`,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start(t, n)
	n.Notify(Master, 120, 1)
	want := []string{
		"<MASTER><VI_1>",
		"<two words><$x><><INSTANCE><VI_1><MASTER><120>",
	}
	if !eventually(func() bool { return len(lines(log)) >= len(want) }) {
		t.Fatalf("ran %d of %d scripts", len(lines(log)), len(want))
	}
	if got := lines(log); !slices.Equal(got, want) {
		t.Errorf("argv recorded\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestNotifyGroupKindAndOnlyGeneric(t *testing.T) {
	dir := scripttest.Dir(t)
	log := filepath.Join(dir, "log")
	n, err := New("sg", Config{Generic: scripttest.Write(t, dir, "generic", recorder(log)), Kind: KindGroup}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start(t, n)
	n.Notify(Master, 150, 3)
	if !eventually(func() bool { return len(lines(log)) == 1 }) {
		t.Fatal("generic script did not run")
	}
	// keepalived passes priority 0 for a sync group.
	if got, want := lines(log)[0], "generic [GROUP sg MASTER 0] group=sg epoch=3 state=MASTER prio=150 secret=none"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// TestNotifyTimeout: a hanging script is killed (with its child) at its
// timeout, counted, and the queue goes on.
func TestNotifyTimeout(t *testing.T) {
	dir := scripttest.Dir(t)
	pids, log := filepath.Join(dir, "pids"), filepath.Join(dir, "log")
	hang := scripttest.Write(t, dir, "hang", fmt.Sprintf("sleep 1000 &\necho $$ $! >> %s\nwait", pids))
	n, err := New("g", Config{Master: hang, Backup: scripttest.Write(t, dir, "backup", recorder(log)), Timeout: 200 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start(t, n)
	n.Notify(Master, 100, 1)
	n.Notify(Backup, 100, 1)
	n.Notify(Master, 100, 2)
	n.Notify(Backup, 100, 2)
	if !eventually(func() bool { return n.Counters().Runs == 4 }) {
		t.Fatalf("counters %+v, want 4 runs", n.Counters())
	}
	if c := n.Counters(); c != (Counters{Runs: 4, Failures: 2, Timeouts: 2}) {
		t.Errorf("counters %+v, want 4 runs, 2 failures, 2 timeouts", c)
	}
	if got := len(lines(log)); got != 2 {
		t.Errorf("backup ran %d times after the hanging master script, want 2", got)
	}
	for _, l := range lines(pids) {
		for _, f := range strings.Fields(l) {
			pid, _ := strconv.Atoi(f)
			if alive(pid) {
				t.Errorf("process %d of a timed-out script still alive", pid)
			}
		}
	}
}

// TestNotifyQueueBound: while a script is stuck, Notify does not block and
// the queue keeps only the newest QueueLen notifications.
func TestNotifyQueueBound(t *testing.T) {
	dir := scripttest.Dir(t)
	log, release, started := filepath.Join(dir, "log"), filepath.Join(dir, "release"), filepath.Join(dir, "started")
	body := fmt.Sprintf("touch %s\nwhile [ ! -e %s ]; do sleep 0.01; done\n%s", started, release, recorder(log))
	n, err := New("g", Config{Generic: scripttest.Write(t, dir, "gen", body), Timeout: time.Minute, QueueLen: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start(t, n)
	n.Notify(Master, 100, 1)
	if !eventually(func() bool { _, err := os.Stat(started); return err == nil }) {
		t.Fatal("first script never started")
	}
	for e := uint64(2); e <= 5; e++ { // would hang here if Notify blocked on the stuck script
		n.Notify(Backup, 90, e)
	}
	if p, d := n.Pending(), n.Counters().Dropped; p != 2 || d != 2 {
		t.Errorf("pending %d dropped %d, want 2 and 2", p, d)
	}
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if !eventually(func() bool { return len(lines(log)) == 3 }) {
		t.Fatalf("ran %q, want 3 runs", lines(log))
	}
	var epochs []string
	for _, l := range lines(log) {
		for _, f := range strings.Fields(l) {
			if e, ok := strings.CutPrefix(f, "epoch="); ok {
				epochs = append(epochs, e)
			}
		}
	}
	if !slices.Equal(epochs, []string{"1", "4", "5"}) {
		t.Errorf("ran epochs %v, want [1 4 5] (oldest queued dropped)", epochs)
	}
}

func TestNotifyUnknownStateDropped(t *testing.T) {
	dir := scripttest.Dir(t)
	n, err := New("g", Config{Generic: scripttest.Write(t, dir, "gen", "exit 0")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n.Notify("CANDIDATE", 100, 1)
	if p, d := n.Pending(), n.Counters().Dropped; p != 0 || d != 1 {
		t.Errorf("pending %d dropped %d, want 0 and 1", p, d)
	}
}

// TestNotifyCancelAndFlush: cancelling Run kills the running script; a STOP
// queued afterwards runs with Flush.
func TestNotifyCancelAndFlush(t *testing.T) {
	dir := scripttest.Dir(t)
	log, pidf := filepath.Join(dir, "log"), filepath.Join(dir, "pid")
	n, err := New("g", Config{
		Master: scripttest.Write(t, dir, "master", fmt.Sprintf("echo $$ > %s.tmp && mv %s.tmp %s\nsleep 1000", pidf, pidf, pidf)),
		Stop:   scripttest.Write(t, dir, "stop", recorder(log)),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, n)
	n.Notify(Master, 100, 1)
	if !eventually(func() bool { _, err := os.Stat(pidf); return err == nil }) {
		t.Fatal("master script never started")
	}
	b, _ := os.ReadFile(pidf)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	stop()
	if alive(pid) {
		t.Errorf("script %d alive after Run returned", pid)
	}
	n.Notify(Stop, 0, 1)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := n.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := lines(log); len(got) != 1 || !strings.HasPrefix(got[0], "stop [] group=g epoch=1 state=STOP") {
		t.Errorf("after Flush: %q", got)
	}
	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	n.Notify(Stop, 0, 2)
	if err := n.Flush(done); !errors.Is(err, context.Canceled) {
		t.Errorf("Flush with a dead context: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	dir := scripttest.Dir(t)
	ok := scripttest.Write(t, dir, "ok", "exit 0")
	unsafe := scripttest.Write(t, dir, "unsafe", "exit 0")
	if err := os.Chmod(unsafe, 0o757); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		group string
		cfg   Config
		is    error
	}{
		{"no group", "", Config{Master: ok}, ErrConfig},
		{"world-writable", "g", Config{Master: ok, Fault: unsafe}, script.ErrUnsafe},
		{"relative", "g", Config{Generic: "notify.sh"}, script.ErrUnsafe},
		{"unbalanced quote", "g", Config{Master: ok + ` "MASTER`}, script.ErrSyntax},
		{"safe program, unsafe line", "g", Config{Master: ok + ` arg\`}, script.ErrSyntax},
		{"missing", "g", Config{Stop: filepath.Join(dir, "nope")}, os.ErrNotExist},
		{"bad kind", "g", Config{Kind: "SYNC"}, ErrConfig},
		{"negative timeout", "g", Config{Timeout: -1}, ErrConfig},
		{"unknown user", "g", Config{RunAs: "no-such-user-leasehold"}, ErrConfig},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := New(c.group, c.cfg, nil); !errors.Is(err, c.is) {
				t.Errorf("New: %v, want %v", err, c.is)
			}
		})
	}
	n, err := New("g", Config{Master: ok}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.cfg.Timeout != DefaultTimeout || n.cfg.QueueLen != DefaultQueueLen || n.cfg.Kind != KindInstance {
		t.Errorf("defaults not applied: %+v", n.cfg)
	}
}
