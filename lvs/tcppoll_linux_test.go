package lvs

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/leasehold/leasehold/script/scripttest"
)

// pollOnce checks each target once on a poller of its own and returns
// the outcomes in order.
func pollOnce(t *testing.T, timeout time.Duration, targets ...netip.AddrPort) []Outcome {
	t.Helper()
	p, err := newTCPPoller()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i, target := range targets {
		p.add(i, target, timeout, now)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make([]Outcome, len(targets))
	left := len(targets)
	p.run(ctx, func(id int, o Outcome, _ time.Time) time.Duration {
		out[id] = o
		if left--; left == 0 {
			cancel()
		}
		return time.Hour
	})
	return out
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
	ln := scripttest.OpenPort(t)
	open := netip.MustParseAddrPort(ln.Addr().String())
	if o := pollOnce(t, time.Second, open)[0]; !o.OK {
		t.Errorf("open port: %+v", o)
	}
	// Many at once: all succeed.
	many := make([]netip.AddrPort, 300)
	for i := range many {
		many[i] = open
	}
	for i, o := range pollOnce(t, 5*time.Second, many...) {
		if !o.OK {
			t.Errorf("check %d: %v", i, o.Err)
		}
	}
	ln.Close()
	if o := pollOnce(t, time.Second, open)[0]; o.OK || !strings.Contains(o.Err, "connection refused") {
		t.Errorf("closed port: %+v", o)
	}
	start := time.Now()
	if o := pollOnce(t, 200*time.Millisecond, fullListener(t))[0]; o.OK || !strings.Contains(o.Err, "i/o timeout") {
		t.Errorf("unanswered connect: %+v", o)
	} else if took := time.Since(start); took < 200*time.Millisecond || took > 10*time.Second { // upper bound: a starved test process
		t.Errorf("timed out after %v, connect_timeout 200ms", took)
	}
	// IPv6 loopback, when the machine has it.
	if ln6, err := net.Listen("tcp", "[::1]:0"); err == nil {
		defer ln6.Close()
		go func() {
			for {
				c, err := ln6.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		if o := pollOnce(t, time.Second, netip.MustParseAddrPort(ln6.Addr().String()))[0]; !o.OK {
			t.Errorf("IPv6 open port: %+v", o)
		}
	}
}

// TestTCPPollerReschedules: each check runs again after the delay its
// outcome returned, and checks due within Coalesce start together.
func TestTCPPollerReschedules(t *testing.T) {
	ln := scripttest.OpenPort(t)
	open := netip.MustParseAddrPort(ln.Addr().String())
	p, err := newTCPPoller()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	p.add(0, open, time.Second, now)
	p.add(1, open, time.Second, now.Add(30*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var runs [2][]time.Duration
	p.run(ctx, func(id int, o Outcome, at time.Time) time.Duration {
		if !o.OK {
			t.Errorf("check %d: %v", id, o.Err)
		}
		runs[id] = append(runs[id], at.Sub(now))
		if len(runs[0]) >= 3 && len(runs[1]) >= 3 {
			cancel()
		}
		return 50 * time.Millisecond
	})
	for id, r := range runs {
		if len(r) < 3 {
			t.Fatalf("check %d ran %d times", id, len(r))
		}
		for i := 1; i < len(r); i++ {
			if gap := r[i] - r[i-1]; gap < 50*time.Millisecond-Coalesce || gap > 10*time.Second { // upper bound: a starved test process
				t.Errorf("check %d: run %d %v after the one before, want ≈ 50ms", id, i, gap)
			}
		}
	}
	if ctx.Err() == context.DeadlineExceeded {
		t.Error("the checks did not run three times each within 10 s")
	}
}
