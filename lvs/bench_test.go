package lvs_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lvs"
	"github.com/leasehold/leasehold/lvs/lvstest"
)

// thousand is one virtual server with n real servers, each with a
// TCP_CHECK at delay_loop against target (connect_ip/connect_port: every
// check reaches the same listener).
func thousand(n int, target netip.AddrPort, delayLoop time.Duration) lvs.Config {
	s := lvs.Service{Name: "bench", Keys: []lvs.Key{vip}, Scheduler: "wrr", Quorum: 1}
	for i := range n {
		addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 2, byte(i / 250), byte(i%250 + 1)}), 80)
		c := lvs.Check{Kind: lvs.TCPCheck, Target: target, DelayLoop: delayLoop, ConnectTimeout: time.Second,
			DelayBeforeRetry: time.Second, Retry: 1, Warmup: delayLoop}
		s.Reals = append(s.Reals, lvs.RealServer{Addr: addr, Weight: 1, Checks: []lvs.Check{c}})
	}
	return lvs.Config{Mode: lvs.ModeAll, Services: []lvs.Service{s}}
}

// listen is a loopback port that accepts and closes connections, and
// counts them: the checks that reached it.
func listen(tb testing.TB) (netip.AddrPort, *atomic.Uint64) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	var n atomic.Uint64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
			n.Add(1)
		}
	}()
	return netip.MustParseAddrPort(l.Addr().String()), &n
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkChecks1000TCP: 1,000 real servers with real TCP connects on
// loopback (the listener's accepts count too), as fast as the pool goes:
// one op is a round of 1,000 checks; cpu-µs/check is the process's CPU
// per check, so CPU at delay_loop 1 s is 1,000 × that per second.
func BenchmarkChecks1000TCP(b *testing.B) {
	target, sc := listen(b)
	d, err := lvs.New(thousand(1000, target, time.Millisecond), lvs.Options{Kernel: lvstest.NewKernel(), Resync: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for sc.Load() < 1000 { // warmed up
		time.Sleep(time.Millisecond)
	}
	b.ResetTimer()
	start, cpu0 := sc.Load(), cpuTime()
	for i := 0; i < b.N; i++ {
		for sc.Load() < start+uint64(i+1)*1000 {
			time.Sleep(100 * time.Microsecond)
		}
	}
	b.StopTimer()
	n := sc.Load() - start
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(n), "cpu-µs/check")
}

// TestMeasureCPU1000 runs 1,000 TCP-checked real servers at delay_loop
// 1 s for 10 s and prints the CPU used (LVS_MEASURE=1; a figure, not a
// verdict).
func TestMeasureCPU1000(t *testing.T) {
	if os.Getenv("LVS_MEASURE") == "" {
		t.Skip("set LVS_MEASURE=1")
	}
	target, sc := listen(t)
	d, err := lvs.New(thousand(1000, target, time.Second), lvs.Options{Kernel: lvstest.NewKernel()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	time.Sleep(2 * time.Second) // warmup spreads the first checks over 1 s
	n0, cpu0, t0 := sc.Load(), cpuTime(), time.Now()
	time.Sleep(10 * time.Second)
	n, cpu, wall := sc.Load()-n0, cpuTime()-cpu0, time.Since(t0)
	cancel()
	<-done
	t.Logf("1000 real servers, TCP_CHECK, delay_loop 1s: %d checks in %v (%.0f/s), CPU %v = %.1f%% of one core (checker and listener)",
		n, wall.Round(time.Millisecond), float64(n)/wall.Seconds(), cpu.Round(time.Millisecond), 100*cpu.Seconds()/wall.Seconds())
}

// TestHelperAcceptLoop is a helper, not a test: with LVS_ACCEPT=ADDR it
// accepts and closes connections on ADDR until it is killed (the real
// server of the VM measurements, lvs/lvsvm).
func TestHelperAcceptLoop(t *testing.T) {
	serveUntilKilled(t, "LVS_ACCEPT", func(c net.Conn) { c.Close() })
}

// TestHelperEcho is a helper, not a test: with LVS_ECHO=ADDR it echoes
// every connection's bytes back until it is killed (the real server of
// the connection-sync VM test, lvs/lvsvm).
func TestHelperEcho(t *testing.T) {
	serveUntilKilled(t, "LVS_ECHO", func(c net.Conn) { go func() { io.Copy(c, c); c.Close() }() })
}

// serveUntilKilled listens on the address in the environment variable
// env and hands each connection to serve, until the process is killed.
func serveUntilKilled(t *testing.T, env string, serve func(net.Conn)) {
	addr := os.Getenv(env)
	if addr == "" {
		t.Skip("a helper: set " + env + "=ADDR")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		serve(c)
	}
}

// TestHelperFetchUnix is a helper, not a test: with LVS_FETCH_UNIX=SOCKET,
// LVS_FETCH_PATH=/PATH and LVS_FETCH_OUT=FILE it GETs PATH over the unix
// socket and writes the body to FILE (a binary profile from a VM's
// daemon, which the VM agent's text replies would mangle).
func TestHelperFetchUnix(t *testing.T) {
	sock, path, out := os.Getenv("LVS_FETCH_UNIX"), os.Getenv("LVS_FETCH_PATH"), os.Getenv("LVS_FETCH_OUT")
	if sock == "" || path == "" || out == "" {
		t.Skip("a helper: set LVS_FETCH_UNIX, LVS_FETCH_PATH and LVS_FETCH_OUT")
	}
	c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := c.Get("http://unix" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHelperHoldConn is a helper, not a test: with LVS_HOLD=ADDR and
// LVS_HOLD_FOR=DURATION it opens one connection to ADDR and, every
// 100 ms for that long, writes a line and reads it back (each round trip
// may take 30 s: TCP retransmits through a failover). It prints "held
// N round trips" and passes, or the failure and fails.
func TestHelperHoldConn(t *testing.T) {
	addr, hold := os.Getenv("LVS_HOLD"), os.Getenv("LVS_HOLD_FOR")
	if addr == "" || hold == "" {
		t.Skip("a helper: set LVS_HOLD=ADDR and LVS_HOLD_FOR=DURATION")
	}
	d, err := time.ParseDuration(hold)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Println("connected", c.LocalAddr())
	buf := make([]byte, 64)
	var slowest time.Duration
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); n++ {
		line := fmt.Sprintf("%d\n", n)
		start := time.Now()
		c.SetDeadline(start.Add(30 * time.Second))
		if _, err := io.WriteString(c, line); err != nil {
			t.Fatalf("round trip %d: write: %v", n, err)
		}
		if _, err := io.ReadFull(c, buf[:len(line)]); err != nil {
			t.Fatalf("round trip %d: read: %v (after %v)", n, err, time.Since(start).Round(time.Millisecond))
		}
		if string(buf[:len(line)]) != line {
			t.Fatalf("round trip %d: got %q", n, buf[:len(line)])
		}
		slowest = max(slowest, time.Since(start))
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Printf("held %d round trips, slowest %v\n", n, slowest.Round(time.Millisecond))
}
