package netlab

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
)

const (
	etherTypeARP  = 0x0806
	etherTypeIPv6 = 0x86dd
)

// ARPRound is one probe round: who answered the probe for the VIP, and
// who announced the VIP (gratuitous ARP) during the round.
type ARPRound struct {
	At Stamp `json:"at"`
	// MACs are the distinct hardware addresses that answered the probe,
	// sorted; Hosts names them ("?" for a MAC of no lab host).
	MACs  []string `json:"macs,omitempty"`
	Hosts []string `json:"hosts,omitempty"`
	// GARPs counts gratuitous ARPs for the VIP seen in the round, per host.
	GARPs map[string]int `json:"garps,omitempty"`
	// Err is set when the probe could not be sent.
	Err string `json:"err,omitempty"`
}

// SetAnswerers fills r's MACs with the set macs, sorted, and its Hosts
// with their names.
func (r *ARPRound) SetAnswerers(macs map[string]bool, name func(net.HardwareAddr) string) {
	r.MACs, r.Hosts = nil, nil
	for m := range macs {
		r.MACs = append(r.MACs, m)
	}
	slices.Sort(r.MACs)
	for _, m := range r.MACs {
		hw, _ := net.ParseMAC(m)
		r.Hosts = append(r.Hosts, name(hw))
	}
}

// CountGARP counts one gratuitous ARP by host in r.
func (r *ARPRound) CountGARP(host string) {
	if r.GARPs == nil {
		r.GARPs = map[string]int{}
	}
	r.GARPs[host]++
}

// ARPProber sends an RFC 5227 ARP probe (sender IP 0.0.0.0, so no neighbour
// cache learns from it) for the VIP from the lab's switch namespace every
// Interval and records the MACs that answer. The probe goes out of the
// bridge device itself, which has no address; replies come back to the
// bridge's MAC.
//
// For an IPv6 VIP it sends a neighbour solicitation instead, from the
// lab's address ::fd (Lab.ProbeAddr6, never given to a host) with the
// bridge's MAC as source link-layer address, to the VIP's solicited-node
// group; holders answer with a unicast solicited advertisement. (A DAD-style
// solicitation from :: would be answered to all-nodes and update every
// host's neighbour cache, disturbing the measurement.) Unsolicited
// advertisements for the VIP count as GARPs.
type ARPProber struct {
	// Interval between probes (default 100 ms); replies are collected until
	// the next probe.
	Interval time.Duration

	tb    Timebase
	vip   netip.Addr
	src6  netip.Addr
	sw    *Host
	names func(net.HardwareAddr) string

	mu     sync.Mutex
	rounds []ARPRound
	ready  chan struct{}
}

// NewARPProber probes for vip (IPv4) from l's switch.
func NewARPProber(l *Lab, vip netip.Addr) *ARPProber {
	return &ARPProber{
		Interval: 100 * time.Millisecond,
		tb:       l.Timebase(),
		vip:      vip.Unmap(),
		src6:     l.ProbeAddr6(),
		sw:       l.Switch(),
		names:    l.HostByMAC,
		ready:    make(chan struct{}),
	}
}

// Ready is closed when the socket is open and probing starts.
func (p *ARPProber) Ready() <-chan struct{} { return p.ready }

// Run probes until ctx ends; it returns nil then, or the error that
// stopped it.
func (p *ARPProber) Run(ctx context.Context) error {
	etherType := etherTypeARP
	if p.vip.Is6() {
		etherType = etherTypeIPv6
	}
	var conn *packet.Conn
	var ifi *net.Interface
	err := p.sw.Do(func() error {
		var err error
		ifi, err = net.InterfaceByName(p.sw.Iface)
		if err != nil {
			return err
		}
		conn, err = packet.Listen(ifi, packet.Raw, etherType, nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("netlab: arp prober: %w", err)
	}
	defer conn.Close()
	frame, dstMAC, err := p.probeFrame(ifi.HardwareAddr)
	if err != nil {
		return fmt.Errorf("netlab: arp prober: %w", err)
	}
	dst := &packet.Addr{HardwareAddr: dstMAC}
	interval := p.Interval
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	close(p.ready)

	buf := make([]byte, 1500)
	next := time.Now()
	for ctx.Err() == nil {
		roundStart := time.Now()
		next = next.Add(interval)
		if next.Before(roundStart) { // fell behind: skip, do not burst
			next = roundStart.Add(interval)
		}
		round := ARPRound{At: p.tb.Stamp(roundStart)}
		if _, err := conn.WriteTo(frame, dst); err != nil {
			round.Err = err.Error()
		}
		macs := map[string]bool{}
		for {
			if err := conn.SetReadDeadline(next); err != nil {
				return fmt.Errorf("netlab: arp prober: %w", err)
			}
			n, _, err := conn.ReadFrom(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				return fmt.Errorf("netlab: arp prober: read: %w", err)
			}
			kind, mac := p.classify(buf[:n], ifi.HardwareAddr)
			switch kind {
			case arpAnswer:
				macs[mac.String()] = true
			case arpAnnounce:
				round.CountGARP(p.name(mac))
			}
		}
		round.SetAnswerers(macs, p.name)
		p.mu.Lock()
		p.rounds = append(p.rounds, round)
		p.mu.Unlock()
	}
	return nil
}

func (p *ARPProber) name(mac net.HardwareAddr) string {
	if n := p.names(mac); n != "" {
		return n
	}
	return "?" + mac.String()
}

type arpKind int

const (
	arpOther arpKind = iota
	arpAnswer
	arpAnnounce
)

// probeFrame builds the probe: an ARP request from 0.0.0.0, or an IPv6
// neighbour solicitation to the VIP's solicited-node group.
func (p *ARPProber) probeFrame(self net.HardwareAddr) ([]byte, net.HardwareAddr, error) {
	if p.vip.Is4() {
		req, err := arp.NewPacket(arp.OperationRequest, self, netip.IPv4Unspecified(),
			make(net.HardwareAddr, 6), p.vip)
		if err != nil {
			return nil, nil, err
		}
		pb, _ := req.MarshalBinary()
		f, err := (&ethernet.Frame{
			Destination: ethernet.Broadcast, Source: self, EtherType: ethernet.EtherTypeARP, Payload: pb,
		}).MarshalBinary()
		return f, ethernet.Broadcast, err
	}
	group, err := ndp.SolicitedNodeMulticast(p.vip)
	if err != nil {
		return nil, nil, err
	}
	ns := &ndp.NeighborSolicitation{
		TargetAddress: p.vip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: self}},
	}
	icmp, err := ndp.MarshalMessageChecksum(ns, p.src6, group)
	if err != nil {
		return nil, nil, err
	}
	ip6 := make([]byte, 40, 40+len(icmp))
	ip6[0] = 0x60
	binary.BigEndian.PutUint16(ip6[4:6], uint16(len(icmp)))
	ip6[6] = 58 // ICMPv6
	ip6[7] = 255
	s16, g16 := p.src6.As16(), group.As16()
	copy(ip6[8:24], s16[:])
	copy(ip6[24:40], g16[:])
	dstMAC := net.HardwareAddr{0x33, 0x33, g16[12], g16[13], g16[14], g16[15]}
	f, err := (&ethernet.Frame{
		Destination: dstMAC, Source: self, EtherType: ethernet.EtherTypeIPv6, Payload: append(ip6, icmp...),
	}).MarshalBinary()
	return f, dstMAC, err
}

// classify sorts a received frame: an answer to our probe (a reply for the
// VIP addressed to us), an announcement of the VIP (gratuitous request or
// reply: sender IP = VIP, not addressed to us), or anything else.
func (p *ARPProber) classify(b []byte, self net.HardwareAddr) (arpKind, net.HardwareAddr) {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(b); err != nil {
		return arpOther, nil
	}
	if f.EtherType == ethernet.EtherTypeIPv6 {
		return p.classifyNA(&f, self)
	}
	if f.EtherType != ethernet.EtherTypeARP {
		return arpOther, nil
	}
	var a arp.Packet
	if err := a.UnmarshalBinary(f.Payload); err != nil {
		return arpOther, nil
	}
	if a.SenderIP.Unmap() != p.vip || bytes.Equal(a.SenderHardwareAddr, self) {
		return arpOther, nil
	}
	if a.Operation == arp.OperationReply && bytes.Equal(a.TargetHardwareAddr, self) {
		return arpAnswer, a.SenderHardwareAddr
	}
	return arpAnnounce, a.SenderHardwareAddr
}

// classifyNA sorts an IPv6 frame: a solicited advertisement for the VIP
// sent to us answers the probe; any other advertisement for it announces.
func (p *ARPProber) classifyNA(f *ethernet.Frame, self net.HardwareAddr) (arpKind, net.HardwareAddr) {
	b := f.Payload
	if len(b) < 40 || b[0]>>4 != 6 || b[6] != 58 || bytes.Equal(f.Source, self) {
		return arpOther, nil
	}
	n := int(binary.BigEndian.Uint16(b[4:6]))
	if 40+n > len(b) {
		return arpOther, nil
	}
	m, err := ndp.ParseMessage(b[40 : 40+n])
	if err != nil {
		return arpOther, nil
	}
	na, ok := m.(*ndp.NeighborAdvertisement)
	if !ok || na.TargetAddress != p.vip {
		return arpOther, nil
	}
	mac := f.Source
	for _, o := range na.Options {
		if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == ndp.Target {
			mac = lla.Addr
		}
	}
	if na.Solicited && bytes.Equal(f.Destination, self) {
		return arpAnswer, mac
	}
	return arpAnnounce, mac
}

// Rounds returns every round recorded so far.
func (p *ARPProber) Rounds() []ARPRound {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.rounds)
}

// DualRounds returns the rounds in which two or more distinct MACs
// answered: two holders of the VIP on the wire.
func (p *ARPProber) DualRounds() []ARPRound { return DualRounds(p.Rounds()) }

// DualRounds returns those of rounds in which two or more distinct MACs
// answered.
func DualRounds(rounds []ARPRound) []ARPRound {
	var out []ARPRound
	for _, r := range rounds {
		if len(r.MACs) >= 2 {
			out = append(out, r)
		}
	}
	return out
}

// Changes returns the first round and every round whose set of answering
// hosts differs from the previous round's (a compact timeline).
func (p *ARPProber) Changes() []ARPRound {
	var out []ARPRound
	var prev []string
	for i, r := range p.Rounds() {
		if i == 0 || !slices.Equal(r.Hosts, prev) {
			out = append(out, r)
		}
		prev = r.Hosts
	}
	return out
}

// GARPCount returns how many gratuitous ARPs for the VIP each host sent in
// all rounds.
func (p *ARPProber) GARPCount() map[string]int { return GARPCount(p.Rounds()) }

// GARPCount returns how many gratuitous ARPs each host sent in rounds.
func GARPCount(rounds []ARPRound) map[string]int {
	out := map[string]int{}
	for _, r := range rounds {
		for h, n := range r.GARPs {
			out[h] += n
		}
	}
	return out
}
