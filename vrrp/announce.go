package vrrp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// Announcer sends gratuitous ARP for IPv4 VIPs and unsolicited neighbour
// advertisements for IPv6 VIPs on one interface, as keepalived does on
// becoming master. Timing (bursts, garp_master_delay, refresh) belongs to
// the caller; Announce sends one packet per VIP.
type Announcer struct {
	ifi *net.Interface
	arp *arp.Client
	ndp *ndp.Conn
}

// NewAnnouncer opens the sockets needed for the families in vips.
func NewAnnouncer(ifname string, vips []netip.Addr) (*Announcer, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("vrrp: announcer: interface %q: %w", ifname, err)
	}
	a := &Announcer{ifi: ifi}
	var need4, need6 bool
	for _, v := range vips {
		need4 = need4 || v.Is4()
		need6 = need6 || v.Is6()
	}
	if need4 {
		c, err := arp.Dial(ifi)
		if err != nil {
			return nil, fmt.Errorf("vrrp: announcer: arp socket on %s: %w", ifname, err)
		}
		a.arp = c
	}
	if need6 {
		c, _, err := ndp.Listen(ifi, ndp.LinkLocal)
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("vrrp: announcer: ndp on %s: %w", ifname, err)
		}
		var f ipv6.ICMPFilter
		f.SetAll(true) // send only: never queue received ICMPv6
		if err := c.SetICMPFilter(&f); err != nil {
			c.Close()
			a.Close()
			return nil, fmt.Errorf("vrrp: announcer: icmp filter on %s: %w", ifname, err)
		}
		a.ndp = c
	}
	return a, nil
}

// Announce sends one gratuitous ARP (request, sender = target = VIP,
// broadcast) or one unsolicited NA (override, to ff02::1) per VIP.
func (a *Announcer) Announce(vips []netip.Addr) error {
	var errs []error
	for _, v := range vips {
		switch {
		case v.Is4() && a.arp != nil:
			p, err := arp.NewPacket(arp.OperationRequest, a.ifi.HardwareAddr, v, broadcastMAC, v)
			if err == nil {
				err = a.arp.WriteTo(p, broadcastMAC)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("garp %s: %w", v, err))
			}
		case v.Is6() && a.ndp != nil:
			na := &ndp.NeighborAdvertisement{
				Override:      true,
				TargetAddress: v,
				Options: []ndp.Option{&ndp.LinkLayerAddress{
					Direction: ndp.Target, Addr: a.ifi.HardwareAddr,
				}},
			}
			if err := a.ndp.WriteTo(na, nil, netip.IPv6LinkLocalAllNodes()); err != nil {
				errs = append(errs, fmt.Errorf("unsolicited na %s: %w", v, err))
			}
		default:
			errs = append(errs, fmt.Errorf("no socket for %s", v))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("vrrp: announce on %s: %w", a.ifi.Name, errors.Join(errs...))
	}
	return nil
}

// Close closes the sockets.
func (a *Announcer) Close() error {
	var errs []error
	if a.arp != nil {
		errs = append(errs, a.arp.Close())
	}
	if a.ndp != nil {
		errs = append(errs, a.ndp.Close())
	}
	return errors.Join(errs...)
}
