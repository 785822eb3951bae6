package node

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/quorum"
)

// Scenario scripts (testdata/scenarios/*.txt) drive a Machine:
//
//	config probe=true step=500ms retry=200ms handover=60ms budget=300ms
//	at 0 session-up deadline=2s     # an event at a time offset
//	=> transition fault->backup; vrrp-fault off
//	role backup
//
// A "=>" line asserts the actions of the previous event, formatted by
// fmtAction and joined with "; " ("=> none" for no action). "may T
// advert=B announce=B" asserts what the gate (Machine.MayAdvertise,
// MayAnnounce with the config's margin) says at offset T, with the
// machine as the last event left it: a node frozen since then resumes at T.
func TestScenarios(t *testing.T) {
	files, _ := filepath.Glob("testdata/scenarios/*.txt")
	if len(files) < 8 {
		t.Fatalf("found %d scenario scripts, want the full set", len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScenario(t, f) })
	}
}

func runScenario(t *testing.T, path string) {
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	t0 := time.Unix(1_000_000, 0)
	cfg := Config{Group: "VI_1", StepTimeout: 500 * time.Millisecond, RetryInterval: 200 * time.Millisecond,
		HandoverDelay: 60 * time.Millisecond, DemoteBudget: 300 * time.Millisecond}
	var m Machine
	var margin time.Duration
	started := false
	var last []Action
	var trace []string
	sc := bufio.NewScanner(fh)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "#"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		where := fmt.Sprintf("%s:%d", path, n)
		f := strings.Fields(line)
		switch f[0] {
		case "config":
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "probe":
					cfg.Probe = v == "true"
				case "step":
					cfg.StepTimeout = dur(t, where, v)
				case "retry":
					cfg.RetryInterval = dur(t, where, v)
				case "handover":
					cfg.HandoverDelay = dur(t, where, v)
				case "budget":
					cfg.DemoteBudget = dur(t, where, v)
				case "margin":
					margin = dur(t, where, v)
				case "flap-window":
					cfg.FlapWindow = dur(t, where, v)
				case "flap-limit":
					cfg.FlapLimit, _ = strconv.Atoi(v)
				case "flap-backoff":
					cfg.FlapBackoff = dur(t, where, v)
				case "flap-max":
					cfg.FlapBackoffMax = dur(t, where, v)
				case "restore":
					cfg.RestoreWindow = dur(t, where, v)
				default:
					t.Fatalf("%s: unknown config key %q", where, k)
				}
			}
		case "at":
			if !started {
				if err := cfg.Validate(); err != nil {
					t.Fatalf("%s: %v", where, err)
				}
				m, started = New(cfg), true
			}
			now := t0.Add(dur(t, where, f[1]))
			ev := parseEvent(t, where, f[2], args(f[3:]), t0)
			m, last = m.Step(ev, now)
			s := fmtActions(last)
			trace = append(trace, fmt.Sprintf("%s %s => %s [%s]", f[1], f[2], s, m.Role()))
		case "=>":
			want := strings.TrimSpace(strings.TrimPrefix(line, "=>"))
			if got := fmtActions(last); got != want {
				t.Fatalf("%s: actions\n got: %s\nwant: %s\ntrace:\n  %s", where, got, want, strings.Join(trace, "\n  "))
			}
		case "role":
			if got := m.Role().String(); got != f[1] {
				t.Fatalf("%s: role %s, want %s\ntrace:\n  %s", where, got, f[1], strings.Join(trace, "\n  "))
			}
		case "may":
			at := t0.Add(dur(t, where, f[1]))
			a := args(f[2:])
			got := fmt.Sprintf("advert=%v announce=%v", m.MayAdvertise(at), m.MayAnnounce(at, margin))
			want := fmt.Sprintf("advert=%s announce=%s", a["advert"], a["announce"])
			if got != want {
				t.Fatalf("%s: at %s the gate says %s, want %s\ntrace:\n  %s", where, f[1], got, want, strings.Join(trace, "\n  "))
			}
		case "next":
			var want time.Time
			if f[1] != "none" {
				want = t0.Add(dur(t, where, f[1]))
			}
			if got := m.NextDeadline(); !got.Equal(want) {
				t.Fatalf("%s: next deadline %v, want %v", where, got.Sub(t0), want.Sub(t0))
			}
		default:
			t.Fatalf("%s: unknown command %q", where, f[0])
		}
	}
}

func dur(t *testing.T, where, s string) time.Duration {
	if s == "0" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s: bad duration %q", where, s)
	}
	return d
}

func args(f []string) map[string]string {
	m := map[string]string{}
	for _, kv := range f {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func parseEvent(t *testing.T, where, name string, a map[string]string, t0 time.Time) Event {
	epoch := func() uint64 {
		e, _ := strconv.ParseUint(a["epoch"], 10, 64)
		return e
	}
	var err error
	if a["err"] != "" {
		err = errors.New(a["err"])
	}
	deadline := func() time.Time { return t0.Add(dur(t, where, a["deadline"])) }
	switch name {
	case "session-up":
		return SessionUp{Deadline: deadline()}
	case "renewed":
		return Renewed{Deadline: deadline()}
	case "session-lost":
		return SessionLost{Err: err}
	case "vrrp-master":
		return VRRPMaster{HigherMember: a["higher-member"] == "true"}
	case "vrrp-faulted":
		return VRRPFaulted{On: a["on"] == "true"}
	case "vrrp-backup":
		return VRRPNotMaster{Reason: a["reason"]}
	case "acquired":
		return Acquired{Grant: quorum.Grant{Group: "VI_1", Epoch: epoch()}, PrevHolder: a["prev"]}
	case "acquire-failed":
		return AcquireFailed{Holder: a["holder"], Err: err}
	case "key-deleted":
		return KeyDeleted{Epoch: epoch(), MasterHeard: a["master-heard"] == "true", HigherMember: a["higher-member"] == "true"}
	case "key-put":
		return KeyPut{Epoch: epoch(), Holder: a["holder"]}
	case "hooks-done":
		return HooksDone{Epoch: epoch(), Err: err, Ran: a["ran"] == "true"}
	case "probe-done":
		return ProbeDone{Epoch: epoch(), Conflict: a["conflict"], Err: err}
	case "promoted":
		return Promoted{Epoch: epoch(), Err: err}
	case "vip-up":
		return VIPUp{Epoch: epoch(), Err: err}
	case "demoted":
		return Demoted{Err: err}
	case "fence-failed":
		return FenceFailed{Err: err}
	case "shutdown":
		return Shutdown{}
	case "tick":
		return Tick{}
	}
	t.Fatalf("%s: unknown event %q", where, name)
	return nil
}

func fmtActions(as []Action) string {
	if len(as) == 0 {
		return "none"
	}
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = fmtAction(a)
	}
	return strings.Join(s, "; ")
}

func fmtAction(a Action) string {
	switch a := a.(type) {
	case Transition:
		return fmt.Sprintf("transition %s->%s", a.From, a.To)
	case Acquire:
		return "acquire"
	case RunHooks:
		return fmt.Sprintf("hooks %d prev=%s", a.Grant.Epoch, a.PrevHolder)
	case Probe:
		return fmt.Sprintf("probe %d", a.Epoch)
	case Promote:
		return fmt.Sprintf("promote %d", a.Epoch)
	case AddVIP:
		return fmt.Sprintf("add-vip %d", a.Epoch)
	case Announce:
		return fmt.Sprintf("announce %d", a.Epoch)
	case ClaimVRRP:
		return "claim-vrrp"
	case RefreshFence:
		return fmt.Sprintf("refresh %d", a.Epoch)
	case Demote:
		return fmt.Sprintf("demote %d release=%v", a.Grant.Epoch, a.Release)
	case Release:
		return fmt.Sprintf("release %d", a.Grant.Epoch)
	case VRRPFault:
		return fmt.Sprintf("vrrp-fault %v", map[bool]string{true: "on", false: "off"}[a.On])
	case Alarm:
		return "alarm " + a.Kind
	case Note:
		return "note"
	}
	return fmt.Sprintf("%T", a)
}
