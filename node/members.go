package node

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// Membership in lease mode (issue 14). A VRRP instance's members are the
// node itself, its configured unicast peers, and the nodes registered with
// the instance at the quorum: each node holds one member key per instance,
// attached to its session, named MemberKey(instance, its advert source),
// valued with its node name and priority. The keys are ordinary lease keys,
// so every backend (etcd, raft, the in-memory one) stores and watches them
// without change, and a node's registration ends with its session. An
// advert from anyone else is a foreign speaker's: the instance drops it
// (vrrp.DropForeignSpeaker) and it can neither displace the owner nor make
// a backup a candidate.
//
// Guaranteed: a node that has a session registers within a request of
// opening it, and again whenever its key disappears while the session
// lives. Not guaranteed: that peers know a node before they see its key on
// their watch (a few milliseconds after its session opens; its adverts are
// dropped until then, and its first master-down timer runs meanwhile), nor
// anything without a quorum session: a node without one keeps the members
// it knew. Anyone who can write to the quorum can register, and anyone
// who can spoof a member's source address passes: authenticated adverts
// close that.

// memberSep joins an instance name and an address in a member key; group
// names are VRRP instance and sync group names, which never contain it.
const memberSep = "~member~"

// MemberKey is the quorum key a node holds while it is a member of
// instance, speaking from addr.
func MemberKey(instance string, addr netip.Addr) string {
	return instance + memberSep + addr.WithZone("").String()
}

// ParseMemberKey splits a member key; ok is false for any other key.
func ParseMemberKey(key string) (instance string, addr netip.Addr, ok bool) {
	instance, a, found := strings.Cut(key, memberSep)
	if !found || instance == "" {
		return "", netip.Addr{}, false
	}
	addr, err := netip.ParseAddr(a)
	if err != nil {
		return "", netip.Addr{}, false
	}
	return instance, addr, true
}

// IsMemberKey reports whether a quorum key is a member key, not a group's.
func IsMemberKey(key string) bool { _, _, ok := ParseMemberKey(key); return ok }

// RosterEntry is one member of an instance.
type RosterEntry struct {
	Addr     string `json:"addr"`
	Node     string `json:"node,omitempty"`
	Priority int    `json:"priority,omitempty"`
	// Source: "self", "peer" (configured unicast peer) or "quorum"
	// (registered).
	Source string `json:"source"`
}

// Roster is one instance's membership (a vrrp.Members). It is safe for
// concurrent use.
type Roster struct {
	instance string
	self     netip.Addr
	priority int
	peers    []netip.Addr

	mu  sync.RWMutex
	reg map[netip.Addr]RosterEntry
}

// NewRoster returns the membership of instance for a node speaking from
// self with priority, configured with unicast peers (none: multicast).
func NewRoster(instance string, self netip.Addr, priority int, peers []netip.Addr) *Roster {
	r := &Roster{instance: instance, self: self.WithZone(""), priority: priority, reg: map[netip.Addr]RosterEntry{}}
	for _, p := range peers {
		r.peers = append(r.peers, p.WithZone(""))
	}
	return r
}

// Instance names the roster's instance.
func (r *Roster) Instance() string { return r.instance }

// Key is this node's member key for the instance.
func (r *Roster) Key() string { return MemberKey(r.instance, r.self) }

// IsMember reports whether an advert from addr may reach the instance.
func (r *Roster) IsMember(addr netip.Addr) bool {
	addr = addr.WithZone("")
	if addr == r.self || slices.Contains(r.peers, addr) {
		return true
	}
	r.mu.RLock()
	_, ok := r.reg[addr]
	r.mu.RUnlock()
	return ok
}

// Registered reports whether this node's own member key is seen at the
// quorum.
func (r *Roster) Registered() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.reg[r.self]
	return ok
}

// Members lists the members: self, peers, then registered nodes by address.
func (r *Roster) Members() []RosterEntry {
	out := []RosterEntry{{Addr: r.self.String(), Priority: r.priority, Source: "self"}}
	for _, p := range r.peers {
		out = append(out, RosterEntry{Addr: p.String(), Source: "peer"})
	}
	r.mu.RLock()
	var reg []RosterEntry
	for a, m := range r.reg {
		if a != r.self && !slices.Contains(r.peers, a) {
			reg = append(reg, m)
		}
	}
	r.mu.RUnlock()
	slices.SortFunc(reg, func(a, b RosterEntry) int { return strings.Compare(a.Addr, b.Addr) })
	return append(out, reg...)
}

// HigherRegistered reports whether a node registered at the quorum ranks
// above this one as VRRP ranks masters: a higher priority, or the same
// priority and a higher address. Its key lives with its session, so it is
// alive and reaches the quorum (as last seen on this node's watch).
func (r *Roster) HigherRegistered() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for a, m := range r.reg {
		if a == r.self {
			continue
		}
		if m.Priority > r.priority || m.Priority == r.priority && a.Compare(r.self) > 0 {
			return true
		}
	}
	return false
}

// put records a registration seen at the quorum.
func (r *Roster) put(addr netip.Addr, node string, priority int) {
	addr = addr.WithZone("")
	r.mu.Lock()
	r.reg[addr] = RosterEntry{Addr: addr.String(), Node: node, Priority: priority, Source: "quorum"}
	r.mu.Unlock()
}

// remove forgets a registration (its key was deleted).
func (r *Roster) remove(addr netip.Addr) {
	r.mu.Lock()
	delete(r.reg, addr.WithZone(""))
	r.mu.Unlock()
}

// keep forgets every registration not in named (the end of a resync).
func (r *Roster) keep(named map[netip.Addr]bool) {
	r.mu.Lock()
	for a := range r.reg {
		if !named[a] {
			delete(r.reg, a)
		}
	}
	r.mu.Unlock()
}
