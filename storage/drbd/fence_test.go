package drbd_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/quorum/quorumtest"
	"github.com/leasehold/leasehold/storage/drbd"
	"github.com/leasehold/leasehold/storage/drbd/drbdtest"
)

// fenceWorld is a memory quorum where node a holds group g (epoch
// returned), with a's and b's DRBD hosts linked and a's handler.
type fenceWorld struct {
	m      *quorumtest.Memory
	q      quorum.Backend // a's client
	a, b   *drbdtest.Host
	epoch  uint64
	handle func(self, peer string) drbd.Handler
}

func newFenceWorld(t *testing.T, holder string) *fenceWorld {
	t.Helper()
	m := quorumtest.NewMemory(time.Second)
	opts := quorumtest.Options(m.Cluster(), "a")
	w := &fenceWorld{m: m, q: m.Backend(t, "a", opts), a: drbdtest.NewHost("r0", 0), b: drbdtest.NewHost("r0", 0)}
	drbdtest.Link(w.a, w.b)
	if holder != "" {
		o := quorumtest.Options(m.Cluster(), holder)
		ctx, cancel := context.WithCancel(context.Background())
		s, err := m.Backend(t, holder, o).Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); s.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		g, err := s.Acquire(ctx, "g", 100)
		if err != nil {
			t.Fatal(err)
		}
		w.epoch = g.Epoch
	}
	w.handle = func(self, peer string) drbd.Handler {
		r := newRes(t, cfg(), w.a)
		return drbd.Handler{Q: w.q, Group: "g", Self: self, Peer: peer, State: r.State}
	}
	return w
}

func (w *fenceWorld) marks(t *testing.T) []quorum.Mark {
	t.Helper()
	ms, err := w.q.Outdated(context.Background(), "g")
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestHandlerFencePeer(t *testing.T) {
	ctx := context.Background()
	t.Run("holder outdates the peer: 4, mark under its epoch", func(t *testing.T) {
		w := newFenceWorld(t, "a")
		drbdtest.Cut(w.a)
		d := w.handle("a", "b").FencePeer(ctx)
		ms := w.marks(t)
		if d.Code != drbd.FencePeerOutdated || len(ms) != 1 || ms[0].Node != "b" || ms[0].Epoch != w.epoch || ms[0].By != "a" {
			t.Fatalf("decision %+v, marks %+v", d, ms)
		}
		// Called again (DRBD retries on a new disconnect): already marked.
		if d := w.handle("a", "b").FencePeer(ctx); d.Code != drbd.FencePeerOutdated || !strings.Contains(d.Reason, "already marked") {
			t.Fatalf("again: %+v", d)
		}
	})
	t.Run("peer Inconsistent: 3, no mark", func(t *testing.T) {
		w := newFenceWorld(t, "a")
		w.b.Set(drbd.Secondary, drbd.Inconsistent, drbd.Connected)
		drbdtest.Cut(w.a)
		w.a.SetPeerDiskAlone(drbd.Inconsistent)
		if d := w.handle("a", "b").FencePeer(ctx); d.Code != drbd.FencePeerInconsistent || len(w.marks(t)) != 0 {
			t.Fatalf("%+v, marks %+v", d, w.marks(t))
		}
	})
	t.Run("peer holds the lease: 6", func(t *testing.T) {
		w := newFenceWorld(t, "b")
		if d := w.handle("a", "b").FencePeer(ctx); d.Code != drbd.FenceOutdateYourself || len(w.marks(t)) != 0 {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("nobody holds the lease: 6", func(t *testing.T) {
		w := newFenceWorld(t, "")
		if d := w.handle("a", "b").FencePeer(ctx); d.Code != drbd.FenceOutdateYourself || !strings.Contains(d.Reason, "nobody") {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("holder marked itself: 6", func(t *testing.T) {
		w := newFenceWorld(t, "a")
		if err := w.q.MarkOutdated(ctx, quorum.Mark{Group: "g", Node: "a", Epoch: w.epoch}); err != nil {
			t.Fatal(err)
		}
		if d := w.handle("a", "b").FencePeer(ctx); d.Code != drbd.FenceOutdateYourself || !strings.Contains(d.Reason, "marks its disk outdated") {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("quorum unreachable: 6, naming the error", func(t *testing.T) {
		w := newFenceWorld(t, "a")
		w.m.StopAll()
		if d := w.handle("a", "b").FencePeer(ctx); d.Code != drbd.FenceOutdateYourself || !strings.Contains(d.Reason, "no leader") {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("mark refused: 1", func(t *testing.T) {
		w := newFenceWorld(t, "a")
		h := w.handle("a", "b")
		h.Q = failingMark{Marks: w.q}
		if d := h.FencePeer(ctx); d.Code != drbd.FenceHandlerFailed || !strings.Contains(d.Reason, "mark refused") {
			t.Fatalf("%+v", d)
		}
	})
}

// failingMark refuses every mark (the lease moved between the read and
// the write, or the quorum went).
type failingMark struct{ drbd.Marks }

func (failingMark) MarkOutdated(context.Context, quorum.Mark) error {
	return errors.New("mark refused: quorum: not owner")
}

func TestHandlerUnfence(t *testing.T) {
	ctx := context.Background()
	w := newFenceWorld(t, "b")
	if err := w.q.MarkOutdated(ctx, quorum.Mark{Group: "g", Node: "a", Epoch: w.epoch, By: "b"}); err != nil {
		t.Fatal(err)
	}
	// Still a resync target, or disconnected (a disk that calls itself
	// UpToDate alone may be the stale one): the mark stays.
	for _, set := range []func(){
		func() { w.a.Set(drbd.Secondary, drbd.Inconsistent, drbd.SyncTarget) },
		func() { drbdtest.Cut(w.a); w.a.Set(drbd.Secondary, drbd.UpToDate, drbd.WFConnection) },
	} {
		set()
		if _, err := w.handle("a", "b").Unfence(ctx); !errors.Is(err, drbd.ErrNotSynced) || len(w.marks(t)) != 1 {
			t.Fatalf("unfence: %v, marks %+v", err, w.marks(t))
		}
	}
	drbdtest.Link(w.a, w.b)
	w.a.Set(drbd.Secondary, drbd.UpToDate, drbd.Connected)
	ms, err := w.handle("a", "b").Unfence(ctx)
	if err != nil || len(ms) != 1 || ms[0].Node != "a" || ms[0].By != "b" || len(w.marks(t)) != 0 {
		t.Fatalf("unfence (after-resync-target): %+v %v, marks %+v", ms, err, w.marks(t))
	}
	if ms, err := w.handle("a", "b").Unfence(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("unfence without a mark: %+v %v", ms, err)
	}
	// On the resync source (DRBD's own unfence-peer helper), the peer's
	// mark goes.
	if err := w.q.MarkOutdated(ctx, quorum.Mark{Group: "g", Node: "a", Epoch: w.epoch, By: "b"}); err != nil {
		t.Fatal(err)
	}
	if ms, err := w.handle("b", "a").Unfence(ctx); err != nil || len(ms) != 1 || ms[0].Node != "a" || len(w.marks(t)) != 0 {
		t.Fatalf("unfence on the source: %+v %v, marks %+v", ms, err, w.marks(t))
	}
}

// A marked node is refused even with the lease and an UpToDate disk, and
// says why; once connected and in sync, the stale mark is cleared.
func TestPromoteMarkedAtQuorum(t *testing.T) {
	ctx := context.Background()
	w := newFenceWorld(t, "a")
	if err := w.q.MarkOutdated(ctx, quorum.Mark{Group: "g", Node: "b", Epoch: w.epoch, By: "a"}); err != nil {
		t.Fatal(err)
	}
	drbdtest.Cut(w.b)
	r := newRes(t, cfg(), w.b)
	r.OutdatedAtQuorum = drbd.MarkedAtQuorum(w.q, "g", "b")
	r.ClearOutdated = func(ctx context.Context) error { return w.q.ClearOutdated(ctx, "g", "b") }
	err := r.Promote(ctx, w.epoch+1)
	if !errors.Is(err, drbd.ErrRefused) || !strings.Contains(err.Error(), "marked outdated at the quorum") || w.b.Role() != drbd.Secondary {
		t.Fatalf("promote a marked node: %v, role %s", err, w.b.Role())
	}
	drbdtest.Link(w.a, w.b)
	if err := r.Promote(ctx, w.epoch+1); err != nil {
		t.Fatalf("promote connected and in sync: %v", err)
	}
	if ms := w.marks(t); len(ms) != 0 {
		t.Fatalf("stale mark kept: %+v", ms)
	}
}
