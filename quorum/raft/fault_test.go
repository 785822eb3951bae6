package raft

import (
	"context"
	"errors"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leasehold/leasehold/quorum"
)

// tracked is a session whose last local deadline is recorded on every
// acknowledged renewal, and whose loss time is recorded.
type tracked struct {
	*Session
	lastDeadline atomic.Int64 // unix nanos
	lostAt       atomic.Int64
	stop         context.CancelFunc
	done         chan struct{}
}

func openTracked(t testing.TB, b *Backend) *tracked {
	t.Helper()
	s, err := b.Open(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ts := &tracked{Session: s.(*Session), done: make(chan struct{})}
	ts.lastDeadline.Store(s.Deadline().UnixNano())
	ts.OnRenew(func(_ time.Duration, d time.Time) { ts.lastDeadline.Store(d.UnixNano()) })
	ctx, cancel := context.WithCancel(context.Background())
	ts.stop = cancel
	go func() {
		defer close(ts.done)
		ts.Run(ctx)
	}()
	go func() {
		select {
		case <-s.Done():
			ts.lostAt.Store(time.Now().UnixNano())
		case <-ts.done:
		}
	}()
	t.Cleanup(func() { cancel(); <-ts.done })
	return ts
}

func (ts *tracked) deadline() time.Time { return time.Unix(0, ts.lastDeadline.Load()) }

// acquireLoop retries Acquire until it succeeds; it returns the grant and
// the local time of its acknowledgement.
func acquireLoop(t testing.TB, s quorum.Session, group string, within time.Duration) (quorum.Grant, time.Time) {
	t.Helper()
	end := time.Now().Add(within)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(end) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		g, err := s.Acquire(ctx, group, 1)
		cancel()
		if err == nil {
			return g, time.Now()
		}
		if errors.Is(err, quorum.ErrLost) || errors.Is(err, quorum.ErrClosed) {
			t.Fatalf("acquire: %v", err)
		}
		<-tick.C
	}
	t.Fatalf("%s not acquired within %v", group, within)
	return quorum.Grant{}, time.Time{}
}

// A leader shut down while leases are held: holders keep renewing through
// the new leader; a lease that stops renewing expires no earlier than a full
// TTL after the old leader stopped (the new leader restarts every timer).
func TestLeaderShutdown(t *testing.T) {
	v := startVoters(t, 3, nil)
	opts := testOptions("a")
	opts.TTL = 500 * time.Millisecond
	a := newBackend(t, v.clientAddrs(), nil, opts)
	// The contender's lease must ride out two leader changes in a row.
	b := newBackend(t, v.clientAddrs(), nil, scaled("b", 2*time.Second))
	sa := openTracked(t, a)
	sb := openTracked(t, b)
	ga, err := sa.Acquire(ctxT(t, time.Second), "g", 1)
	if err != nil {
		t.Fatal(err)
	}

	// 1: the holder survives a leader change.
	old := v.leader()
	killed := time.Now()
	v.stop(old)
	nl := v.waitLeader()
	t.Logf("new leader %s after %v", v.cfgs[nl].ID, time.Since(killed))
	if _, err := sb.Acquire(ctxT(t, time.Second), "g", 1); !errors.Is(err, quorum.ErrHeld) {
		t.Fatalf("contender during leader change: %v, want ErrHeld", err)
	}
	v.start(old)
	eventually(t, 5*time.Second, "restarted member catches up", func() bool {
		hs, _ := v.members[old].fsm.holders("g")
		return len(hs) == 1
	})

	// 2: the holder stops renewing, then the leader dies at once.
	sa.stop()
	<-sa.done
	dl := sa.deadline()
	leader := v.waitLeader()
	killed = time.Now()
	v.stop(leader)
	gb, ackB := acquireLoop(t, sb, "g", 10*time.Second)
	if !ackB.After(dl) {
		t.Fatalf("b acquired at %v, before a's local deadline %v", ackB, dl)
	}
	if got := ackB.Sub(killed); got < opts.TTL {
		t.Fatalf("b acquired %v after the leader died, less than the full TTL %v", got, opts.TTL)
	}
	if gb.Epoch <= ga.Epoch {
		t.Fatalf("epoch %d after %d", gb.Epoch, ga.Epoch)
	}
	t.Logf("expiry after kill: %v (TTL %v)", ackB.Sub(killed), opts.TTL)
	if !errors.Is(sa.Err(), nil) {
		t.Fatalf("a was stopped, not lost: %v", sa.Err())
	}
	// a's renewal now finds its session gone.
	if _, err := sa.renew(ctxT(t, 2*time.Second)); !errors.Is(err, quorum.ErrLost) {
		t.Fatalf("renew of expired session: %v, want ErrLost", err)
	}
}

// A member partitioned while it leads and while its node holds a lease: the
// node signals loss before its local deadline, and nobody acquires before
// that deadline.
func TestPartitionLeader(t *testing.T) {
	v := startVoters(t, 3, nil)
	l := v.waitLeader()
	ha := newHole()
	addrs := append([]string{v.cfgs[l].ClientAddr}, v.clientAddrs()...)
	a := newBackend(t, addrs, nil, testOptions("a"), WithDialer(ha.dial))
	b := newBackend(t, v.clientAddrs(), nil, testOptions("b"))
	sa := openTracked(t, a)
	sb := openTracked(t, b)
	if _, err := sa.Acquire(ctxT(t, time.Second), "g", 1); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	ha.set(true)
	v.holes[l].set(true)

	select {
	case <-sa.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("partitioned holder never signalled loss")
	}
	lost := time.Unix(0, sa.lostAt.Load())
	dl := sa.deadline()
	if !lost.Before(dl) {
		t.Fatalf("loss signalled at %v, not before the local deadline %v", lost, dl)
	}
	if !errors.Is(sa.Err(), quorum.ErrLost) {
		t.Fatalf("err %v, want ErrLost", sa.Err())
	}
	_, ackB := acquireLoop(t, sb, "g", 10*time.Second)
	if !ackB.After(dl) {
		t.Fatalf("b acquired at %v, before a's deadline %v", ackB, dl)
	}
	t.Logf("cut→loss %v, cut→deadline %v, cut→b acquires %v", lost.Sub(cut), dl.Sub(cut), ackB.Sub(cut))
	eventually(t, 5*time.Second, "old leader steps down", func() bool { return !v.members[l].IsLeader() })

	// Heal: the member rejoins and the node can open a new session.
	ha.set(false)
	v.holes[l].set(false)
	s2, err := a.Open(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Acquire(ctxT(t, time.Second), "g2", 1); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "rejoined member has the new key", func() bool {
		hs, _ := v.members[l].fsm.holders("g2")
		return len(hs) == 1
	})
}

// All voters stop: the holder signals loss before its local deadline. They
// restart with their data: the state is recovered and the old lease expires
// a full TTL after the restart.
func TestStopAllRestart(t *testing.T) {
	v := startVoters(t, 3, nil)
	a := newBackend(t, v.clientAddrs(), nil, testOptions("a"))
	sa := openTracked(t, a)
	ga, err := sa.Acquire(ctxT(t, time.Second), "g", 1)
	if err != nil {
		t.Fatal(err)
	}
	v.stopAll()
	select {
	case <-sa.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("holder never signalled loss")
	}
	if lost, dl := time.Unix(0, sa.lostAt.Load()), sa.deadline(); !lost.Before(dl) {
		t.Fatalf("loss at %v, not before deadline %v", lost, dl)
	}
	restarted := time.Now()
	for i := range v.members {
		v.start(i)
	}
	v.waitLeader()
	b := newBackend(t, v.clientAddrs(), nil, testOptions("b"))
	hist, err := b.History(ctxT(t, 2*time.Second), "g")
	if err != nil || len(hist) != 1 || hist[0].Node != "a" || hist[0].Epoch != ga.Epoch {
		t.Fatalf("history after restart: %+v %v", hist, err)
	}
	sb := openTracked(t, b)
	gb, ackB := acquireLoop(t, sb, "g", 10*time.Second)
	if gb.Epoch <= ga.Epoch {
		t.Fatalf("epoch %d after restart, was %d", gb.Epoch, ga.Epoch)
	}
	if got := ackB.Sub(restarted); got < testOptions("a").TTL {
		t.Fatalf("old lease expired %v after restart, less than a TTL", got)
	}
}

type interval struct {
	node       string
	epoch      uint64
	start, end time.Time
}

// Contenders acquire and release groups at random, through a leader
// change: per group, ownership intervals never overlap and epochs increase.
func TestMutualExclusion(t *testing.T) {
	v := startVoters(t, 3, nil)
	groups := []string{"g1", "g2", "g3"}
	var mu sync.Mutex
	got := map[string][]interval{}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 4 {
		opts := testOptions(string(rune('a' + i)))
		opts.TTL = time.Second
		opts.RenewInterval = 100 * time.Millisecond
		b := newBackend(t, v.clientAddrs(), nil, opts)
		s := openTracked(t, b)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for ctx.Err() == nil {
				if s.Err() != nil {
					t.Errorf("%s lost its session: %v", opts.Node, s.Err())
					return
				}
				g := groups[rng.IntN(len(groups))]
				actx, acancel := context.WithTimeout(ctx, 300*time.Millisecond)
				grant, err := s.Acquire(actx, g, 1)
				acancel()
				if err != nil {
					continue
				}
				iv := interval{node: opts.Node, epoch: grant.Epoch, start: time.Now()}
				hold := time.NewTimer(time.Duration(rng.IntN(20)) * time.Millisecond)
				<-hold.C
				iv.end = time.Now()
				for {
					rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
					err := s.Release(rctx, grant)
					rcancel()
					if err == nil || errors.Is(err, quorum.ErrNotOwner) {
						break
					}
				}
				mu.Lock()
				got[g] = append(got[g], iv)
				mu.Unlock()
			}
		}()
	}
	kill := time.NewTimer(time.Second)
	<-kill.C
	l := v.leader()
	if l >= 0 {
		v.stop(l)
		v.waitLeader()
		v.start(l)
	}
	wg.Wait()
	total := 0
	for g, ivs := range got {
		sort.Slice(ivs, func(i, j int) bool { return ivs[i].epoch < ivs[j].epoch })
		for i := 1; i < len(ivs); i++ {
			if ivs[i].start.Before(ivs[i-1].end) {
				t.Fatalf("%s: %s (epoch %d) acquired at %v before %s (epoch %d) released at %v",
					g, ivs[i].node, ivs[i].epoch, ivs[i].start, ivs[i-1].node, ivs[i-1].epoch, ivs[i-1].end)
			}
		}
		total += len(ivs)
	}
	if total < 10 {
		t.Fatalf("only %d grants in 3 s", total)
	}
	t.Logf("%d grants checked", total)
}

// A watch outlives a leader change: it reconnects and resyncs.
func TestWatchResync(t *testing.T) {
	v := startVoters(t, 3, nil)
	a := newBackend(t, v.clientAddrs(), nil, testOptions("a"))
	w := newBackend(t, v.clientAddrs(), nil, testOptions("w"))
	events, err := w.Watch(ctxT(t, 20*time.Second), "")
	if err != nil {
		t.Fatal(err)
	}
	sa := openTracked(t, a)
	g1, err := sa.Acquire(ctxT(t, time.Second), "g1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sa.Acquire(ctxT(t, time.Second), "g2", 1); err != nil {
		t.Fatal(err)
	}
	next := func() quorum.Event {
		t.Helper()
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("watch closed")
			}
			return ev
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
		}
		return quorum.Event{}
	}
	for _, g := range []string{"g1", "g2"} {
		if ev := next(); ev.Type != quorum.EventPut || ev.Group != g {
			t.Fatalf("got %+v, want put %s", ev, g)
		}
	}
	// Release g1 while the watch is cut off by a leader change.
	l := v.leader()
	v.stop(l)
	if err := sa.Release(ctxT(t, 3*time.Second), g1); err != nil {
		t.Fatal(err)
	}
	// The stream resyncs on the new leader, before or after the release is
	// applied: g2 must come back held by a, g1 must end free.
	g2Resync, g1Free := false, false
	for !g2Resync || !g1Free {
		ev := next()
		switch {
		case ev.Type == quorum.EventResync && ev.Group == "g2":
			if ev.Holder.Node != "a" {
				t.Fatalf("g2 resync: %+v", ev)
			}
			g2Resync = true
		case ev.Type == quorum.EventResync && ev.Group == "g1":
			g1Free = ev.Holder.Node == "" && ev.Holder.Epoch == 0
		case ev.Type == quorum.EventDelete && ev.Group == "g1":
			g1Free = true
		default:
			t.Fatalf("unexpected %+v", ev)
		}
	}
}
