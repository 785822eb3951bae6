package vrrp_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/vrrp/vrrptest"
)

// TestSegmentScenarios runs the scripts in testdata/segment: several hosts,
// each a real Mux and Instance (VRRPv3, interval 1s, VRID 51) on one
// vrrptest.Segment, in a synctest bubble, so times are exact and cost no
// wall time.
//
// Script language, one command a line, '#' starts a comment:
//
//	host NAME src=IP prio=P [preempt=BOOL] [peers=IP,IP]
//	                    declare a host (preempt defaults to true; no peers:
//	                    multicast)
//	start NAME...       run the hosts' Mux and instance
//	stop NAME...        stop the instance (priority-0 advert if master);
//	                    its Mux keeps running
//	wait D              let fake time pass
//	isolate NAME / rejoin NAME
//	cut A B             drop both directions; cut A>B: only A to B
//	heal A B            undo cut between A and B; heal alone: every fault
//	expect key=value... check; keys:
//	    NAME=STATE              the host's state now
//	    transitions=LIST|none   since the previous expect, in order, each
//	                            NAME:FROM>TO@OFFSET, by time, then by
//	                            start order (not cause) within an instant
//	    garp=LIST|none          announcements since the previous expect,
//	                            each NAME@OFFSET
//
// Offsets are from the start of the script. Every script also checks that
// no host announced while not master. On a mismatch the whole trace is
// printed.
func TestSegmentScenarios(t *testing.T) {
	runScripts(t, "segment", 6, func(t *testing.T, file string) {
		synctest.Test(t, func(t *testing.T) { segRunScenario(t, file) })
	})
}

type segScenario struct {
	t       *testing.T
	file    string
	line    int
	seg     *vrrptest.Segment
	t0      time.Time
	decl    map[string]segDecl
	hosts   map[string]*segHost
	order   []string       // hosts in start order
	seenTr  map[string]int // transitions already expected, per host
	seenAnn int            // announcements already expected
	expects int
}

type segDecl struct {
	src  netip.Addr
	opts segOpts
}

func segRunScenario(t *testing.T, file string) {
	s := &segScenario{t: t, file: file, seg: vrrptest.NewSegment(), t0: time.Now(),
		decl: map[string]segDecl{}, hosts: map[string]*segHost{}, seenTr: map[string]int{}}
	defer func() {
		for _, name := range slices.Backward(s.order) {
			s.hosts[name].stop()
		}
	}()
	if !readScript(t, file, &s.line, s.exec) {
		return
	}
	if s.expects == 0 {
		t.Fatalf("%s: no expect lines", file)
	}
	var hs []*segHost
	for _, name := range s.order {
		hs = append(hs, s.hosts[name])
	}
	checkAnnouncers(t, s.seg, hs...)
}

func (s *segScenario) fail(format string, args ...any) bool {
	s.t.Errorf("%s:%d: %s\nfull trace:\n%s", s.file, s.line, fmt.Sprintf(format, args...), s.trace())
	return false
}

func (s *segScenario) offset(at time.Time) string { return at.Sub(s.t0).String() }

// segEvent is one line of a trace.
type segEvent struct {
	at   time.Time
	text string
}

// transitions returns the hosts' transitions after the first since[name]
// of each (nil: all), and moves since on.
func (s *segScenario) transitions(since map[string]int) []segEvent {
	var evs []segEvent
	for _, name := range s.order {
		h := s.hosts[name]
		h.mu.Lock()
		for _, tr := range h.trans[since[name]:] {
			evs = append(evs, segEvent{tr.at, fmt.Sprintf("%s:%s>%s@%s", name, tr.from, tr.to, s.offset(tr.at))})
		}
		if since != nil {
			since[name] = len(h.trans)
		}
		h.mu.Unlock()
	}
	return evs
}

// texts sorts evs by time (stable: start order within an instant).
func texts(evs []segEvent) []string {
	slices.SortStableFunc(evs, func(a, b segEvent) int { return a.at.Compare(b.at) })
	var out []string
	for _, e := range evs {
		out = append(out, e.text)
	}
	return out
}

// trace is every transition and announcement so far, in time order.
func (s *segScenario) trace() string {
	evs := s.transitions(nil)
	for _, a := range s.seg.Announcements() {
		evs = append(evs, segEvent{a.At, fmt.Sprintf("garp %s@%s %v heard=%v", a.Host, s.offset(a.At), a.VIPs, a.Heard)})
	}
	return "  " + strings.Join(texts(evs), "\n  ")
}

func (s *segScenario) exec(cmd string, args []string) bool {
	switch cmd {
	case "host":
		return s.declare(args)
	case "start", "stop":
		for _, name := range args {
			if cmd == "start" {
				d, ok := s.decl[name]
				if !ok || s.hosts[name] != nil {
					return s.fail("start %s: undeclared or started", name)
				}
				s.hosts[name] = startSegHost(s.t, s.seg, name, d.src, d.opts)
				s.order = append(s.order, name)
				continue
			}
			h := s.hosts[name]
			if h == nil {
				return s.fail("stop %s: not started", name)
			}
			h.stopInstance()
		}
	case "wait":
		if len(args) != 1 {
			return s.fail("wait D")
		}
		d, err := time.ParseDuration(args[0])
		if err != nil {
			return s.fail("wait: %v", err)
		}
		time.Sleep(d)
	case "isolate", "rejoin":
		if len(args) != 1 {
			return s.fail("%s NAME", cmd)
		}
		if cmd == "isolate" {
			s.seg.Isolate(args[0])
		} else {
			s.seg.Rejoin(args[0])
		}
	case "cut":
		switch {
		case len(args) == 1 && strings.Count(args[0], ">") == 1:
			from, to, _ := strings.Cut(args[0], ">")
			s.seg.CutOneWay(from, to)
		case len(args) == 2:
			s.seg.Cut(args[0], args[1])
		default:
			return s.fail("cut A B | cut A>B")
		}
	case "heal":
		switch len(args) {
		case 0:
			s.seg.HealAll()
		case 2:
			s.seg.Heal(args[0], args[1])
		default:
			return s.fail("heal [A B]")
		}
	case "expect":
		synctest.Wait() // everything due at this instant has happened
		s.expects++
		return s.expect(args)
	default:
		return s.fail("unknown command %q", cmd)
	}
	return true
}

func (s *segScenario) declare(args []string) bool {
	if len(args) < 1 {
		return s.fail("host NAME key=value...")
	}
	name := args[0]
	d := segDecl{opts: segOpts{preempt: true}}
	for _, kv := range args[1:] {
		k, v, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "src":
			d.src, err = netip.ParseAddr(v)
		case "prio":
			var p uint64
			p, err = strconv.ParseUint(v, 10, 8)
			d.opts.prio = uint8(p)
		case "preempt":
			d.opts.preempt, err = strconv.ParseBool(v)
		case "peers":
			for _, a := range strings.Split(v, ",") {
				var ip netip.Addr
				if ip, err = netip.ParseAddr(a); err != nil {
					break
				}
				d.opts.peers = append(d.opts.peers, ip)
			}
		default:
			err = fmt.Errorf("unknown key")
		}
		if err != nil {
			return s.fail("host %s: %s: %v", name, kv, err)
		}
	}
	if !d.src.IsValid() || d.opts.prio == 0 {
		return s.fail("host %s: src and prio are required", name)
	}
	s.decl[name] = d
	return true
}

func (s *segScenario) expect(args []string) bool {
	for _, kv := range args {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "transitions":
			if got := s.newTransitions(); got != v {
				return s.fail("transitions %s, want %s", got, v)
			}
		case "garp":
			if got := s.newAnnouncements(); got != v {
				return s.fail("garp %s, want %s", got, v)
			}
		default:
			h := s.hosts[k]
			if h == nil {
				return s.fail("expect: unknown key or host %q", k)
			}
			if got := h.state().String(); got != v {
				return s.fail("%s is %s, want %s", k, got, v)
			}
		}
	}
	return true
}

// newTransitions lists the transitions since the previous call, by time.
func (s *segScenario) newTransitions() string { return listOrNone(texts(s.transitions(s.seenTr))) }

// newAnnouncements lists the announcements since the previous call.
func (s *segScenario) newAnnouncements() string {
	anns := s.seg.Announcements()
	var out []string
	for _, a := range anns[s.seenAnn:] {
		out = append(out, a.Host+"@"+s.offset(a.At))
	}
	s.seenAnn = len(anns)
	return listOrNone(out)
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ",")
}
