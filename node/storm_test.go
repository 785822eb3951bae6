package node

import (
	"testing"
	"time"

	"github.com/leasehold/leasehold/quorum"
)

// TestStormBound drives one machine as adversarially as a foreign speaker
// with a higher priority can (issue 14): the key is deleted whenever this
// node is backup (another node yielded), every grant is answered at once by
// VRRP leaving master, VRRP says master again right after each demotion.
// The acquires it asks of the quorum stay within the bound of doc.go.
func TestStormBound(t *testing.T) {
	cfg := Config{Group: "VI_1", StepTimeout: 500 * time.Millisecond, RetryInterval: 100 * time.Millisecond,
		HandoverDelay: 10 * time.Millisecond, DemoteBudget: 300 * time.Millisecond}
	m := New(cfg)
	t0 := time.Unix(1_000_000, 0)
	var acquires []time.Duration
	step := func(ev Event, now time.Time) {
		var acts []Action
		m, acts = m.Step(ev, now)
		for _, a := range acts {
			if _, ok := a.(Acquire); ok {
				acquires = append(acquires, now.Sub(t0))
			}
		}
	}
	const horizon = 10 * time.Minute
	epoch := uint64(1)
	for d := time.Duration(0); d < horizon; d += 5 * time.Millisecond {
		now := t0.Add(d)
		if d == 0 {
			step(SessionUp{Deadline: t0.Add(2 * horizon)}, now)
		}
		if nd := m.NextDeadline(); !nd.IsZero() && !now.Before(nd) {
			step(Tick{}, now)
		}
		switch {
		case m.Role() == RoleBackup && d%(20*time.Millisecond) == 0:
			epoch++
			step(KeyDeleted{Epoch: epoch}, now)
			if d%(40*time.Millisecond) == 0 {
				step(VRRPMaster{}, now)
			}
		case m.Role() == RoleCandidate && m.Stage() == StageAcquire:
			epoch++
			step(Acquired{Grant: quorum.Grant{Group: "VI_1", Epoch: epoch}}, now)
		case m.Grant().Epoch != 0 && m.Role() == RoleCandidate:
			step(VRRPNotMaster{Reason: "priority 254 heard"}, now)
		case m.Role() == RoleDemoting:
			step(Demoted{}, now)
		}
	}
	// Per acquire at most one release: writes = 2 × acquires.
	maxIn := func(from, window time.Duration) int {
		most := 0
		for i, a := range acquires {
			if a < from {
				continue
			}
			n := 0
			for _, b := range acquires[i:] {
				if b-a < window {
					n++
				}
			}
			most = max(most, n)
		}
		return most
	}
	if n := maxIn(0, 10*time.Second); n > DefaultFlapLimit+4 {
		t.Errorf("%d acquires within 10s, bound %d: %v", n, DefaultFlapLimit+4, acquires)
	}
	// Steady state: backoffs 1+2+4+8+16 s are spent by ~31 s.
	if n := maxIn(time.Minute, DefaultFlapBackoffMax); n > 1 {
		t.Errorf("%d acquires within %v after the first minute, bound 1: %v", n, DefaultFlapBackoffMax, acquires)
	}
	total := len(acquires)
	if bound := DefaultFlapLimit + 6 + int(horizon/DefaultFlapBackoffMax); total > bound {
		t.Errorf("%d acquires in %v, bound %d", total, horizon, bound)
	}
	t.Logf("%d acquires (%d quorum writes) in %v; first 10 s: %d", total, 2*total, horizon, maxIn(0, 10*time.Second))
}

// The storm guard forgets: after 2·FlapBackoffMax without a flap, the next
// short-lived grants are free again (a legitimate failover much later is
// not held back by an old storm).
func TestStormGuardForgets(t *testing.T) {
	cfg := Config{Group: "VI_1", StepTimeout: 500 * time.Millisecond, RetryInterval: 100 * time.Millisecond,
		HandoverDelay: 10 * time.Millisecond, DemoteBudget: 300 * time.Millisecond}
	m := New(cfg)
	t0 := time.Unix(1_000_000, 0)
	now := t0
	m, _ = m.Step(SessionUp{Deadline: t0.Add(time.Hour)}, now)
	epoch := uint64(0)
	// cycle: VRRP master, acquire, granted, VRRP leaves master, demoted.
	cycle := func() (acquired bool) {
		var acts []Action
		m, acts = m.Step(VRRPMaster{}, now)
		for _, a := range acts {
			if _, ok := a.(Acquire); ok {
				acquired = true
			}
		}
		if !acquired {
			m, _ = m.Step(VRRPNotMaster{Reason: "test"}, now)
			return false
		}
		epoch++
		m, _ = m.Step(Acquired{Grant: quorum.Grant{Group: "VI_1", Epoch: epoch}}, now.Add(time.Millisecond))
		m, _ = m.Step(VRRPNotMaster{Reason: "priority 254"}, now.Add(2*time.Millisecond))
		m, _ = m.Step(Demoted{}, now.Add(3*time.Millisecond))
		return true
	}
	for i := range DefaultFlapLimit + 1 {
		if !cycle() {
			t.Fatalf("cycle %d held back", i+1)
		}
		now = now.Add(100 * time.Millisecond)
	}
	if cycle() {
		t.Fatal("acquired right after flap limit+1 short grants")
	}
	if !m.HeldOff().After(now) {
		t.Fatalf("held off until %v, now %v", m.HeldOff().Sub(t0), now.Sub(t0))
	}
	now = now.Add(2*DefaultFlapBackoffMax + time.Second)
	for i := range DefaultFlapLimit + 1 {
		if !cycle() {
			t.Fatalf("after a quiet %v: cycle %d held back", 2*DefaultFlapBackoffMax, i+1)
		}
		now = now.Add(100 * time.Millisecond)
	}
}
