package node

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/vrrp"
)

// The field sequence of issue 15 with three nodes: the pure VRRP machine
// and the pure role machine of each, a quorum with expiring sessions, and
// a wire, stepped every millisecond. The gate is applied where the
// lease-gated vrrp.Instance applies it: before a non-zero advert or a claim
// goes out (MayAdvertise), before a GARP (MayAnnounce). A frozen node runs
// nothing: its timers, adverts and watch events wait for its resume, and
// its late VRRP timer runs first (the worst order, seen in the field).

const (
	fieldTTL      = 2 * time.Second
	fieldRenew    = 500 * time.Millisecond
	fieldDrift    = 200 * time.Millisecond // drift bound + margin
	fieldInterval = 100 * time.Millisecond
	fieldMargin   = 100 * time.Millisecond
)

type fieldMsg struct {
	at time.Time
	ev any // vrrp.Event or Event
}

type fieldNode struct {
	name  string
	addr  netip.Addr
	vm    vrrp.Machine
	nm    Machine
	inbox []fieldMsg

	frozenFrom, frozenTo time.Time

	// quorum side of this node's session
	sessAlive  bool
	sessExpiry time.Time
	// node side
	local     bool // SessionUp given, SessionLost not yet
	nextRenew time.Time
	reopenAt  time.Time

	adverts []string // "offset:prio" of every advert on the wire
	garps   int
}

type fieldSim struct {
	t      *testing.T
	t0     time.Time
	now    time.Time
	gate   bool
	nodes  []*fieldNode
	holder *fieldNode
	epoch  uint64
	owners []string // "offset node@epoch" at every change of owner
	log    []string
}

func newFieldSim(t *testing.T, gate, preempt bool, prios ...uint8) *fieldSim {
	s := &fieldSim{t: t, t0: time.Unix(1_000_000, 0), gate: gate}
	s.now = s.t0
	for i, p := range prios {
		addr := netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)})
		vc := vrrp.Config{VRID: 51, Priority: p, Version: 3, AdvertInterval: fieldInterval, Preempt: preempt,
			PrimaryIP: addr}
		nc := Config{Group: "VI_1", StepTimeout: 500 * time.Millisecond, RetryInterval: fieldInterval,
			HandoverDelay: vrrp.SkewTime(3, p, fieldInterval) / 8, DemoteBudget: 300 * time.Millisecond}
		n := &fieldNode{name: string(rune('a' + i)), addr: addr, vm: vrrp.New(vc), nm: New(nc)}
		s.nodes = append(s.nodes, n)
		s.openSession(n)
		s.vrrp(n, vrrp.Startup{})
	}
	return s
}

func (s *fieldSim) off(t time.Time) string { return t.Sub(s.t0).Round(time.Millisecond).String() }

func (s *fieldSim) frozen(n *fieldNode) bool {
	return !s.now.Before(n.frozenFrom) && s.now.Before(n.frozenTo)
}

func (s *fieldSim) post(n *fieldNode, delay time.Duration, ev any) {
	n.inbox = append(n.inbox, fieldMsg{at: s.now.Add(delay), ev: ev})
}

func (s *fieldSim) openSession(n *fieldNode) {
	n.sessAlive, n.sessExpiry = true, s.now.Add(fieldTTL)
	n.local, n.nextRenew = true, s.now.Add(fieldRenew)
	s.node(n, SessionUp{Deadline: s.now.Add(fieldTTL - fieldDrift)})
}

// vrrp steps n's VRRP machine and performs its actions.
func (s *fieldSim) vrrp(n *fieldNode, ev vrrp.Event) {
	if _, claim := ev.(vrrp.Claim); claim && s.gate && !n.nm.MayAdvertise(s.now) {
		return
	}
	m, acts := n.vm.Step(ev, s.now)
	n.vm = m
	for _, a := range acts {
		switch a := a.(type) {
		case vrrp.SendAdvert:
			if a.Priority != 0 && s.gate && !n.nm.MayAdvertise(s.now) {
				continue
			}
			n.adverts = append(n.adverts, fmt.Sprintf("%s:%d", s.off(s.now), a.Priority))
			for _, o := range s.nodes {
				if o != n {
					s.post(o, time.Millisecond, vrrp.AdvertReceived{Priority: a.Priority, Src: n.addr, Interval: fieldInterval})
				}
			}
		case vrrp.Transition:
			switch {
			case a.To == vrrp.StateFault:
				s.post(n, 0, VRRPFaulted{On: true})
			case a.From == vrrp.StateFault:
				s.post(n, 0, VRRPFaulted{On: false})
			}
		case vrrp.BecomeMaster:
			s.post(n, 0, VRRPMaster{})
		case vrrp.BecomeBackup, vrrp.BecomeFault, vrrp.BecomeInit:
			s.post(n, 0, VRRPNotMaster{Reason: "vrrp"})
		}
	}
}

// node steps n's role machine and performs its actions (the quorum's
// answers and the pipeline's completions come back a little later).
func (s *fieldSim) node(n *fieldNode, ev Event) {
	m, acts := n.nm.Step(ev, s.now)
	n.nm = m
	for _, a := range acts {
		switch a := a.(type) {
		case Transition:
			s.log = append(s.log, fmt.Sprintf("%s %s %s->%s (%s)", s.off(s.now), n.name, a.From, a.To, a.Reason))
			if a.To == RoleOwner {
				s.owners = append(s.owners, fmt.Sprintf("%s %s@%d", s.off(s.now), n.name, m.Grant().Epoch))
			}
		case Acquire:
			if n.sessAlive && s.holder == nil {
				s.epoch++
				s.holder = n
				g := quorum.Grant{Group: "VI_1", Epoch: s.epoch}
				s.post(n, 2*time.Millisecond, Acquired{Grant: g})
				for _, o := range s.nodes {
					s.post(o, 3*time.Millisecond, KeyPut{Epoch: s.epoch, Holder: n.name})
				}
			} else {
				s.post(n, 2*time.Millisecond, AcquireFailed{Holder: "held"})
			}
		case RunHooks:
			s.post(n, time.Millisecond, HooksDone{Epoch: a.Grant.Epoch})
		case Probe:
			s.post(n, time.Millisecond, ProbeDone{Epoch: a.Epoch})
		case Promote:
			s.post(n, time.Millisecond, Promoted{Epoch: a.Epoch})
		case AddVIP:
			s.post(n, time.Millisecond, VIPUp{Epoch: a.Epoch})
		case Announce:
			if !s.gate || n.nm.MayAnnounce(s.now, fieldMargin) {
				n.garps++
			}
		case ClaimVRRP:
			s.vrrp(n, vrrp.Claim{})
		case VRRPFault:
			s.vrrp(n, vrrp.Fault{On: a.On})
		case Demote:
			if a.Release {
				s.release(n, a.Grant)
			}
			s.post(n, 5*time.Millisecond, Demoted{})
		case Release:
			s.release(n, a.Grant)
		}
	}
}

func (s *fieldSim) release(n *fieldNode, g quorum.Grant) {
	if n.sessAlive && s.holder == n && s.epoch == g.Epoch {
		s.deleteKey()
	}
}

func (s *fieldSim) deleteKey() {
	s.holder = nil
	for _, o := range s.nodes {
		s.post(o, 2*time.Millisecond, KeyDeleted{Epoch: s.epoch})
	}
}

// run steps every millisecond until offset end.
func (s *fieldSim) run(end time.Duration) {
	for ; s.now.Sub(s.t0) <= end; s.now = s.now.Add(time.Millisecond) {
		for _, n := range s.nodes { // the quorum expires sessions
			if n.sessAlive && !s.now.Before(n.sessExpiry) {
				n.sessAlive = false
				if s.holder == n {
					s.deleteKey()
				}
			}
		}
		for _, n := range s.nodes {
			if s.frozen(n) {
				continue
			}
			if d := n.vm.NextDeadline(); !d.IsZero() && !s.now.Before(d) {
				s.vrrp(n, vrrp.Tick{})
			}
			for len(n.inbox) > 0 && !s.now.Before(n.inbox[0].at) {
				msg := n.inbox[0]
				n.inbox = n.inbox[1:]
				switch ev := msg.ev.(type) {
				case vrrp.Event:
					s.vrrp(n, ev)
				case Event:
					s.node(n, ev)
				}
			}
			if d := n.nm.NextDeadline(); !d.IsZero() && !s.now.Before(d) {
				s.node(n, Tick{})
			}
			switch {
			case n.local && !s.now.Before(n.nextRenew):
				n.nextRenew = s.now.Add(fieldRenew)
				if n.sessAlive {
					n.sessExpiry = s.now.Add(fieldTTL)
					s.post(n, 2*time.Millisecond, Renewed{Deadline: s.now.Add(fieldTTL - fieldDrift)})
				} else {
					// The keepalive finds the lease gone: the session
					// reports its loss, a new one opens 100 ms later.
					n.local, n.reopenAt = false, s.now.Add(100*time.Millisecond)
					s.post(n, 60*time.Millisecond, SessionLost{})
				}
			case !n.local && !n.reopenAt.IsZero() && !s.now.Before(n.reopenAt):
				n.reopenAt = time.Time{}
				s.openSession(n)
			}
		}
	}
}

// adverts lists n's non-zero adverts sent in [from, to).
func (s *fieldSim) adverts(n *fieldNode, from, to time.Duration) []string {
	var out []string
	for _, a := range n.adverts {
		off, prio, _ := strings.Cut(a, ":")
		at, _ := time.ParseDuration(off)
		if prio != "0" && at >= from && at < to {
			out = append(out, a)
		}
	}
	return out
}

// sessionBack is when n's session came up again after from.
func (s *fieldSim) sessionBack(n string, from time.Duration) time.Duration {
	for _, l := range s.log {
		f := strings.Fields(l)
		at, _ := time.ParseDuration(f[0])
		if f[1] == n && at > from && strings.HasPrefix(f[2], "fault->") {
			return at
		}
	}
	return time.Duration(1 << 62)
}

func TestFieldFrozenOwnerResumes(t *testing.T) {
	const freezeAt, freezeFor = 2 * time.Second, 4200 * time.Millisecond
	for _, tc := range []struct {
		name    string
		gate    bool
		preempt bool
		owners  []string // the owners, in order
	}{
		// a, frozen past its deadline, comes back without displacing b.
		{"gated nopreempt", true, false, []string{"a@1", "b@2"}},
		// With preemption a takes the group back, but only once its new
		// session is live, and through b's release: one planned change.
		{"gated preempt", true, true, []string{"a@1", "b@2", "a@3"}},
		// The field: a's late adverts displace b before a knows its lease
		// is gone; c acquires and releases in turn.
		{"ungated (issue 15)", false, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newFieldSim(t, tc.gate, tc.preempt, 120, 100, 90)
			a, b := s.nodes[0], s.nodes[1]
			s.run(freezeAt)
			if len(s.owners) != 1 || !strings.HasSuffix(s.owners[0], "a@1") {
				t.Fatalf("owners %v before the freeze, want a@1\n%s", s.owners, strings.Join(s.log, "\n"))
			}
			a.frozenFrom, a.frozenTo = s.now, s.now.Add(freezeFor)
			s.run(12 * time.Second)
			resume := freezeAt + freezeFor
			back := s.sessionBack("a", resume)
			trace := fmt.Sprintf("owners %v\nlog:\n%s\na's adverts after resume: %v", s.owners,
				strings.Join(s.log, "\n"), s.adverts(a, resume, resume+time.Second))
			if !tc.gate {
				// The simulation reproduces the bug: b loses the group
				// before a's session is back.
				if len(s.owners) < 3 || len(s.adverts(a, resume, back)) == 0 {
					t.Fatalf("without the gate the field bug does not reproduce:\n%s", trace)
				}
				return
			}
			if w := s.adverts(a, resume, back); len(w) != 0 {
				t.Fatalf("a sent non-zero adverts %v between its resume (%v) and its new session (%v)\n%s", w, resume, back, trace)
			}
			var got []string
			for _, o := range s.owners {
				got = append(got, strings.Fields(o)[1])
			}
			if strings.Join(got, " ") != strings.Join(tc.owners, " ") {
				t.Fatalf("owners %v, want %v\n%s", got, tc.owners, trace)
			}
			if tc.preempt {
				at, _ := time.ParseDuration(strings.Fields(s.owners[2])[0])
				if at < back {
					t.Fatalf("a took the group back at %v, before its session was back at %v\n%s", at, back, trace)
				}
			}
			if b.garps == 0 {
				t.Fatalf("b never announced\n%s", trace)
			}
		})
	}
}
