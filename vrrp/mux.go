package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
)

// Mux reads one Conn and hands each valid advert to the instance with its
// VRID. Drops that belong to no instance are counted on the Mux.
type Mux struct {
	conn  *Conn
	log   *slog.Logger
	drops DropCounters

	mu    sync.RWMutex
	byID  map[uint8]*Instance
	owned []netip.Addr // our own sources: adverts from them are ignored
}

// NewMux wraps conn. It starts nothing.
func NewMux(conn *Conn, log *slog.Logger) *Mux {
	return &Mux{conn: conn, log: log, byID: map[uint8]*Instance{}}
}

// Add registers an instance; VRIDs must be unique per Mux.
func (x *Mux) Add(in *Instance) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	id := in.cfg.Machine.VRID
	if other, dup := x.byID[id]; dup {
		return fmt.Errorf("vrrp: VRID %d used by both %s and %s", id, other.cfg.Name, in.cfg.Name)
	}
	x.byID[id] = in
	if !slices.Contains(x.owned, in.cfg.Src) {
		x.owned = append(x.owned, in.cfg.Src)
	}
	return nil
}

// Conn is the socket the Mux reads.
func (x *Mux) Conn() *Conn { return x.conn }

// Drops counts adverts dropped before reaching an instance.
func (x *Mux) Drops() *DropCounters { return &x.drops }

// Run reads until ctx ends (it closes the Conn to unblock the read).
func (x *Mux) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { x.conn.Close() })
	defer stop()
	buf := make([]byte, 2048)
	adv := Advert{Addrs: make([]netip.Addr, 0, 16)}
	for {
		n, meta, err := x.conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return ctx.Err()
			}
			x.log.Warn("vrrp read failed", "err", err)
			continue
		}
		x.handle(buf[:n], meta, &adv)
	}
}

func (x *Mux) handle(b []byte, meta PacketMeta, adv *Advert) {
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
	if len(in.cfg.Peers) > 0 && !slices.Contains(in.cfg.Peers, meta.Src) {
		in.drops.Inc(DropUnknownPeer)
		return
	}
	if r := in.cfg.Expect.Check(adv, meta.TTL, meta.Dst.IsMulticast()); r != DropNone {
		in.drops.Inc(r)
		return
	}
	in.deliver(AdvertReceived{Priority: adv.Priority, Src: meta.Src, Interval: adv.Interval})
}
