package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The send path of Conn on Linux. IPv4 sockets set IP_HDRINCL and carry the
// 20-byte IPv4 header we build (as keepalived does), so TTL 255, TOS and the
// source address hold by construction and a send needs no control message.
// IPv6 sockets pass the source in an IPV6_PKTINFO control message built in
// place (the hop limit is the socket's, set to 255 by Listen). Packets go
// out with sendmmsg, many per system call, from scratch arrays reused across
// calls: a send does not allocate.

const (
	ipv4HeaderLen = 20
	// tosInternetControl is the IPv4 TOS keepalived sends adverts with
	// (IPTOS_PREC_INTERNETCONTROL).
	tosInternetControl = 0xc0
	// protoVRRP is the IP protocol number of VRRP.
	protoVRRP = 112
	// sendBufBytes is the send buffer asked for with SO_SNDBUFFORCE, so a
	// batch of a few hundred adverts fits even while a NIC holds them.
	sendBufBytes = 1 << 20
	// maxBatch bounds one sendmmsg call (the kernel's UIO_MAXIOV is 1024).
	maxBatch = 256
)

var pktinfoSpace = unix.CmsgSpace(unix.SizeofInet6Pktinfo)

// sendScratch holds the kernel-facing structures of one batch. Its slices
// only grow; the Go pointers in them point into the batch's own arrays and
// into the caller's payload bytes, which stay alive for the call.
type sendScratch struct {
	msgs []unix.Mmsghdr
	iovs []unix.Iovec // two per packet: IPv4 header (v4 only), payload
	ip4  []byte       // ipv4HeaderLen per packet
	sa4  []unix.RawSockaddrInet4
	sa6  []unix.RawSockaddrInet6
	cmsg []byte // pktinfoSpace per packet (v6)

	// the current sendmmsg call, read by Conn.sendFn
	from, count int
	errno       syscall.Errno
}

func (s *sendScratch) grow(n int) {
	if len(s.msgs) >= n {
		return
	}
	s.msgs = make([]unix.Mmsghdr, n)
	s.iovs = make([]unix.Iovec, 2*n)
	s.ip4 = make([]byte, ipv4HeaderLen*n)
	s.sa4 = make([]unix.RawSockaddrInet4, n)
	s.sa6 = make([]unix.RawSockaddrInet6, n)
	s.cmsg = make([]byte, pktinfoSpace*n)
}

// setupSend prepares the socket for the send path.
func (c *Conn) setupSend() error {
	sc, ok := c.base.(syscall.Conn)
	if !ok {
		return fmt.Errorf("vrrp: %T has no raw file descriptor", c.base)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("vrrp: raw socket on %s: %w", c.ifi.Name, err)
	}
	c.raw = raw
	c.sendFn, c.recvFn = c.sendmmsg, c.recvmmsg
	var serr error
	err = raw.Control(func(fd uintptr) {
		// Best effort: SO_SNDBUFFORCE needs CAP_NET_ADMIN; partial sends
		// are handled anyway.
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sendBufBytes)
		if !c.six {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_HDRINCL, 1)
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("vrrp: IP_HDRINCL on %s: %w", c.ifi.Name, err)
	}
	return nil
}

// putIPv4Header writes the header of a VRRP packet with a payload of n
// bytes into h. The kernel fills in the identification field (zero here).
func putIPv4Header(h []byte, src, dst [4]byte, n int) {
	h[0] = 4<<4 | ipv4HeaderLen/4
	h[1] = tosInternetControl
	binary.BigEndian.PutUint16(h[2:4], uint16(ipv4HeaderLen+n))
	h[4], h[5], h[6], h[7] = 0, 0, 0, 0 // identification, flags, fragment offset
	h[8] = 255                          // TTL (RFC 5798 §5.1.1.3)
	h[9] = protoVRRP
	h[10], h[11] = 0, 0
	copy(h[12:16], src[:])
	copy(h[16:20], dst[:])
	binary.BigEndian.PutUint16(h[10:12], ^fold(sum16(h[:ipv4HeaderLen])))
}

// prepare fills the scratch message i for packet p; it reports a packet
// that cannot be sent on this socket.
func (c *Conn) prepare(s *sendScratch, i int, p *Outgoing) error {
	m := &s.msgs[i]
	*m = unix.Mmsghdr{}
	payload, n := p.Payload, len(p.Payload)
	src, dst := p.Src.Unmap(), p.Dst.Unmap()
	if !c.six {
		if !src.Is4() || !dst.Is4() {
			return fmt.Errorf("%w: %v → %v on an IPv4 socket", ErrInvalidAdvert, p.Src, p.Dst)
		}
		if n == 0 {
			return fmt.Errorf("%w: empty payload", ErrInvalidAdvert)
		}
		h := s.ip4[i*ipv4HeaderLen : (i+1)*ipv4HeaderLen]
		putIPv4Header(h, src.As4(), dst.As4(), n)
		iov := s.iovs[2*i : 2*i+2]
		iov[0].Base, iov[1].Base = &h[0], &payload[0]
		iov[0].SetLen(ipv4HeaderLen)
		iov[1].SetLen(n)
		sa := &s.sa4[i]
		*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.As4()}
		m.Hdr.Name = (*byte)(unsafe.Pointer(sa))
		m.Hdr.Namelen = unix.SizeofSockaddrInet4
		m.Hdr.Iov = &iov[0]
		m.Hdr.SetIovlen(2)
		return nil
	}
	if !src.Is6() || !dst.Is6() || src.Is4In6() || dst.Is4In6() {
		return fmt.Errorf("%w: %v → %v on an IPv6 socket", ErrInvalidAdvert, p.Src, p.Dst)
	}
	if n == 0 {
		return fmt.Errorf("%w: empty payload", ErrInvalidAdvert)
	}
	iov := &s.iovs[2*i]
	iov.Base = &payload[0]
	iov.SetLen(n)
	sa := &s.sa6[i]
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.As16()}
	if dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() {
		sa.Scope_id = uint32(c.ifi.Index)
	}
	cm := s.cmsg[i*pktinfoSpace : (i+1)*pktinfoSpace]
	clear(cm)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&cm[0]))
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&cm[unix.CmsgLen(0)]))
	pi.Addr, pi.Ifindex = src.As16(), uint32(c.ifi.Index)
	m.Hdr.Name = (*byte)(unsafe.Pointer(sa))
	m.Hdr.Namelen = unix.SizeofSockaddrInet6
	m.Hdr.Iov = iov
	m.Hdr.SetIovlen(1)
	m.Hdr.Control = &cm[0]
	m.Hdr.SetControllen(pktinfoSpace)
	return nil
}

// sendmmsg is the RawConn.Write callback: one sendmmsg of the scratch
// messages [from, from+count). It returns false to wait for writability.
func (c *Conn) sendmmsg(fd uintptr) bool {
	s := &c.scratch
	for {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.msgs[s.from])), uintptr(s.count), 0, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		s.count, s.errno = int(r), e
		return true
	}
}

// writeBatchLocked sends pkts and records each packet's error (unwrapped). The only error returned is one of the socket itself (closed).
// c.wmu must be held.
func (c *Conn) writeBatchLocked(pkts []Outgoing) error {
	s := &c.scratch
	for start := 0; start < len(pkts); start += maxBatch {
		chunk := pkts[start:min(len(pkts), start+maxBatch)]
		s.grow(len(chunk))
		// Compact the sendable packets to the front of the scratch; idx
		// maps scratch slots back to packets.
		idx := c.idx[:0]
		for i := range chunk {
			p := &chunk[i]
			if p.Err = c.prepare(s, len(idx), p); p.Err == nil {
				idx = append(idx, i)
			}
		}
		c.idx = idx
		for done := 0; done < len(idx); {
			s.from, s.count, s.errno = done, len(idx)-done, 0
			if err := c.raw.Write(c.sendFn); err != nil {
				for _, j := range idx[done:] {
					chunk[j].Err = err
				}
				return err
			}
			if s.errno != 0 {
				// The first unsent message failed: report it, go on.
				chunk[idx[done]].Err = s.errno
				done++
				continue
			}
			if s.count <= 0 { // cannot happen; avoid spinning
				for _, j := range idx[done:] {
					chunk[j].Err = errors.New("vrrp: sendmmsg sent nothing")
				}
				break
			}
			done += s.count
		}
	}
	return nil
}

// recvBatch holds the buffers of one recvmmsg call and what it read. A
// Conn owns one for ReadBatch; Conn.readBatch fills it.
type recvBatch struct {
	bufs  [][]byte
	msgs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	oob   []byte // oobLen per message
	// results of the last readBatch
	n     int
	errno syscall.Errno
}

const (
	recvBatchLen = 32
	recvBufLen   = 2048
	oobLen       = 128
)

func newRecvBatch() *recvBatch {
	r := &recvBatch{
		bufs:  make([][]byte, recvBatchLen),
		msgs:  make([]unix.Mmsghdr, recvBatchLen),
		iovs:  make([]unix.Iovec, recvBatchLen),
		names: make([]unix.RawSockaddrInet6, recvBatchLen),
		oob:   make([]byte, oobLen*recvBatchLen),
	}
	for i := range r.bufs {
		r.bufs[i] = make([]byte, recvBufLen)
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(recvBufLen)
	}
	return r
}

// ReadBatch reads up to len(pkts) packets (at most 32) with one recvmmsg.
// Payloads alias the Conn's buffers until the next ReadBatch; it does not
// allocate. One reader at a time.
func (c *Conn) ReadBatch(pkts []Received) (int, error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	if c.rb == nil {
		c.rb = newRecvBatch()
	}
	n, err := c.readBatch(c.rb, len(pkts))
	for i := range n {
		b, meta, ok := c.packet(c.rb, i)
		if !ok {
			b = nil
		}
		pkts[i] = Received{Payload: b, Meta: meta}
	}
	return n, err
}

// readBatch blocks until at least one packet arrives and reads up to
// limit (at most recvBatchLen); it returns how many. One reader at a time.
// It needs no control message for IPv4 (the raw socket delivers the IP
// header, which has TTL and addresses).
func (c *Conn) readBatch(r *recvBatch, limit int) (int, error) {
	r.msgs = r.msgs[:min(limit, cap(r.msgs))]
	for i := range r.msgs {
		h := &r.msgs[i].Hdr
		*h = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&r.names[i])), Namelen: unix.SizeofSockaddrInet6,
			Iov: &r.iovs[i]}
		h.SetIovlen(1)
		if c.six {
			h.Control = &r.oob[i*oobLen]
			h.SetControllen(oobLen)
		}
		r.msgs[i].Len = 0
	}
	r.n, r.errno = 0, 0
	c.recvCur = r
	if err := c.raw.Read(c.recvFn); err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, fmt.Errorf("vrrp: recvmmsg on %s: %w", c.ifi.Name, r.errno)
	}
	return r.n, nil
}

// recvmmsg is the RawConn.Read callback: one recvmmsg into c.recvCur. It
// returns false to wait for readability.
func (c *Conn) recvmmsg(fd uintptr) bool {
	b := c.recvCur
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.msgs[0])), uintptr(len(b.msgs)),
			unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		b.n, b.errno = int(n), e
		return true
	}
}

// packet returns the VRRP payload of message i of the last readBatch and
// what the kernel says about it; ok is false for a packet too short to
// carry an IPv4 header (it is then dropped as truncated).
func (c *Conn) packet(r *recvBatch, i int) (payload []byte, meta PacketMeta, ok bool) {
	m := &r.msgs[i]
	b := r.bufs[i][:min(int(m.Len), recvBufLen)]
	meta = PacketMeta{TTL: -1, IfIndex: c.ifi.Index}
	if !c.six {
		if len(b) < ipv4HeaderLen || b[0]>>4 != 4 {
			return nil, meta, false
		}
		hl := int(b[0]&0x0f) * 4
		if hl < ipv4HeaderLen || hl > len(b) {
			return nil, meta, false
		}
		meta.TTL = int(b[8])
		meta.Src = netip.AddrFrom4([4]byte(b[12:16]))
		meta.Dst = netip.AddrFrom4([4]byte(b[16:20]))
		return b[hl:], meta, true
	}
	meta.Src = netip.AddrFrom16(r.names[i].Addr)
	oob := r.oob[i*oobLen : i*oobLen+min(int(m.Hdr.Controllen), oobLen)]
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if h.Len < unix.SizeofCmsghdr || int(h.Len) > len(oob) {
			break
		}
		data := oob[unix.CmsgLen(0):h.Len]
		if h.Level == unix.IPPROTO_IPV6 {
			switch {
			case h.Type == unix.IPV6_HOPLIMIT && len(data) >= 4:
				meta.TTL = int(*(*int32)(unsafe.Pointer(&data[0])))
			case h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
				meta.Dst = netip.AddrFrom16([16]byte(data[:16]))
			}
		}
		next := unix.CmsgSpace(int(h.Len) - unix.CmsgLen(0))
		if next > len(oob) {
			break
		}
		oob = oob[next:]
	}
	return b, meta, true
}
