package quorumtest

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/quorum"
)

// memoryMinTTL keeps the contract quick; the invariants do not depend on it.
const memoryMinTTL = 500 * time.Millisecond

func TestMemoryContract(t *testing.T) {
	RunContract(t, func(t *testing.T) Cluster { return NewMemory(memoryMinTTL).Cluster() })
}

func memOpts(node string) quorum.Options {
	o := quorum.ScaledOptions(time.Second)
	o.Node = node
	return o
}

// nextEvent reads one event or fails after d (of fake time in a bubble).
func nextEvent(t *testing.T, ch <-chan quorum.Event, d time.Duration) quorum.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch closed")
		}
		return ev
	case <-time.After(d):
		t.Fatalf("no event within %v", d)
	}
	return quorum.Event{}
}

// memHolder2 starts a memory quorum with two nodes' clients, a and b; a
// opens a session, runs it (Run's result goes to runDone) and holds "g".
func memHolder2(ctx context.Context, t *testing.T) (m *Memory, a, b quorum.Backend, as quorum.Session, g quorum.Grant, runDone chan error) {
	t.Helper()
	m = NewMemory(time.Second)
	a, b = m.Backend(t, "a", memOpts("a")), m.Backend(t, "b", memOpts("b"))
	as, err := a.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	runDone = make(chan error, 1)
	go func() { runDone <- as.Run(ctx) }()
	if g, err = as.Acquire(ctx, "g", 100); err != nil {
		t.Fatal(err)
	}
	return m, a, b, as, g, runDone
}

// Inside a synctest bubble: a partitioned holder signals loss before its
// local deadline, the server deletes its key a TTL after the last renewal
// it received (the other node's watch sees it), and the holder's watch
// resyncs on heal.
func TestMemoryPartitionSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		m, a, b, as, g, runDone := memHolder2(ctx, t)
		bw, err := b.Watch(ctx, "g")
		if err != nil {
			t.Fatal(err)
		}
		aw, err := a.Watch(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second) // renewals keep it
		if as.Err() != nil {
			t.Fatalf("session lost while connected: %v", as.Err())
		}
		m.Partition("a")
		cut := time.Now()
		lastDeadline := as.Deadline()
		<-as.Done()
		lost := time.Now()
		if !lost.Before(lastDeadline) || !errors.Is(as.Err(), quorum.ErrLost) {
			t.Fatalf("loss at %v, deadline %v, err %v", lost.Sub(cut), lastDeadline.Sub(cut), as.Err())
		}
		if err := <-runDone; !errors.Is(err, quorum.ErrLost) {
			t.Fatalf("Run = %v", err)
		}
		ev := nextEvent(t, bw, 2*time.Second)
		if ev.Type != quorum.EventDelete || ev.Epoch != g.Epoch || !ev.At.After(lastDeadline) {
			t.Fatalf("b saw %+v (deadline at %v after cut)", ev, lastDeadline.Sub(cut))
		}
		m.Heal("a")
		ev = nextEvent(t, aw, time.Second)
		if ev.Type != quorum.EventResync || ev.Group != "" {
			t.Fatalf("a after heal: %+v, want the end of an empty resync", ev)
		}
	})
}

// Expire ends a node's lease now: its keys go (watchers see the delete) and
// its next renewal reports the session lost.
func TestMemoryExpire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		m, _, b, as, g, _ := memHolder2(ctx, t)
		bw, err := b.Watch(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		m.Expire("a")
		if ev := nextEvent(t, bw, time.Millisecond); ev.Type != quorum.EventDelete || ev.Epoch != g.Epoch {
			t.Fatalf("watch: %+v", ev)
		}
		<-as.Done()
		if !errors.Is(as.Err(), quorum.ErrLost) {
			t.Fatalf("err %v", as.Err())
		}
		if _, ok, err := b.Inspect(ctx, "g"); ok || err != nil {
			t.Fatalf("inspect: held %v, %v", ok, err)
		}
	})
}
