package fencing

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/leasehold/leasehold/test/nstest"
)

var (
	vip4      = netip.MustParseAddr("10.9.0.100")
	unmanaged = netip.MustParseAddr("10.9.0.101")
	node4     = netip.MustParseAddr("10.9.0.2")
	node6     = netip.MustParseAddr("fd00::2")
	vip6      = netip.MustParseAddr("fd00::100")
)

func testLog(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(t.Output(), nil)) }

// newFence builds, installs and manages an NFT fence in the calling
// thread's namespace, removed and closed at cleanup.
func newFence(t *testing.T, manage ...netip.Addr) *NFT {
	t.Helper()
	nstest.Require(t, Usable() == nil, "nftables not usable here")
	f, err := NewNFT("test", testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Remove(); f.Close() })
	if err := f.Install(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := f.Manage(manage); err != nil {
		t.Fatal(err)
	}
	return f
}

// until polls cond every 20 ms until it holds or limit passes; it returns
// the time it took and whether cond held.
func until(limit time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > limit {
			return time.Since(start), false
		}
		<-tick.C
	}
}

func TestNFTFencesARPAndTraffic(t *testing.T) {
	nstest.Run(t, func() {
		p := newPeer(t)
		link := wire(t, p)
		addAddr(t, link, vip4.String()+"/24")
		addAddr(t, link, unmanaged.String()+"/24")
		ln, err := net.Listen("tcp", ":7070")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		p.pin(t, vip4, link.Attrs().HardwareAddr) // IP checks independent of ARP
		f := newFence(t, vip4)
		const wait = 300 * time.Millisecond

		// state asserts what the peer sees for the VIP, and that the node's
		// own and the unmanaged address are never affected.
		state := func(step string, want bool) {
			t.Helper()
			if got := p.arpAnswered(t, vip4, wait); got != want {
				t.Errorf("%s: ARP for %s answered=%v, want %v", step, vip4, got, want)
			}
			if got := p.tcpConnects(vip4, 7070, wait); got != want {
				t.Errorf("%s: TCP to %s connects=%v, want %v", step, vip4, got, want)
			}
			if got := p.pings(t, vip4, wait); got != want {
				t.Errorf("%s: ICMP to %s answered=%v, want %v", step, vip4, got, want)
			}
			for _, a := range []netip.Addr{node4, unmanaged} {
				if !p.arpAnswered(t, a, wait) || !p.tcpConnects(a, 7070, wait) || !p.pings(t, a, wait) {
					t.Errorf("%s: unfenced %s not reachable", step, a)
				}
			}
		}

		state("managed, never armed", false)
		if err := f.Arm(vip4, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		state("armed 10s", true)

		// Shorten to 300 ms and stop refreshing: the kernel alone fences.
		if err := f.Arm(vip4, 300*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		armedAt := time.Now()
		if !p.arpAnswered(t, vip4, wait) {
			t.Errorf("ARP not answered right after Arm(300ms)")
		}
		took, ok := until(5*time.Second, func() bool { return !p.arpAnswered(t, vip4, 100*time.Millisecond) })
		if !ok {
			t.Fatalf("ARP for %s still answered %v after the 300ms element should have lapsed", vip4, took)
		}
		t.Logf("ARP replies stopped %v after Arm(300ms) (probe granularity ~100ms)", time.Since(armedAt))
		if _, ok, err := f.Armed(vip4); err != nil || ok {
			t.Errorf("Armed after lapse = %v, %v; want not armed", ok, err)
		}
		state("lapsed", false)

		if err := f.Arm(vip4, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		state("re-armed", true)
		if err := f.Disarm(vip4); err != nil {
			t.Fatal(err)
		}
		if p.arpAnswered(t, vip4, wait) {
			t.Errorf("ARP answered right after Disarm")
		}
		state("disarmed", false)
		if err := f.Disarm(vip4); err != nil {
			t.Errorf("second Disarm: %v", err)
		}
		if err := f.Arm(unmanaged, time.Second); !errors.Is(err, ErrUnmanaged) {
			t.Errorf("Arm(unmanaged) = %v, want ErrUnmanaged", err)
		}
		if err := f.Arm(vip4, 999*time.Microsecond); !errors.Is(err, ErrTimeout) {
			t.Errorf("Arm(<1ms) = %v, want ErrTimeout", err)
		}
		// Remove: nothing fenced any more.
		if err := f.Remove(); err != nil {
			t.Fatal(err)
		}
		state("removed", true)
	})
}

func TestNFTFencesIPv6(t *testing.T) {
	nstest.Run(t, func() {
		p := newPeer(t)
		link := wire(t, p)
		addAddr(t, link, vip6.String()+"/64")
		ln, err := net.Listen("tcp", ":7070")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		f := newFence(t, vip6)
		const wait = 300 * time.Millisecond
		state := func(step string, want bool) {
			t.Helper()
			if got := p.ndAnswered(t, vip6, wait); got != want {
				t.Errorf("%s: NS for %s answered=%v, want %v", step, vip6, got, want)
			}
			if got := p.tcpConnects(vip6, 7070, wait); got != want {
				t.Errorf("%s: TCP to %s connects=%v, want %v", step, vip6, got, want)
			}
			if !p.ndAnswered(t, node6, wait) || !p.tcpConnects(node6, 7070, wait) {
				t.Errorf("%s: unfenced %s not reachable", step, node6)
			}
		}
		state("managed, never armed", false)
		if err := f.Arm(vip6, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		state("armed", true)
		// The peer now has the VIP's MAC cached: TCP below tests the ip6
		// daddr rule, ND the NS/NA rules.
		if err := f.Disarm(vip6); err != nil {
			t.Fatal(err)
		}
		state("disarmed", false)
		if err := f.Arm(vip6, 300*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		took, ok := until(5*time.Second, func() bool { return !p.ndAnswered(t, vip6, 100*time.Millisecond) })
		if !ok {
			t.Fatalf("NS for %s still answered %v after Arm(300ms)", vip6, took)
		}
		t.Logf("NA for %s stopped %v after Arm(300ms)", vip6, took)
		state("lapsed", false)
	})
}

func TestNFTRefreshChangesTimeout(t *testing.T) {
	nstest.Run(t, func() {
		f := newFence(t, vip4, vip6)
		for _, v := range []netip.Addr{vip4, vip6} {
			for _, d := range []time.Duration{2 * time.Second, time.Minute, 1500 * time.Millisecond, time.Hour} {
				if err := f.Arm(v, d); err != nil {
					t.Fatalf("Arm(%s, %v): %v", v, d, err)
				}
				left, ok, err := f.Armed(v)
				if err != nil || !ok || left > d || left < d-time.Second {
					t.Errorf("after Arm(%s, %v): Armed = %v, %v, %v", v, d, left, ok, err)
				}
			}
		}
	})
}

// TestNFTRefreshSameTimeoutResetsExpiry is the steady state of a daemon:
// every renewal re-arms with (nearly) the same timeout, and each must
// restart the countdown. Kernels that update timeouts in place leave the
// expiry alone when the value is unchanged, which made the element lapse
// once per TTL.
func TestNFTRefreshSameTimeoutResetsExpiry(t *testing.T) {
	nstest.Run(t, func() {
		f := newFence(t, vip4)
		const d = time.Second
		for i := 0; i < 6; i++ {
			if err := f.Arm(vip4, d); err != nil {
				t.Fatal(err)
			}
			left, ok, err := f.Armed(vip4)
			if err != nil || !ok || left < d-150*time.Millisecond {
				t.Fatalf("re-arm %d with the same timeout: Armed = %v, %v, %v; want the countdown restarted near %v", i, left, ok, err, d)
			}
			time.Sleep(300 * time.Millisecond)
		}
	})
}

func TestNFTLateRefresh(t *testing.T) {
	nstest.Run(t, func() {
		f := newFence(t, vip4)
		base := time.Now()
		deadline := base.Add(2 * time.Second)
		margin := 100 * time.Millisecond
		// A clock that jumps 1.95 s between computing and checking: a
		// freeze during the netlink call.
		var calls int
		frozen := func() time.Time {
			calls++
			if calls == 1 {
				return base
			}
			return base.Add(1950 * time.Millisecond)
		}
		err := Refresh(f, vip4, deadline, margin, frozen)
		if !errors.Is(err, ErrLate) {
			t.Fatalf("Refresh across a freeze = %v, want ErrLate", err)
		}
		if _, ok, err := f.Armed(vip4); ok || err != nil {
			t.Errorf("after late refresh Armed = %v, %v; want disarmed", ok, err)
		}
		// A steady clock: armed for deadline − now − margin.
		steady := func() time.Time { return base }
		if err := Refresh(f, vip4, deadline, margin, steady); err != nil {
			t.Fatal(err)
		}
		if left, ok, _ := f.Armed(vip4); !ok || left > 1900*time.Millisecond {
			t.Errorf("Armed after refresh = %v, %v; want ≤ 1.9s", left, ok)
		}
		// Past the deadline: disarmed, ErrExpired.
		late := func() time.Time { return deadline }
		if err := Refresh(f, vip4, deadline, margin, late); !errors.Is(err, ErrExpired) {
			t.Errorf("Refresh past deadline = %v, want ErrExpired", err)
		}
		if _, ok, _ := f.Armed(vip4); ok {
			t.Errorf("still armed after expired refresh")
		}
	})
}

// ours lists our tables in the calling thread's namespace.
func ours(t *testing.T) []string {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	ts, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tb := range ts {
		if strings.HasPrefix(tb.Name, TablePrefix) {
			out = append(out, tb.Name)
		}
	}
	return out
}

func TestNFTInstallRemoveCrash(t *testing.T) {
	nstest.Run(t, func() {
		f := newFence(t, vip4, vip6)
		if err := f.Arm(vip4, time.Hour); err != nil {
			t.Fatal(err)
		}
		if got := ours(t); len(got) != 3 {
			t.Errorf("tables after Install = %v, want 3", got)
		}
		// Install again: same layout, armed state dropped, managed kept.
		if err := f.Install(context.Background()); err != nil {
			t.Fatalf("second Install: %v", err)
		}
		if got := ours(t); len(got) != 3 {
			t.Errorf("tables after second Install = %v, want 3", got)
		}
		if _, ok, _ := f.Armed(vip4); ok {
			t.Errorf("armed VIP survived Install")
		}
		if err := f.Arm(vip4, time.Hour); err != nil {
			t.Errorf("managed set lost by Install: %v", err)
		}
		// Crash: the process goes away without Remove; a new one installs.
		f.Close()
		g, err := NewNFT("test", testLog(t))
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		if err := g.Install(t.Context()); err != nil {
			t.Fatalf("Install over a crashed run: %v", err)
		}
		if _, ok, _ := g.Armed(vip4); ok {
			t.Errorf("orphan arming survived Install")
		}
		if err := g.Arm(vip6, time.Minute); err != nil {
			t.Errorf("managed VIPs of the crashed run not kept: %v", err)
		}
		if err := g.Remove(); err != nil {
			t.Fatal(err)
		}
		if got := ours(t); len(got) != 0 {
			t.Errorf("tables after Remove = %v", got)
		}
		if err := g.Remove(); err != nil {
			t.Errorf("second Remove: %v", err)
		}
		if nft, err := exec.LookPath("nft"); err == nil {
			out, err := exec.Command(nft, "list", "ruleset").CombinedOutput()
			if err != nil || strings.Contains(string(out), TablePrefix) {
				t.Errorf("nft list ruleset after Remove: %v\n%s", err, out)
			}
		}
	})
}

func TestNFTRuleset(t *testing.T) {
	nft, err := exec.LookPath("nft")
	nstest.Require(t, err == nil, "nft binary not installed (only used to print the ruleset)")
	nstest.Run(t, func() {
		f := newFence(t, vip4, vip6)
		f.Arm(vip4, time.Minute)
		out, err := exec.Command(nft, "list", "ruleset").CombinedOutput()
		if err != nil {
			t.Fatalf("nft list ruleset: %v\n%s", err, out)
		}
		t.Logf("ruleset:\n%s", out)
		for _, want := range []string{"table arp leasehold-test", "table ip leasehold-test", "table ip6 leasehold-test",
			"flags timeout", "10.9.0.100", "fd00::100", "drop"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("ruleset lacks %q", want)
			}
		}
	})
}

func TestUsable(t *testing.T) {
	nstest.Run(t, func() {
		if err := Usable(); err != nil {
			t.Fatalf("Usable in a fresh namespace: %v", err)
		}
		if got := ours(t); len(got) != 0 {
			t.Errorf("Usable left tables %v", got)
		}
	})
}

// BenchmarkArm prints the cost of one refresh (one netlink transaction
// updating the arp and ip tables of an IPv4 VIP).
func BenchmarkArm(b *testing.B) {
	nstest.Run(b, func() {
		f, err := NewNFT("bench", nil)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		defer f.Remove()
		if err := errors.Join(f.Install(context.Background()), f.Manage([]netip.Addr{vip4})); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := f.Arm(vip4, 2*time.Second); err != nil {
				b.Fatal(err)
			}
		}
	})
}
