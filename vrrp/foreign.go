package vrrp

import (
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Members says who may speak VRRP for a lease-gated instance: its
// configured unicast peers and the nodes registered with the group at the
// quorum. An advert from anyone else is dropped (DropForeignSpeaker) before
// it reaches the state machine. Implementations must be cheap, safe for
// concurrent use and must not call back into the instance.
type Members interface {
	IsMember(addr netip.Addr) bool
}

// ForeignSpeaker is a non-member heard on the instance's VRID.
type ForeignSpeaker struct {
	Addr      string    `json:"addr"`
	Priority  uint8     `json:"priority"`
	Adverts   uint64    `json:"adverts"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

const (
	// maxForeign bounds the speakers remembered per instance (the oldest
	// heard is forgotten first).
	maxForeign = 16
	// foreignLogEvery bounds the log: one line per instance per interval,
	// naming the speaker that triggered it and how many adverts were
	// dropped since the last line.
	foreignLogEvery = 10 * time.Second
)

// foreignTable remembers the foreign speakers of one instance.
type foreignTable struct {
	mu       sync.Mutex
	members  Members
	byAddr   map[netip.Addr]*ForeignSpeaker
	logAt    time.Time
	unlogged uint64 // adverts dropped since the last log line
}

// SetMembers makes a lease-gated instance accept adverts from members only
// (nil: from anyone, as keepalived). Call it before Run.
func (in *Instance) SetMembers(m Members) {
	in.foreign.mu.Lock()
	in.foreign.members = m
	in.foreign.mu.Unlock()
}

// admit reports whether an advert from src may reach the machine; a
// non-member's is recorded and counted.
func (in *Instance) admit(src netip.Addr, prio uint8, now time.Time) bool {
	f := &in.foreign
	f.mu.Lock()
	if f.members == nil || f.members.IsMember(src) {
		f.mu.Unlock()
		return true
	}
	if f.byAddr == nil {
		f.byAddr = map[netip.Addr]*ForeignSpeaker{}
	}
	s := f.byAddr[src]
	if s == nil {
		if len(f.byAddr) >= maxForeign {
			var oldest netip.Addr
			for a, o := range f.byAddr {
				if !oldest.IsValid() || o.LastSeen.Before(f.byAddr[oldest].LastSeen) {
					oldest = a
				}
			}
			delete(f.byAddr, oldest)
		}
		s = &ForeignSpeaker{Addr: src.String(), FirstSeen: now}
		f.byAddr[src] = s
	}
	s.Priority, s.LastSeen = prio, now
	s.Adverts++
	f.unlogged++
	var n uint64
	logIt := f.logAt.IsZero() || now.Sub(f.logAt) >= foreignLogEvery
	if logIt {
		f.logAt, n, f.unlogged = now, f.unlogged, 0
	}
	f.mu.Unlock()
	in.drops.Inc(DropForeignSpeaker)
	if logIt {
		in.log.Warn("foreign VRRP speaker on our VRID: adverts dropped (not a member of the group)",
			"peer", src, "priority", prio, "dropped", n)
	}
	return false
}

// foreignSpeakers lists the remembered foreign speakers, most recent first.
func (in *Instance) foreignSpeakers() []ForeignSpeaker {
	f := &in.foreign
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]ForeignSpeaker, 0, len(f.byAddr))
	for _, s := range f.byAddr {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b ForeignSpeaker) int { return b.LastSeen.Compare(a.LastSeen) })
	return out
}
