package wire

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/leasehold/leasehold/lab/netlab"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

// subBuffer is the channel size of a checker's subscription: a few
// hundred milliseconds of a busy segment.
const subBuffer = 4096

// nameBook names hosts by MAC, netlab-style: "?" and the MAC for one
// the book does not know.
type nameBook map[string]string

func newNameBook(names map[string]string) nameBook {
	b := nameBook{}
	for mac, name := range names {
		if hw, err := net.ParseMAC(mac); err == nil {
			b[hw.String()] = name
		} else {
			b[strings.ToLower(mac)] = name
		}
	}
	return b
}

func (b nameBook) name(mac net.HardwareAddr) string {
	if n := b[mac.String()]; n != "" {
		return n
	}
	return "?" + mac.String()
}

// ARPProber makes netlab.ARPProber's measurement on a segment: every
// Interval it broadcasts an RFC 5227 ARP probe for the VIP (sender IP
// 0.0.0.0, so no neighbour cache learns from it) from its own locally
// administered MAC, and records the distinct MACs whose ARP replies for
// the VIP (sender IP = VIP, target MAC = ours) are heard until the next
// probe. Gratuitous ARPs for the VIP (request or reply, sender IP = target
// IP = VIP) from any other MAC count per host in the round they are heard
// in. IPv4 only.
type ARPProber struct {
	// Interval between probes (default 100 ms).
	Interval time.Duration

	tb    netlab.Timebase
	seg   *Segment
	vip   netip.Addr
	mac   net.HardwareAddr
	names nameBook

	mu     sync.Mutex
	rounds []netlab.ARPRound
	ready  chan struct{}
}

// NewARPProber probes for vip (IPv4) on s; names maps MACs to node names.
func NewARPProber(tb netlab.Timebase, s *Segment, vip netip.Addr, names map[string]string) *ARPProber {
	return &ARPProber{
		Interval: 100 * time.Millisecond,
		tb:       tb,
		seg:      s,
		vip:      vip.Unmap(),
		mac:      newMAC(),
		names:    newNameBook(names),
		ready:    make(chan struct{}),
	}
}

// MAC returns the prober's own hardware address.
func (p *ARPProber) MAC() net.HardwareAddr { return p.mac }

// Ready is closed when the prober listens and probing starts.
func (p *ARPProber) Ready() <-chan struct{} { return p.ready }

// Run probes until ctx ends; it returns nil then, or the error that
// stopped it (the segment closed under it). It starts no goroutine.
func (p *ARPProber) Run(ctx context.Context) error {
	if !p.vip.Is4() {
		return fmt.Errorf("wire: arp prober: %v is not an IPv4 address", p.vip)
	}
	probe, err := arpFrame(ethernet.Broadcast, arp.OperationRequest, p.mac, netip.IPv4Unspecified(), nil, p.vip)
	if err != nil {
		return fmt.Errorf("wire: arp prober: %w", err)
	}
	sub := p.seg.Subscribe(subBuffer)
	defer sub.Unsubscribe()
	interval := p.Interval
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	close(p.ready)

	var carry *Frame // read early: belongs to a later round
	next := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for ctx.Err() == nil {
		roundStart := time.Now()
		next = next.Add(interval)
		if next.Before(roundStart) { // fell behind: skip, do not burst
			next = roundStart.Add(interval)
		}
		round := netlab.ARPRound{At: p.tb.Stamp(roundStart)}
		if err := p.seg.Send(probe); err != nil {
			round.Err = err.Error()
		}
		macs := map[string]bool{}
		// A frame belongs to the round it was received in, however late
		// it is read: collect until the first one received after next.
		if carry != nil {
			p.classify(*carry, macs, &round)
			carry = nil
		}
		timer.Reset(time.Until(next))
	collect:
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
				break collect
			case f, ok := <-sub.Frames():
				if !ok {
					return fmt.Errorf("wire: arp prober: segment closed: %v", p.seg.Err())
				}
				if !f.At.Before(next) {
					carry = &f
					timer.Stop()
					break collect
				}
				p.classify(f, macs, &round)
			}
		}
		round.SetAnswerers(macs, p.names.name)
		p.mu.Lock()
		p.rounds = append(p.rounds, round)
		p.mu.Unlock()
	}
	return nil
}

// classify adds f to the round: an answer to our probe or an
// announcement of the VIP.
func (p *ARPProber) classify(f Frame, macs map[string]bool, round *netlab.ARPRound) {
	kind, mac := classifyARP(f.Data, p.vip, p.mac)
	switch kind {
	case arpAnswer:
		macs[mac.String()] = true
	case arpAnnounce:
		round.CountGARP(p.names.name(mac))
	}
}

type arpKind int

const (
	arpOther arpKind = iota
	arpAnswer
	arpAnnounce
)

// classifyARP sorts a frame: a reply for vip addressed to self (an answer
// to the probe), a gratuitous request or reply for vip from another MAC
// (an announcement), or anything else.
func classifyARP(b []byte, vip netip.Addr, self net.HardwareAddr) (arpKind, net.HardwareAddr) {
	m, drop := parseARP(b)
	if drop != "" || m.SenderIP != vip || sameMAC(m.SenderHardwareAddr, self) {
		return arpOther, nil
	}
	switch {
	case m.gratuitous():
		return arpAnnounce, m.SenderHardwareAddr
	case m.Operation == arp.OperationReply && sameMAC(m.TargetHardwareAddr, self):
		return arpAnswer, m.SenderHardwareAddr
	}
	return arpOther, nil
}

// Rounds returns every round recorded so far.
func (p *ARPProber) Rounds() []netlab.ARPRound {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.rounds)
}

// DualRounds returns the rounds in which two or more distinct MACs
// answered: two holders of the VIP on the wire.
func (p *ARPProber) DualRounds() []netlab.ARPRound { return netlab.DualRounds(p.Rounds()) }

// GARPCount returns how many gratuitous ARPs for the VIP each host sent in
// all rounds.
func (p *ARPProber) GARPCount() map[string]int { return netlab.GARPCount(p.Rounds()) }
