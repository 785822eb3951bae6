package node

import (
	"context"
	"slices"
	"sync"

	"github.com/leasehold/leasehold/vrrp"
)

// Member is what a sync group needs of one VRRP instance.
type Member interface {
	Inject(ev vrrp.Event)
	SetFault(source string, on bool)
	Faults() []string
	Announce()
}

// Fault sources a sync group sets on its members.
const (
	// SyncFault holds members in fault while another member is faulted by
	// its own health checks or links (keepalived: one faults, all fault).
	SyncFault = "sync"
	// syncPulse is set and cleared at once to send a member from master to
	// backup (priority 0 first) when a sibling fell back to backup.
	syncPulse = "sync-backup"
)

// SyncTarget receives the group-level VRRP view of a sync group.
type SyncTarget interface {
	// AllMaster: every member became master. NotAllMaster: one left.
	AllMaster()
	NotAllMaster(reason string)
	// Faulted: some member is faulted by its own sources (or no longer).
	Faulted(on bool)
}

// SyncGroup makes several VRRP instances move together under one lease
// (keepalived's vrrp_sync_group): the group counts as VRRP master only
// while every member is; a member faulted by its own checks faults the
// others; a member that falls back to backup sends the others to backup,
// so the peer's members can all become master together.
type SyncGroup struct {
	target  SyncTarget
	members []Member

	mu      sync.Mutex
	master  []bool
	faulted bool
}

// NewSyncGroup builds the aggregator for n members; SetMember each before
// the members run. It starts nothing.
func NewSyncGroup(target SyncTarget, n int) *SyncGroup {
	return &SyncGroup{target: target, members: make([]Member, n), master: make([]bool, n)}
}

// SetMember installs member i (the instance needs Effects(i) first).
func (s *SyncGroup) SetMember(i int, m Member) { s.members[i] = m }

// Effects returns member i's vrrp.Effects.
func (s *SyncGroup) Effects(i int) vrrp.Effects { return syncEffects{s, i} }

// OnTransition returns member i's transition observer (fault tracking).
func (s *SyncGroup) OnTransition(i int) func(vrrp.Transition, uint8) {
	return func(tr vrrp.Transition, _ uint8) {
		if tr.To == vrrp.StateFault || tr.From == vrrp.StateFault {
			s.refaults()
		}
	}
}

type syncEffects struct {
	s *SyncGroup
	i int
}

func (e syncEffects) Up(context.Context) error   { e.s.up(e.i); return nil }
func (e syncEffects) Down(context.Context) error { e.s.down(e.i); return nil }

func (s *SyncGroup) all() bool { return !slices.Contains(s.master, false) }

func (s *SyncGroup) up(i int) {
	s.mu.Lock()
	s.master[i] = true
	all := s.all()
	s.mu.Unlock()
	if all {
		s.target.AllMaster()
	}
}

func (s *SyncGroup) down(i int) {
	s.mu.Lock()
	wasAll := s.all()
	s.master[i] = false
	var others []Member
	for j, m := range s.members {
		if j != i && s.master[j] {
			others = append(others, m)
		}
	}
	s.mu.Unlock()
	if wasAll {
		s.target.NotAllMaster("a sync group member left master")
	}
	// Send the siblings that are still master to backup (priority 0, so
	// the peer's members take over after their skew).
	for _, m := range others {
		m.SetFault(syncPulse, true)
		m.SetFault(syncPulse, false)
	}
}

// ownFault reports whether m is faulted by a source other than the sync
// group's own.
func ownFault(m Member) bool {
	for _, f := range m.Faults() {
		if f != SyncFault && f != syncPulse {
			return true
		}
	}
	return false
}

// refaults recomputes the group fault and holds the other members in fault
// while one is faulted by its own checks.
func (s *SyncGroup) refaults() {
	own := make([]bool, len(s.members))
	any := false
	for i, m := range s.members {
		own[i] = ownFault(m)
		any = any || own[i]
	}
	for i, m := range s.members {
		m.SetFault(SyncFault, any && !own[i])
	}
	s.mu.Lock()
	changed := any != s.faulted
	s.faulted = any
	s.mu.Unlock()
	if changed {
		s.target.Faulted(any)
	}
}

// Control returns the node.VRRPControl of the whole sync group (Claim,
// fault and announce go to every member).
func (s *SyncGroup) Control() VRRPControl { return syncControl{s} }

type syncControl struct{ s *SyncGroup }

func (c syncControl) Inject(ev vrrp.Event) {
	for _, m := range c.s.members {
		m.Inject(ev)
	}
}

func (c syncControl) SetFault(source string, on bool) {
	for _, m := range c.s.members {
		m.SetFault(source, on)
	}
}

func (c syncControl) Announce() {
	for _, m := range c.s.members {
		m.Announce()
	}
}

// GroupTarget feeds a sync group's view to a node Group.
type GroupTarget struct{ G *Group }

func (t GroupTarget) AllMaster()                 { t.G.Post(VRRPMaster{}) }
func (t GroupTarget) NotAllMaster(reason string) { t.G.Post(VRRPNotMaster{Reason: reason}) }
func (t GroupTarget) Faulted(on bool)            { t.G.Post(VRRPFaulted{On: on}) }

// MasterHeard reports whether any member, as Backup, hears another node as
// master: that node's sync group is becoming master and acquires the lease.
func (c syncControl) MasterHeard() bool {
	for _, m := range c.s.members {
		if h, ok := m.(masterHearer); ok && h.MasterHeard() {
			return true
		}
	}
	return false
}

// HigherMember reports whether any member instance has a registered member
// of higher priority: that node's sync group is the better master.
func (c syncControl) HigherMember() bool {
	for _, m := range c.s.members {
		if r, ok := m.(memberRanker); ok && r.HigherMember() {
			return true
		}
	}
	return false
}
