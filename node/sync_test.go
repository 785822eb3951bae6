package node

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/leasehold/leasehold/vrrp"
)

// fakeMember records fault sources; it stands in for a vrrp.Instance.
type fakeMember struct {
	mu     sync.Mutex
	faults map[string]bool
	log    []string
}

func (f *fakeMember) Inject(ev vrrp.Event) {
	f.mu.Lock()
	f.log = append(f.log, "inject")
	f.mu.Unlock()
}
func (f *fakeMember) Announce() {}
func (f *fakeMember) SetFault(src string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.faults == nil {
		f.faults = map[string]bool{}
	}
	if on {
		f.faults[src] = true
		f.log = append(f.log, "fault+"+src)
	} else {
		delete(f.faults, src)
		f.log = append(f.log, "fault-"+src)
	}
}
func (f *fakeMember) Faults() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.faults {
		out = append(out, k)
	}
	return out
}

type fakeTarget struct{ events []string }

func (t *fakeTarget) AllMaster()          { t.events = append(t.events, "all-master") }
func (t *fakeTarget) NotAllMaster(string) { t.events = append(t.events, "not-all-master") }
func (t *fakeTarget) Faulted(on bool) {
	t.events = append(t.events, map[bool]string{true: "faulted", false: "cleared"}[on])
}

func TestSyncGroupMovesTogether(t *testing.T) {
	tg := &fakeTarget{}
	a, b := &fakeMember{}, &fakeMember{}
	s := NewSyncGroup(tg, 2)
	s.SetMember(0, a)
	s.SetMember(1, b)
	ctx := context.Background()
	s.Effects(0).Up(ctx)
	if len(tg.events) != 0 {
		t.Fatalf("one member master: %v", tg.events)
	}
	s.Effects(1).Up(ctx)
	if !slices.Equal(tg.events, []string{"all-master"}) {
		t.Fatalf("both master: %v", tg.events)
	}
	// a falls back to backup: the group is not master and b is sent to
	// backup (a pulse on its fault).
	s.Effects(0).Down(ctx)
	if !slices.Equal(tg.events, []string{"all-master", "not-all-master"}) {
		t.Fatalf("after a left: %v", tg.events)
	}
	if !slices.Equal(b.log, []string{"fault+" + syncPulse, "fault-" + syncPulse}) {
		t.Fatalf("b was not sent to backup: %v", b.log)
	}
	// a is faulted by its health check: b is held in fault too, then
	// released when a clears.
	a.SetFault("health", true)
	s.OnTransition(0)(vrrp.Transition{From: vrrp.StateBackup, To: vrrp.StateFault}, 100)
	if !slices.Contains(b.Faults(), SyncFault) || slices.Contains(a.Faults(), SyncFault) {
		t.Fatalf("sync fault: a %v b %v", a.Faults(), b.Faults())
	}
	a.SetFault("health", false)
	s.OnTransition(0)(vrrp.Transition{From: vrrp.StateFault, To: vrrp.StateBackup}, 100)
	if len(b.Faults()) != 0 {
		t.Fatalf("b still faulted: %v", b.Faults())
	}
	if !slices.Equal(tg.events[2:], []string{"faulted", "cleared"}) {
		t.Fatalf("fault events: %v", tg.events)
	}
	// Claim goes to every member.
	s.Control().Inject(vrrp.Claim{})
	if a.log[len(a.log)-1] != "inject" || b.log[len(b.log)-1] != "inject" {
		t.Fatalf("claim not fanned out: %v %v", a.log, b.log)
	}
}
