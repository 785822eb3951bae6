package resource_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/node/resource"
	"github.com/leasehold/leasehold/node/resource/resourcetest"
)

func TestChainOrderAndRollback(t *testing.T) {
	l := resourcetest.NewLedger()
	a, b, c := &resourcetest.Fake{Node: "a", Ledger: l}, &resourcetest.Fake{Node: "b", Ledger: l}, &resourcetest.Fake{Node: "c", Ledger: l}
	ch := resource.NewChain(a, b, c)
	ctx := context.Background()
	if err := ch.Promote(ctx, 5); err != nil || ch.Promoted() != 5 {
		t.Fatalf("promote: %v, promoted %d", err, ch.Promoted())
	}
	if err := ch.Demote(ctx, 5); err != nil || ch.Promoted() != 0 {
		t.Fatalf("demote: %v", err)
	}
	want := []string{"a promote 5", "b promote 5", "c promote 5", "c demote 5", "b demote 5", "a demote 5"}
	if got := l.Calls(); !slices.Equal(got, want) {
		t.Fatalf("calls %v\nwant  %v", got, want)
	}
	// b fails: a is demoted again, c never promoted.
	boom := errors.New("boom")
	b.Set(boom, nil, false)
	err := ch.Promote(ctx, 6)
	if !errors.Is(err, boom) || ch.Promoted() != 0 || len(l.Active()) != 0 {
		t.Fatalf("failed promote: err %v promoted %d active %v", err, ch.Promoted(), l.Active())
	}
	if got := l.Calls()[len(want):]; !slices.Equal(got, []string{"a promote 6", "b promote 6", "b demote 6", "a demote 6"}) {
		t.Fatalf("rollback calls %v", got)
	}
	// Demote goes on after a failure and reports it.
	b.Set(nil, boom, false)
	if err := ch.Promote(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if err := ch.Demote(ctx, 7); !errors.Is(err, boom) {
		t.Fatalf("demote err %v", err)
	}
	if act := l.Active(); len(act) != 1 || act["b"] != 7 {
		t.Fatalf("active after a failed demote: %v (want b only: a hung resource stays active)", act)
	}
}

func TestChainRefusesStaleEpochs(t *testing.T) {
	l := resourcetest.NewLedger()
	ch := resource.NewChain(&resourcetest.Fake{Node: "a", Ledger: l})
	ctx := context.Background()
	if err := ch.Promote(ctx, 9); err != nil {
		t.Fatal(err)
	}
	for _, f := range []func() error{
		func() error { return ch.Promote(ctx, 8) },
		func() error { return ch.Demote(ctx, 8) },
		func() error { return ch.Promote(ctx, 0) },
	} {
		if err := f(); !errors.Is(err, resource.ErrStaleEpoch) {
			t.Fatalf("err %v, want ErrStaleEpoch", err)
		}
	}
	if ch.Promoted() != 9 || l.Active()["a"] != 9 {
		t.Fatal("a stale call changed the promotion")
	}
	// The same epoch again is idempotent; a newer one goes through.
	if err := ch.Promote(ctx, 9); err != nil {
		t.Fatal(err)
	}
	if err := ch.Demote(ctx, 10); err != nil {
		t.Fatal(err)
	}
}

func TestHungResourceIsBoundedByCtx(t *testing.T) {
	l := resourcetest.NewLedger()
	f := &resourcetest.Fake{Node: "a", Ledger: l}
	f.Set(nil, nil, true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := resource.NewChain(f).Promote(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
}

// starter is a fake resource that records its Start.
type starter struct {
	*resourcetest.Fake
	started *[]string
	err     error
}

func (s starter) Start(context.Context) error {
	*s.started = append(*s.started, s.Name())
	return s.err
}

func TestChainStartCallsStartersInReverse(t *testing.T) {
	l := resourcetest.NewLedger()
	var started []string
	boom := errors.New("still Primary")
	a := starter{Fake: &resourcetest.Fake{Node: "a", Ledger: l}, started: &started, err: boom}
	b := &resourcetest.Fake{Node: "b", Ledger: l} // not a Starter
	c := starter{Fake: &resourcetest.Fake{Node: "c", Ledger: l}, started: &started}
	err := resource.NewChain(a, b, c).Start(context.Background())
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "resource fake a: start") {
		t.Fatalf("err %v", err)
	}
	if !slices.Equal(started, []string{"fake c", "fake a"}) || len(l.Calls()) != 0 {
		t.Fatalf("started %v, calls %v", started, l.Calls())
	}
	if err := resource.NewChain().Start(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// guard is a fake Guard (the watchdog's role in a chain); it records its
// escalations.
type guard struct {
	*resourcetest.Fake
	escalated *[]uint64
}

func (g guard) Escalate(epoch uint64, _ error) { *g.escalated = append(*g.escalated, epoch) }

func TestChainLeavesTheGuardWhenAGuardedResourceStaysActive(t *testing.T) {
	l := resourcetest.NewLedger()
	var escalated []uint64
	g := guard{&resourcetest.Fake{Node: "watchdog", Ledger: l}, &escalated}
	d := &resourcetest.Fake{Node: "drbd", Ledger: l}
	ch := resource.NewChain(g, d)
	ctx := context.Background()
	if err := ch.Promote(ctx, 3); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("still Primary")
	d.Set(nil, boom, false)
	err := ch.Demote(ctx, 3)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "resource fake watchdog: left active and escalated") {
		t.Fatalf("err %v", err)
	}
	if !slices.Equal(escalated, []uint64{3}) {
		t.Fatalf("escalations %v: want the guard escalated once, for epoch 3", escalated)
	}
	if act := l.Active(); act["watchdog"] != 3 || act["drbd"] != 3 {
		t.Fatalf("active %v: the guard must stay while drbd is active", act)
	}
	// Once the guarded resource demotes, so does the guard.
	d.Set(nil, nil, false)
	if err := ch.Demote(ctx, 3); err != nil || len(l.Active()) != 0 {
		t.Fatalf("err %v active %v", err, l.Active())
	}
	// A promotion that fails and cannot be undone keeps the guard too.
	d.Set(boom, boom, false)
	if err := ch.Promote(ctx, 4); !errors.Is(err, boom) || !strings.Contains(err.Error(), "left active") {
		t.Fatal(err)
	}
	if l.Active()["watchdog"] != 4 {
		t.Fatalf("active %v: the guard was demoted under a failed undo", l.Active())
	}
	if !slices.Equal(escalated, []uint64{3, 4}) {
		t.Fatalf("escalations %v: want epoch 4's failed undo escalated too", escalated)
	}
}

// slowPromote is a resource whose Promote waits for release before it
// makes the resource active.
type slowPromote struct {
	*resourcetest.Fake
	release chan struct{}
}

func (s slowPromote) Promote(ctx context.Context, epoch uint64) error {
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Fake.Promote(ctx, epoch)
}

// A demotion issued while a promotion is in flight waits for it and then
// undoes it: the resource ends demoted, never promoted after the demotion.
func TestChainDemoteWaitsForAPromotionInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := resourcetest.NewLedger()
		r := slowPromote{&resourcetest.Fake{Node: "drbd", Ledger: l}, make(chan struct{})}
		ch := resource.NewChain(r)
		ctx := context.Background()
		promoted := make(chan error, 1)
		go func() { promoted <- ch.Promote(ctx, 5) }()
		synctest.Wait()
		demoted := make(chan error, 1)
		go func() { demoted <- ch.Demote(ctx, 5) }()
		synctest.Wait()
		select {
		case err := <-demoted:
			t.Fatalf("demote returned (%v) while the promotion was in flight", err)
		default:
		}
		close(r.release)
		if err := <-promoted; err != nil {
			t.Fatal(err)
		}
		if err := <-demoted; err != nil {
			t.Fatal(err)
		}
		if act := l.Active(); len(act) != 0 || !slices.Equal(l.Calls(), []string{"drbd promote 5", "drbd demote 5"}) {
			t.Fatalf("active %v calls %v", act, l.Calls())
		}
		// A demotion whose ctx ends while it waits says so.
		r2 := slowPromote{&resourcetest.Fake{Node: "b", Ledger: l}, make(chan struct{})}
		ch = resource.NewChain(r2)
		go ch.Promote(ctx, 6)
		synctest.Wait()
		dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if err := ch.Demote(dctx, 6); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for the call in flight") {
			t.Fatalf("err %v", err)
		}
		close(r2.release)
	})
}
