package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// coalesce is how late the Mux's scheduler may deliver a timer so that
// timers due within this window are handled together: it wakes at the last
// deadline that is within coalesce of the first. Instances handled together
// get the same now, so their next adverts fall due together too: instances
// that start within coalesce of each other stay in step and share one
// wake-up and one sendmmsg per interval, as keepalived's shared timer
// thread does, and once in step none is late. It is far below any VRRP
// skew that matters between peers (timers of one Mux belong to different
// VRIDs).
const coalesce = time.Millisecond

// Mux owns one Socket and drives every instance added to it: a reader hands
// each valid advert to the instance with its VRID, and one scheduler
// delivers all the instances' timers, sending the adverts due at the same
// instant with one system call. Drops that belong to no instance are
// counted on the Mux.
type Mux struct {
	conn  Socket
	log   *slog.Logger
	drops DropCounters

	mu    sync.RWMutex
	byID  map[uint8]*Instance
	list  []*Instance
	owned []netip.Addr // our own sources: adverts from them are ignored

	base   time.Time    // monotonic origin of wakeAt
	wakeAt atomic.Int64 // when the scheduler wakes, ns since base
	pokeC  chan struct{}
}

// NewMux wraps conn (a *Conn from Listen, or another Socket). It starts
// nothing.
func NewMux(conn Socket, log *slog.Logger) *Mux {
	x := &Mux{conn: conn, log: log, byID: map[uint8]*Instance{}, base: time.Now(), pokeC: make(chan struct{}, 1)}
	x.wakeAt.Store(math.MaxInt64)
	return x
}

// Add registers an instance; VRIDs must be unique per Mux and an instance
// belongs to one Mux.
func (x *Mux) Add(in *Instance) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	id := in.cfg.Machine.VRID
	if other, dup := x.byID[id]; dup {
		return fmt.Errorf("vrrp: VRID %d used by both %s and %s", id, other.cfg.Name, in.cfg.Name)
	}
	if in.mux != nil {
		return fmt.Errorf("vrrp: instance %s added to two Muxes", in.cfg.Name)
	}
	if in.conn != x.conn {
		return fmt.Errorf("vrrp: instance %s is on another Socket than its Mux", in.cfg.Name)
	}
	in.mux = x
	x.byID[id] = in
	x.list = append(x.list, in)
	if !slices.Contains(x.owned, in.cfg.Src) {
		x.owned = append(x.owned, in.cfg.Src)
	}
	return nil
}

// Socket is the socket the Mux reads; instances added to the Mux are
// built on it.
func (x *Mux) Socket() Socket { return x.conn }

// Conn is the socket the Mux reads if it is a *Conn, else nil.
//
// Deprecated: use Socket.
func (x *Mux) Conn() *Conn {
	c, _ := x.conn.(*Conn)
	return c
}

// Drops counts adverts dropped before reaching an instance.
func (x *Mux) Drops() *DropCounters { return &x.drops }

// Run reads and schedules until ctx ends (it closes the Socket to unblock
// the read). Instances shut down by their own Run; stop the Mux after them so
// their last adverts can go out.
func (x *Mux) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { x.conn.Close() })
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() { x.schedule(ctx) })
	defer wg.Wait()
	pkts := make([]Received, recvBatchLen)
	adv := Advert{Addrs: make([]netip.Addr, 0, 16)}
	for {
		n, err := x.conn.ReadBatch(pkts)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return ctx.Err()
			}
			x.log.Warn("vrrp read failed", "err", err)
			continue
		}
		now := time.Now()
		for i := range pkts[:n] {
			p := &pkts[i]
			if len(p.Payload) == 0 {
				x.drops.Inc(DropTruncated)
				continue
			}
			x.handle(p.Payload, p.Meta, &adv, now)
		}
		clear(pkts[:n]) // do not keep the socket's buffers
	}
}

func (x *Mux) handle(b []byte, meta PacketMeta, adv *Advert, now time.Time) {
	b, trailer := CutTrailer(b, meta.Src.Is6())
	if r := Decode(b, meta.Src, meta.Dst, adv); r != DropNone {
		x.drops.Inc(r)
		return
	}
	x.mu.RLock()
	in := x.byID[adv.VRID]
	own := slices.Contains(x.owned, meta.Src)
	x.mu.RUnlock()
	if in == nil {
		x.drops.Inc(DropOtherVRID)
		return
	}
	if own {
		in.drops.Inc(DropOwnAdvert)
		return
	}
	if !in.admit(meta.Src, adv.Priority, now) {
		return
	}
	if r := in.authentic(b, trailer, meta.Src, meta.Dst, now); r != DropNone {
		in.drops.Inc(r)
		return
	}
	if len(in.cfg.Peers) > 0 && !slices.Contains(in.cfg.Peers, meta.Src) {
		in.drops.Inc(DropUnknownPeer)
		return
	}
	if r := in.cfg.Expect.Check(adv, meta.TTL, meta.Dst.IsMulticast()); r != DropNone {
		in.drops.Inc(r)
		return
	}
	in.deliver(AdvertReceived{Priority: adv.Priority, Src: meta.Src, Interval: adv.Interval}, now)
}

// poke wakes the scheduler if deadline d (zero: none) would be more than
// coalesce late at the wake-up it planned.
func (x *Mux) poke(d time.Time) {
	if d.IsZero() || int64(d.Sub(x.base)+coalesce) >= x.wakeAt.Load() {
		return
	}
	select {
	case x.pokeC <- struct{}{}:
	default:
	}
}

// schedule delivers the instances' timers until ctx ends.
func (x *Mux) schedule(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	out := NewOutbox(x.conn)
	var owners []*Instance
	var deadlines []time.Time
	for {
		// Until the next wake-up is planned, every deadline change pokes:
		// none is missed between reading an instance and planning.
		x.wakeAt.Store(math.MaxInt64)
		deadlines = x.pass(time.Now(), out, &owners, deadlines[:0])
		wait := time.Hour
		if at, ok := wakeTime(deadlines); ok {
			x.wakeAt.Store(int64(at.Sub(x.base)))
			wait = max(0, time.Until(at))
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-x.pokeC:
		}
	}
}

// wakeTime is the last of deadlines within coalesce of the earliest.
func wakeTime(deadlines []time.Time) (time.Time, bool) {
	if len(deadlines) == 0 {
		return time.Time{}, false
	}
	first := slices.MinFunc(deadlines, time.Time.Compare)
	at, limit := first, first.Add(coalesce)
	for _, d := range deadlines {
		if d.After(at) && !d.After(limit) {
			at = d
		}
	}
	return at, true
}

// pass delivers every timer due at now, sends the adverts this produced,
// and appends the deadlines left to deadlines.
func (x *Mux) pass(now time.Time, out *Outbox, owners *[]*Instance, deadlines []time.Time) []time.Time {
	x.mu.RLock()
	list := x.list
	x.mu.RUnlock()
	for _, in := range list {
		in.mu.Lock()
		in.tickLocked(now, out, owners)
		d := in.deadlineLocked()
		in.mu.Unlock()
		if !d.IsZero() {
			deadlines = append(deadlines, d)
		}
	}
	if out.Len() > 0 {
		if err := out.Flush(); err != nil {
			// The socket failed as a whole (closed at shutdown): one line,
			// not one per advert.
			if !errors.Is(err, net.ErrClosed) {
				x.log.Warn("sending adverts failed", "err", err)
			}
		} else {
			for i, in := range *owners {
				in.sendResult(out.Err(i))
			}
		}
		out.Reset()
		clear(*owners)
		*owners = (*owners)[:0]
	}
	return deadlines
}
