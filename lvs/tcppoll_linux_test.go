package lvs

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/leasehold/leasehold/script/scripttest"
)

// runPoller runs a poller until the test ends and returns a function that
// checks a target and waits for its outcome.
func runPoller(t *testing.T) func(target netip.AddrPort, timeout time.Duration) Outcome {
	t.Helper()
	p, err := newTCPPoller()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	waiting := map[int]chan Outcome{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.run(ctx, func(id int, o Outcome, _ time.Time) {
			mu.Lock()
			ch := waiting[id]
			mu.Unlock()
			ch <- o
		}, func() {})
	}()
	t.Cleanup(func() { cancel(); <-done })
	next := 0
	return func(target netip.AddrPort, timeout time.Duration) Outcome {
		mu.Lock()
		next++
		id, ch := next, make(chan Outcome, 1)
		waiting[id] = ch
		mu.Unlock()
		p.submit(id, target, timeout)
		return <-ch
	}
}

// fullListener is a listening socket with a backlog of one that never
// accepts: once full, further SYNs are dropped and connects hang.
func fullListener(t *testing.T) netip.AddrPort {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*unix.SockaddrInet4).Port))
	for range 3 { // fill the queue
		if c, err := net.DialTimeout("tcp", ap.String(), 100*time.Millisecond); err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	return ap
}

func TestTCPPoller(t *testing.T) {
	check := runPoller(t)
	ln := scripttest.OpenPort(t)
	open := netip.MustParseAddrPort(ln.Addr().String())
	if o := check(open, time.Second); !o.OK {
		t.Errorf("open port: %+v", o)
	}
	// Many at once: all succeed.
	var wg sync.WaitGroup
	var failed sync.Map
	for i := range 300 {
		wg.Go(func() {
			if o := check(open, 5*time.Second); !o.OK {
				failed.Store(i, o.Err)
			}
		})
	}
	wg.Wait()
	failed.Range(func(k, v any) bool { t.Errorf("check %v: %v", k, v); return false })
	ln.Close()
	if o := check(open, time.Second); o.OK || !strings.Contains(o.Err, "connection refused") {
		t.Errorf("closed port: %+v", o)
	}
	start := time.Now()
	if o := check(fullListener(t), 200*time.Millisecond); o.OK || !strings.Contains(o.Err, "i/o timeout") {
		t.Errorf("unanswered connect: %+v", o)
	} else if took := time.Since(start); took < 200*time.Millisecond || took > 2*time.Second {
		t.Errorf("timed out after %v, connect_timeout 200ms", took)
	}
}
