package keepalivedtest

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/netlab"
	"github.com/leasehold/leasehold/lab/netlab/netlabtest"
)

const port = 7300

// pair returns the two-node config used by the tests: n1 MASTER prio 120,
// n2 BACKUP prio 100, VRRPv3, advert 100 ms.
func pair(l *netlab.Lab, h *netlab.Host, state string, prio uint8) Config {
	return Config{Instances: []Instance{{
		Name: "VI_1", State: state, Interface: h.Iface, VRID: 51, Priority: prio,
		Version: 3, AdvertInt: 100 * time.Millisecond,
		VIPs: []netip.Prefix{netip.PrefixFrom(l.VIP4(), 24)},
	}}}
}

type checkers struct {
	addr *netlab.AddrMonitor
	arp  *netlab.ARPProber
	tcp  *netlab.TCPProber
	stop func()
}

func startCheckers(t *testing.T, l *netlab.Lab) *checkers {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkers{
		addr: netlab.NewAddrMonitor(l.Timebase(), l.VIP4(), l.Nodes()...),
		arp:  netlab.NewARPProber(l, l.VIP4()),
		tcp:  netlab.NewTCPProber(l.Timebase(), l.Host(netlab.ClientName), netip.AddrPortFrom(l.VIP4(), port)),
	}
	var wg sync.WaitGroup
	var readies []<-chan struct{}
	run := func(name string, fn func(context.Context) error, ready <-chan struct{}) {
		wg.Add(1)
		readies = append(readies, ready)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}()
	}
	for _, n := range l.Nodes() {
		r := netlab.NewResponder(n, port)
		run("responder "+n.Name, r.Run, r.Ready())
	}
	run("addr monitor", c.addr.Run, c.addr.Ready())
	run("arp prober", c.arp.Run, c.arp.Ready())
	run("tcp prober", c.tcp.Run, c.tcp.Ready())
	for _, r := range readies {
		select {
		case <-r:
		case <-time.After(10 * time.Second):
			t.Fatal("checker not ready")
		}
	}
	var once sync.Once
	c.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(c.stop)
	return c
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lastARP(p *netlab.ARPProber) []string {
	r := p.Rounds()
	if len(r) == 0 {
		return nil
	}
	return r[len(r)-1].Hosts
}

func lastTCP(p *netlab.TCPProber) string {
	s := p.Samples()
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1].Node
}

func start(t *testing.T, h *netlab.Host, conf Config) *Keepalived {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	k, err := Run(ctx, h, conf, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("keepalived on %s: %v", h.Name, err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		k.Stop(sctx)
		if t.Failed() {
			t.Logf("keepalived %s log:\n%s", h.Name, k.Log())
		}
	})
	return k
}

// electPair brings up the lab, the checkers and keepalived on n1 (master)
// and n2 (backup), and waits until every checker sees n1 as the only owner.
func electPair(t *testing.T) (*netlab.Lab, *checkers, *Keepalived, *Keepalived) {
	l := netlabtest.NewForTest(t, netlab.DefaultOptions(), Binary)
	c := startCheckers(t, l)
	n1, n2 := l.Host("n1"), l.Host("n2")
	// The master first, as an operator brings a pair up: started together
	// on a loaded machine, n2's 100 ms Master_Down can run out before n1's
	// first advert arrives, and keepalived then elects twice (a startup
	// race of the test, not the fault under test).
	k1 := start(t, n1, pair(l, n1, "MASTER", 120))
	eventually(t, 10*time.Second, "n1 master (netlink)", func() bool {
		return slices.Equal(c.addr.Holders(l.Timebase().Now()), []string{"n1"})
	})
	k2 := start(t, n2, pair(l, n2, "BACKUP", 100))
	eventually(t, 10*time.Second, "n1 elected (netlink, ARP, TCP)", func() bool {
		return slices.Equal(c.addr.Holders(l.Timebase().Now()), []string{"n1"}) &&
			slices.Equal(lastARP(c.arp), []string{"n1"}) &&
			lastTCP(c.tcp) == "n1" && strings.Contains(k2.Log(), "Entering BACKUP STATE")
	})
	// Steady state for a while: n2 stays backup.
	time.Sleep(time.Second)
	if !strings.Contains(k1.Log(), "Entering MASTER STATE") || strings.Contains(k2.Log(), "Entering MASTER STATE") {
		t.Errorf("unexpected states:\nn1:\n%s\nn2:\n%s", k1.Log(), k2.Log())
	}
	for _, ev := range c.addr.Events() {
		if ev.Host != "n1" {
			t.Errorf("VIP event on %s during the election: %+v", ev.Host, ev)
		}
	}
	if d := c.addr.DualIntervals(); len(d) != 0 {
		t.Errorf("dual holder intervals in steady state: %+v", d)
	}
	for _, r := range c.arp.Rounds() {
		if len(r.MACs) > 1 || (len(r.MACs) == 1 && r.MACs[0] != n1.MAC.String()) {
			t.Errorf("ARP round answered by %v, want only n1 (%s)", r.Hosts, n1.MAC)
		}
	}
	return l, c, k1, k2
}

// TestKill9ReproducesSplitBrain: kill -9 of the master keepalived leaves
// the VIP on the dead master while the backup takes it too, and the
// checkers report it (the DESIGN.md baseline).
func TestKill9ReproducesSplitBrain(t *testing.T) {
	l, c, k1, _ := electPair(t)
	n1 := l.Host("n1")
	fault := l.Timebase().Now()
	if err := k1.Kill9(); err != nil {
		t.Fatalf("kill9: %v", err)
	}
	if k1.VRRPPID() != 0 {
		t.Errorf("VRRP child still running after Kill9")
	}
	eventually(t, 10*time.Second, "n2 adds the VIP while n1 keeps it", func() bool {
		return slices.Equal(c.addr.Holders(l.Timebase().Now()), []string{"n1", "n2"})
	})
	eventually(t, 5*time.Second, "two ARP answers in a round", func() bool {
		return len(c.arp.DualRounds()) >= 2
	})
	if ok, err := n1.HasAddr(l.VIP4()); err != nil || !ok {
		t.Errorf("VIP gone from the killed master (has=%v, err=%v): baseline not reproduced", ok, err)
	}
	c.stop()
	r := netlab.BuildReport(l.VIP4(), netlab.ReportOptions{Fault: fault, OldOwner: "n1"}, c.addr, c.arp, c.tcp)
	if r.Addr.DualTotalUS <= 0 || len(r.Addr.DualIntervals) == 0 || !r.Addr.DualIntervals[len(r.Addr.DualIntervals)-1].Open {
		t.Errorf("netlink dual holder not reported: %+v", r.Addr.DualIntervals)
	}
	if r.Addr.NewOwner != "n2" || r.Addr.TimeToNewOwnUS <= 0 {
		t.Errorf("new owner %q after %d µs", r.Addr.NewOwner, r.Addr.TimeToNewOwnUS)
	}
	for _, d := range r.ARP.Dual {
		if !slices.Equal(d.Hosts, []string{"n1", "n2"}) || d.At.Before(fault) {
			t.Errorf("dual ARP round %+v", d)
		}
	}
	t.Logf("kill -9: backup took the VIP after %v; dual holder %v (open); %d of %d ARP rounds had two MACs; client outage max %v, %d flips",
		time.Duration(r.Addr.TimeToNewOwnUS)*time.Microsecond, r.DualHolder(), r.ARP.DualRounds, r.ARP.Rounds,
		time.Duration(r.TCP.OutageMaxUS)*time.Microsecond, r.TCP.Flips)
}

// TestGracefulStopHandsOver: SIGTERM of the master moves the VIP to the
// backup, the old master drops it, and the client ends up served by n2.
func TestGracefulStopHandsOver(t *testing.T) {
	l, c, k1, _ := electPair(t)
	fault := l.Timebase().Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := k1.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	eventually(t, 10*time.Second, "n2 sole owner on netlink, ARP and TCP", func() bool {
		return slices.Equal(c.addr.Holders(l.Timebase().Now()), []string{"n2"}) &&
			slices.Equal(lastARP(c.arp), []string{"n2"}) &&
			lastTCP(c.tcp) == "n2"
	})
	c.stop()
	r := netlab.BuildReport(l.VIP4(), netlab.ReportOptions{Fault: fault, OldOwner: "n1"}, c.addr, c.arp, c.tcp)
	if r.TCP.NewOwner != "n2" {
		t.Errorf("client new owner %q", r.TCP.NewOwner)
	}
	t.Logf("graceful stop: client outage max %v total %v; dual holder %v; new owner after %v",
		time.Duration(r.TCP.OutageMaxUS)*time.Microsecond, time.Duration(r.TCP.OutageTotalUS)*time.Microsecond,
		r.DualHolder(), time.Duration(r.TCP.TimeToNewOwnUS)*time.Microsecond)
}

// TestCleanupKillsKeepalived: after a crash of the test process, the state
// file is enough to remove keepalived's parent and its VRRP child.
func TestCleanupKillsKeepalived(t *testing.T) {
	l := netlabtest.NewForTest(t, netlab.Options{Hosts: []string{"n1"}}, Binary)
	n1 := l.Host("n1")
	k := start(t, n1, pair(l, n1, "MASTER", 120))
	child := k.VRRPPID()
	if child == 0 {
		t.Fatal("no VRRP child")
	}
	if err := netlab.Cleanup(l.StateFile()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-k.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("keepalived parent survived Cleanup")
	}
	if ppid(child) != 0 {
		t.Errorf("VRRP child %d survived Cleanup", child)
	}
}

// TestFaultsSplitAndHeal: cutting the master's VRRP traffic, or freezing
// its keepalived, makes the backup take the VIP as well (dual holder);
// healing returns to one holder. The checkers see the closed dual interval.
func TestFaultsSplitAndHeal(t *testing.T) {
	for _, fault := range []string{"drop-vrrp", "freeze"} {
		t.Run(fault, func(t *testing.T) {
			l, c, k1, _ := electPair(t)
			n1 := l.Host("n1")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			inject, heal := func() error { return n1.DropVRRP(ctx, true) }, func() error { return n1.DropVRRP(ctx, false) }
			if fault == "freeze" {
				inject, heal = k1.Freeze, k1.Thaw
			}
			if err := inject(); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "both nodes hold the VIP", func() bool {
				return slices.Equal(c.addr.Holders(l.Timebase().Now()), []string{"n1", "n2"})
			})
			eventually(t, 5*time.Second, "two ARP answers in a round", func() bool {
				return len(c.arp.DualRounds()) >= 1
			})
			if err := heal(); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "n1 sole holder again", func() bool {
				return slices.Equal(c.addr.Holders(l.Timebase().Now()), []string{"n1"})
			})
			c.stop()
			d := c.addr.DualIntervals()
			if len(d) == 0 || d[len(d)-1].Open || d[0].Duration() <= 0 {
				t.Fatalf("dual intervals = %+v", d)
			}
			var total time.Duration
			for _, iv := range d {
				total += iv.Duration()
			}
			t.Logf("%s: dual holder %v, %d dual ARP rounds, GARPs %v", fault, total, len(c.arp.DualRounds()), c.arp.GARPCount())
		})
	}
}
