package lvs_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/lvs"
	"github.com/leasehold/leasehold/lvs/lvstest"
	"github.com/leasehold/leasehold/script"
)

var (
	vip  = lvs.Key{Proto: lvs.TCP, Addr: netip.MustParseAddrPort("10.0.0.99:80")}
	rs1  = netip.MustParseAddrPort("10.0.1.1:80")
	rs2  = netip.MustParseAddrPort("10.0.1.2:80")
	tcpC = lvs.Check{Kind: lvs.TCPCheck, DelayLoop: time.Second, ConnectTimeout: 500 * time.Millisecond,
		DelayBeforeRetry: 200 * time.Millisecond, Retry: 1}
)

func config(mode lvs.Mode, inhibit2 bool) lvs.Config {
	c1, c2 := tcpC, tcpC
	c1.Target, c2.Target = rs1, rs2
	return lvs.Config{Mode: mode, Services: []lvs.Service{{Name: "10.0.0.99 80", Follow: "VI_1", Keys: []lvs.Key{vip},
		Scheduler: "rr", Forward: lvs.DR, Quorum: 1, Reals: []lvs.RealServer{
			{Addr: rs1, Weight: 1, Forward: lvs.DR, Checks: []lvs.Check{c1}},
			{Addr: rs2, Weight: 2, Forward: lvs.DR, Inhibit: inhibit2, Checks: []lvs.Check{c2}},
		}}}}
}

func newDirector(t *testing.T, cfg lvs.Config, k *lvstest.Kernel, p *lvstest.Prober, state string) *lvs.Director {
	t.Helper()
	d, err := lvs.New(cfg, lvs.Options{Kernel: k, Prober: p, StateFile: state, Jitter: func(time.Duration) time.Duration { return 0 }})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func weights(k *lvstest.Kernel) string {
	m := k.Weights(vip)
	if m == nil {
		return "absent"
	}
	var out []string
	for _, a := range []netip.AddrPort{rs1, rs2} {
		if w, ok := m[a]; ok {
			out = append(out, a.String()+"="+string(rune('0'+w)))
		}
	}
	return strings.Join(out, " ")
}

// runModeAll runs a ModeAll director (inside a synctest bubble) after a
// first reconcile; stop ends Run and waits for it.
func runModeAll(t *testing.T) (*lvstest.Kernel, *lvstest.Prober, *lvs.Director, func()) {
	t.Helper()
	k, p := lvstest.NewKernel(), lvstest.NewProber()
	d := newDirector(t, config(lvs.ModeAll, false), k, p, "")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	if err := d.Reconcile(); err != nil {
		t.Fatal(err)
	}
	return k, p, d, func() { cancel(); <-done }
}

// Mode all: the table is there from the start; a failing real server
// leaves after retry+1 failed checks and comes back on the first success.
func TestDirectorModeAllFollowsChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k, p, d, stop := runModeAll(t)
		if got := weights(k); got != "10.0.1.1:80=1 10.0.1.2:80=2" {
			t.Fatalf("start: %s", got)
		}
		synctest.Wait() // the first checks (at 0 s) ran
		p.SetFailing(rs2, "connection refused")
		start := time.Now()
		for weights(k) != "10.0.1.1:80=1" {
			time.Sleep(10 * time.Millisecond)
		}
		// First check at 0 s: the failure comes at the next one (1 s), a
		// retry 200 ms later fails too: down at 1.2 s.
		if took := time.Since(start); took < 1200*time.Millisecond || took > 1210*time.Millisecond { // polled every 10 ms
			t.Errorf("removed after %v, want 1.2s (delay_loop + delay_before_retry)", took)
		}
		p.SetFailing(rs2, "")
		for weights(k) != "10.0.1.1:80=1 10.0.1.2:80=2" {
			time.Sleep(10 * time.Millisecond)
		}
		st := d.Status().VirtualServers[0]
		if r := st.RealServers[1]; !r.Alive || r.Ups != 1 || r.Downs != 1 || r.Checks[0].Failed != 2 || r.TableWeight != 2 {
			t.Errorf("status %+v", r)
		}
		stop()
		if k.Len() != 0 {
			t.Errorf("table left after Run: %v", weights(k))
		}
	})
}

// inhibit_on_failure keeps a failed server at weight 0.
func TestDirectorInhibit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k, p := lvstest.NewKernel(), lvstest.NewProber()
		d := newDirector(t, config(lvs.ModeAll, true), k, p, "")
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go d.Run(ctx)
		p.SetFailing(rs2, "refused")
		for weights(k) != "10.0.1.1:80=1 10.0.1.2:80=0" {
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// Mode owner: nothing until the group's table is promoted; demoted, it
// is gone. A promotion the kernel refuses takes back what it added.
func TestDirectorModeOwner(t *testing.T) {
	k, p := lvstest.NewKernel(), lvstest.NewProber()
	d := newDirector(t, config(lvs.ModeOwner, false), k, p, "")
	if err := d.Reconcile(); err != nil || k.Len() != 0 {
		t.Fatalf("before promotion: %v, %d services", err, k.Len())
	}
	if g := d.Groups(); len(g) != 1 || g[0] != "VI_1" {
		t.Fatalf("groups %v", g)
	}
	tab := d.Table("VI_1")
	if err := tab.Promote(t.Context(), 7); err != nil {
		t.Fatal(err)
	}
	if got := weights(k); got != "10.0.1.1:80=1 10.0.1.2:80=2" {
		t.Fatalf("promoted: %s", got)
	}
	if err := d.Reconcile(); err != nil || len(k.Ops()) != 3 {
		t.Fatalf("a second pass changed something: %v", err)
	}
	if err := tab.Demote(t.Context(), 7); err != nil || k.Len() != 0 {
		t.Fatalf("demoted: %v, %s", err, weights(k))
	}
	k.Fail = func(op string) bool { return strings.Contains(op, rs2.String()) }
	err := tab.Promote(t.Context(), 8)
	if !errors.Is(err, lvstest.ErrInjected) || !strings.Contains(err.Error(), "add real server 10.0.1.2:80") {
		t.Fatalf("promotion with a failing kernel: %v", err)
	}
	if k.Len() != 0 {
		t.Errorf("a failed promotion left %s", weights(k))
	}
	if st := d.Status(); st.VirtualServers[0].Active || st.LastError != "" {
		t.Errorf("status after the failed promotion: %+v", st)
	}
}

// The first reconcile removes what an earlier run left: configured
// services and services the state file records, never foreign ones.
func TestDirectorRemovesOrphansOnly(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "lvs.json")
	old := lvs.Key{Proto: lvs.TCP, Addr: netip.MustParseAddrPort("10.0.0.98:443")}
	foreign := lvs.Key{Proto: lvs.UDP, Addr: netip.MustParseAddrPort("10.0.0.53:53")}
	b, _ := json.Marshal([]lvs.Key{old})
	if err := os.WriteFile(state, b, 0o644); err != nil {
		t.Fatal(err)
	}
	k, p := lvstest.NewKernel(), lvstest.NewProber()
	for _, key := range []lvs.Key{vip, old, foreign} {
		if err := k.AddService(lvs.Virtual{Key: key, Scheduler: "rr"}); err != nil {
			t.Fatal(err)
		}
	}
	k.Ops()
	d := newDirector(t, config(lvs.ModeOwner, false), k, p, state)
	if err := d.Reconcile(); err != nil {
		t.Fatal(err)
	}
	if _, ok := k.Service(foreign); !ok || k.Len() != 1 {
		t.Fatalf("after orphan removal: %d services, foreign kept %v; ops %v", k.Len(), ok, k.Ops())
	}
	// Promoted, the service is recorded before it is added.
	k.Fail = func(op string) bool {
		b, _ := os.ReadFile(state)
		if strings.HasPrefix(op, "add service") && !strings.Contains(string(b), "10.0.0.99:80") {
			t.Errorf("%s before it was recorded (state %s)", op, b)
		}
		return false
	}
	if err := d.Table("VI_1").Promote(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	if err := d.Table("VI_1").Demote(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(state); string(b) != "[]" {
		t.Errorf("state after demotion %s, want []", b)
	}
}

// Checks run on a bounded pool: never more at once than Workers.
func TestDirectorBoundedWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := lvs.Config{Mode: lvs.ModeAll}
		s := lvs.Service{Name: "many", Keys: []lvs.Key{vip}, Scheduler: "rr", Quorum: 1}
		for i := range 200 {
			c := tcpC
			c.Target = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i / 250), byte(i%250 + 1)}), 80)
			s.Reals = append(s.Reals, lvs.RealServer{Addr: c.Target, Weight: 1, Checks: []lvs.Check{c}})
		}
		cfg.Services = []lvs.Service{s}
		k, p := lvstest.NewKernel(), lvstest.NewProber()
		p.Hold = func(ctx context.Context) { <-ctx.Done() } // every check times out
		d, err := lvs.New(cfg, lvs.Options{Kernel: k, Prober: p, Workers: 16, Jitter: func(time.Duration) time.Duration { return 0 }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { d.Run(ctx); close(done) }()
		time.Sleep(10 * time.Second)
		cancel()
		<-done
		if m := p.MaxRunning.Load(); m != 16 {
			t.Errorf("at most %d checks ran at once, want 16", m)
		}
		// 16 workers × 10 s / 0.5 s timeout = 320 checks.
		if n := p.Runs.Load(); n < 300 || n > 340 {
			t.Errorf("%d checks in 10 s", n)
		}
	})
}

// A group may demote a grant while its promotion is still under way; the
// promotion's late end must not add the table back: a promotion for an
// epoch already demoted is refused, and the two never interleave.
func TestGroupTableLatePromotionAfterDemotion(t *testing.T) {
	k, p := lvstest.NewKernel(), lvstest.NewProber()
	d := newDirector(t, config(lvs.ModeOwner, false), k, p, "")
	tab := d.Table("VI_1")
	if err := tab.Demote(t.Context(), 21); err != nil {
		t.Fatal(err)
	}
	if err := tab.Promote(t.Context(), 21); !errors.Is(err, lvs.ErrDemoted) || k.Len() != 0 {
		t.Fatalf("late promotion of a demoted epoch: %v, %d services", err, k.Len())
	}
	if err := tab.Promote(t.Context(), 22); err != nil || k.Len() != 1 {
		t.Fatalf("the next grant: %v, %d services", err, k.Len())
	}
	// Concurrent promotion and demotion of one epoch end without a table
	// whatever their order.
	for epoch := uint64(30); epoch < 60; epoch++ {
		done := make(chan struct{})
		go func() { tab.Promote(t.Context(), epoch); close(done) }()
		if err := tab.Demote(t.Context(), epoch); err != nil {
			t.Fatal(err)
		}
		<-done
		if k.Len() != 0 {
			t.Fatalf("epoch %d: the table outlived the demotion", epoch)
		}
	}
}

// Level-triggered: a change someone else makes to a managed service (an
// operator's ipvsadm) is undone by the next periodic pass, which reads
// the kernel's table.
func TestDirectorUndoesForeignChangesOnResync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k, _, _, stop := runModeAll(t)
		if err := k.DelDest(vip, lvs.Dest{Addr: rs2}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for weights(k) != "10.0.1.1:80=1 10.0.1.2:80=2" {
			time.Sleep(100 * time.Millisecond)
		}
		if took := time.Since(start); took > lvs.DefaultResync+100*time.Millisecond { // polled every 100 ms
			t.Errorf("restored after %v, Resync %v", took, lvs.DefaultResync)
		}
		stop()
	})
}

// A real server's notify_down and notify_up run when its checkers take it
// out and bring it back, with the server named in the environment, one at
// a time in the order of the changes: a flapping server's log alternates.
// The virtual server's quorum_down and quorum_up, which its flaps set off
// (live weight 1 or 3, quorum 3), run in the same order, after the real
// server's script whose change caused them.
func TestDirectorRealServerNotify(t *testing.T) {
	dir := t.TempDir()
	logf := filepath.Join(dir, "notify.log")
	sh := filepath.Join(dir, "notify.sh")
	// The sleep makes a later change wait for the earlier script.
	if err := os.WriteFile(sh, []byte("#!/bin/sh\nsleep 0.05\necho \"$1 $LEASEHOLD_VIRTUAL_SERVER $LEASEHOLD_REAL_SERVER\" >> "+logf+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := config(lvs.ModeAll, false)
	cfg.Services[0].Quorum = 3
	cfg.Services[0].QuorumUp = &script.Command{Path: sh, Args: []string{"quorum-up"}, Timeout: 5 * time.Second}
	cfg.Services[0].QuorumDown = &script.Command{Path: sh, Args: []string{"quorum-down"}, Timeout: 5 * time.Second}
	for i := range cfg.Services[0].Reals {
		r := &cfg.Services[0].Reals[i]
		r.Checks[0].DelayLoop, r.Checks[0].DelayBeforeRetry, r.Checks[0].Retry = 20*time.Millisecond, 5*time.Millisecond, 0
		r.NotifyUp = &script.Command{Path: sh, Args: []string{"up"}, Timeout: 5 * time.Second}
		r.NotifyDown = &script.Command{Path: sh, Args: []string{"down"}, Timeout: 5 * time.Second}
	}
	k, p := lvstest.NewKernel(), lvstest.NewProber()
	d := newDirector(t, cfg, k, p, "")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	const flaps = 4
	for range flaps {
		p.SetFailing(rs2, "refused")
		for weights(k) != "10.0.1.1:80=1" {
			time.Sleep(5 * time.Millisecond)
		}
		p.SetFailing(rs2, "")
		for weights(k) != "10.0.1.1:80=1 10.0.1.2:80=2" {
			time.Sleep(5 * time.Millisecond)
		}
	}
	cancel()
	<-done // Run waits for the notify scripts
	b, err := os.ReadFile(logf)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	// The quorum first comes up when the checks first pass.
	if len(lines) > 0 && strings.TrimSpace(lines[0]) == "quorum-up" {
		lines = lines[1:]
	}
	cycle := []string{"down 10.0.0.99 80 10.0.1.2:80", "quorum-down", "up 10.0.0.99 80 10.0.1.2:80", "quorum-up"}
	if len(lines) != len(cycle)*flaps {
		t.Fatalf("%d script runs after the first quorum-up, want %d:\n%s", len(lines), len(cycle)*flaps, b)
	}
	for i, l := range lines {
		if want := cycle[i%len(cycle)]; strings.TrimSpace(l) != want {
			t.Fatalf("run %d: %q, want %q (in order):\n%s", i+1, l, want, b)
		}
	}
}
