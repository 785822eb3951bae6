package wire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("wire: segment closed")

// loopback is the only interface a Segment ever joins or sends on.
var loopback = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// maxFrame bounds a received datagram: an Ethernet frame without FCS of
// at most 1514 bytes, with room for a VLAN tag and jumbo-ish guests.
const maxFrame = 65536

// Frame is one Ethernet frame heard on the segment. Data is shared by
// every subscriber and must not be modified.
type Frame struct {
	// At is when the segment's reader received the datagram.
	At   time.Time
	Data []byte
}

// Segment is a host endpoint on a qemu "-netdev socket,mcast=" L2
// segment: one UDP socket joined to the group on 127.0.0.1. Each datagram
// on the group is one raw Ethernet frame.
type Segment struct {
	group netip.AddrPort
	conn  *net.UDPConn
	dst   *net.UDPAddr

	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
	done   chan struct{} // the reader has returned
	err    error         // why the reader returned, set before done closes
}

// Open joins group ("230.1.2.3:30000", an IPv4 multicast address and a
// port) on the loopback interface and starts the segment's single reader,
// which runs until Close. The socket is bound to the group address and
// port with SO_REUSEADDR and SO_REUSEPORT, so it shares the port with
// qemu's sockets and other Segments; it sends with IP_MULTICAST_IF
// 127.0.0.1, IP_MULTICAST_LOOP on and TTL 0, so no frame leaves the host.
func Open(group string) (*Segment, error) {
	ap, err := netip.ParseAddrPort(group)
	if err != nil {
		return nil, fmt.Errorf("wire: group %q: %w", group, err)
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if !ap.Addr().Is4() || !ap.Addr().IsMulticast() || ap.Port() == 0 {
		return nil, fmt.Errorf("wire: group %q: not an IPv4 multicast address with a port", group)
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = setupSocket(int(fd), ap.Addr()) })
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", ap.String())
	if err != nil {
		return nil, fmt.Errorf("wire: open %s: %w", ap, err)
	}
	s := &Segment{
		group: ap,
		conn:  pc.(*net.UDPConn),
		dst:   net.UDPAddrFromAddrPort(ap),
		subs:  map[*Subscription]struct{}{},
		done:  make(chan struct{}),
	}
	go s.read()
	return s, nil
}

// setupSocket sets the options of the segment's socket before it is bound.
func setupSocket(fd int, group netip.Addr) error {
	lo := loopback.As4()
	mreq := &unix.IPMreq{Multiaddr: group.As4(), Interface: lo}
	for _, o := range []struct {
		name string
		set  func() error
	}{
		{"SO_REUSEADDR", func() error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1) }},
		{"SO_REUSEPORT", func() error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) }},
		{"IP_ADD_MEMBERSHIP", func() error { return unix.SetsockoptIPMreq(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq) }},
		{"IP_MULTICAST_IF", func() error { return unix.SetsockoptInet4Addr(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, lo) }},
		{"IP_MULTICAST_LOOP", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 1) }},
		{"IP_MULTICAST_TTL", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 0) }},
		// Only this group's datagrams, even if another socket of the
		// process joined another group on the same port.
		{"IP_MULTICAST_ALL", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0) }},
	} {
		if err := o.set(); err != nil {
			return fmt.Errorf("%s: %w", o.name, err)
		}
	}
	return nil
}

// Group returns the segment's group address and port.
func (s *Segment) Group() netip.AddrPort { return s.group }

// Send puts one Ethernet frame on the segment. Every member of the group,
// this Segment's own subscribers included, receives it.
func (s *Segment) Send(frame []byte) error {
	if _, err := s.conn.WriteToUDP(frame, s.dst); err != nil {
		if errors.Is(err, net.ErrClosed) {
			return ErrClosed
		}
		return fmt.Errorf("wire: send on %s: %w", s.group, err)
	}
	return nil
}

// Close leaves the group, stops the reader and closes every subscription's
// channel. It waits for the reader to return.
func (s *Segment) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	err := s.conn.Close()
	<-s.done
	return err
}

// Err returns why the reader stopped before Close was called (nil while it
// runs or after a Close).
func (s *Segment) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// read is the segment's single reader: it hands every datagram, stamped
// with its receive time, to every subscriber.
func (s *Segment) read() {
	defer close(s.done)
	defer s.closeSubs()
	buf := make([]byte, maxFrame)
	for {
		n, _, err := s.conn.ReadFromUDPAddrPort(buf)
		at := time.Now()
		if err != nil {
			s.mu.Lock()
			if !s.closed {
				s.err = fmt.Errorf("wire: read on %s: %w", s.group, err)
			}
			s.mu.Unlock()
			return
		}
		f := Frame{At: at, Data: append([]byte(nil), buf[:n]...)}
		s.mu.Lock()
		for sub := range s.subs {
			sub.offer(f)
		}
		s.mu.Unlock()
	}
}

func (s *Segment) closeSubs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.subs {
		delete(s.subs, sub)
		close(sub.c)
	}
}

// Subscription receives every frame heard on the segment from the moment
// it was made, in order, through a bounded channel: when the channel is
// full the frame is dropped for this subscriber and counted, never
// waited for.
type Subscription struct {
	seg     *Segment
	c       chan Frame
	dropped atomic.Uint64
}

// Subscribe returns a subscription whose channel holds up to buffer frames
// (at least 1). Its channel is closed by Unsubscribe or by the segment's
// Close.
func (s *Segment) Subscribe(buffer int) *Subscription {
	sub := &Subscription{seg: s, c: make(chan Frame, max(buffer, 1))}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		close(sub.c)
	default:
		s.subs[sub] = struct{}{}
	}
	return sub
}

// Frames returns the subscription's channel.
func (sub *Subscription) Frames() <-chan Frame { return sub.c }

// Dropped returns how many frames this subscriber missed because its
// channel was full.
func (sub *Subscription) Dropped() uint64 { return sub.dropped.Load() }

// Unsubscribe stops delivery and closes the channel; it is idempotent.
func (sub *Subscription) Unsubscribe() {
	s := sub.seg
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs[sub]; ok {
		delete(s.subs, sub)
		close(sub.c)
	}
}

// offer delivers f without blocking; called with the segment's lock held.
func (sub *Subscription) offer(f Frame) {
	select {
	case sub.c <- f:
	default:
		sub.dropped.Add(1)
	}
}
