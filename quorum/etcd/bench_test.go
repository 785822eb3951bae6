package etcd_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/quorum/etcd"
	"github.com/leasehold/leasehold/quorum/etcd/etcdtest"
)

// TestBenchLease prints lease timings against an embedded single etcd member
// tuned for 1 s TTLs, as a markdown table. Run with LEASEHOLD_BENCH=1.
func TestBenchLease(t *testing.T) {
	if os.Getenv("LEASEHOLD_BENCH") != "1" {
		t.Skip("benchmark: set LEASEHOLD_BENCH=1")
	}
	c := etcdtest.Start(t, 1)
	ttls := []time.Duration{2 * time.Second, time.Second}
	rows := []string{
		"expiry: holder's last renewal ack → watcher acquired (n=20)",
		"acquire latency (n=50)",
		"release sent → watcher acquired (n=20)",
		"requests/s, one node holding 1 group",
		"requests/s, one node holding 100 groups",
		"requests/s, one node holding 1000 groups",
	}
	cells := map[string][]string{}
	for _, ttl := range ttls {
		bb := benchBackends{t: t, c: c, ttl: ttl}
		cells[rows[0]] = append(cells[rows[0]], stats(bb.expiry(20, 5)))
		cells[rows[1]] = append(cells[rows[1]], stats(bb.acquire(50)))
		cells[rows[2]] = append(cells[rows[2]], stats(bb.handover(20)))
		for i, n := range []int{1, 100, 1000} {
			cells[rows[3+i]] = append(cells[rows[3+i]], fmt.Sprintf("%.1f", bb.requestRate(n)))
		}
	}
	fmt.Println()
	fmt.Println("| etcd (1 member, embedded, loopback) | TTL 2 s | TTL 1 s |")
	fmt.Println("|---|---|---|")
	for _, r := range rows {
		fmt.Printf("| %s | %s | %s |\n", r, cells[r][0], cells[r][1])
	}
	fmt.Println()
	fmt.Println("Latencies are median / p95. Requests/s counts every request the backend sent (Backend.Requests) over 4 s of holding.")
}

type benchBackends struct {
	t   *testing.T
	c   *etcdtest.Cluster
	ttl time.Duration
}

func (bb benchBackends) backend(node string) *etcd.Backend {
	o := quorum.ScaledOptions(bb.ttl)
	o.Node = node
	b, err := etcd.New(bb.c.Config(), o, etcdtest.Logger(node))
	if err != nil {
		bb.t.Fatal(err)
	}
	bb.t.Cleanup(func() { b.Close() })
	return b
}

// running opens a session and renews it until the returned stop is called.
func running(t *testing.T, b *etcd.Backend, onRenew func()) (*etcd.Session, func()) {
	s, err := b.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	es := s.(*etcd.Session)
	if onRenew != nil {
		es.OnRenew(func(time.Duration, time.Time) { onRenew() })
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); es.Run(ctx) }()
	return es, func() { cancel(); <-done }
}

func stats(ds []time.Duration) string {
	if len(ds) == 0 {
		return "n/a"
	}
	slices.Sort(ds)
	p := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	r := func(d time.Duration) string {
		if d < 10*time.Millisecond {
			return d.Round(10 * time.Microsecond).String()
		}
		return d.Round(time.Millisecond).String()
	}
	return r(p(0.5)) + " / " + r(p(0.95))
}

// expiry: a holder stops renewing; a watcher acquires on the delete event.
func (bb benchBackends) expiry(n, parallel int) []time.Duration {
	t := bb.t
	hb, wb := bb.backend("bench-holder"), bb.backend("bench-watcher")
	ws, wstop := running(t, wb, nil)
	defer wstop()
	var mu sync.Mutex
	var out []time.Duration
	for batch := 0; batch < n; batch += parallel {
		var wg sync.WaitGroup
		for i := batch; i < min(n, batch+parallel); i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				group := fmt.Sprintf("exp-%v-%d", bb.ttl, i)
				var lmu sync.Mutex
				var last time.Time
				hs, hstop := running(t, hb, func() { lmu.Lock(); last = time.Now(); lmu.Unlock() })
				if _, err := hs.Acquire(context.Background(), group, 100); err != nil {
					t.Error(err)
					hstop()
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*bb.ttl)
				defer cancel()
				events, err := wb.Watch(ctx, group)
				if err != nil {
					t.Error(err)
					hstop()
					return
				}
				// Let it renew a few times, then die; stagger the deaths so
				// the samples fall at different phases of the server's
				// 500 ms expiry sweep.
				<-time.After(bb.ttl/2 + time.Duration(i%parallel)*97*time.Millisecond)
				hstop()
				for ev := range events {
					if ev.Type != quorum.EventDelete {
						continue
					}
					g, err := ws.Acquire(ctx, group, 100)
					if err != nil {
						t.Error(err)
						return
					}
					lmu.Lock()
					d := g.AcquiredAt.Sub(last)
					lmu.Unlock()
					mu.Lock()
					out = append(out, d)
					mu.Unlock()
					ws.Release(ctx, g)
					break
				}
				hs.Close(context.Background())
			}()
		}
		wg.Wait()
	}
	return out
}

func (bb benchBackends) acquire(n int) []time.Duration {
	b := bb.backend("bench-acq")
	s, stop := running(bb.t, b, nil)
	defer stop()
	defer s.Close(context.Background())
	ctx := context.Background()
	var out []time.Duration
	for i := range n {
		t0 := time.Now()
		g, err := s.Acquire(ctx, "acq", 100)
		if err != nil {
			bb.t.Fatalf("acquire %d: %v", i, err)
		}
		out = append(out, g.AcquiredAt.Sub(t0))
		if err := s.Release(ctx, g); err != nil {
			bb.t.Fatal(err)
		}
	}
	return out
}

func (bb benchBackends) handover(n int) []time.Duration {
	hb, wb := bb.backend("bench-rel-h"), bb.backend("bench-rel-w")
	hs, hstop := running(bb.t, hb, nil)
	defer hstop()
	ws, wstop := running(bb.t, wb, nil)
	defer wstop()
	ctx := context.Background()
	var out []time.Duration
	for i := range n {
		g, err := hs.Acquire(ctx, "rel", 100)
		if err != nil {
			bb.t.Fatal(err)
		}
		wctx, cancel := context.WithCancel(ctx)
		events, err := wb.Watch(wctx, "rel")
		if err != nil {
			bb.t.Fatal(err)
		}
		got := make(chan quorum.Grant, 1)
		go func() {
			for ev := range events {
				if ev.Type == quorum.EventDelete {
					wg, err := ws.Acquire(ctx, "rel", 100)
					if err != nil {
						bb.t.Errorf("handover %d: %v", i, err)
					}
					got <- wg
					return
				}
			}
			got <- quorum.Grant{}
		}()
		sent := time.Now()
		if err := hs.Release(ctx, g); err != nil {
			bb.t.Fatal(err)
		}
		wg := <-got
		cancel()
		if wg.Epoch != 0 {
			out = append(out, wg.AcquiredAt.Sub(sent))
			ws.Release(ctx, wg)
		}
	}
	return out
}

// requestRate holds n groups with one session and counts requests per
// second once the acquisitions (and their history writes) are done.
func (bb benchBackends) requestRate(n int) float64 {
	b := bb.backend(fmt.Sprintf("bench-rate-%d", n))
	s, stop := running(bb.t, b, nil)
	defer stop()
	defer s.Close(context.Background())
	ctx := context.Background()
	for i := range n {
		if _, err := s.Acquire(ctx, fmt.Sprintf("rate-%v-%d", bb.ttl, i), 100); err != nil {
			bb.t.Fatal(err)
		}
	}
	// Wait for the history writes to drain: the count then grows only by renewals.
	quiet := time.NewTicker(bb.ttl)
	defer quiet.Stop()
	prev := b.Requests()
	for range quiet.C {
		cur := b.Requests()
		if cur-prev <= uint64(bb.ttl/quorum.ScaledOptions(bb.ttl).RenewInterval)+1 {
			break
		}
		prev = cur
	}
	const window = 4 * time.Second
	r0, t0 := b.Requests(), time.Now()
	<-time.After(window)
	return float64(b.Requests()-r0) / time.Since(t0).Seconds()
}
