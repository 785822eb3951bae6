package fencing

import (
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/leasehold/leasehold/test/nstest"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// peer is a second network namespace, served by one locked OS thread: the
// "client" side that sends ARP, ICMP and TCP to the fenced node.
type peer struct {
	fns  chan func()
	done chan struct{}
}

func newPeer(t *testing.T) *peer {
	p := &peer{fns: make(chan func()), done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		defer close(p.done)
		runtime.LockOSThread() // never unlocked: the thread, and the namespace, die with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- nil
		for fn := range p.fns {
			fn()
		}
	}()
	if err := <-errc; err != nil {
		t.Fatalf("peer namespace: %v", err)
	}
	t.Cleanup(func() { close(p.fns); <-p.done })
	return p
}

func (p *peer) do(fn func()) {
	done := make(chan struct{})
	p.fns <- func() { defer close(done); fn() }
	<-done
}

// wire links the calling thread's namespace (the node, inside nstest.Run)
// to p: node eth0 10.9.0.2/24 + fd00::2/64 (no DAD), peer eth0p 10.9.0.3/24 +
// fd00::3/64. It returns the node's link.
func wire(t *testing.T, p *peer) netlink.Link {
	t.Helper()
	link := nstest.Link(t, "eth0", "10.9.0.2/24")
	var fd int
	var err error
	p.do(func() { fd, err = unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0) })
	if err != nil {
		t.Fatalf("peer ns fd: %v", err)
	}
	defer unix.Close(fd)
	pl, err := netlink.LinkByName("eth0p")
	if err == nil {
		err = netlink.LinkSetNsFd(pl, fd)
	}
	if err != nil {
		t.Fatalf("move eth0p: %v", err)
	}
	p.do(func() {
		var l netlink.Link
		l, err = netlink.LinkByName("eth0p")
		if err != nil {
			return
		}
		a, _ := netlink.ParseAddr("10.9.0.3/24")
		if err = netlink.AddrAdd(l, a); err != nil {
			return
		}
		a, _ = netlink.ParseAddr("fd00::3/64")
		a.Flags = unix.IFA_F_NODAD
		if err = netlink.AddrAdd(l, a); err != nil {
			return
		}
		if lo, e := netlink.LinkByName("lo"); e == nil {
			netlink.LinkSetUp(lo)
		}
		err = netlink.LinkSetUp(l)
	})
	if err != nil {
		t.Fatalf("peer eth0p: %v", err)
	}
	addAddr(t, link, "fd00::2/64")
	return link
}

// addAddr puts prefix on link (IPv6 without DAD).
func addAddr(t *testing.T, link netlink.Link, prefix string) {
	t.Helper()
	a, err := netlink.ParseAddr(prefix)
	if err == nil {
		if a.IP.To4() == nil {
			a.Flags = unix.IFA_F_NODAD
		}
		err = netlink.AddrAdd(link, a)
	}
	if err != nil {
		t.Fatalf("address %s: %v", prefix, err)
	}
}

// arpAnswered sends one ARP request for ip from the peer and reports
// whether a reply came within wait.
func (p *peer) arpAnswered(t *testing.T, ip netip.Addr, wait time.Duration) bool {
	t.Helper()
	var ok bool
	p.do(func() {
		ifi, err := net.InterfaceByName("eth0p")
		if err != nil {
			t.Errorf("peer: %v", err)
			return
		}
		c, err := arp.Dial(ifi)
		if err != nil {
			t.Errorf("peer arp: %v", err)
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(wait))
		_, err = c.Resolve(ip)
		ok = err == nil
	})
	return ok
}

// pin adds a permanent neighbour entry on the peer, so IP traffic to ip
// reaches the node whatever ARP does.
func (p *peer) pin(t *testing.T, ip netip.Addr, mac net.HardwareAddr) {
	t.Helper()
	var err error
	p.do(func() {
		var l netlink.Link
		if l, err = netlink.LinkByName("eth0p"); err == nil {
			err = netlink.NeighSet(&netlink.Neigh{LinkIndex: l.Attrs().Index, IP: ip.AsSlice(),
				HardwareAddr: mac, State: netlink.NUD_PERMANENT})
		}
	})
	if err != nil {
		t.Fatalf("peer neigh %s: %v", ip, err)
	}
}

// tcpConnects dials ip:port from the peer.
func (p *peer) tcpConnects(ip netip.Addr, port uint16, wait time.Duration) bool {
	var ok bool
	p.do(func() {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(ip, port).String(), wait)
		if err == nil {
			c.Close()
			ok = true
		}
	})
	return ok
}

// pings sends one ICMP echo to ip (IPv4) from the peer.
func (p *peer) pings(t *testing.T, ip netip.Addr, wait time.Duration) bool {
	t.Helper()
	var ok bool
	p.do(func() {
		c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		if err != nil {
			t.Errorf("peer icmp: %v", err)
			return
		}
		defer c.Close()
		id := os.Getpid() & 0xffff
		m := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: 1, Data: []byte("fence")}}
		b, _ := m.Marshal(nil)
		if _, err := c.WriteTo(b, &net.IPAddr{IP: ip.AsSlice()}); err != nil {
			return
		}
		c.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			r, err := icmp.ParseMessage(1, buf[:n])
			if err == nil && r.Type == ipv4.ICMPTypeEchoReply && from.String() == ip.String() {
				ok = true
				return
			}
		}
	})
	return ok
}

// ndAnswered sends one neighbour solicitation for ip from the peer
// (source fd00::3) and reports whether an advertisement for it came back.
func (p *peer) ndAnswered(t *testing.T, ip netip.Addr, wait time.Duration) bool {
	t.Helper()
	var ok bool
	p.do(func() {
		ifi, err := net.InterfaceByName("eth0p")
		if err != nil {
			t.Errorf("peer: %v", err)
			return
		}
		c, _, err := ndp.Listen(ifi, ndp.UniqueLocal)
		if err != nil {
			t.Errorf("peer ndp: %v", err)
			return
		}
		defer c.Close()
		dst, err := ndp.SolicitedNodeMulticast(ip)
		if err != nil {
			t.Errorf("peer ndp: %v", err)
			return
		}
		ns := &ndp.NeighborSolicitation{TargetAddress: ip, Options: []ndp.Option{
			&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: ifi.HardwareAddr}}}
		if err := c.WriteTo(ns, nil, dst); err != nil {
			t.Errorf("peer ndp: %v", err)
			return
		}
		c.SetReadDeadline(time.Now().Add(wait))
		for {
			m, _, _, err := c.ReadFrom()
			if err != nil {
				return
			}
			if na, isNA := m.(*ndp.NeighborAdvertisement); isNA && na.TargetAddress == ip {
				ok = true
				return
			}
		}
	})
	return ok
}
