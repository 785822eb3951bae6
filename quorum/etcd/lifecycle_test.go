package etcd_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/quorum/etcd"
	"github.com/leasehold/leasehold/quorum/etcd/etcdtest"
)

// TestCloseLeavesNoGoroutines: a backend with a session, a watch and history
// writes leaves nothing running after Close, and its watch channel closes.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := context.Background()
	o := quorum.ScaledOptions(time.Second)
	o.Node = "life"
	b, err := etcd.New(c.Config(), o, etcdtest.Logger("life"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- s.Run(rctx) }()
	events, err := b.Watch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.Acquire(ctx, "life", 100)
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-events; ev.Type != quorum.EventPut || ev.Group != "life" || ev.Holder.Epoch != g.Epoch || ev.Holder.Node != "life" {
		t.Errorf("watch of every group: %+v", ev)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if ev := <-events; ev.Type != quorum.EventDelete || ev.Epoch != g.Epoch {
		t.Errorf("close should delete the key: %+v", ev)
	}
	if err := <-runDone; !errors.Is(err, quorum.ErrClosed) {
		t.Errorf("Run after Close: %v, want ErrClosed", err)
	}
	cancel()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for range events {
	}
	if _, err := b.Open(ctx); !errors.Is(err, quorum.ErrClosed) {
		t.Errorf("open after close: %v", err)
	}
	limit := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	left := clientGoroutines()
	for len(left) > 0 && time.Now().Before(limit) {
		<-tick.C
		left = clientGoroutines()
	}
	if len(left) > 0 {
		t.Errorf("%d client goroutines left after close:\n%s", len(left), strings.Join(left, "\n\n"))
	}
}

// clientGoroutines lists running goroutines of the backend or the etcd
// client (the embedded server's own goroutines are not counted).
func clientGoroutines() []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "TestCloseLeavesNoGoroutines") {
			continue
		}
		if strings.Contains(g, "leasehold/quorum/etcd.") || strings.Contains(g, "go.etcd.io/etcd/client/v3.") {
			out = append(out, g)
		}
	}
	return out
}
