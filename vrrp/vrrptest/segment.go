package vrrptest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/leasehold/leasehold/vrrp"
)

const (
	// QueueLen bounds the unread packets of one socket.
	QueueLen = 4096
	// IfIndex is the interface index every received packet reports.
	IfIndex = 2
)

// Segment is one in-memory link between named hosts. The zero value is
// not usable; call NewSegment.
type Segment struct {
	mu       sync.Mutex
	hosts    []string // in order of first appearance
	socks    []*Socket
	blocked  map[link]bool // directed
	isolated map[string]bool
	claims   map[netip.Addr][]string // VIP → hosts that have it, in claim order
	anns     []Announcement
}

type link struct{ from, to string }

// NewSegment returns an empty link with no faults.
func NewSegment() *Segment {
	return &Segment{blocked: map[link]bool{}, isolated: map[string]bool{}, claims: map[netip.Addr][]string{}}
}

// hostLocked registers a host name.
func (s *Segment) hostLocked(name string) {
	if !slices.Contains(s.hosts, name) {
		s.hosts = append(s.hosts, name)
	}
}

// Hosts lists the hosts known to the segment, in order of first
// appearance.
func (s *Segment) Hosts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hosts)
}

// reachableLocked: a frame from host from reaches host to.
func (s *Segment) reachableLocked(from, to string) bool {
	return !s.isolated[from] && !s.isolated[to] && !s.blocked[link{from, to}]
}

// Cut drops everything between hosts a and b, both directions.
func (s *Segment) Cut(a, b string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocked[link{a, b}], s.blocked[link{b, a}] = true, true
}

// CutOneWay drops what host from sends to host to; the other direction
// still works.
func (s *Segment) CutOneWay(from, to string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocked[link{from, to}] = true
}

// Heal undoes Cut and CutOneWay between a and b, both directions. It does
// not undo Isolate.
func (s *Segment) Heal(a, b string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.blocked, link{a, b})
	delete(s.blocked, link{b, a})
}

// Isolate drops everything host sends and everything sent to it (its
// cable is pulled).
func (s *Segment) Isolate(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.isolated[host] = true
}

// Rejoin undoes Isolate. Cuts stay.
func (s *Segment) Rejoin(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.isolated, host)
}

// HealAll removes every fault.
func (s *Segment) HealAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.blocked)
	clear(s.isolated)
}

// MAC is the hardware address the segment gives host (in conflicts).
func (s *Segment) MAC(host string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.macLocked(host)
}

func (s *Segment) macLocked(host string) string {
	s.hostLocked(host)
	i := slices.Index(s.hosts, host) + 1
	return fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8&0xff, i&0xff)
}

// Socket returns a new VRRP socket of host on the segment, for IPv4 (six
// false) or IPv6, whose default source is src. A host may have several.
func (s *Segment) Socket(host string, src netip.Addr, six bool) *Socket {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hostLocked(host)
	k := &Socket{seg: s, host: host, src: src, six: six,
		ready: make(chan struct{}, 1), done: make(chan struct{})}
	s.socks = append(s.socks, k)
	return k
}

// Socket is one host's VRRP socket on a Segment; it implements
// vrrp.Socket.
type Socket struct {
	seg   *Segment
	host  string
	src   netip.Addr
	six   bool
	ready chan struct{} // a packet was queued (capacity 1)
	done  chan struct{} // closed by Close

	// guarded by seg.mu
	queue     []vrrp.Received
	closed    bool
	overflows int
}

var _ vrrp.Socket = (*Socket)(nil)

// Host is the socket's host name.
func (k *Socket) Host() string { return k.host }

// Src is the socket's default source address.
func (k *Socket) Src() netip.Addr { return k.src }

// IPv6 reports the socket's family.
func (k *Socket) IPv6() bool { return k.six }

// Overflows counts packets dropped because the queue was full.
func (k *Socket) Overflows() int {
	k.seg.mu.Lock()
	defer k.seg.mu.Unlock()
	return k.overflows
}

// ReadBatch blocks until a packet is queued or the socket is closed.
// Payloads are the socket's own copies and stay valid.
func (k *Socket) ReadBatch(pkts []vrrp.Received) (int, error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	for {
		k.seg.mu.Lock()
		if n := copy(pkts, k.queue); n > 0 {
			m := copy(k.queue, k.queue[n:])
			clear(k.queue[m:])
			k.queue = k.queue[:m]
			k.seg.mu.Unlock()
			return n, nil
		}
		closed := k.closed
		k.seg.mu.Unlock()
		if closed {
			return 0, fmt.Errorf("vrrptest: read on %s: %w", k.host, net.ErrClosed)
		}
		select {
		case <-k.ready:
		case <-k.done:
		}
	}
}

// Drain returns the queued packets without blocking and empties the
// queue: what the host heard, for a test that reads no further.
func (k *Socket) Drain() []vrrp.Received {
	k.seg.mu.Lock()
	defer k.seg.mu.Unlock()
	q := k.queue
	k.queue = nil
	return q
}

// WriteBatch delivers every packet to the sockets that would hear it.
func (k *Socket) WriteBatch(pkts []vrrp.Outgoing) error {
	k.seg.mu.Lock()
	defer k.seg.mu.Unlock()
	if k.closed {
		err := fmt.Errorf("vrrptest: send on %s: %w", k.host, net.ErrClosed)
		for i := range pkts {
			pkts[i].Err = err
		}
		return err
	}
	for i := range pkts {
		p := &pkts[i]
		p.Err = k.sendLocked(p.Payload, p.Src, p.Dst)
	}
	return nil
}

// WriteFrom sends one payload from src to dst.
func (k *Socket) WriteFrom(b []byte, src, dst netip.Addr) error {
	p := [1]vrrp.Outgoing{{Payload: b, Src: src, Dst: dst}}
	if err := k.WriteBatch(p[:]); err != nil {
		return err
	}
	return p[0].Err
}

// Close unblocks ReadBatch; later reads and writes fail with
// net.ErrClosed. Closing twice is harmless.
func (k *Socket) Close() error {
	k.seg.mu.Lock()
	defer k.seg.mu.Unlock()
	if !k.closed {
		k.closed = true
		k.queue = nil
		close(k.done)
	}
	return nil
}

// sendLocked checks one packet as a *vrrp.Conn would and delivers it.
func (k *Socket) sendLocked(b []byte, src, dst netip.Addr) error {
	src, dst = src.Unmap(), dst.Unmap()
	ok, fam := src.Is4() && dst.Is4(), "IPv4"
	if k.six {
		ok, fam = src.Is6() && dst.Is6(), "IPv6"
	}
	if !ok {
		return fmt.Errorf("vrrptest: send to %s on %s: %w: %v → %v on an %s socket", dst, k.host,
			vrrp.ErrInvalidAdvert, src, dst, fam)
	}
	if len(b) == 0 {
		return fmt.Errorf("vrrptest: send to %s on %s: %w: empty payload", dst, k.host, vrrp.ErrInvalidAdvert)
	}
	k.seg.deliverLocked(k, b, vrrp.PacketMeta{Src: src, Dst: dst, TTL: 255})
	return nil
}

// deliverLocked queues a copy of b on every socket that hears a packet
// with meta from sender (nil: a foreign speaker, which only an isolated
// receiver does not hear). It returns how many sockets got it.
func (s *Segment) deliverLocked(sender *Socket, b []byte, meta vrrp.PacketMeta) int {
	six := meta.Dst.Is6()
	n := 0
	for _, r := range s.socks {
		if r == sender || r.closed || r.six != six {
			continue
		}
		if meta.Dst.IsMulticast() {
			if sender != nil && r.host == sender.host {
				continue // multicast loopback is off
			}
		} else if r.src != meta.Dst {
			continue
		}
		if sender != nil && !s.reachableLocked(sender.host, r.host) || sender == nil && s.isolated[r.host] {
			continue
		}
		if len(r.queue) >= QueueLen {
			r.overflows++
			continue
		}
		m := meta
		m.IfIndex = IfIndex
		r.queue = append(r.queue, vrrp.Received{Payload: slices.Clone(b), Meta: m})
		select {
		case r.ready <- struct{}{}:
		default:
		}
		n++
	}
	return n
}

// Inject delivers payload as a multicast advert (224.0.0.18 or ff02::12,
// by src's family) from src, a foreign speaker that no socket owns, with
// TTL 255. It returns how many sockets got it.
func (s *Segment) Inject(src netip.Addr, payload []byte) int {
	src = src.Unmap()
	dst := vrrp.GroupV4
	if src.Is6() {
		dst = vrrp.GroupV6
	}
	return s.InjectPacket(vrrp.PacketMeta{Src: src, Dst: dst, TTL: 255}, payload)
}

// InjectPacket delivers payload with meta as given (IfIndex is the
// receiver's): to every socket of the family if meta.Dst is multicast,
// else to the sockets whose Src is meta.Dst. It returns how many sockets
// got it.
func (s *Segment) InjectPacket(meta vrrp.PacketMeta, payload []byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	meta.Src, meta.Dst = meta.Src.Unmap(), meta.Dst.Unmap()
	return s.deliverLocked(nil, payload, meta)
}

// Announcement is one call of an Announcer's Announce.
type Announcement struct {
	At   time.Time
	Host string
	VIPs []netip.Addr
	// Heard lists the other hosts the frames reached (not cut off).
	Heard []string
}

// Announcer records a host's gratuitous ARP / unsolicited NA on the
// segment; it implements vrrp.VIPAnnouncer.
type Announcer struct {
	seg  *Segment
	host string

	// guarded by seg.mu
	fail   error
	closed bool
}

var _ vrrp.VIPAnnouncer = (*Announcer)(nil)

// Announcer returns an announcer for host.
func (s *Segment) Announcer(host string) *Announcer {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hostLocked(host)
	return &Announcer{seg: s, host: host}
}

// Announce records the announcement (unless Fail set an error).
func (a *Announcer) Announce(vips []netip.Addr) error {
	s := a.seg
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case a.closed:
		return fmt.Errorf("vrrptest: announce on %s: %w", a.host, net.ErrClosed)
	case a.fail != nil:
		return fmt.Errorf("vrrptest: announce on %s: %w", a.host, a.fail)
	}
	var heard []string
	for _, h := range s.hosts {
		if h != a.host && s.reachableLocked(a.host, h) {
			heard = append(heard, h)
		}
	}
	s.anns = append(s.anns, Announcement{At: time.Now(), Host: a.host, VIPs: slices.Clone(vips), Heard: heard})
	return nil
}

// Fail makes later Announce calls fail with err (nil: succeed again).
func (a *Announcer) Fail(err error) {
	a.seg.mu.Lock()
	defer a.seg.mu.Unlock()
	a.fail = err
}

// Close makes later Announce calls fail.
func (a *Announcer) Close() error {
	a.seg.mu.Lock()
	defer a.seg.mu.Unlock()
	a.closed = true
	return nil
}

// Announcements returns every announcement so far, in order.
func (s *Segment) Announcements() []Announcement {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.anns)
}

// Claim records that host has vips configured: it answers probes for them.
func (s *Segment) Claim(host string, vips ...netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hostLocked(host)
	for _, v := range vips {
		if !slices.Contains(s.claims[v], host) {
			s.claims[v] = append(s.claims[v], host)
		}
	}
}

// Release undoes Claim.
func (s *Segment) Release(host string, vips ...netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range vips {
		s.claims[v] = slices.DeleteFunc(s.claims[v], func(h string) bool { return h == host })
		if len(s.claims[v]) == 0 {
			delete(s.claims, v)
		}
	}
}

// Holders lists the hosts that have vip, in claim order.
func (s *Segment) Holders(vip netip.Addr) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.claims[vip])
}

// Prober returns host's probe: it reports the first of vips (in order)
// that another host reachable both ways has claimed, checking at once and
// after half the wait, and otherwise returns after the wait (or when ctx
// ends, with its error). ifname is ignored.
func (s *Segment) Prober(host string) vrrp.ProbeFunc {
	s.mu.Lock()
	s.hostLocked(host)
	s.mu.Unlock()
	return func(ctx context.Context, _ string, vips []netip.Addr, wait time.Duration) (vrrp.Conflict, bool, error) {
		end := time.Now().Add(wait)
		if d, ok := ctx.Deadline(); ok && d.Before(end) {
			end = d
		}
		for _, until := range []time.Time{time.Now().Add(wait / 2), end} {
			if c, ok := s.conflict(host, vips); ok {
				return c, true, nil
			}
			if err := sleepUntil(ctx, until); err != nil {
				return vrrp.Conflict{}, false, err
			}
		}
		return vrrp.Conflict{}, false, nil
	}
}

func (s *Segment) conflict(host string, vips []netip.Addr) (vrrp.Conflict, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range vips {
		for _, h := range s.claims[v] {
			if h != host && s.reachableLocked(host, h) && s.reachableLocked(h, host) {
				return vrrp.Conflict{VIP: v, MAC: s.macLocked(h)}, true
			}
		}
	}
	return vrrp.Conflict{}, false
}

// sleepUntil waits until t or ctx's end; ctx's end is an error only if it
// comes first and is not its deadline passing at t.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		if dl, ok := ctx.Deadline(); ok && !dl.After(t) && ctx.Err() == context.DeadlineExceeded {
			return nil
		}
		return ctx.Err()
	}
}
