package vrrp_test

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/vrrp"
)

// TestMachineScenarios runs the scripts in testdata/scenarios against one Machine.
//
// Script language, one command a line, '#' starts a comment; times are
// offsets from the start of the script and must not go backwards:
//
//	config key=value...   new machine; keys vrid prio version interval preempt
//	                      delay state(backup|master) primary accept
//	                      lower_prio_no_advert (defaults: vrid=51 prio=100
//	                      version=2 interval=1s preempt=true primary=10.0.0.2)
//	startup at=T          Startup event
//	shutdown at=T         Shutdown event
//	tick at=T             one Tick event
//	run until=T           a Tick at every NextDeadline up to T
//	advert at=T prio=P src=IP [interval=D]   AdvertReceived
//	priority at=T prio=P  PriorityChanged
//	fault at=T on=BOOL    Fault
//	expect key=value...   check; keys:
//	    state=S
//	    actions=a,b|none      actions since the previous expect, transitions
//	                          left out: send_advert(P) become_master
//	                          become_backup become_fault become_init
//	                          rx_lower(P@IP)
//	    transitions=a>b,...|none  transitions since the previous expect
//	    deadline=T|none       NextDeadline as an offset
//	    prio=P                effective priority
//	    mai=D                 Master_Adver_Interval
//	    master=IP             Master() address
//
// The output of a script is its trace (every step with its actions); on a
// mismatch the whole trace is printed.
func TestMachineScenarios(t *testing.T) {
	runScripts(t, "scenarios", 10, fsmRunScenario)
}

var fsmScnBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type fsmScenario struct {
	t       *testing.T
	file    string
	line    int
	now     time.Duration
	m       vrrp.Machine
	ready   bool
	trace   []string
	actions []string
	trans   []string
	expects int
}

func fsmRunScenario(t *testing.T, file string) {
	s := &fsmScenario{t: t, file: file}
	if !readScript(t, file, &s.line, s.exec) {
		return
	}
	if s.expects == 0 {
		t.Fatalf("%s: no expect lines", file)
	}
}

// fail reports a script error and stops the script.
func (s *fsmScenario) fail(format string, args ...any) bool {
	s.t.Errorf("%s:%d: %s\nfull trace:\n%s", s.file, s.line, fmt.Sprintf(format, args...), strings.Join(s.trace, "\n"))
	return false
}

func scnKV(args []string) (map[string]string, error) {
	kv := make(map[string]string, len(args))
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("argument %q is not key=value", a)
		}
		if _, dup := kv[k]; dup {
			return nil, fmt.Errorf("key %q twice", k)
		}
		kv[k] = v
	}
	return kv, nil
}

func scnDuration(v string) (time.Duration, error) {
	if v == "0" {
		return 0, nil
	}
	return time.ParseDuration(v)
}

func scnUint8(v string) (uint8, error) {
	n, err := strconv.ParseUint(v, 10, 8)
	return uint8(n), err
}

func (s *fsmScenario) exec(cmd string, args []string) bool {
	kv, err := scnKV(args)
	if err != nil {
		return s.fail("%s: %v", cmd, err)
	}
	if cmd == "config" {
		return s.config(kv)
	}
	if !s.ready {
		return s.fail("%s before config", cmd)
	}
	if cmd == "expect" {
		return s.expect(kv)
	}
	atKey := "at"
	if cmd == "run" {
		atKey = "until"
	}
	at, err := scnDuration(kv[atKey])
	if err != nil {
		return s.fail("%s: %s=%q: %v", cmd, atKey, kv[atKey], err)
	}
	delete(kv, atKey)
	if at < s.now {
		return s.fail("%s: time goes backwards (%v < %v)", cmd, at, s.now)
	}
	var ev vrrp.Event
	switch cmd {
	case "startup":
		ev = vrrp.Startup{}
	case "shutdown":
		ev = vrrp.Shutdown{}
	case "tick":
		ev = vrrp.Tick{}
	case "run":
		for range 100000 {
			d := s.m.NextDeadline()
			if d.IsZero() || d.Sub(fsmScnBase) > at {
				break
			}
			s.step(vrrp.Tick{}, d.Sub(fsmScnBase), "tick (run)")
		}
		s.now = at
		return s.noExtra(cmd, kv)
	case "advert":
		var a vrrp.AdvertReceived
		if a.Priority, err = scnUint8(kv["prio"]); err != nil {
			return s.fail("advert prio: %v", err)
		}
		if a.Src, err = netip.ParseAddr(kv["src"]); err != nil {
			return s.fail("advert src: %v", err)
		}
		if v, ok := kv["interval"]; ok {
			if a.Interval, err = scnDuration(v); err != nil {
				return s.fail("advert interval: %v", err)
			}
		}
		delete(kv, "prio")
		delete(kv, "src")
		delete(kv, "interval")
		ev = a
	case "priority":
		p, err := scnUint8(kv["prio"])
		if err != nil {
			return s.fail("priority prio: %v", err)
		}
		delete(kv, "prio")
		ev = vrrp.PriorityChanged{Priority: p}
	case "fault":
		on, err := strconv.ParseBool(kv["on"])
		if err != nil {
			return s.fail("fault on: %v", err)
		}
		delete(kv, "on")
		ev = vrrp.Fault{On: on}
	default:
		return s.fail("unknown command %q", cmd)
	}
	if !s.noExtra(cmd, kv) {
		return false
	}
	s.step(ev, at, cmd+" "+strings.Join(args, " "))
	return true
}

func (s *fsmScenario) noExtra(cmd string, kv map[string]string) bool {
	for k := range kv {
		return s.fail("%s: unknown key %q", cmd, k)
	}
	return true
}

func (s *fsmScenario) config(kv map[string]string) bool {
	cfg := vrrp.Config{VRID: 51, Priority: 100, Version: 2, AdvertInterval: time.Second,
		Preempt: true, PrimaryIP: netip.MustParseAddr("10.0.0.2")}
	for k, v := range kv {
		var err error
		switch k {
		case "vrid":
			cfg.VRID, err = scnUint8(v)
		case "prio":
			cfg.Priority, err = scnUint8(v)
		case "version":
			cfg.Version, err = scnUint8(v)
		case "interval":
			cfg.AdvertInterval, err = scnDuration(v)
		case "delay":
			cfg.PreemptDelay, err = scnDuration(v)
		case "preempt":
			cfg.Preempt, err = strconv.ParseBool(v)
		case "accept":
			cfg.AcceptMode, err = strconv.ParseBool(v)
		case "lower_prio_no_advert":
			cfg.LowerPrioNoAdvert, err = strconv.ParseBool(v)
		case "primary":
			cfg.PrimaryIP, err = netip.ParseAddr(v)
		case "state":
			switch v {
			case "backup":
				cfg.InitialState = vrrp.StateBackup
			case "master":
				cfg.InitialState = vrrp.StateMaster
			default:
				err = fmt.Errorf("want backup or master")
			}
		default:
			err = fmt.Errorf("unknown key")
		}
		if err != nil {
			return s.fail("config %s=%s: %v", k, v, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return s.fail("config: %v", err)
	}
	s.m, s.ready, s.now = vrrp.New(cfg), true, 0
	s.actions, s.trans = nil, nil
	s.trace = append(s.trace, fmt.Sprintf("line %d: config %+v", s.line, s.m.Config()))
	return true
}

func scnAction(a vrrp.Action) string {
	switch a := a.(type) {
	case vrrp.SendAdvert:
		return fmt.Sprintf("send_advert(%d)", a.Priority)
	case vrrp.BecomeMaster:
		return "become_master"
	case vrrp.BecomeBackup:
		return "become_backup"
	case vrrp.BecomeFault:
		return "become_fault"
	case vrrp.BecomeInit:
		return "become_init"
	case vrrp.MasterRxLowerPrio:
		return fmt.Sprintf("rx_lower(%d@%v)", a.Priority, a.Src)
	case vrrp.Transition:
		return fmt.Sprintf("%v>%v", a.From, a.To)
	}
	return fmt.Sprintf("unknown(%T)", a)
}

func scnOffset(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.Sub(fsmScnBase).String()
}

func (s *fsmScenario) step(ev vrrp.Event, at time.Duration, label string) {
	s.now = at
	var acts []vrrp.Action
	s.m, acts = s.m.Step(ev, fsmScnBase.Add(at))
	var shown []string
	for _, a := range acts {
		str := scnAction(a)
		if tr, ok := a.(vrrp.Transition); ok {
			s.trans = append(s.trans, str)
			str = fmt.Sprintf("[%s: %s]", str, tr.Reason)
		} else {
			s.actions = append(s.actions, str)
		}
		shown = append(shown, str)
	}
	s.trace = append(s.trace, fmt.Sprintf("line %d: %10v %-34s -> %s | state=%v prio=%d deadline=%s",
		s.line, at, label, strings.Join(shown, " "), s.m.State(), s.m.Priority(), scnOffset(s.m.NextDeadline())))
}

func scnList(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ",")
}

func (s *fsmScenario) expect(kv map[string]string) bool {
	s.expects++
	s.trace = append(s.trace, fmt.Sprintf("line %d: expect %v", s.line, kv))
	ok := true
	check := func(key, got string) {
		want, present := kv[key]
		if !present {
			return
		}
		delete(kv, key)
		if got != want {
			ok = s.fail("expect %s=%s, got %s", key, want, got)
		}
	}
	check("state", s.m.State().String())
	check("actions", scnList(s.actions))
	check("transitions", scnList(s.trans))
	check("deadline", scnOffset(s.m.NextDeadline()))
	check("prio", strconv.Itoa(int(s.m.Priority())))
	check("mai", s.m.MasterAdverInterval().String())
	addr, _ := s.m.Master()
	check("master", addr.String())
	s.actions, s.trans = nil, nil
	if !ok {
		return false
	}
	return s.noExtra("expect", kv)
}
