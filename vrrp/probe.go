package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/arp"
)

// ProbeARP asks who has vip with RFC 5227 probes (sender IP 0.0.0.0, so no
// neighbour cache learns from them) and returns the hardware address of
// another host that answers within wait ("" if none). Two probes are sent,
// wait/2 apart. IPv6 VIPs are not probed (nil, "").
func ProbeARP(ctx context.Context, ifname string, vip netip.Addr, wait time.Duration) (string, error) {
	if !vip.Is4() {
		return "", nil
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
