package quorumtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leasehold/leasehold/quorum"
)

// RunContract runs the backend-independent contract against real servers.
// Each subtest gets a fresh cluster from newCluster and checks invariants
// (no overlapping ownership, increasing epochs, loss signalled before the
// local deadline, nobody acquiring before a dead holder's deadline), never
// timings; latencies are only logged.
func RunContract(t *testing.T, newCluster func(t *testing.T) Cluster) {
	t.Run("MutualExclusion", func(t *testing.T) { testMutualExclusion(t, newCluster(t)) })
	t.Run("ReleaseHandover", func(t *testing.T) { testReleaseHandover(t, newCluster(t)) })
	t.Run("HolderReacquires", func(t *testing.T) { testHolderReacquires(t, newCluster(t)) })
	t.Run("HolderDies", func(t *testing.T) { testHolderDies(t, newCluster(t)) })
	t.Run("HolderPartitioned", func(t *testing.T) { testHolderPartitioned(t, newCluster(t)) })
	t.Run("LeaderKilled", func(t *testing.T) { testLeaderKilled(t, newCluster(t)) })
	t.Run("QuorumDown", func(t *testing.T) { testQuorumDown(t, newCluster(t)) })
	t.Run("BadValues", func(t *testing.T) { testBadValues(t, newCluster(t)) })
	t.Run("OutdatedMarks", func(t *testing.T) { testOutdatedMarks(t, newCluster(t)) })
}

// Options returns the contract's lease options for node: proportioned to the
// cluster's minimum TTL.
func Options(c Cluster, node string) quorum.Options {
	o := quorum.ScaledOptions(c.MinTTL())
	o.Node = node
	o.Addr = "127.0.0.1"
	return o
}

// contender is one node: its own backend (own connection) and a session that
// is renewed in the background and reopened after loss.
type contender struct {
	t    testing.TB
	node string
	opts quorum.Options
	b    quorum.Backend

	mu     sync.Mutex
	s      quorum.Session
	cancel context.CancelFunc
	runErr chan error
}

func newContender(t testing.TB, c Cluster, node string) *contender {
	k := &contender{t: t, node: node, opts: Options(c, node)}
	k.b = c.Backend(t, node, k.opts)
	t.Cleanup(k.stop)
	return k
}

// session returns a live session, opening one (and starting its Run) if
// there is none or the last one was lost.
func (k *contender) session(ctx context.Context) (quorum.Session, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.s != nil {
		select {
		case <-k.s.Done():
			k.stopLocked()
		default:
			return k.s, nil
		}
	}
	s, err := k.b.Open(ctx)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(rctx) }()
	k.s, k.cancel, k.runErr = s, cancel, errc
	return s, nil
}

// kill stops renewing without closing the session (a dead process) and
// returns the session it had.
func (k *contender) kill() quorum.Session {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.s
	if s != nil {
		k.cancel()
		<-k.runErr
		k.s = nil
	}
	return s
}

func (k *contender) stopLocked() {
	if k.s == nil {
		return
	}
	k.cancel()
	<-k.runErr
	ctx, cancel := context.WithTimeout(context.Background(), k.opts.RequestTimeout)
	k.s.Close(ctx) // best effort: the quorum may be down
	cancel()
	k.s = nil
}

func (k *contender) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stopLocked()
}

// deadlineTracker remembers the last non-zero local deadline of a session
// (Deadline() turns zero at loss) and when Done was first seen.
type deadlineTracker struct {
	mu       sync.Mutex
	last     time.Time
	doneSeen time.Time
	stopped  chan struct{}
}

func trackDeadline(s quorum.Session) *deadlineTracker {
	d := &deadlineTracker{last: s.Deadline(), stopped: make(chan struct{})}
	go func() {
		defer close(d.stopped)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.Done():
				d.mu.Lock()
				d.doneSeen = time.Now()
				d.mu.Unlock()
				return
			case <-tick.C:
				if dl := s.Deadline(); !dl.IsZero() {
					d.mu.Lock()
					d.last = dl
					d.mu.Unlock()
				}
			}
		}
	}()
	return d
}

func (d *deadlineTracker) get() (last, doneSeen time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last, d.doneSeen
}

// notifier turns a group's watch into a wake-up signal.
func notifier(ctx context.Context, t testing.TB, b quorum.Backend, group string) <-chan struct{} {
	t.Helper()
	ch, err := b.Watch(ctx, group)
	if err != nil {
		t.Fatalf("watch %q: %v", group, err)
	}
	wake := make(chan struct{}, 1)
	go func() {
		for range ch {
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}()
	return wake
}

// waitWake waits for a watch event or d.
func waitWake(ctx context.Context, wake <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-wake:
	case <-t.C:
	}
}

// interval is one holder's ownership as it believed it: from the acquire
// acknowledgement to min(release send, local deadline, loss seen).
type interval struct {
	node       string
	epoch      uint64
	start, end time.Time
}

// checkIntervals asserts no two intervals overlap and that epochs strictly
// increase in the order the grants were acknowledged. One node holding the
// same epoch twice is its own grant handed back (a release that did not go
// through, then an acquire: see HolderReacquires); its intervals merge.
func checkIntervals(t testing.TB, ivs []interval) {
	t.Helper()
	sorted := slices.Clone(ivs)
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].epoch != sorted[j].epoch {
			return sorted[i].epoch < sorted[j].epoch
		}
		return sorted[i].start.Before(sorted[j].start)
	})
	var merged []interval
	for _, iv := range sorted {
		if n := len(merged); n > 0 && merged[n-1].epoch == iv.epoch {
			last := &merged[n-1]
			if last.node != iv.node {
				t.Errorf("epoch %d granted twice (%s and %s)", iv.epoch, last.node, iv.node)
				continue
			}
			if iv.end.After(last.end) {
				last.end = iv.end
			}
			continue
		}
		merged = append(merged, iv)
	}
	for i := 1; i < len(merged); i++ {
		a, b := merged[i-1], merged[i]
		if !b.start.After(a.end) {
			t.Errorf("overlap: %s epoch %d owned until %v after %s epoch %d acquired (or epochs out of order)",
				a.node, a.epoch, a.end.Sub(b.start), b.node, b.epoch)
		}
	}
}

// mutexLoop makes the contenders take turns on group until rounds grants
// were made or stop is closed, and returns every ownership interval.
func mutexLoop(ctx context.Context, t testing.TB, ks []*contender, group string, rounds int64, stop <-chan struct{}) []interval {
	var (
		mu     sync.Mutex
		ivs    []interval
		done   atomic.Int64
		wg     sync.WaitGroup
		errsMu sync.Mutex
		errs   = map[string]int{}
	)
	noteErr := func(err error) {
		errsMu.Lock()
		errs[err.Error()]++
		errsMu.Unlock()
	}
	finished := func() bool {
		if done.Load() >= rounds {
			return true
		}
		select {
		case <-stop:
			return true
		case <-ctx.Done():
			return true
		default:
			return false
		}
	}
	for i, k := range ks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wake := notifier(ctx, t, k.b, group)
			for !finished() {
				s, err := k.session(ctx)
				if err != nil {
					noteErr(err)
					waitWake(ctx, nil, 50*time.Millisecond)
					continue
				}
				g, err := s.Acquire(ctx, group, 100+i)
				if err != nil {
					if !errors.Is(err, quorum.ErrHeld) {
						noteErr(err)
					}
					waitWake(ctx, wake, 100*time.Millisecond)
					continue
				}
				start := time.Now()
				hold := time.NewTimer(time.Duration(rand.IntN(21)) * time.Millisecond)
				end := time.Time{}
				select {
				case <-hold.C:
				case <-s.Done():
					end = time.Now() // loss seen: stop acting as owner
					hold.Stop()
				}
				dl := s.Deadline()
				if end.IsZero() {
					end = time.Now() // release send time
					if !dl.IsZero() && dl.Before(end) {
						end = dl
					}
				}
				if !start.Before(end) {
					// Acknowledged at or after the deadline: never owned.
					end = start
				}
				mu.Lock()
				ivs = append(ivs, interval{node: k.node, epoch: g.Epoch, start: start, end: end})
				mu.Unlock()
				done.Add(1)
				if err := s.Release(ctx, g); err != nil {
					if errors.Is(err, quorum.ErrNotOwner) && s.Err() == nil && !dl.IsZero() {
						t.Errorf("%s: release epoch %d: %v while the session is live", k.node, g.Epoch, err)
					}
					noteErr(err)
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Logf("errors seen by contenders (expected around faults): %v", errs)
	}
	return ivs
}

func contenders(t testing.TB, c Cluster, prefix string, n int) []*contender {
	ks := make([]*contender, n)
	for i := range ks {
		ks[i] = newContender(t, c, fmt.Sprintf("%s%d", prefix, i+1))
	}
	return ks
}

// 1. Five contenders × 200 grants: no overlap, epochs strictly increase.
func testMutualExclusion(t *testing.T, c Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ks := contenders(t, c, "mx", 5)
	const rounds = 200
	ivs := mutexLoop(ctx, t, ks, "mutex", rounds, nil)
	if len(ivs) < rounds {
		t.Fatalf("only %d of %d grants before the time limit", len(ivs), rounds)
	}
	checkIntervals(t, ivs)
	per := map[string]int{}
	for _, iv := range ivs {
		per[iv.node]++
	}
	t.Logf("%d grants: %v", len(ivs), per)

	// History: bounded, oldest first, only epochs that were granted.
	granted := map[uint64]bool{}
	for _, iv := range ivs {
		granted[iv.epoch] = true
	}
	hist, err := ks[0].b.History(ctx, "mutex")
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	if len(hist) == 0 || len(hist) > ks[0].opts.HistoryLen {
		t.Errorf("history has %d entries, want 1..%d", len(hist), ks[0].opts.HistoryLen)
	}
	for i, h := range hist {
		if !granted[h.Epoch] {
			t.Errorf("history entry %d: epoch %d was never granted", i, h.Epoch)
		}
		if i > 0 && h.Epoch <= hist[i-1].Epoch {
			t.Errorf("history not oldest first: %d after %d", h.Epoch, hist[i-1].Epoch)
		}
	}
}

// 2. A release wakes a watching contender, which acquires at once.
func testReleaseHandover(t *testing.T, c Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b := newContender(t, c, "ho-a"), newContender(t, c, "ho-b")
	const group = "handover"
	var lat []time.Duration
	for round := range 5 {
		holder, taker := a, b
		if round%2 == 1 {
			holder, taker = b, a
		}
		hs, err := holder.session(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ts, err := taker.session(ctx)
		if err != nil {
			t.Fatal(err)
		}
		g, err := hs.Acquire(ctx, group, 100)
		if err != nil {
			t.Fatalf("round %d: %s acquire: %v", round, holder.node, err)
		}
		wctx, wcancel := context.WithCancel(ctx)
		events, err := taker.b.Watch(wctx, group)
		if err != nil {
			t.Fatal(err)
		}
		type result struct {
			g   quorum.Grant
			err error
		}
		res := make(chan result, 1)
		go func() {
			for ev := range events {
				free := ev.Type == quorum.EventDelete ||
					(ev.Type == quorum.EventResync && ev.Holder.Node == "" && !ev.Holder.Unknown)
				if !free {
					continue
				}
				tg, err := ts.Acquire(ctx, group, 100)
				res <- result{tg, err}
				return
			}
			res <- result{err: errors.New("watch ended without a delete")}
		}()
		relSent := time.Now()
		if err := hs.Release(ctx, g); err != nil {
			t.Fatalf("round %d: release: %v", round, err)
		}
		r := <-res
		wcancel()
		if r.err != nil {
			t.Fatalf("round %d: %s acquire on delete: %v", round, taker.node, r.err)
		}
		if r.g.Epoch <= g.Epoch {
			t.Errorf("round %d: epoch %d after %d", round, r.g.Epoch, g.Epoch)
		}
		lat = append(lat, r.g.AcquiredAt.Sub(relSent))
		if err := ts.Release(ctx, r.g); err != nil {
			t.Fatalf("round %d: release: %v", round, err)
		}
	}
	t.Logf("release → watcher acquired (release send to acquire ack): %v", lat)
}

// testHolderReacquires: acquiring a group one's own session already holds
// returns the grant it holds, same epoch (an acquire whose answer was lost
// is retried; a release that failed leaves the key under the live session:
// neither may lock the holder out of its own group). Others still get
// ErrHeld; after a release the next grant has a higher epoch.
func testHolderReacquires(t *testing.T, c Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := newContender(t, c, "re-a"), newContender(t, c, "re-b")
	as, err := a.session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := b.session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const group = "reacquire"
	g, err := as.Acquire(ctx, group, 100)
	if err != nil {
		t.Fatal(err)
	}
	again, err := as.Acquire(ctx, group, 100)
	if err != nil || again.Epoch != g.Epoch {
		t.Fatalf("holder re-acquires: epoch %d, %v; want epoch %d", again.Epoch, err, g.Epoch)
	}
	if _, err := bs.Acquire(ctx, group, 100); !errors.Is(err, quorum.ErrHeld) {
		t.Fatalf("another session acquires a held group: %v, want ErrHeld", err)
	}
	h, ok, err := a.b.Inspect(ctx, group)
	if err != nil || !ok || h.Epoch != g.Epoch || h.Node != a.node {
		t.Fatalf("inspect after re-acquire: %+v %v %v", h, ok, err)
	}
	if err := as.Release(ctx, g); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := a.b.Inspect(ctx, group); err != nil || ok {
		t.Fatalf("released group still held: %v %v", ok, err)
	}
	g2, err := bs.Acquire(ctx, group, 100)
	if err != nil || g2.Epoch <= g.Epoch {
		t.Fatalf("acquire after release: epoch %d, %v; want > %d", g2.Epoch, err, g.Epoch)
	}
}

// acquireLoop has k acquire group until it succeeds or ctx ends; it returns
// the grant and the acknowledgement time.
func acquireLoop(ctx context.Context, t testing.TB, k *contender, group string) (quorum.Grant, error) {
	wake := notifier(ctx, t, k.b, group)
	var last error
	for ctx.Err() == nil {
		s, err := k.session(ctx)
		if err != nil {
			last = err
			waitWake(ctx, nil, 50*time.Millisecond)
			continue
		}
		g, err := s.Acquire(ctx, group, 100)
		if err == nil {
			return g, nil
		}
		last = err
		waitWake(ctx, wake, 50*time.Millisecond)
	}
	return quorum.Grant{}, fmt.Errorf("%s gave up on %q: %w (last error: %v)", k.node, group, ctx.Err(), last)
}

// 3. A holder stops renewing (dies) without closing: the lease expires at
// the quorum and another contender acquires, after the dead one's deadline.
func testHolderDies(t *testing.T, c Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b := newContender(t, c, "die-a"), newContender(t, c, "die-b")
	const group = "dies"
	as, err := a.session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g, err := as.Acquire(ctx, group, 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.session(ctx); err != nil {
		t.Fatal(err)
	}
	dead := a.kill()
	deadline := dead.Deadline()
	if deadline.IsZero() {
		t.Fatal("killed session already lost")
	}
	killed := time.Now()
	bg, err := acquireLoop(ctx, t, b, group)
	if err != nil {
		t.Fatal(err)
	}
	if !bg.AcquiredAt.After(deadline) {
		t.Errorf("acquired %v before the dead holder's local deadline", deadline.Sub(bg.AcquiredAt))
	}
	if bg.Epoch <= g.Epoch {
		t.Errorf("epoch %d after %d", bg.Epoch, g.Epoch)
	}
	t.Logf("dead holder: deadline %v after kill; taken over %v after kill (%v after its deadline)",
		deadline.Sub(killed), bg.AcquiredAt.Sub(killed), bg.AcquiredAt.Sub(deadline))
	closeCtx, cc := context.WithTimeout(context.Background(), time.Second)
	defer cc()
	dead.Close(closeCtx)
}

// 4. A partitioned holder signals loss before its local deadline, and nobody
// acquires before that deadline.
func testHolderPartitioned(t *testing.T, c Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b := newContender(t, c, "part-a"), newContender(t, c, "part-b")
	const group = "partition"
	as, err := a.session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as.Acquire(ctx, group, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := b.session(ctx); err != nil {
		t.Fatal(err)
	}
	tr := trackDeadline(as)
	type result struct {
		g   quorum.Grant
		err error
	}
	res := make(chan result, 1)
	go func() {
		g, err := acquireLoop(ctx, t, b, group)
		res <- result{g, err}
	}()
	c.Partition(t, a.node)
	cut := time.Now()
	select {
	case <-as.Done():
	case <-time.After(10 * a.opts.TTL):
		t.Fatalf("partitioned holder never signalled loss")
	}
	<-tr.stopped
	deadline, doneSeen := tr.get()
	if !doneSeen.Before(deadline) {
		t.Errorf("loss signalled %v after the local deadline", doneSeen.Sub(deadline))
	}
	if !errors.Is(as.Err(), quorum.ErrLost) {
		t.Errorf("loss error %v does not wrap ErrLost", as.Err())
	}
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !r.g.AcquiredAt.After(deadline) {
		t.Errorf("%s acquired %v before the partitioned holder's deadline", b.node, deadline.Sub(r.g.AcquiredAt))
	}
	t.Logf("partition: loss seen %v after cut, %v before deadline; other acquired %v after deadline",
		doneSeen.Sub(cut), deadline.Sub(doneSeen), r.g.AcquiredAt.Sub(deadline))
	c.Heal(t, a.node)
	if _, err := acquireLoop(ctx, t, a, "partition-healed"); err != nil {
		t.Errorf("after heal: %v", err)
	}
}

// 5. The quorum leader is killed while leases are held: mutual exclusion
// holds throughout; a steady holder either keeps its lease or loses it
// before anyone else acquires.
func testLeaderKilled(t *testing.T, c Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ks := contenders(t, c, "lk", 3)
	h, w := newContender(t, c, "lk-steady"), newContender(t, c, "lk-waiter")
	const steady = "steady"
	hs, err := h.session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hg, err := hs.Acquire(ctx, steady, 100)
	if err != nil {
		t.Fatal(err)
	}
	tr := trackDeadline(hs)
	if _, err := w.session(ctx); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	type result struct {
		g   quorum.Grant
		err error
	}
	wres := make(chan result, 1)
	go func() {
		g, err := acquireLoop(wctx, t, w, steady)
		wres <- result{g, err}
	}()

	stop := make(chan struct{})
	ivc := make(chan []interval, 1)
	go func() { ivc <- mutexLoop(ctx, t, ks, "mutex", 1<<30, stop) }()

	ttl := ks[0].opts.TTL
	phase := func(d time.Duration) { waitWake(ctx, nil, d) }
	phase(ttl)
	leader := c.KillLeader(t)
	t.Logf("killed leader %s", leader)
	phase(2 * ttl)
	c.Restart(t, leader)
	phase(2 * ttl)
	close(stop)
	ivs := <-ivc
	checkIntervals(t, ivs)
	t.Logf("%d grants across the leader kill", len(ivs))

	wcancel()
	wr := <-wres
	select {
	case <-hs.Done():
		<-tr.stopped
		deadline, doneSeen := tr.get()
		if !doneSeen.Before(deadline) {
			t.Errorf("steady holder: loss signalled %v after its deadline", doneSeen.Sub(deadline))
		}
		if wr.err == nil && !wr.g.AcquiredAt.After(deadline) {
			t.Errorf("steady group taken %v before the lost holder's deadline", deadline.Sub(wr.g.AcquiredAt))
		}
		t.Logf("steady holder lost its lease (%v); taken over: %v", hs.Err(), wr.err == nil)
	default:
		if wr.err == nil {
			t.Errorf("steady group acquired by %s (epoch %d) while its holder's session is live", w.node, wr.g.Epoch)
		}
		hh, ok, err := w.b.Inspect(ctx, steady)
		if err != nil {
			t.Fatal(err)
		}
		if !ok || hh.Node != h.node || hh.Epoch != hg.Epoch {
			t.Errorf("steady holder's session is live but the group shows %+v (held %v)", hh, ok)
		}
		t.Logf("steady holder kept its lease through the leader kill")
	}
}

// 6. The whole quorum goes down: every holder signals loss before its local
// deadline; after a restart the group can be acquired again.
func testQuorumDown(t *testing.T, c Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	hs := contenders(t, c, "qd", 2)
	var trs []*deadlineTracker
	var sess []quorum.Session
	for i, k := range hs {
		s, err := k.session(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Acquire(ctx, fmt.Sprintf("down%d", i), 100); err != nil {
			t.Fatal(err)
		}
		sess = append(sess, s)
		trs = append(trs, trackDeadline(s))
	}
	stopped := time.Now()
	c.StopAll(t)
	var lastDeadline time.Time
	for i, s := range sess {
		select {
		case <-s.Done():
		case <-time.After(10 * hs[i].opts.TTL):
			t.Fatalf("%s never signalled loss with the quorum down", hs[i].node)
		}
		<-trs[i].stopped
		deadline, doneSeen := trs[i].get()
		if !doneSeen.Before(deadline) {
			t.Errorf("%s: loss signalled %v after its deadline", hs[i].node, doneSeen.Sub(deadline))
		}
		if !errors.Is(s.Err(), quorum.ErrLost) {
			t.Errorf("%s: loss error %v does not wrap ErrLost", hs[i].node, s.Err())
		}
		if deadline.After(lastDeadline) {
			lastDeadline = deadline
		}
		t.Logf("%s: loss seen %v after stop, %v before its deadline", hs[i].node, doneSeen.Sub(stopped), deadline.Sub(doneSeen))
	}
	c.StartAll(t)
	n := newContender(t, c, "qd-new")
	g, err := acquireLoop(ctx, t, n, "down0")
	if err != nil {
		t.Fatal(err)
	}
	if !g.AcquiredAt.After(lastDeadline) {
		t.Errorf("acquired before the old holders' deadlines")
	}
	t.Logf("after restart: acquired %v after the stop", g.AcquiredAt.Sub(stopped))
}

// 7. Values another tool wrote that are not records count as held by an
// unknown node: Inspect says Unknown, Acquire fails with ErrHeld.
func testBadValues(t *testing.T, c Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k := newContender(t, c, "bad")
	s, err := k.session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"bad-garbage": []byte("\x00\xffnot json at all, and longer than sixty-four bytes to check the raw prefix bound"),
		"bad-version": []byte(`{"v":2,"node":"n1","priority":100}`),
		"bad-nonode":  []byte(`{"v":1,"node":"","priority":100}`),
		"bad-empty":   {},
	}
	events, err := k.b.Watch(ctx, "bad-garbage")
	if err != nil {
		t.Fatal(err)
	}
	for group, val := range cases {
		c.WriteRaw(t, group, val)
		h, ok, err := k.b.Inspect(ctx, group)
		if err != nil {
			t.Fatalf("%s: inspect: %v", group, err)
		}
		if !ok || !h.Unknown || h.Node != "" {
			t.Errorf("%s: inspect = %+v, held %v; want held by unknown", group, h, ok)
		}
		if len(h.Raw) > 64 {
			t.Errorf("%s: raw keeps %d bytes, want at most 64", group, len(h.Raw))
		}
		_, err = s.Acquire(ctx, group, 200)
		if !errors.Is(err, quorum.ErrHeld) {
			t.Errorf("%s: acquire over a bad value: %v, want ErrHeld", group, err)
		}
	}
	list, err := k.b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	unknown := 0
	for _, h := range list {
		if _, bad := cases[h.Group]; bad && h.Unknown {
			unknown++
		}
	}
	if unknown != len(cases) {
		t.Errorf("list shows %d of %d bad values as unknown: %+v", unknown, len(cases), list)
	}
	for ev := range events {
		if ev.Type == quorum.EventPut {
			if !ev.Holder.Unknown {
				t.Errorf("watch: put of a bad value gave %+v", ev.Holder)
			}
			break
		}
	}
	// A good grant still works next to the bad values.
	if _, err := s.Acquire(ctx, "bad-neighbour", 100); err != nil {
		t.Errorf("acquire a free group beside bad values: %v", err)
	}
}

// testOutdatedMarks: a mark is written only under the group's current
// epoch, is read by any client, outlives the recorder's session, stays out
// of the groups' listing and is gone once cleared.
func testOutdatedMarks(t *testing.T, c Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	holder, other := newContender(t, c, "mark-a"), newContender(t, c, "mark-b")
	s, err := holder.session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.Acquire(ctx, "fence", 100)
	if err != nil {
		t.Fatal(err)
	}
	if ms, err := other.b.Outdated(ctx, "fence"); err != nil || len(ms) != 0 {
		t.Fatalf("outdated before any mark = %+v, %v; want none", ms, err)
	}
	at := time.Now().UTC().Truncate(time.Millisecond)
	want := quorum.Mark{Group: "fence", Node: "mark-b", Epoch: g.Epoch, By: "mark-a", At: at}
	// The handler runs apart from the daemon: any client may write the mark
	// as long as the epoch is the group's.
	if err := other.b.MarkOutdated(ctx, want); err != nil {
		t.Fatalf("mark under the holder's epoch: %v", err)
	}
	for _, bad := range []quorum.Mark{
		{Group: "fence", Node: "mark-c", Epoch: g.Epoch + 1, By: "mark-a"},
		{Group: "free", Node: "mark-c", Epoch: g.Epoch, By: "mark-a"},
	} {
		if err := holder.b.MarkOutdated(ctx, bad); !errors.Is(err, quorum.ErrNotOwner) {
			t.Errorf("mark %+v: %v, want ErrNotOwner", bad, err)
		}
	}
	for _, bad := range []quorum.Mark{{Group: "fence", Node: "a/b", Epoch: g.Epoch}, {Group: "", Node: "x", Epoch: g.Epoch}, {Group: "fence", Node: "x"}} {
		if err := holder.b.MarkOutdated(ctx, bad); err == nil {
			t.Errorf("mark %+v accepted", bad)
		}
	}
	check := func(when string, want ...quorum.Mark) {
		t.Helper()
		got, err := holder.b.Outdated(ctx, "fence")
		if err != nil {
			t.Fatalf("%s: outdated: %v", when, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: marks %+v, want %+v", when, got, want)
		}
		for i := range got {
			if got[i].Group != want[i].Group || got[i].Node != want[i].Node || got[i].Epoch != want[i].Epoch ||
				got[i].By != want[i].By || !got[i].At.Equal(want[i].At) {
				t.Errorf("%s: mark %d = %+v, want %+v", when, i, got[i], want[i])
			}
		}
	}
	check("after marking", want)
	again := want
	again.By = "mark-a-again"
	if err := holder.b.MarkOutdated(ctx, again); err != nil {
		t.Fatalf("mark again: %v", err)
	}
	check("after marking again (replaced)", again)
	list, err := holder.b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Group != "fence" {
		t.Errorf("list with a mark = %+v, want only the group fence", list)
	}
	// The recorder's session ends: its grant goes, the mark stays; the old
	// epoch marks no more.
	holder.stop() // closes the session: its keys are revoked
	for {
		if _, held, err := other.b.Inspect(ctx, "fence"); err == nil && !held {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the closed session's group is still held")
		}
		time.Sleep(10 * time.Millisecond)
	}
	check("after the recorder's session closed", again)
	if err := other.b.MarkOutdated(ctx, quorum.Mark{Group: "fence", Node: "mark-a", Epoch: g.Epoch, By: "mark-b"}); !errors.Is(err, quorum.ErrNotOwner) {
		t.Errorf("mark under a released epoch: %v, want ErrNotOwner", err)
	}
	if err := other.b.ClearOutdated(ctx, "fence", "mark-b"); err != nil {
		t.Fatalf("clear: %v", err)
	}
	check("after clearing")
	if err := other.b.ClearOutdated(ctx, "fence", "mark-b"); err != nil {
		t.Errorf("clear an absent mark: %v", err)
	}
	if err := other.b.ClearOutdated(ctx, "fence", ""); err == nil {
		t.Error("clear with no node accepted")
	}
}
