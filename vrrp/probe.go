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

// ProbeARP asks who has vip with RFC 5227 probes (sender IP 0.0.0.0, so no
// neighbour cache learns from them) and returns the hardware address of
// another host that answers within wait ("" if none). Two probes are sent,
// wait/2 apart. IPv6 VIPs get neighbour solicitations from our link-local
// address to the VIP's solicited-node group.
func ProbeARP(ctx context.Context, ifname string, vip netip.Addr, wait time.Duration) (string, error) {
	if vip.Is6() {
		return probeNS(ctx, ifname, vip, wait)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return "", fmt.Errorf("vrrp: probe: %w", err)
	}
	c, err := arp.Dial(ifi)
	if err != nil {
		return "", fmt.Errorf("vrrp: probe on %s: %w", ifname, err)
	}
	defer c.Close()
	req, err := arp.NewPacket(arp.OperationRequest, ifi.HardwareAddr, netip.IPv4Unspecified(),
		net.HardwareAddr{0, 0, 0, 0, 0, 0}, vip)
	if err != nil {
		return "", err
	}
	end := time.Now().Add(wait)
	if d, ok := ctx.Deadline(); ok && d.Before(end) {
		end = d
	}
	for i := 0; i < 2; i++ {
		if err := c.WriteTo(req, broadcastMAC); err != nil {
			return "", fmt.Errorf("vrrp: probe %s: %w", vip, err)
		}
		until := end
		if i == 0 {
			until = time.Now().Add(wait / 2)
		}
		for {
			if err := c.SetReadDeadline(until); err != nil {
				return "", err
			}
			p, _, err := c.Read()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				continue // not an ARP packet we can parse
			}
			if p.Operation == arp.OperationReply && p.SenderIP == vip && p.SenderHardwareAddr.String() != ifi.HardwareAddr.String() {
				return p.SenderHardwareAddr.String(), nil
			}
		}
	}
	return "", nil
}

// probeNS sends neighbour solicitations for vip to its solicited-node
// group and returns the link-layer address of another host that
// advertises it. (A DAD probe from :: would need a raw IPv6 header; from
// our link-local address the only side effect is that neighbours learn
// that address, which is ours anyway.)
func probeNS(ctx context.Context, ifname string, vip netip.Addr, wait time.Duration) (string, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return "", fmt.Errorf("vrrp: probe: %w", err)
	}
	c, _, err := ndp.Listen(ifi, ndp.LinkLocal)
	if err != nil {
		return "", fmt.Errorf("vrrp: probe on %s: %w", ifname, err)
	}
	defer c.Close()
	group, err := ndp.SolicitedNodeMulticast(vip)
	if err != nil {
		return "", err
	}
	if err := c.JoinGroup(netip.IPv6LinkLocalAllNodes()); err != nil {
		return "", fmt.Errorf("vrrp: probe on %s: %w", ifname, err)
	}
	ns := &ndp.NeighborSolicitation{TargetAddress: vip, Options: []ndp.Option{
		&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: ifi.HardwareAddr}}}
	end := time.Now().Add(wait)
	if d, ok := ctx.Deadline(); ok && d.Before(end) {
		end = d
	}
	for i := 0; i < 2; i++ {
		if err := c.WriteTo(ns, nil, group); err != nil {
			return "", fmt.Errorf("vrrp: probe %s: %w", vip, err)
		}
		until := end
		if i == 0 {
			until = time.Now().Add(wait / 2)
		}
		for {
			if err := c.SetReadDeadline(until); err != nil {
				return "", err
			}
			m, _, _, err := c.ReadFrom()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				continue
			}
			na, ok := m.(*ndp.NeighborAdvertisement)
			if !ok || na.TargetAddress != vip {
				continue
			}
			mac := "unknown"
			for _, o := range na.Options {
				if l, ok := o.(*ndp.LinkLayerAddress); ok && l.Direction == ndp.Target {
					mac = l.Addr.String()
				}
			}
			if mac != ifi.HardwareAddr.String() {
				return mac, nil
			}
		}
	}
	return "", nil
}
