package raft

import (
	"errors"
	"testing"
	"time"

	"github.com/leasehold/leasehold/quorum"
)

func TestBasics(t *testing.T) {
	v := startVoters(t, 3, nil)
	a := newBackend(t, v.clientAddrs(), nil, testOptions("a"))
	b := newBackend(t, v.clientAddrs(), nil, testOptions("b"))

	events, err := a.Watch(ctxT(t, 20*time.Second), "g1")
	if err != nil {
		t.Fatal(err)
	}
	sa := openRun(t, a)
	sb := openRun(t, b)
	if sa.ID() == sb.ID() {
		t.Fatalf("sessions share id %s", sa.ID())
	}
	g, err := sa.Acquire(ctxT(t, time.Second), "g1", 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Acquire(ctxT(t, time.Second), "g1", 50); !errors.Is(err, quorum.ErrHeld) {
		t.Fatalf("second acquire: %v, want ErrHeld", err)
	}
	if again, err := sa.Acquire(ctxT(t, time.Second), "g1", 100); err != nil || again.Epoch != g.Epoch {
		t.Fatalf("re-acquire by holder: epoch %d, %v; want its grant, epoch %d", again.Epoch, err, g.Epoch)
	}
	h, ok, err := b.Inspect(ctxT(t, time.Second), "g1")
	if err != nil || !ok {
		t.Fatalf("inspect: %v %v", ok, err)
	}
	if h.Node != "a" || h.Epoch != g.Epoch || h.Priority != 100 || h.TTLLeft <= 0 || h.Unknown {
		t.Fatalf("inspect: %+v, grant %+v", h, g)
	}
	if _, ok, err := b.Inspect(ctxT(t, time.Second), "nope"); err != nil || ok {
		t.Fatalf("inspect free: %v %v", ok, err)
	}
	if err := sb.Release(ctxT(t, time.Second), quorum.Grant{Group: "g1", Epoch: g.Epoch + 1}); !errors.Is(err, quorum.ErrNotOwner) {
		t.Fatalf("release with wrong epoch: %v", err)
	}
	if err := sa.Release(ctxT(t, time.Second), g); err != nil {
		t.Fatal(err)
	}
	g2, err := sb.Acquire(ctxT(t, time.Second), "g1", 50)
	if err != nil {
		t.Fatal(err)
	}
	if g2.Epoch <= g.Epoch {
		t.Fatalf("epoch went from %d to %d", g.Epoch, g2.Epoch)
	}
	if _, err := sb.Acquire(ctxT(t, time.Second), "g2", 50); err != nil {
		t.Fatal(err)
	}
	list, err := a.List(ctxT(t, time.Second))
	if err != nil || len(list) != 2 || list[0].Group != "g1" || list[1].Group != "g2" {
		t.Fatalf("list: %+v %v", list, err)
	}
	hist, err := a.History(ctxT(t, time.Second), "g1")
	if err != nil || len(hist) != 2 || hist[0].Node != "a" || hist[1].Node != "b" {
		t.Fatalf("history: %+v %v", hist, err)
	}
	// Closing b's session deletes both its keys.
	if err := sb.Close(ctxT(t, time.Second)); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(sb.Err(), quorum.ErrClosed) {
		t.Fatalf("closed session err: %v", sb.Err())
	}
	if list, err := a.List(ctxT(t, time.Second)); err != nil || len(list) != 0 {
		t.Fatalf("list after close: %+v %v", list, err)
	}
	want := []struct {
		typ   quorum.EventType
		epoch uint64
		node  string
	}{{quorum.EventPut, g.Epoch, "a"}, {quorum.EventDelete, g.Epoch, ""}, {quorum.EventPut, g2.Epoch, "b"}, {quorum.EventDelete, g2.Epoch, ""}}
	for i, w := range want {
		select {
		case ev := <-events:
			epoch := ev.Epoch
			if ev.Type == quorum.EventPut {
				epoch = ev.Holder.Epoch
			}
			if ev.Type != w.typ || ev.Group != "g1" || epoch != w.epoch || ev.Holder.Node != w.node {
				t.Fatalf("event %d: %+v, want %+v", i, ev, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d: none", i)
		}
	}
	if sa.Deadline().IsZero() || sa.Err() != nil {
		t.Fatalf("session a should be alive: %v", sa.Err())
	}
}
