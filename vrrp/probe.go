package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
)

// Conflict is another host that answered a probe for one of our VIPs.
type Conflict struct {
	VIP netip.Addr
	MAC string
}

func (c Conflict) String() string { return c.MAC + " (for " + c.VIP.String() + ")" }

// Probe asks who has any of vips, all in one round on ifname, and returns
// the first other host that answers within wait (ok false if none).
// IPv4 VIPs get RFC 5227 ARP probes (sender IP 0.0.0.0, so no neighbour
// cache learns from them); IPv6 VIPs get neighbour solicitations from our
// link-local address to each VIP's solicited-node group. Two probes are sent
// for each VIP, wait/2 apart; the IPv4 and IPv6 rounds run side by side, so a
// group's probe costs one wait however many VIPs it has.
func Probe(ctx context.Context, ifname string, vips []netip.Addr, wait time.Duration) (c Conflict, ok bool, err error) {
	var v4, v6 []netip.Addr
	for _, v := range vips {
		if v.Is4() {
			v4 = append(v4, v)
		} else {
			v6 = append(v6, v)
		}
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return Conflict{}, false, fmt.Errorf("vrrp: probe: %w", err)
	}
	end := time.Now().Add(wait)
	if d, ok := ctx.Deadline(); ok && d.Before(end) {
		end = d
	}
	type result struct {
		c   Conflict
		ok  bool
		err error
	}
	// The sockets are opened here, on the caller's thread, which may be
	// in another network namespace than the goroutines that read them.
	res := make(chan result, 2)
	n := 0
	var errs []error
	for _, f := range []struct {
		vips []netip.Addr
		open func(*net.Interface, []netip.Addr) (prober, error)
	}{{v4, openARP}, {v6, openNS}} {
		if len(f.vips) == 0 {
			continue
		}
		p, err := f.open(ifi, f.vips)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n++
		go func() {
			defer p.close()
			c, ok, err := probeRounds(wait, end, p)
			res <- result{c, ok, err}
		}()
	}
	for range n {
		r := <-res
		if r.ok && !ok {
			c, ok = r.c, true
		}
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	if ok {
		return c, true, nil
	}
	return Conflict{}, false, errors.Join(errs...)
}

// prober is one open probe socket for a set of VIPs: send asks for all of
// them; read returns a conflict, or timeout once the read deadline passed.
type prober struct {
	send        func() error
	setDeadline func(time.Time) error
	read        func() (c Conflict, ok bool, timeout bool)
	close       func() error
}

// probeRounds sends twice (at once and at half the wait) and reads until end.
func probeRounds(wait time.Duration, end time.Time, p prober) (Conflict, bool, error) {
	for i := 0; i < 2; i++ {
		if err := p.send(); err != nil {
			return Conflict{}, false, err
		}
		until := end
		if i == 0 {
			if half := time.Now().Add(wait / 2); half.Before(end) {
				until = half
			}
		}
		if err := p.setDeadline(until); err != nil {
			return Conflict{}, false, err
		}
		for {
			c, ok, timeout := p.read()
			if ok {
				return c, true, nil
			}
			if timeout || !time.Now().Before(until) {
				break // (a socket that keeps failing ends at the deadline too)
			}
		}
	}
	return Conflict{}, false, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func openARP(ifi *net.Interface, vips []netip.Addr) (prober, error) {
	reqs := make([]*arp.Packet, len(vips))
	for i, vip := range vips {
		var err error
		if reqs[i], err = arp.NewPacket(arp.OperationRequest, ifi.HardwareAddr, netip.IPv4Unspecified(),
			net.HardwareAddr{0, 0, 0, 0, 0, 0}, vip); err != nil {
			return prober{}, err
		}
	}
	c, err := arp.Dial(ifi)
	if err != nil {
		return prober{}, fmt.Errorf("vrrp: probe on %s: %w", ifi.Name, err)
	}
	send := func() error {
		for i, r := range reqs {
			if err := c.WriteTo(r, broadcastMAC); err != nil {
				return fmt.Errorf("vrrp: probe %s: %w", vips[i], err)
			}
		}
		return nil
	}
	read := func() (Conflict, bool, bool) {
		p, _, err := c.Read()
		if err != nil {
			return Conflict{}, false, isTimeout(err) // else: not an ARP packet we can parse
		}
		if p.Operation != arp.OperationReply || p.SenderHardwareAddr.String() == ifi.HardwareAddr.String() {
			return Conflict{}, false, false
		}
		for _, v := range vips {
			if p.SenderIP == v {
				return Conflict{VIP: v, MAC: p.SenderHardwareAddr.String()}, true, false
			}
		}
		return Conflict{}, false, false
	}
	return prober{send: send, setDeadline: c.SetReadDeadline, read: read, close: c.Close}, nil
}

// openNS solicits each VIP at its solicited-node group. (A DAD probe
// from :: would need a raw IPv6 header; from our link-local address the
// only side effect is that neighbours learn that address, which is ours
// anyway.)
func openNS(ifi *net.Interface, vips []netip.Addr) (prober, error) {
	groups := make([]netip.Addr, len(vips))
	for i, vip := range vips {
		var err error
		if groups[i], err = ndp.SolicitedNodeMulticast(vip); err != nil {
			return prober{}, err
		}
	}
	c, _, err := ndp.Listen(ifi, ndp.LinkLocal)
	if err != nil {
		return prober{}, fmt.Errorf("vrrp: probe on %s: %w", ifi.Name, err)
	}
	if err := c.JoinGroup(netip.IPv6LinkLocalAllNodes()); err != nil {
		c.Close()
		return prober{}, fmt.Errorf("vrrp: probe on %s: %w", ifi.Name, err)
	}
	send := func() error {
		for i, vip := range vips {
			ns := &ndp.NeighborSolicitation{TargetAddress: vip, Options: []ndp.Option{
				&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: ifi.HardwareAddr}}}
			if err := c.WriteTo(ns, nil, groups[i]); err != nil {
				return fmt.Errorf("vrrp: probe %s: %w", vip, err)
			}
		}
		return nil
	}
	read := func() (Conflict, bool, bool) {
		m, _, _, err := c.ReadFrom()
		if err != nil {
			return Conflict{}, false, isTimeout(err)
		}
		na, ok := m.(*ndp.NeighborAdvertisement)
		if !ok {
			return Conflict{}, false, false
		}
		for _, v := range vips {
			if na.TargetAddress != v {
				continue
			}
			mac := "unknown"
			for _, o := range na.Options {
				if l, ok := o.(*ndp.LinkLayerAddress); ok && l.Direction == ndp.Target {
					mac = l.Addr.String()
				}
			}
			if mac != ifi.HardwareAddr.String() {
				return Conflict{VIP: v, MAC: mac}, true, false
			}
		}
		return Conflict{}, false, false
	}
	return prober{send: send, setDeadline: c.SetReadDeadline, read: read, close: c.Close}, nil
}
