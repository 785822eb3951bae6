package raft

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/quorum"
)

func quantiles(ds []time.Duration) (median, p95 time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[(len(s)*95+99)/100-1]
}

// TestBenchmark prints latency and load figures as a markdown table. It runs
// only with LEASEHOLD_BENCH=1; nothing is asserted about timings.
func TestBenchmark(t *testing.T) {
	if os.Getenv("LEASEHOLD_BENCH") != "1" {
		t.Skip("set LEASEHOLD_BENCH=1 to run the raft benchmark")
	}
	const ttl = 500 * time.Millisecond
	v := startVoters(t, 3, nil)
	var rows []string
	row := func(what string, ds []time.Duration) {
		med, p95 := quantiles(ds)
		rows = append(rows, fmt.Sprintf("| %s | %d | %v | %v |", what, len(ds), med.Round(10*time.Microsecond), p95.Round(10*time.Microsecond)))
	}
	a := newBackend(t, v.clientAddrs(), nil, scaled("a", ttl))
	b := newBackend(t, v.clientAddrs(), nil, scaled("b", ttl))
	sb := openTracked(t, b)

	// Acquire latency.
	var acq []time.Duration
	sa := openTracked(t, a)
	for range 200 {
		start := time.Now()
		g, err := sa.Acquire(ctxT(t, time.Second), "lat", 1)
		if err != nil {
			t.Fatal(err)
		}
		acq = append(acq, time.Since(start))
		if err := sa.Release(ctxT(t, time.Second), g); err != nil {
			t.Fatal(err)
		}
	}
	row("acquire (request → ack)", acq)

	// Release → watcher acquires.
	var handover []time.Duration
	for range 20 {
		g, err := sa.Acquire(ctxT(t, time.Second), "ho", 1)
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithCancel(context.Background())
		events, err := b.Watch(wctx, "ho")
		if err != nil {
			t.Fatal(err)
		}
		// The watch is established once it reports the grant's absence... it
		// reports nothing until a change, so give it a round trip first.
		if _, _, err := b.Inspect(ctxT(t, time.Second), "ho"); err != nil {
			t.Fatal(err)
		}
		warm := time.NewTimer(20 * time.Millisecond)
		<-warm.C
		start := time.Now()
		if err := sa.Release(ctxT(t, time.Second), g); err != nil {
			t.Fatal(err)
		}
		for ev := range events {
			if ev.Type == quorum.EventDelete {
				gb, err := sb.Acquire(ctxT(t, time.Second), "ho", 1)
				if err != nil {
					t.Fatal(err)
				}
				handover = append(handover, time.Since(start))
				sb.Release(ctxT(t, time.Second), gb)
				break
			}
		}
		cancel()
	}
	row("release → watcher acquires", handover)

	// Holder's last renewal → contender acquires (watch fast path).
	var expiry []time.Duration
	for i := range 20 {
		group := fmt.Sprintf("exp%d", i)
		sx := openTracked(t, a)
		if _, err := sx.Acquire(ctxT(t, time.Second), group, 1); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithCancel(context.Background())
		events, err := b.Watch(wctx, group)
		if err != nil {
			t.Fatal(err)
		}
		warm := time.NewTimer(50 * time.Millisecond)
		<-warm.C
		sx.stop()
		<-sx.done
		o := scaled("a", ttl)
		lastSent := sx.deadline().Add(-(o.TTL - o.Drift - o.Margin))
		for ev := range events {
			if ev.Type == quorum.EventDelete {
				if _, err := sb.Acquire(ctxT(t, time.Second), group, 1); err != nil {
					t.Fatal(err)
				}
				expiry = append(expiry, time.Since(lastSent))
				break
			}
		}
		cancel()
	}
	row(fmt.Sprintf("holder's last renewal → other acquires (TTL %v)", ttl), expiry)

	// Quorum requests per second from one node holding n groups.
	var load []string
	for _, n := range []int{1, 100, 1000} {
		nb := newBackend(t, v.clientAddrs(), nil, scaled(fmt.Sprintf("load%d", n), ttl))
		s := openTracked(t, nb)
		for i := range n {
			if _, err := s.Acquire(ctxT(t, time.Second), fmt.Sprintf("load%d-%d", n, i), 1); err != nil {
				t.Fatal(err)
			}
		}
		before, start := nb.Requests(), time.Now()
		wait := time.NewTimer(2 * time.Second)
		<-wait.C
		rate := float64(nb.Requests()-before) / time.Since(start).Seconds()
		load = append(load, fmt.Sprintf("| %d | %.1f |", n, rate))
	}

	// New leader after the leader shuts down.
	var elect []time.Duration
	for range 10 {
		l := v.waitLeader()
		start := time.Now()
		v.stop(l)
		v.waitLeader()
		elect = append(elect, time.Since(start))
		v.start(l)
		settle := time.NewTimer(300 * time.Millisecond)
		<-settle.C
	}
	row("leader stopped (hands leadership off) → new leader serving", elect)

	var out strings.Builder
	fmt.Fprintf(&out, "\nraft-3 on loopback, heartbeat/election %v/%v, TTL %v\n\n", v.cfgs[0].HeartbeatTimeout, v.cfgs[0].ElectionTimeout, ttl)
	out.WriteString("| measure | n | median | p95 |\n|---|---|---|---|\n")
	out.WriteString(strings.Join(rows, "\n"))
	out.WriteString("\n\n| groups held by one node | quorum requests/s |\n|---|---|\n")
	out.WriteString(strings.Join(load, "\n"))
	t.Log(out.String())
}
