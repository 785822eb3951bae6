package health

import (
	"fmt"
	"strconv"
)

// State is what a tracked script or link currently says.
type State uint8

const (
	// Unknown: a script that has not returned yet (and is not init_fail), or
	// a link before its first observation.
	Unknown State = iota
	Up
	Down
)

func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Down:
		return "down"
	default:
		return "unknown"
	}
}

// Kind of a tracked item.
type Kind string

const (
	KindScript Kind = "script"
	KindLink   Kind = "link"
	KindCheck  Kind = "check" // a native check (Script.Check)
)

// Check is one tracked item as Effective sees it.
type Check struct {
	Kind   Kind
	Name   string
	Weight int // -253..253; 0 = a Down (or Unknown) item puts the group in FAULT
	State  State
}

// Priority bounds as keepalived applies them (vrrp_set_effective_priority).
const (
	OwnerPriority = 255 // address owner: weights never change it
	MaxTracked    = 254 // a tracked priority never reaches 255 ...
	MinTracked    = 1   // ... and never drops below 1
	MaxWeight     = 253
	MinWeight     = -253
)

// Effective computes a group's priority and fault from its base priority
// and its tracked items, with keepalived's rules:
//
//   - weight > 0: added while the item is Up;
//   - weight < 0: added (so subtracted) while the item is Down;
//   - Unknown adds nothing (keepalived: a script still in its init state);
//   - weight 0: Down or Unknown means FAULT (keepalived holds an instance
//     in FAULT/INIT until its weight-0 scripts have returned);
//   - the sum is clamped to 1..254;
//   - base 255 (address owner) is never changed by weights (keepalived
//     returns early for VRRP_PRIO_OWNER); weight-0 items still cause FAULT.
//
// reasons lists, in the order of checks, every item that changed the
// priority or caused the fault, then the clamping if any.
func Effective(base uint8, checks []Check) (prio uint8, fault bool, reasons []string) {
	total := int(base)
	for _, c := range checks {
		label := string(c.Kind) + " " + c.Name + " " + c.State.String()
		switch {
		case c.Weight == 0:
			if c.State != Up {
				fault = true
				reasons = append(reasons, label+" (fault)")
			}
		case c.Weight > 0 && c.State == Up, c.Weight < 0 && c.State == Down:
			total += c.Weight
			reasons = append(reasons, label+" ("+signed(c.Weight)+")")
		}
	}
	if base == OwnerPriority {
		if total != OwnerPriority {
			reasons = append(reasons, "address owner (priority 255): weights ignored")
		}
		return OwnerPriority, fault, reasons
	}
	switch {
	case total < MinTracked:
		reasons = append(reasons, fmt.Sprintf("priority %d clamped to %d", total, MinTracked))
		total = MinTracked
	case total > MaxTracked:
		reasons = append(reasons, fmt.Sprintf("priority %d clamped to %d", total, MaxTracked))
		total = MaxTracked
	}
	return uint8(total), fault, reasons
}

func signed(w int) string {
	if w > 0 {
		return "+" + strconv.Itoa(w)
	}
	return strconv.Itoa(w)
}

// scriptState is keepalived's rise/fall counter for one script
// (vrrp_script_child_thread): result runs from 0 to rise+fall−1 and the
// script is Up while result ≥ rise. A success below rise−1 counts up; a
// success at or above rise−1 jumps to the top (Up). A failure above rise
// counts down; a failure at or below rise drops to 0 (Down). So from Up it
// takes fall consecutive failures to go Down, and from Down rise
// consecutive successes to go Up; any interruption restarts the count.
//
// Without init_fail the script starts Unknown at rise−1, and its first
// result decides at once (one success → Up, one failure → Down). With
// init_fail it starts Down at 0 and needs rise successes.
type scriptState struct {
	rise, fall int
	result     int
	known      bool
}

func newScriptState(rise, fall int, initFail bool) scriptState {
	rise, fall = max(rise, 1), max(fall, 1)
	if initFail {
		return scriptState{rise: rise, fall: fall, result: 0, known: true}
	}
	return scriptState{rise: rise, fall: fall, result: rise - 1}
}

// State is Unknown before the first result (without init_fail), else Up or Down.
func (s scriptState) State() State {
	switch {
	case !s.known:
		return Unknown
	case s.result >= s.rise:
		return Up
	default:
		return Down
	}
}

// Observe records one run's outcome and reports whether State changed.
func (s *scriptState) Observe(ok bool) (changed bool) {
	prev := s.State()
	if ok {
		if s.result < s.rise-1 {
			s.result++
		} else {
			s.result = s.rise + s.fall - 1
		}
	} else {
		if s.result > s.rise {
			s.result--
		} else {
			s.result = 0
		}
	}
	s.known = true
	return s.State() != prev
}
