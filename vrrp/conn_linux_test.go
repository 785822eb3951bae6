package vrrp_test

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/leasehold/leasehold/test/nstest"
	"github.com/leasehold/leasehold/vrrp"
)

// capture opens a packet socket on ifname that receives the network-layer
// packets of ethertype proto (ETH_P_IP, ETH_P_IPV6) as they arrive.
func capture(t *testing.T, ifname string, proto uint16) int {
	t.Helper()
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	p := proto<<8 | proto>>8 // htons
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(p))
	if err != nil {
		t.Fatalf("packet socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: p, Ifindex: ifi.Index}); err != nil {
		t.Fatalf("bind packet socket: %v", err)
	}
	tv := unix.NsecToTimeval((2 * time.Second).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	return fd
}

// nextVRRP returns the next captured packet carrying IP protocol 112
// (IPv4 protocol field or IPv6 next header).
func nextVRRP(t *testing.T, fd int, six bool) []byte {
	t.Helper()
	buf := make([]byte, 2048)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			t.Fatalf("capture: %v (no VRRP packet seen)", err)
		}
		p := buf[:n]
		if !six && n >= 20 && p[9] == 112 || six && n >= 40 && p[6] == 112 {
			return append([]byte(nil), p...)
		}
	}
}

// onesSum is the RFC 1071 sum of b, folded.
func onesSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

func advert(vrid uint8, prio uint8, vips ...netip.Addr) *vrrp.Advert {
	return &vrrp.Advert{Version: 3, VRID: vrid, Priority: prio, Interval: time.Second, Addrs: vips}
}

// checkIPv4 checks the header the kernel put on the wire for a packet we
// built with IP_HDRINCL, and that the payload decodes.
func checkIPv4(t *testing.T, p []byte, src, dst netip.Addr, vrid uint8) {
	t.Helper()
	if p[0] != 0x45 {
		t.Errorf("version/IHL %#x, want 0x45", p[0])
	}
	if p[1] != 0xc0 {
		t.Errorf("TOS %#x, want 0xc0 (keepalived's)", p[1])
	}
	if tl := binary.BigEndian.Uint16(p[2:4]); int(tl) != len(p) {
		t.Errorf("total length %d, captured %d", tl, len(p))
	}
	if p[8] != 255 {
		t.Errorf("TTL %d, want 255", p[8])
	}
	if p[9] != 112 {
		t.Errorf("protocol %d, want 112", p[9])
	}
	if s := onesSum(p[:20]); s != 0xffff {
		t.Errorf("header checksum does not verify (sum %#x)", s)
	}
	if got := netip.AddrFrom4([4]byte(p[12:16])); got != src {
		t.Errorf("source %v, want %v", got, src)
	}
	if got := netip.AddrFrom4([4]byte(p[16:20])); got != dst {
		t.Errorf("destination %v, want %v", got, dst)
	}
	var a vrrp.Advert
	if r := vrrp.Decode(p[20:], src, dst, &a); r != vrrp.DropNone {
		t.Errorf("payload does not decode: %v", r)
	} else if a.VRID != vrid {
		t.Errorf("VRID %d, want %d", a.VRID, vrid)
	}
}

func TestConnIPv4HeaderKernel(t *testing.T) {
	nstest.Run(t, func() {
		link := nstest.Link(t, "vh0", "10.9.0.1/24", "10.9.0.77/24")
		peer, err := netlink.LinkByName("vh0p")
		if link == nil || err != nil {
			t.Fatalf("links: %v", err)
		}
		// Unicast to 10.9.0.2 leaves vh0 for vh0p without ARP.
		if err := netlink.NeighAdd(&netlink.Neigh{LinkIndex: link.Attrs().Index, State: netlink.NUD_PERMANENT,
			IP: net.ParseIP("10.9.0.2"), HardwareAddr: peer.Attrs().HardwareAddr}); err != nil {
			t.Fatal(err)
		}
		fd := capture(t, "vh0p", unix.ETH_P_IP)
		c, err := vrrp.Listen("vh0", false, vrrp.ConnOptions{Multicast: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		src := netip.MustParseAddr("10.9.0.1")
		if c.Src() != src {
			t.Fatalf("default source %v, want %v", c.Src(), src)
		}
		vip := netip.MustParseAddr("10.9.0.100")

		// One packet through WriteTo.
		pkt, err := vrrp.Encode(nil, advert(7, 100, vip), src, vrrp.GroupV4, vrrp.EncodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WriteTo(pkt, vrrp.GroupV4); err != nil {
			t.Fatalf("WriteTo: %v", err)
		}
		checkIPv4(t, nextVRRP(t, fd, false), src, vrrp.GroupV4, 7)

		// A batch: multicast, unicast from a second source, one packet that
		// cannot go on this socket, then another multicast.
		o := c.NewOutbox()
		src2, peerIP := netip.MustParseAddr("10.9.0.77"), netip.MustParseAddr("10.9.0.2")
		type sent struct {
			src, dst netip.Addr
			vrid     uint8
		}
		want := []sent{{src, vrrp.GroupV4, 1}, {src2, peerIP, 2}, {src, vrrp.GroupV4, 3}}
		var idx []int
		bad := -1
		for i, w := range want {
			p, err := vrrp.Encode(nil, advert(w.vrid, 100, vip), w.src, w.dst, vrrp.EncodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			idx = append(idx, o.Add(p, w.src, w.dst))
			if i == 1 {
				bad = o.Add(p, netip.MustParseAddr("fe80::1"), vrrp.GroupV6)
			}
		}
		if err := o.Flush(); err != nil {
			t.Fatalf("Flush: %v", err)
		}
		for i, w := range want {
			if err := o.Err(idx[i]); err != nil {
				t.Errorf("packet %d: %v", i, err)
			}
			checkIPv4(t, nextVRRP(t, fd, false), w.src, w.dst, w.vrid)
		}
		if !errors.Is(o.Err(bad), vrrp.ErrInvalidAdvert) {
			t.Errorf("IPv6 packet on an IPv4 socket: error %v, want ErrInvalidAdvert", o.Err(bad))
		}
		o.Reset()
		if o.Len() != 0 {
			t.Errorf("Len after Reset = %d", o.Len())
		}
	})
}

func TestConnIPv6PktinfoKernel(t *testing.T) {
	_, err := os.Stat("/proc/sys/net/ipv6")
	nstest.Require(t, err == nil, "kernel without IPv6")
	nstest.Run(t, func() {
		link := nstest.Link(t, "vh6")
		if link == nil {
			t.Fatal("no link")
		}
		src := netip.MustParseAddr("fe80::a")
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: src.AsSlice(), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
		if err := netlink.AddrAdd(link, addr); err != nil {
			t.Fatal(err)
		}
		fd := capture(t, "vh6p", unix.ETH_P_IPV6)
		c, err := vrrp.Listen("vh6", true, vrrp.ConnOptions{Multicast: true, Src: src})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		vip := netip.MustParseAddr("2001:db8::100")
		o := c.NewOutbox()
		for vrid := uint8(1); vrid <= 3; vrid++ {
			p, err := vrrp.Encode(nil, advert(vrid, 100, vip), src, vrrp.GroupV6, vrrp.EncodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			o.Add(p, src, vrrp.GroupV6)
		}
		if err := o.Flush(); err != nil {
			t.Fatalf("Flush: %v", err)
		}
		for vrid := uint8(1); vrid <= 3; vrid++ {
			if err := o.Err(int(vrid) - 1); err != nil {
				t.Fatalf("packet %d: %v", vrid, err)
			}
			p := nextVRRP(t, fd, true)
			if p[7] != 255 {
				t.Errorf("hop limit %d, want 255", p[7])
			}
			gs, gd := netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40]))
			if gs != src || gd != vrrp.GroupV6 {
				t.Errorf("%v → %v, want %v → %v", gs, gd, src, vrrp.GroupV6)
			}
			var a vrrp.Advert
			if r := vrrp.Decode(p[40:], gs, gd, &a); r != vrrp.DropNone || a.VRID != vrid {
				t.Errorf("payload: drop %v, VRID %d (want %d)", r, a.VRID, vrid)
			}
		}
	})
}
