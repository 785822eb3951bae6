package wire

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/leasehold/leasehold/lab/netlab"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

// TCPProber is a tiny user-space TCP client on a segment. It owns a client
// IPv4 address and its own locally administered MAC, answers ARP requests
// for that address, and every Interval, on a fixed grid, sends a SYN from
// a fresh source port with a random ISN to the target. A SYN-ACK from the
// target counts as answered by the node named after the frame's source MAC
// (and is reset at once, so no half-open connections pile up in the
// guest), an RST as "refused", nothing within Timeout as "timeout".
// Several probes may be in flight.
//
// It keeps no neighbour cache of its own making: the SYN goes to the MAC
// last heard for the target's address, learnt from any ARP reply or
// gratuitous ARP with that sender address on the segment, or from an ARP
// request for the client's address sent from it. While none is known, or
// after a probe timed out, a probe first broadcasts an ARP request for the
// target (sender: the client's address and MAC, so the answering kernel
// learns the client) and sends its SYN when an answer is heard, like a
// real client whose neighbour entry went stale.
type TCPProber struct {
	// Interval between probe starts (default 20 ms).
	Interval time.Duration
	// Timeout for an answer to a probe, ARP resolution included (default
	// 100 ms).
	Timeout time.Duration

	tb     netlab.Timebase
	seg    *Segment
	client netip.Prefix
	target netip.AddrPort
	mac    net.HardwareAddr
	names  nameBook

	mu      sync.Mutex
	samples []netlab.TCPSample
	end     netlab.Stamp
	ready   chan struct{}
}

// NewTCPProber probes target from the address client (e.g. 10.66.0.250/24,
// on the target's subnet) on s; names maps MACs to node names.
func NewTCPProber(tb netlab.Timebase, s *Segment, client netip.Prefix, target netip.AddrPort, names map[string]string) *TCPProber {
	return &TCPProber{
		Interval: 20 * time.Millisecond,
		Timeout:  100 * time.Millisecond,
		tb:       tb,
		seg:      s,
		client:   client,
		target:   netip.AddrPortFrom(target.Addr().Unmap(), target.Port()),
		mac:      newMAC(),
		names:    newNameBook(names),
		ready:    make(chan struct{}),
	}
}

// MAC returns the client's hardware address.
func (p *TCPProber) MAC() net.HardwareAddr { return p.mac }

// Ready is closed when the prober listens and probing starts.
func (p *TCPProber) Ready() <-chan struct{} { return p.ready }

// probe is one SYN in flight.
type probe struct {
	port     uint16
	isn      uint32
	begin    time.Time
	deadline time.Time
	resolved bool // the SYN was sent (else it waits for an ARP answer)
}

// tcpClient is Run's state; only Run's goroutine touches it.
type tcpClient struct {
	p        *TCPProber
	ip       netip.Addr
	timeout  time.Duration
	peer     net.HardwareAddr // last MAC heard for the target, nil if none
	stale    bool             // the last probe timed out: resolve again
	inflight map[uint16]*probe
	port     uint16
	ipID     uint16
}

// Run probes until ctx ends; it returns nil then, or the error that
// stopped it. It starts no goroutine. Probes still in flight when ctx
// ends are not recorded.
func (p *TCPProber) Run(ctx context.Context) error {
	ip := p.client.Addr().Unmap()
	if !ip.Is4() || !p.target.Addr().Is4() || !p.client.Masked().Contains(p.target.Addr()) {
		return fmt.Errorf("wire: tcp prober: client %v and target %v must be IPv4 on one subnet", p.client, p.target)
	}
	interval, timeout := p.Interval, p.Timeout
	if interval <= 0 {
		interval = 20 * time.Millisecond
	}
	if timeout <= 0 {
		timeout = 100 * time.Millisecond
	}
	c := &tcpClient{
		p:        p,
		ip:       ip,
		timeout:  timeout,
		inflight: map[uint16]*probe{},
		port:     uint16(32768 + rand.IntN(28232)),
		ipID:     uint16(rand.Uint32()),
	}
	defer func() {
		p.mu.Lock()
		p.end = p.tb.Now()
		p.mu.Unlock()
	}()
	sub := p.seg.Subscribe(subBuffer)
	defer sub.Unsubscribe()
	close(p.ready)

	next := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case f, ok := <-sub.Frames():
			if !ok {
				return fmt.Errorf("wire: tcp prober: segment closed: %v", p.seg.Err())
			}
			c.receive(f)
			continue
		case <-timer.C:
		}
		// Frames already queued are judged before any probe expires.
		if err := c.drain(sub); err != nil {
			return err
		}
		now := time.Now()
		c.expire(now)
		if !now.Before(next) {
			if late := now.Sub(next); late > interval { // fell behind: skip slots
				next = next.Add(late / interval * interval)
			}
			next = next.Add(interval)
			c.start(now)
		}
		wake := next
		for _, pr := range c.inflight {
			if pr.deadline.Before(wake) {
				wake = pr.deadline
			}
		}
		timer.Reset(time.Until(wake))
	}
}

// drain handles every frame already waiting in sub.
func (c *tcpClient) drain(sub *Subscription) error {
	for {
		select {
		case f, ok := <-sub.Frames():
			if !ok {
				return fmt.Errorf("wire: tcp prober: segment closed: %v", c.p.seg.Err())
			}
			c.receive(f)
		default:
			return nil
		}
	}
}

// start begins a probe at now: a SYN to the target's MAC, or an ARP
// request first.
func (c *tcpClient) start(now time.Time) {
	for {
		c.port++
		if c.port < 32768 || c.port >= 61000 {
			c.port = 32768
		}
		if c.inflight[c.port] == nil {
			break
		}
	}
	pr := &probe{port: c.port, isn: rand.Uint32(), begin: now, deadline: now.Add(c.timeout)}
	c.inflight[pr.port] = pr
	if c.peer == nil || c.stale {
		f, err := arpFrame(ethernet.Broadcast, arp.OperationRequest, c.p.mac, c.ip, nil, c.p.target.Addr())
		if err == nil {
			err = c.p.seg.Send(f)
		}
		if err != nil {
			c.finish(pr, "", "arp: "+err.Error(), now)
		}
		return
	}
	c.sendSYN(pr)
}

func (c *tcpClient) sendSYN(pr *probe) {
	pr.resolved = true
	if err := c.send(c.peer, pr.port, pr.isn, 0, tcpSYN); err != nil {
		c.finish(pr, "", "send: "+err.Error(), time.Now())
	}
}

func (c *tcpClient) send(dst net.HardwareAddr, port uint16, seq, ack uint32, flags uint8) error {
	c.ipID++
	f, err := tcpFrame(c.p.mac, dst, netip.AddrPortFrom(c.ip, port), c.p.target, seq, ack, flags, c.ipID)
	if err != nil {
		return err
	}
	return c.p.seg.Send(f)
}

// finish records pr's outcome and forgets it.
func (c *tcpClient) finish(pr *probe, node, errText string, at time.Time) {
	delete(c.inflight, pr.port)
	s := netlab.TCPSample{At: c.p.tb.Stamp(pr.begin), Node: node, Err: errText, RTTUS: at.Sub(pr.begin).Microseconds()}
	c.p.mu.Lock()
	c.p.samples = append(c.p.samples, s)
	c.p.mu.Unlock()
}

// expire records a timeout for every probe whose deadline has passed.
func (c *tcpClient) expire(now time.Time) {
	for _, pr := range c.inflight {
		if now.After(pr.deadline) {
			c.finish(pr, "", "timeout", pr.deadline)
			c.stale = true
		}
	}
}

// receive handles one frame heard on the segment.
func (c *tcpClient) receive(f Frame) {
	if m, drop := parseARP(f.Data); drop == "" {
		c.receiveARP(&m)
		return
	}
	if t, drop := parseTCP(f.Data); drop == "" {
		c.receiveTCP(&t, f.At)
	}
}

func (c *tcpClient) receiveARP(m *arpMsg) {
	if sameMAC(m.SenderHardwareAddr, c.p.mac) {
		return // our own, looped back
	}
	if m.Operation == arp.OperationRequest && m.TargetIP == c.ip && m.SenderIP.IsValid() && !m.SenderIP.IsUnspecified() && !m.gratuitous() {
		if f, err := arpFrame(m.SenderHardwareAddr, arp.OperationReply, c.p.mac, c.ip, m.SenderHardwareAddr, m.SenderIP); err == nil {
			c.p.seg.Send(f) // a lost reply is asked for again
		}
	}
	if m.SenderIP != c.p.target.Addr() {
		return
	}
	if m.Operation == arp.OperationReply || m.gratuitous() || m.TargetIP == c.ip {
		c.peer = slices.Clone(m.SenderHardwareAddr)
		c.stale = false
		for _, pr := range c.inflight {
			if !pr.resolved {
				c.sendSYN(pr)
			}
		}
	}
}

func (c *tcpClient) receiveTCP(t *tcpSeg, at time.Time) {
	if t.Dst.Addr() != c.ip || t.Src != c.p.target || !sameMAC(t.EthDst, c.p.mac) {
		return
	}
	pr := c.inflight[t.Dst.Port()]
	if pr != nil && (!t.has(tcpACK) || t.Ack != pr.isn+1) {
		pr = nil // not an answer to this probe's SYN
	}
	if pr != nil && at.After(pr.deadline) {
		c.finish(pr, "", "timeout", pr.deadline)
		c.stale = true
		pr = nil
	}
	switch {
	case t.has(tcpSYN | tcpACK):
		// Reset every SYN-ACK to our address, late ones included: the
		// guest would keep the half-open connection otherwise.
		c.send(t.EthSrc, t.Dst.Port(), t.Ack, 0, tcpRST)
		if pr != nil {
			c.finish(pr, c.p.names.name(t.EthSrc), "", at)
			c.stale = false
		}
	case t.has(tcpRST) && pr != nil:
		c.finish(pr, "", "refused", at)
		c.stale = false
	}
}

// Samples returns every probe recorded so far, in order of their start.
func (p *TCPProber) Samples() []netlab.TCPSample {
	p.mu.Lock()
	out := slices.Clone(p.samples)
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b netlab.TCPSample) int { return cmp.Compare(a.At.MonoUS, b.At.MonoUS) })
	return out
}

func (p *TCPProber) endStamp() netlab.Stamp {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.end.IsZero() {
		return p.tb.Now()
	}
	return p.end
}

// Answerers returns the timeline of who answered
// (netlab.AnswererIntervals of the samples so far).
func (p *TCPProber) Answerers() []netlab.Interval {
	return netlab.AnswererIntervals(p.Samples(), p.endStamp())
}

// Outages returns the spans without an answer (netlab.OutageIntervals of
// the samples so far).
func (p *TCPProber) Outages() []netlab.Interval {
	return netlab.OutageIntervals(p.Samples(), p.endStamp())
}
