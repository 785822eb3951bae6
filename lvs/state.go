package lvs

import (
	"net/netip"
	"slices"
	"time"
)

// CheckState is one checker's state, keepalived's is_up, has_run and
// retry_it.
type CheckState struct {
	Up      bool
	Ran     bool
	Retries int // failures in a row while up, each followed by a retry
	// Dynamic is the weight a misc_dynamic script last asked for
	// (exit status − 2); -1: none.
	Dynamic int
}

// InitialState is a checker's state before its first run: up, unless
// alpha.
func InitialState(c Check) CheckState { return CheckState{Up: !c.Alpha, Dynamic: -1} }

// Outcome is the result of one check run.
type Outcome struct {
	OK bool
	// Dynamic: misc_dynamic's weight from an exit status 2-255, else -1.
	Dynamic int
	// Err says why a failed check failed.
	Err string
}

// Step applies one check's outcome to a checker's state as keepalived's
// checkers do (check_tcp.c tcp_epilog): a success brings the checker up
// at once; a failure of an up checker is retried Retry times, each after
// DelayBeforeRetry, before the checker goes down; a down checker is
// checked again after DelayLoop. It returns the new state, the delay to
// the next run, and whether Up changed.
func Step(c Check, s CheckState, o Outcome) (CheckState, time.Duration, bool) {
	was := s.Up
	next := c.DelayLoop
	switch {
	case o.OK || ((s.Up || !s.Ran) && s.Retries >= c.Retry):
		s.Retries = 0
		s.Up = o.OK
		if o.OK && c.Dynamic {
			s.Dynamic = o.Dynamic
		}
	case s.Up:
		s.Retries++
		next = c.DelayBeforeRetry
	}
	s.Ran = true
	return s, next, s.Up != was
}

// QuorumStep is a virtual server's quorum with hysteresis
// (ipwrapper.c update_quorum_state): gained when the live weight reaches
// quorum + hysteresis, lost when it falls below quorum − hysteresis or
// to 0.
func QuorumStep(up bool, live, quorum, hysteresis int) bool {
	switch {
	case !up && live >= quorum+hysteresis:
		return true
	case up && (live == 0 || live < quorum-hysteresis):
		return false
	}
	return up
}

// Dest is a real server in a kernel service.
type Dest struct {
	Addr    netip.AddrPort
	Weight  int
	Forward Forward
}

// Virtual is a kernel service with its real servers.
type Virtual struct {
	Key       Key
	Scheduler string
	Timeout   uint32 // persistence in seconds; 0: not persistent
	Netmask   uint32 // 0: the family's default
	Dests     []Dest
}

// RealState is what the checks say of a real server.
type RealState struct {
	Alive  bool
	Weight int // configured, or as misc_dynamic set it
}

// Real reports a real server's state from its checkers' states: alive
// when every checker is up (a server without checkers always is), with
// its configured weight moved by each misc_dynamic checker's
// (keepalived: weight + Σ(dynamic − weight)), within 0..MaxWeight.
func Real(r RealServer, checks []CheckState) RealState {
	st := RealState{Alive: true, Weight: r.Weight}
	for _, c := range checks {
		st.Alive = st.Alive && c.Up
		if c.Dynamic >= 0 {
			st.Weight += c.Dynamic - r.Weight
		}
	}
	st.Weight = min(max(st.Weight, 0), MaxWeight)
	return st
}

// LiveWeight sums the weights of the live real servers (the quorum's
// measure).
func LiveWeight(rs []RealState) int {
	sum := 0
	for _, r := range rs {
		if r.Alive {
			sum += r.Weight
		}
	}
	return sum
}

// Desired is a virtual server's kernel services for its real servers'
// states and its quorum: live servers with their weight, failed ones
// with weight 0 under inhibit_on_failure and absent otherwise; without
// quorum and with a sorry server, the sorry server alone (inhibited
// servers stay at weight 0).
func Desired(s Service, reals []RealState, quorumUp bool) []Virtual {
	var dests []Dest
	sorry := s.Sorry != nil && !quorumUp
	for i, r := range s.Reals {
		st := reals[i]
		switch {
		case st.Alive && !sorry:
			dests = append(dests, Dest{Addr: r.Addr, Weight: st.Weight, Forward: r.Forward})
		case r.Inhibit:
			dests = append(dests, Dest{Addr: r.Addr, Weight: 0, Forward: r.Forward})
		}
	}
	if sorry {
		dests = append(dests, Dest{Addr: s.Sorry.Addr, Weight: max(s.Sorry.Weight, 1), Forward: s.Sorry.Forward})
	} else if s.Sorry != nil && s.Sorry.Inhibit {
		dests = append(dests, Dest{Addr: s.Sorry.Addr, Weight: 0, Forward: s.Sorry.Forward})
	}
	out := make([]Virtual, 0, len(s.Keys))
	for _, k := range s.Keys {
		v := Virtual{Key: k, Scheduler: s.Scheduler, Netmask: s.Netmask, Dests: slices.Clone(dests)}
		if s.Persistence > 0 {
			v.Timeout = uint32(s.Persistence / time.Second)
		}
		out = append(out, v)
	}
	return out
}
