package vrrp

import (
	"context"
	"net/netip"
	"time"
)

// The platform seam: what a Mux, an Instance and the daemon need from the
// operating system, behind small interfaces with netip types. *Conn,
// *Announcer and Probe are the Linux implementations; package vrrptest has
// an in-memory link for unit tests without root.

// Socket is one VRRP socket on one link and address family, shared by the
// instances of a Mux. *Conn implements it. Implementations are pointers:
// Mux.Add compares an instance's Socket with its Mux's.
type Socket interface {
	// ReadBatch blocks until at least one packet arrives, fills pkts[:n]
	// (at most len(pkts)) and returns n. Payloads may alias the socket's
	// buffers: they are valid until the next ReadBatch. One reader at a
	// time. After Close it returns an error wrapping net.ErrClosed.
	ReadBatch(pkts []Received) (n int, err error)
	// WriteBatch sends every packet, each from its Src to its Dst with
	// TTL/hop limit 255, and sets each packet's Err. A packet's own
	// failure does not stop the others; the error returned is only the
	// socket's own (closed). Safe for concurrent use.
	WriteBatch(pkts []Outgoing) error
	// WriteFrom sends one payload from src to dst (WriteBatch of one).
	WriteFrom(b []byte, src, dst netip.Addr) error
	// Src is the default source of adverts.
	Src() netip.Addr
	// IPv6 reports the family.
	IPv6() bool
	// Close unblocks ReadBatch; later calls fail.
	Close() error
}

// Received is one packet from Socket.ReadBatch.
type Received struct {
	// Payload is the VRRP packet without the IP header. Empty: the
	// socket got a packet it could not parse (counted as truncated).
	Payload []byte
	Meta    PacketMeta
}

// Outgoing is one packet for Socket.WriteBatch.
type Outgoing struct {
	Payload  []byte
	Src, Dst netip.Addr
	// Err is set by WriteBatch: nil once sent.
	Err error
}

// VIPAnnouncer is an AddrAnnouncer the daemon owns and closes: it tells
// the link that this host now has the VIPs (gratuitous ARP for IPv4,
// unsolicited neighbour advertisements for IPv6, one packet per VIP per
// call). Timing (bursts, delay, refresh, retries) is the Instance's.
// *Announcer implements it.
type VIPAnnouncer interface {
	AddrAnnouncer
	Close() error
}

// ProbeFunc asks whether another host on ifname claims any of vips and
// waits up to wait for an answer (ok false: nobody answered). Probe is the
// Linux implementation.
type ProbeFunc func(ctx context.Context, ifname string, vips []netip.Addr, wait time.Duration) (c Conflict, ok bool, err error)

var (
	_ Socket       = (*Conn)(nil)
	_ VIPAnnouncer = (*Announcer)(nil)
	_ ProbeFunc    = Probe
)

// nilSocket reports a missing socket: nil, or a nil *Conn (what the
// deprecated Mux.Conn returns for a Mux on another Socket).
func nilSocket(s Socket) bool {
	c, ok := s.(*Conn)
	return s == nil || ok && c == nil
}

// nilAnnouncer reports a nil *Announcer passed as an interface (of any
// announcer type), so that callers passing a nil pointer keep meaning "no
// announcer".
func nilAnnouncer(a any) bool {
	p, ok := a.(*Announcer)
	return ok && p == nil
}
