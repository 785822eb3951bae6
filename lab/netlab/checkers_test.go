package netlab_test

import (
	"context"
	"encoding/json"
	"github.com/leasehold/leasehold/lab/netlab"
	"github.com/leasehold/leasehold/lab/netlab/netlabtest"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// checkers runs the three checkers and responders on n1, n2 in the
// background until the returned stop function is called.
type checkers struct {
	addr *netlab.AddrMonitor
	arp  *netlab.ARPProber
	tcp  *netlab.TCPProber
	stop func()
}

func startCheckers(t *testing.T, l *netlab.Lab, port uint16) *checkers {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkers{
		addr: netlab.NewAddrMonitor(l.Timebase(), l.VIP4(), l.Nodes()...),
		arp:  netlab.NewARPProber(l, l.VIP4()),
		tcp:  netlab.NewTCPProber(l.Timebase(), l.Host(netlab.ClientName), netip.AddrPortFrom(l.VIP4(), port)),
	}
	var wg sync.WaitGroup
	run := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}()
	}
	var readies []<-chan struct{}
	for _, n := range l.Nodes() {
		r := netlab.NewResponder(n, port)
		run("responder "+n.Name, r.Run)
		readies = append(readies, r.Ready())
	}
	run("addr monitor", c.addr.Run)
	run("arp prober", c.arp.Run)
	run("tcp prober", c.tcp.Run)
	readies = append(readies, c.addr.Ready(), c.arp.Ready(), c.tcp.Ready())
	for _, r := range readies {
		select {
		case <-r:
		case <-time.After(10 * time.Second):
			t.Fatal("checker not ready")
		}
	}
	c.stop = func() { cancel(); wg.Wait() }
	t.Cleanup(c.stop)
	return c
}

// eventually polls cond every 20 ms for up to d.
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

func lastRoundHosts(p *netlab.ARPProber) []string {
	r := p.Rounds()
	if len(r) == 0 {
		return nil
	}
	return r[len(r)-1].Hosts
}

// TestCheckersDetectDualHolder configures the VIP by hand on n1, then on
// n2 as well, then removes it from n1, and checks every checker saw it.
func TestCheckersDetectDualHolder(t *testing.T) {
	l := netlabtest.NewForTest(t, netlab.DefaultOptions())
	goroutines := runtime.NumGoroutine()
	c := startCheckers(t, l, 7100)
	n1, n2 := l.Host("n1"), l.Host("n2")
	vip := netip.PrefixFrom(l.VIP4(), 24)

	eventually(t, 5*time.Second, "a few ARP rounds with no answer", func() bool {
		return len(c.arp.Rounds()) >= 3
	})
	if got := c.arp.Rounds()[0].MACs; len(got) != 0 {
		t.Errorf("ARP answers before any holder: %v", got)
	}
	if err := n1.AddAddr(vip); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "ARP answer from n1 only", func() bool {
		return slices.Equal(lastRoundHosts(c.arp), []string{"n1"})
	})
	eventually(t, 5*time.Second, "client answered by n1", func() bool {
		s := c.tcp.Samples()
		return len(s) > 0 && s[len(s)-1].Node == "n1"
	})
	single := l.Timebase().Now()
	if h := c.addr.Holders(single); !slices.Equal(h, []string{"n1"}) {
		t.Errorf("Holders = %v, want [n1]", h)
	}
	if d := c.addr.DualIntervals(); len(d) != 0 {
		t.Errorf("dual intervals with one holder: %+v", d)
	}
	if d := c.arp.DualRounds(); len(d) != 0 {
		t.Errorf("dual ARP rounds with one holder: %+v", d)
	}

	fault := l.Timebase().Now()
	if err := n2.AddAddr(vip); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "ARP answers from n1 and n2", func() bool {
		return len(c.arp.DualRounds()) >= 2
	})
	if err := n1.DelAddr(vip); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "ARP answer from n2 only", func() bool {
		return slices.Equal(lastRoundHosts(c.arp), []string{"n2"})
	})
	c.stop()
	eventually(t, 5*time.Second, "checker goroutines gone", func() bool {
		return runtime.NumGoroutine() <= goroutines
	})

	r := netlab.BuildReport(l.VIP4(), netlab.ReportOptions{Fault: fault, OldOwner: "n1"}, c.addr, c.arp, c.tcp)
	if len(r.Addr.DualIntervals) != 1 || !slices.Equal(r.Addr.DualIntervals[0].Who, []string{"n1", "n2"}) || r.Addr.DualTotalUS <= 0 {
		t.Errorf("dual intervals = %+v", r.Addr.DualIntervals)
	}
	if dual := r.Addr.DualIntervals[0]; dual.Start.Before(fault) {
		t.Errorf("dual interval starts %s before the second add at %s", dual.Start, fault)
	}
	if !slices.Equal(r.Addr.FinalHolders, []string{"n2"}) || r.Addr.NewOwner != "n2" {
		t.Errorf("final holders %v, new owner %q", r.Addr.FinalHolders, r.Addr.NewOwner)
	}
	for _, d := range r.ARP.Dual {
		if !slices.Equal(d.Hosts, []string{"n1", "n2"}) {
			t.Errorf("dual round hosts = %v", d.Hosts)
		}
	}
	if r.TCP.Probes == 0 || !slices.ContainsFunc(r.TCP.Answerers, func(iv netlab.Interval) bool { return slices.Equal(iv.Who, []string{"n1"}) }) {
		t.Errorf("TCP answerers = %+v", r.TCP.Answerers)
	}
	var back netlab.Report
	if err := json.Unmarshal(r.JSON(), &back); err != nil || back.Addr.DualTotalUS != r.Addr.DualTotalUS {
		t.Errorf("JSON round trip: %v", err)
	}
	t.Logf("dual holder %v by netlink, %d dual ARP rounds of %d, %d TCP probes, %d failed",
		r.DualHolder(), r.ARP.DualRounds, r.ARP.Rounds, r.TCP.Probes, r.TCP.Failures)
	if os.Getenv("NETLAB_REPORT") != "" {
		os.WriteFile(os.Getenv("NETLAB_REPORT"), r.JSON(), 0o644)
	}
}

func TestFaults(t *testing.T) {
	l := netlabtest.NewForTest(t, netlab.DefaultOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n1 := l.Host("n1")

	// DropVRRP installs and removes its own table.
	if err := n1.DropVRRP(ctx, true); err != nil {
		t.Fatal(err)
	}
	if out, err := n1.Run(ctx, "nft", "list", "table", "inet", netlab.VRRPTable); err != nil || !strings.Contains(out, "vrrp") {
		t.Errorf("vrrp table: %v\n%s", err, out)
	}
	if err := n1.DropVRRP(ctx, true); err != nil { // idempotent
		t.Fatal(err)
	}
	if err := n1.DropVRRP(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := n1.Run(ctx, "nft", "list", "table", "inet", netlab.VRRPTable); err == nil {
		t.Errorf("vrrp table still there after DropVRRP(false)")
	}
	if err := n1.DropVRRP(ctx, false); err != nil { // idempotent
		t.Fatal(err)
	}

	// DropTCPTo: the client cannot reach the responder while it is on.
	port := uint16(7200)
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	r := netlab.NewResponder(n1, port)
	go r.Run(rctx)
	<-r.Ready()
	client := l.Host(netlab.ClientName)
	target := netip.AddrPortFrom(n1.IPv4, port)
	probe := func() netlab.TCPSample {
		var s netlab.TCPSample
		client.Do(func() error {
			p := netlab.NewTCPProber(l.Timebase(), client, target)
			p.Timeout = 300 * time.Millisecond
			pctx, pcancel := context.WithTimeout(ctx, 350*time.Millisecond)
			defer pcancel()
			p.Run(pctx)
			if ss := p.Samples(); len(ss) > 0 {
				s = ss[0]
			} else {
				s.Err = "no sample"
			}
			return nil
		})
		return s
	}
	if s := probe(); s.Node != "n1" {
		t.Fatalf("before DropTCPTo: %+v", s)
	}
	if err := client.DropTCPTo(ctx, target, true); err != nil {
		t.Fatal(err)
	}
	if s := probe(); s.OK() {
		t.Errorf("DropTCPTo on: probe answered %+v", s)
	}
	if err := client.DropTCPTo(ctx, target, false); err != nil {
		t.Fatal(err)
	}
	if s := probe(); s.Node != "n1" {
		t.Errorf("DropTCPTo off: %+v", s)
	}

	// LinkDown / LinkUp and Unplug / Plug.
	if err := n1.LinkDown(); err != nil {
		t.Fatal(err)
	}
	if s := probe(); s.OK() {
		t.Errorf("link down: probe answered %+v", s)
	}
	if err := n1.LinkUp(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "n1 reachable after LinkUp", func() bool { return probe().Node == "n1" })
	if err := n1.Unplug(); err != nil {
		t.Fatal(err)
	}
	if s := probe(); s.OK() {
		t.Errorf("unplugged: probe answered %+v", s)
	}
	if err := n1.Plug(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "n1 reachable after Plug", func() bool { return probe().Node == "n1" })

	// Freeze / Thaw.
	p, err := n1.Start(ctx, "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	if err := n1.Freeze(p.PID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "stopped state", func() bool { return procState(p.PID) == 'T' })
	if err := n1.Thaw(p.PID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "running state", func() bool { return procState(p.PID) == 'S' || procState(p.PID) == 'R' })
	if err := l.Host("n2").Freeze(p.PID); err == nil {
		t.Errorf("n2.Freeze of n1's process succeeded")
	}
	if err := n1.Freeze(os.Getpid()); err == nil {
		t.Errorf("Freeze of the test process succeeded")
	}
	p.Kill(syscall.SIGKILL)
	p.Wait(ctx)
}

func procState(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return s[i+2]
}

// TestNDPProber: the IPv6 variant sees one holder, then two.
func TestNDPProber(t *testing.T) {
	l := netlabtest.NewForTest(t, netlab.DefaultOptions())
	ctx, cancel := context.WithCancel(context.Background())
	p := netlab.NewARPProber(l, l.VIP6())
	p.Interval = 50 * time.Millisecond
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("prober: %v", err)
		}
	}()
	<-p.Ready()
	vip := netip.PrefixFrom(l.VIP6(), 64)
	if err := l.Host("n1").AddAddr(vip); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "NA from n1", func() bool {
		return slices.Equal(lastRoundHosts(p), []string{"n1"})
	})
	if err := l.Host("n2").AddAddr(vip); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "NAs from n1 and n2", func() bool {
		return slices.Equal(lastRoundHosts(p), []string{"n1", "n2"})
	})
	for _, r := range p.Rounds() {
		for _, h := range r.Hosts {
			if h != "n1" && h != "n2" {
				t.Errorf("answer from %s", h)
			}
		}
	}
}
