package health

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/leasehold/leasehold/test/nstest"
)

// threadNS is the path of the calling thread's network namespace.
func threadNS() string { return fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()) }

// TestTrackInterface follows links in a fresh namespace: a weight-0 link
// going down is FAULT, a weighted one changes the priority, losing carrier
// (peer down) counts as down, a missing link is down until it appears.
func TestTrackInterface(t *testing.T) {
	nstest.Run(t, func() {
		goroutines := runtime.NumGoroutine()
		eth0 := nstest.Link(t, "eth0", "10.9.0.2/24")
		eth1 := nstest.Link(t, "eth1")
		if t.Failed() {
			return
		}
		tr, err := NewTracker(100, nil, []Interface{{Name: "eth0"}, {Name: "eth1", Weight: -20}, {Name: "eth9", Weight: 5}}, nil, WithNetNS(threadNS()))
		if err != nil {
			t.Error(err)
			return
		}
		// Run on another goroutine (another thread, another namespace):
		// WithNetNS makes it watch this one.
		stop := start(t, tr)
		steps := []struct {
			what string
			do   func() error
			want func(Status) bool
		}{
			{"all up, eth9 missing: 100", nil, prio(100)},
			{"eth0 down: FAULT", func() error { return netlink.LinkSetDown(eth0) },
				func(s Status) bool {
					return s.Fault && s.Priority == 100 && len(s.Reasons) == 1 && s.Reasons[0] == "link eth0 down (fault)"
				}},
			{"eth0 up again", func() error { return netlink.LinkSetUp(eth0) }, prio(100)},
			{"eth1's peer down, no carrier: 80", func() error {
				p, err := netlink.LinkByName("eth1p")
				if err != nil {
					return err
				}
				return netlink.LinkSetDown(p)
			}, prio(80)},
			{"eth1 deleted (down, -20) and eth9 appears up (+5): 85", func() error {
				if err := netlink.LinkDel(eth1); err != nil {
					return err
				}
				if l := nstest.Link(t, "eth9"); l == nil {
					return fmt.Errorf("add eth9")
				}
				return nil
			}, prio(85)},
		}
		for _, st := range steps {
			if st.do != nil {
				if err := st.do(); err != nil {
					t.Errorf("%s: %v", st.what, err)
					return
				}
			}
			if err := waitStatus(tr, st.what, st.want); err != nil {
				t.Error(err)
				return
			}
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
		if !eventually(func() bool { return runtime.NumGoroutine() <= goroutines }) {
			t.Errorf("goroutines leaked: %d after Run returned, %d before", runtime.NumGoroutine(), goroutines)
		}
	})
}

// TestTrackInterfaceCallingThread: without WithNetNS, Run watches the
// namespace of the thread that calls it (here the locked nstest thread);
// the link is changed from another thread through a handle on that
// namespace.
func TestTrackInterfaceCallingThread(t *testing.T) {
	nstest.Run(t, func() {
		nstest.Link(t, "eth0")
		if t.Failed() {
			return
		}
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE) // in this thread's namespace
		if err != nil {
			t.Error(err)
			return
		}
		defer h.Close()
		tr, err := NewTracker(100, nil, []Interface{{Name: "eth0", Weight: -50}}, nil)
		if err != nil {
			t.Error(err)
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			defer cancel()
			if err := waitStatus(tr, "100", prio(100)); err != nil {
				errc <- err
				return
			}
			l, err := h.LinkByName("eth0")
			if err == nil {
				err = h.LinkSetDown(l)
			}
			if err == nil {
				err = waitStatus(tr, "50 after eth0 down", prio(50))
			}
			errc <- err
		}()
		if err := tr.Run(ctx); err != nil { // blocks this (namespaced) thread
			t.Error(err)
		}
		if err := <-errc; err != nil {
			t.Error(err)
		}
	})
}
