package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// ErrNoAddress: the interface has no usable source address for the family.
var ErrNoAddress = errors.New("vrrp: no source address on interface")

// PacketMeta is what the kernel tells about a received packet.
type PacketMeta struct {
	Src, Dst netip.Addr
	TTL      int // IPv4 TTL or IPv6 hop limit; -1 if the kernel did not say
	IfIndex  int
}

// Conn is one raw VRRP socket (IP protocol 112) bound to one interface and
// address family. Instances on the same interface share it and demultiplex
// by VRID. Sent packets carry TTL/hop limit 255 (RFC 5798 §5.1.1.3) and the
// source address asked for; IPv4 packets carry TOS 0xc0 as keepalived's.
// Sends are safe for concurrent use and do not allocate; WriteBatch (and
// an Outbox) sends many adverts with one system call, ReadBatch reads many
// with one. Conn is the Linux Socket.
type Conn struct {
	ifi  *net.Interface
	six  bool
	src  netip.Addr
	p4   *ipv4.PacketConn
	p6   *ipv6.PacketConn
	base net.PacketConn

	raw    syscall.RawConn
	sendFn func(fd uintptr) bool // c.sendmmsg, bound once
	// c.recvmmsg, bound once, and the batch it fills (one reader at a time)
	recvFn  func(fd uintptr) bool
	recvCur *recvBatch
	rb      *recvBatch // ReadBatch's, made on first use

	wmu     sync.Mutex // guards the send scratch below
	scratch sendScratch
	idx     []int
	single  [1]Outgoing
}

// ConnOptions configure a Conn.
type ConnOptions struct {
	// Src overrides the source address (keepalived unicast_src_ip). For
	// IPv4 the default is the interface's first IPv4 address, for IPv6 its
	// link-local address (RFC 5798 §5.1.2.1).
	Src netip.Addr
	// Multicast joins the VRRP group on the interface. Unicast-only
	// instances leave it off.
	Multicast bool
}

// Listen opens a VRRP socket on ifname for IPv4 (six false) or IPv6.
func Listen(ifname string, six bool, opts ConnOptions) (*Conn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("vrrp: interface %q: %w", ifname, err)
	}
	src := opts.Src
	if !src.IsValid() {
		if src, err = InterfaceSource(ifi, six); err != nil {
			return nil, err
		}
	}
	network, laddr := "ip4:112", "0.0.0.0"
	if six {
		network, laddr = "ip6:112", "::"
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, ifname)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), network, laddr)
	if err != nil {
		return nil, fmt.Errorf("vrrp: listen %s on %s: %w", network, ifname, err)
	}
	c := &Conn{ifi: ifi, six: six, src: src, base: pc}
	if err := c.setup(opts); err != nil {
		pc.Close()
		return nil, err
	}
	if err := c.setupSend(); err != nil {
		pc.Close()
		return nil, err
	}
	return c, nil
}

func (c *Conn) setup(opts ConnOptions) error {
	wrap := func(what string, err error) error {
		if err != nil {
			return fmt.Errorf("vrrp: %s on %s: %w", what, c.ifi.Name, err)
		}
		return nil
	}
	if !c.six {
		p := ipv4.NewPacketConn(c.base)
		c.p4 = p
		if err := p.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst|ipv4.FlagInterface, true); err != nil {
			return wrap("control messages", err)
		}
		if err := p.SetTTL(255); err != nil {
			return wrap("ttl", err)
		}
		if err := p.SetMulticastTTL(255); err != nil {
			return wrap("multicast ttl", err)
		}
		if err := p.SetMulticastLoopback(false); err != nil {
			return wrap("multicast loopback", err)
		}
		if err := p.SetMulticastInterface(c.ifi); err != nil {
			return wrap("multicast interface", err)
		}
		if opts.Multicast {
			return wrap("join 224.0.0.18", p.JoinGroup(c.ifi, &net.IPAddr{IP: GroupV4.AsSlice()}))
		}
		return nil
	}
	p := ipv6.NewPacketConn(c.base)
	c.p6 = p
	if err := p.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true); err != nil {
		return wrap("control messages", err)
	}
	if err := p.SetHopLimit(255); err != nil {
		return wrap("hop limit", err)
	}
	if err := p.SetMulticastHopLimit(255); err != nil {
		return wrap("multicast hop limit", err)
	}
	if err := p.SetMulticastLoopback(false); err != nil {
		return wrap("multicast loopback", err)
	}
	if err := p.SetMulticastInterface(c.ifi); err != nil {
		return wrap("multicast interface", err)
	}
	if opts.Multicast {
		return wrap("join ff02::12", p.JoinGroup(c.ifi, &net.IPAddr{IP: GroupV6.AsSlice()}))
	}
	return nil
}

// Src is the address adverts are sent from.
func (c *Conn) Src() netip.Addr { return c.src }

// Interface is the interface the socket is bound to.
func (c *Conn) Interface() *net.Interface { return c.ifi }

// IPv6 reports the socket's family.
func (c *Conn) IPv6() bool { return c.six }

// ReadFrom reads one VRRP payload (without the IP header) into b.
func (c *Conn) ReadFrom(b []byte) (int, PacketMeta, error) {
	meta := PacketMeta{TTL: -1}
	if c.p4 != nil {
		n, cm, src, err := c.p4.ReadFrom(b)
		if err != nil {
			return 0, meta, err
		}
		if cm != nil {
			meta.TTL = cm.TTL
			meta.IfIndex = cm.IfIndex
			meta.Dst, _ = netip.AddrFromSlice(cm.Dst.To4())
		}
		if ia, ok := src.(*net.IPAddr); ok {
			meta.Src, _ = netip.AddrFromSlice(ia.IP.To4())
		}
		return n, meta, nil
	}
	n, cm, src, err := c.p6.ReadFrom(b)
	if err != nil {
		return 0, meta, err
	}
	if cm != nil {
		meta.TTL = cm.HopLimit
		meta.IfIndex = cm.IfIndex
		meta.Dst, _ = netip.AddrFromSlice(cm.Dst)
	}
	if ia, ok := src.(*net.IPAddr); ok {
		meta.Src, _ = netip.AddrFromSlice(ia.IP)
	}
	return n, meta, nil
}

// WriteTo sends one VRRP payload to dst (the multicast group or a unicast
// peer) from the Conn's source address.
func (c *Conn) WriteTo(b []byte, dst netip.Addr) error { return c.WriteFrom(b, c.src, dst) }

// WriteFrom sends one VRRP payload to dst from src (an address of the
// interface; instances sharing a Conn may use different unicast sources).
func (c *Conn) WriteFrom(b []byte, src, dst netip.Addr) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.single[0] = Outgoing{Payload: b, Src: src, Dst: dst}
	err := c.writeBatchLocked(c.single[:])
	c.single[0].Payload = nil
	if err != nil {
		return fmt.Errorf("vrrp: send on %s: %w", c.ifi.Name, err)
	}
	if err := c.single[0].Err; err != nil {
		return fmt.Errorf("vrrp: send to %s on %s: %w", dst, c.ifi.Name, err)
	}
	return nil
}

// WriteBatch sends pkts with as few system calls as it can (sendmmsg on
// Linux) and sets each packet's Err. It does not allocate unless a packet
// fails.
func (c *Conn) WriteBatch(pkts []Outgoing) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	err := c.writeBatchLocked(pkts)
	for i := range pkts {
		if p := &pkts[i]; p.Err != nil {
			p.Err = fmt.Errorf("vrrp: send to %s on %s: %w", p.Dst, c.ifi.Name, p.Err)
		}
	}
	if err != nil {
		return fmt.Errorf("vrrp: send on %s: %w", c.ifi.Name, err)
	}
	return nil
}

// Outbox collects VRRP payloads for one Socket and sends them together
// with one WriteBatch (one sendmmsg on Linux): the Mux's scheduler sends
// all adverts due at one instant with one system call. An Outbox is not
// safe for concurrent use; its buffers are reused, so a steady state does
// not allocate.
type Outbox struct {
	sock Socket
	data []byte
	pkts []outPacket
	out  []Outgoing // the batch Flush passes to WriteBatch
}

// outPacket is one payload of an Outbox: data[off:off+n] from src to dst.
type outPacket struct {
	off, n   int
	src, dst netip.Addr
}

// NewOutbox returns an empty Outbox for s.
func NewOutbox(s Socket) *Outbox { return &Outbox{sock: s} }

// NewOutbox returns an empty Outbox for c.
func (c *Conn) NewOutbox() *Outbox { return NewOutbox(c) }

// Add copies payload into the Outbox, to be sent from src to dst, and
// returns its index for Err.
func (o *Outbox) Add(payload []byte, src, dst netip.Addr) int {
	o.pkts = append(o.pkts, outPacket{off: len(o.data), n: len(payload), src: src, dst: dst})
	o.data = append(o.data, payload...)
	return len(o.pkts) - 1
}

// Len is the number of packets added since the last Reset.
func (o *Outbox) Len() int { return len(o.pkts) }

// Flush sends every packet added. Each packet's own failure (an
// unreachable peer, a wrong family) is reported by Err and does not stop
// the others; Flush returns an error only when the socket itself failed.
func (o *Outbox) Flush() error {
	if len(o.pkts) == 0 {
		return nil
	}
	o.out = slices.Grow(o.out[:0], len(o.pkts))[:len(o.pkts)]
	for i, p := range o.pkts {
		o.out[i] = Outgoing{Payload: o.data[p.off : p.off+p.n], Src: p.src, Dst: p.dst}
	}
	return o.sock.WriteBatch(o.out)
}

// Err is the send error of packet i after Flush (nil: sent).
func (o *Outbox) Err(i int) error {
	if i >= len(o.out) {
		return nil
	}
	return o.out[i].Err
}

// Reset empties the Outbox, keeping its buffers.
func (o *Outbox) Reset() {
	clear(o.out) // drop references to errors and payloads
	o.data, o.pkts, o.out = o.data[:0], o.pkts[:0], o.out[:0]
}

// Close closes the socket, unblocking ReadFrom and ReadBatch.
func (c *Conn) Close() error { return c.base.Close() }

// InterfaceSource picks the default VRRP source address of an interface: its
// first IPv4 address, or its IPv6 link-local address.
func InterfaceSource(ifi *net.Interface, six bool) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("vrrp: addresses of %s: %w", ifi.Name, err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if !six && ip.Is4() {
			return ip, nil
		}
		if six && ip.Is6() && ip.IsLinkLocalUnicast() {
			return ip, nil
		}
	}
	fam := "IPv4"
	if six {
		fam = "IPv6 link-local"
	}
	return netip.Addr{}, fmt.Errorf("%w: %s has no %s address", ErrNoAddress, ifi.Name, fam)
}
