package wire

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lab/netlab"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

var (
	macA  = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0xa}
	macB  = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0xb}
	macX  = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0xee} // nobody's
	vip   = netip.MustParseAddr("10.66.0.100")
	names = map[string]string{"52:54:00:00:00:0A": "nA", macB.String(): "nB"}
)

// tcpMode is how the fake nodes treat a SYN for the VIP.
type tcpMode int

const (
	tcpAccept tcpMode = iota
	tcpRefuse
	tcpSilent
)

// fakeNodes play the VMs of a segment: the holders of the VIP answer ARP
// requests and probes for it and, from the first holder's MAC, SYNs.
type fakeNodes struct {
	seg *Segment
	sub *Subscription

	mu      sync.Mutex
	holders []net.HardwareAddr
	mode    tcpMode
	synAcks map[uint16]uint32 // client port -> ISN+1 we acknowledged
	resets  int               // RSTs that closed one of our SYN-ACKs
	arpFrom []netip.Addr      // sender IPs of ARP requests for the VIP
	bad     []string
}

// startFakeNodes opens a segment for the host and one for fake nodes
// serving on it until the test ends.
func startFakeNodes(t *testing.T) (host, wire *Segment, nodes *fakeNodes) {
	host, wire = openPair(t)
	nodes = &fakeNodes{seg: wire, sub: wire.Subscribe(4096), synAcks: map[uint16]uint32{}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go nodes.run(ctx)
	return host, wire, nodes
}

func (n *fakeNodes) set(mode tcpMode, holders ...net.HardwareAddr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mode, n.holders = mode, holders
}

func (n *fakeNodes) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case f, ok := <-n.sub.Frames():
			if !ok {
				return
			}
			n.handle(f.Data)
		}
	}
}

func (n *fakeNodes) handle(b []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if m, drop := parseARP(b); drop == "" {
		if m.Operation != arp.OperationRequest || m.TargetIP != vip || m.gratuitous() {
			return
		}
		n.arpFrom = append(n.arpFrom, m.SenderIP)
		for _, h := range n.holders {
			f, _ := arpFrame(m.SenderHardwareAddr, arp.OperationReply, h, vip, m.SenderHardwareAddr, m.SenderIP)
			n.seg.Send(f)
		}
		return
	}
	var e ethernet.Frame
	if e.UnmarshalBinary(b) != nil || e.EtherType != ethernet.EtherTypeIPv4 {
		return
	}
	if !independentChecksumsOK(e.Payload) {
		n.bad = append(n.bad, "bad checksum")
		return
	}
	s, drop := parseTCP(b)
	if drop != "" || s.Dst.Addr() != vip || len(n.holders) == 0 || !sameMAC(s.EthDst, n.holders[0]) {
		return
	}
	switch {
	case s.Flags == tcpSYN:
		switch n.mode {
		case tcpAccept:
			n.synAcks[s.Src.Port()] = s.Seq + 1
			f, _ := tcpFrame(n.holders[0], s.EthSrc, s.Dst, s.Src, 7777, s.Seq+1, tcpSYN|tcpACK, 1)
			n.seg.Send(f)
		case tcpRefuse:
			f, _ := tcpFrame(n.holders[0], s.EthSrc, s.Dst, s.Src, 0, s.Seq+1, tcpRST|tcpACK, 1)
			n.seg.Send(f)
		}
	case s.Flags == tcpRST:
		if want, ok := n.synAcks[s.Src.Port()]; ok && s.Seq == want {
			n.resets++
			delete(n.synAcks, s.Src.Port())
		}
	default:
		n.bad = append(n.bad, "unexpected tcp flags")
	}
}

// independentChecksumsOK checks an IPv4 packet's header and TCP checksums
// the long way: 16-bit words summed in 64 bits, carries folded at the end.
func independentChecksumsOK(p []byte) bool {
	fold := func(words ...[]byte) uint64 {
		var s uint64
		for _, b := range words {
			for i := 0; i < len(b); i += 2 {
				w := uint64(b[i]) << 8
				if i+1 < len(b) {
					w |= uint64(b[i+1])
				}
				s += w
			}
		}
		for s > 0xffff {
			s = s>>16 + s&0xffff
		}
		return s
	}
	ihl := int(p[0]&0xf) * 4
	total := int(p[2])<<8 | int(p[3])
	if fold(p[:ihl]) != 0xffff {
		return false
	}
	seg := p[ihl:total]
	pseudo := append(append([]byte{}, p[12:20]...), 0, p[9], byte(len(seg)>>8), byte(len(seg)))
	return fold(pseudo, seg) == 0xffff
}

func (n *fakeNodes) announce(op arp.Operation, from net.HardwareAddr) {
	f, _ := arpFrame(ethernet.Broadcast, op, from, vip, ethernet.Broadcast, vip)
	n.seg.Send(f)
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func startChecker(t *testing.T, run func(context.Context) error, ready <-chan struct{}) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	<-ready
	return cancel
}

func TestARPProber(t *testing.T) {
	host, wire, nodes := startFakeNodes(t)

	p := NewARPProber(netlab.NewTimebase(), host, vip, names)
	p.Interval = 50 * time.Millisecond
	stop := startChecker(t, p.Run, p.Ready())

	answered := func(hosts ...string) func() bool {
		return func() bool {
			return slices.ContainsFunc(p.Rounds(), func(r netlab.ARPRound) bool { return slices.Equal(r.Hosts, hosts) })
		}
	}
	nodes.set(tcpSilent, macA)
	waitFor(t, "rounds answered by nA", answered("nA"))
	if d := p.DualRounds(); len(d) != 0 {
		t.Fatalf("dual rounds with one holder: %+v", d)
	}
	nodes.set(tcpSilent, macB, macA)
	waitFor(t, "rounds answered by nA and nB", answered("nA", "nB"))
	nodes.set(tcpSilent)

	// Announcements: requests and replies with sender = target = VIP.
	// A reply from the VIP to somebody else is no announcement.
	for range 3 {
		nodes.announce(arp.OperationRequest, macA)
	}
	nodes.announce(arp.OperationReply, macB)
	nodes.announce(arp.OperationReply, macB)
	nodes.announce(arp.OperationRequest, macX)
	f, _ := arpFrame(macX, arp.OperationReply, macA, vip, macX, netip.MustParseAddr("10.66.0.7"))
	wire.Send(f)
	want := map[string]int{"nA": 3, "nB": 2, "?" + macX.String(): 1}
	waitFor(t, "GARPs counted", func() bool {
		g := p.GARPCount()
		return g["nA"] == 3 && g["nB"] == 2 && g["?"+macX.String()] == 1
	})
	time.Sleep(3 * p.Interval)
	stop()

	rounds := p.Rounds()
	var dual int
	for _, r := range rounds {
		if r.Err != "" {
			t.Errorf("round %v: %s", r.At, r.Err)
		}
		if len(r.MACs) == 2 {
			dual++
			if !slices.Equal(r.MACs, []string{macA.String(), macB.String()}) || !slices.Equal(r.Hosts, []string{"nA", "nB"}) {
				t.Errorf("dual round %+v", r)
			}
		}
	}
	if d := p.DualRounds(); len(d) != dual || dual == 0 {
		t.Errorf("DualRounds = %d rounds, want %d > 0", len(d), dual)
	}
	if g := p.GARPCount(); len(g) != len(want) {
		t.Errorf("GARPCount = %v, want %v", g, want)
	}
	// The probes came from 0.0.0.0 and the prober's own 02:… MAC.
	nodes.mu.Lock()
	defer nodes.mu.Unlock()
	if len(nodes.arpFrom) == 0 || slices.ContainsFunc(nodes.arpFrom, func(a netip.Addr) bool { return !a.IsUnspecified() }) {
		t.Errorf("probe senders %v, want 0.0.0.0 only", nodes.arpFrom)
	}
	if p.MAC()[0] != 0x02 {
		t.Errorf("prober MAC %v is not locally administered", p.MAC())
	}
}

func TestTCPProber(t *testing.T) {
	host, wire, nodes := startFakeNodes(t)

	client := netip.MustParsePrefix("10.66.0.250/24")
	p := NewTCPProber(netlab.NewTimebase(), host, client, netip.AddrPortFrom(vip, 9000), names)
	p.Timeout = 200 * time.Millisecond
	nodes.set(tcpAccept, macA)
	stop := startChecker(t, p.Run, p.Ready())

	last := func(pred func(netlab.TCPSample) bool, n int) func() bool {
		return func() bool {
			s := p.Samples()
			if len(s) < n {
				return false
			}
			return !slices.ContainsFunc(s[len(s)-n:], func(x netlab.TCPSample) bool { return !pred(x) })
		}
	}
	waitFor(t, "answers from nA", last(func(s netlab.TCPSample) bool { return s.Node == "nA" }, 5))
	nodes.set(tcpRefuse, macA)
	waitFor(t, "refusals", last(func(s netlab.TCPSample) bool { return s.Err == "refused" }, 5))
	nodes.set(tcpSilent, macA)
	waitFor(t, "timeouts", last(func(s netlab.TCPSample) bool { return s.Err == "timeout" }, 5))

	// The VIP moves to B, which announces it: the client follows.
	nodes.mu.Lock()
	nodes.arpFrom = nil
	nodes.mu.Unlock()
	nodes.set(tcpAccept, macB)
	nodes.announce(arp.OperationRequest, macB)
	waitFor(t, "answers from nB", last(func(s netlab.TCPSample) bool { return s.Node == "nB" }, 5))

	// The client answers ARP requests for its address.
	sub := wire.Subscribe(1024)
	req, _ := arpFrame(ethernet.Broadcast, arp.OperationRequest, macB, vip, nil, client.Addr())
	wire.Send(req)
	waitFor(t, "the client's ARP reply", func() bool {
		for {
			select {
			case f := <-sub.Frames():
				m, drop := parseARP(f.Data)
				if drop == "" && m.Operation == arp.OperationReply && sameMAC(m.SenderHardwareAddr, p.MAC()) &&
					m.SenderIP == client.Addr() && sameMAC(m.TargetHardwareAddr, macB) && m.TargetIP == vip && sameMAC(m.EthDst, macB) {
					return true
				}
			default:
				return false
			}
		}
	})
	sub.Unsubscribe()
	time.Sleep(100 * time.Millisecond)
	stop()

	ans := p.Answerers()
	var who []string
	for _, iv := range ans {
		if len(iv.Who) == 1 && !slices.Contains(who, iv.Who[0]) {
			who = append(who, iv.Who[0])
		}
	}
	if !slices.Equal(who, []string{"nA", "nB"}) {
		t.Errorf("answerers %v, want nA then nB: %+v", who, ans)
	}
	if out := p.Outages(); len(out) == 0 {
		t.Error("no outage recorded for the refusals and timeouts")
	}
	if !ans[len(ans)-1].Open || slices.ContainsFunc(ans[:len(ans)-1], func(iv netlab.Interval) bool { return iv.Open }) {
		t.Errorf("only the last interval is open: %+v", ans)
	}
	nodes.mu.Lock()
	defer nodes.mu.Unlock()
	if len(nodes.bad) > 0 {
		t.Errorf("fake nodes saw: %v", nodes.bad)
	}
	// After the timeouts the client asked who has the VIP, as itself.
	if len(nodes.arpFrom) == 0 || slices.ContainsFunc(nodes.arpFrom, func(a netip.Addr) bool { return a != client.Addr() }) {
		t.Errorf("ARP requests after the timeouts from %v, want %v", nodes.arpFrom, client.Addr())
	}
	// Every SYN-ACK was reset with the right sequence number (bar the
	// last ones, whose RST may still be on its way as Run ended).
	if nodes.resets == 0 || len(nodes.synAcks) > 10 {
		t.Errorf("%d SYN-ACKs reset, %d not", nodes.resets, len(nodes.synAcks))
	}
}

// Closing the segments after the checkers' Run returned leaves no
// goroutine behind: the readers stop with Close, the checkers start none.
func TestNoGoroutineLeft(t *testing.T) {
	before := runtime.NumGoroutine()
	g := randomGroup()
	host, err := Open(g)
	if err != nil {
		t.Fatal(err)
	}
	arpP := NewARPProber(netlab.NewTimebase(), host, vip, names)
	tcpP := NewTCPProber(netlab.NewTimebase(), host, netip.MustParsePrefix("10.66.0.250/24"), netip.AddrPortFrom(vip, 9000), names)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- arpP.Run(ctx) }()
	go func() { errs <- tcpP.Run(ctx) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if len(arpP.Rounds()) == 0 || len(tcpP.Samples()) == 0 {
		t.Errorf("%d rounds, %d samples", len(arpP.Rounds()), len(tcpP.Samples()))
	}
	host.Close()
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}
