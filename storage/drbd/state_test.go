package drbd

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Real /proc/drbd texts of DRBD 8.4 (the 6.1 kernel's in-tree 8.4.11 in
// the VM lab, and an out-of-tree 8.4.3 as in seed 002).
const (
	procConnected = `version: 8.4.11 (api:1/proto:86-101)
srcversion: 211FB288A383ED945B83420 
 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----
    ns:1048 nr:0 dw:1048 dr:2125 al:1 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0
`
	procSyncing = `version: 8.4.11 (api:1/proto:86-101)
srcversion: 211FB288A383ED945B83420 
 0: cs:SyncSource ro:Primary/Secondary ds:UpToDate/Inconsistent C r-----
    ns:6712 nr:0 dw:0 dr:7640 al:8 bm:0 lo:0 pe:2 ua:0 ap:0 ep:1 wo:f oos:58824
	[=>..................] sync'ed: 10.4% (58824/65532)K
	finish: 0:00:01 speed: 6,712 (6,712) K/sec
`
	procStandAlone = `version: 8.4.3 (api:1/proto:86-101)
GIT-hash: 89a294209144b68adb3ee85a73221f964d3ee515 build by gardner@, 2013-05-27 04:30:21
 0: cs:StandAlone ro:Primary/Unknown ds:UpToDate/DUnknown   r-----
    ns:0 nr:0 dw:4 dr:693 al:1 bm:1 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:4
 1: cs:Unconfigured
 2: cs:WFConnection ro:Secondary/Unknown ds:Consistent/DUnknown C s---n-
    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0
	resync: used:0/61 hits:0 misses:0 starving:0 locked:0 changed:0
	act_log: used:0/1237 hits:0 misses:0 starving:0 locked:0 changed:0
`
	procNoMinors = "version: 8.4.11 (api:1/proto:86-101)\nsrcversion: 211FB288A383ED945B83420 \n"
)

func TestParseProc(t *testing.T) {
	p, err := ParseProc([]byte(procConnected))
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Minor(0)
	want := State{Minor: 0, Conn: Connected, Role: Primary, PeerRole: Secondary, Disk: UpToDate, PeerDisk: UpToDate,
		Protocol: 'C', Connected: true}
	if err != nil || s != want || p.Version != "8.4.11" || p.API != "1" {
		t.Fatalf("state %+v err %v version %q api %q\nwant %+v", s, err, p.Version, p.API, want)
	}

	p, err = ParseProc([]byte(procSyncing))
	if err != nil {
		t.Fatal(err)
	}
	s, _ = p.Minor(0)
	if s.Conn != SyncSource || !s.Connected || !s.Resyncing || s.SyncPercent != 10.4 || s.OutOfSyncKiB != 58824 || s.PeerDisk != Inconsistent {
		t.Fatalf("syncing: %+v", s)
	}

	p, err = ParseProc([]byte(procStandAlone))
	if err != nil {
		t.Fatal(err)
	}
	s, _ = p.Minor(0)
	if s.Conn != StandAlone || s.Connected || s.Protocol != 0 || s.Role != Primary || s.PeerRole != RoleUnknown ||
		s.PeerDisk != DUnknown || s.OutOfSyncKiB != 4 || p.Version != "8.4.3" {
		t.Fatalf("standalone: %+v", s)
	}
	if s, err := p.Minor(1); !errors.Is(err, ErrNoMinor) || s.Configured() {
		t.Fatalf("unconfigured minor: %+v %v", s, err)
	}
	if s, err := p.Minor(2); err != nil || !s.Suspended || s.Disk != Consistent {
		t.Fatalf("suspended minor: %+v %v", s, err)
	}
	if _, err := p.Minor(7); !errors.Is(err, ErrNoMinor) {
		t.Fatalf("absent minor: %v", err)
	}

	p, err = ParseProc([]byte(procNoMinors))
	if err != nil || len(p.Minors) != 0 {
		t.Fatalf("no minors: %+v %v", p, err)
	}
}

func TestParseProcRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"empty":          "",
		"drbd 9":         "version: 9.2.4 (api:2/proto:86-122)\nGIT-hash: x\nTransports (api:18): tcp (9.2.4)\n",
		"unknown disk":   "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Connected ro:Primary/Secondary ds:Fine/UpToDate C r-----\n",
		"unknown role":   "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Connected ro:Boss/Secondary ds:UpToDate/UpToDate C r-----\n",
		"unknown cs":     "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Happy ro:Primary/Secondary ds:UpToDate/UpToDate C r-----\n",
		"short":          "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Connected ro:Primary/Secondary\n",
		"duplicate":      "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Unconfigured\n 0: cs:Unconfigured\n",
		"orphan detail":  "version: 8.4.11 (api:1/proto:86-101)\n    ns:0 nr:0 oos:0\n",
		"bad oos":        "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----\n    ns:0 oos:-3\n",
		"bad percent":    "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:SyncTarget ro:Secondary/Primary ds:Inconsistent/UpToDate C r-----\n\t[=>...] sync'ed: 140%\n",
		"bad protocol":   "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate Z r-----\n",
		"garbage":        "version: 8.4.11 (api:1/proto:86-101)\nhello\n",
		"no version":     " 0: cs:Unconfigured\n",
		"bad version":    "version: eight\n",
		"unconf + stuff": "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Unconfigured ro:Primary/Secondary\n",
	} {
		if p, err := ParseProc([]byte(in)); !errors.Is(err, ErrParse) {
			t.Errorf("%s: %+v, err %v (want ErrParse)", name, p, err)
		}
	}
}

// A large malformed /proc/drbd parses in linear time (a quadratic parser
// would take minutes on this input).
func TestParseProcLinear(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----\n")
	for b.Len() < maxProcBytes-100 {
		b.WriteString("\tact_log: used:0/1237 hits:0 misses:0 starving:0 locked:0 changed:0\n")
	}
	start := time.Now()
	if _, err := ParseProc([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("1 MiB took %v", d)
	}
	if _, err := ParseProc(make([]byte, maxProcBytes+1)); !errors.Is(err, ErrParse) {
		t.Fatalf("oversized input: %v", err)
	}
}

func TestParseEvent(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Event
	}{
		{"7 ST 0,r0[0] { cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate r--- }",
			Event{Seq: 7, Kind: EventState, Minor: 0, Resource: "r0", State: State{Conn: Connected, Role: Primary, PeerRole: Secondary,
				Disk: UpToDate, PeerDisk: UpToDate, Connected: true}}},
		{"12 ST-new 3,data[1] { cs:WFConnection ro:Secondary/Unknown ds:Outdated/DUnknown s--u }",
			Event{Seq: 12, Kind: EventStateNew, Minor: 3, Resource: "data", Volume: 1, State: State{Minor: 3, Conn: WFConnection,
				Role: Secondary, PeerRole: RoleUnknown, Disk: Outdated, PeerDisk: DUnknown, Suspended: true}}},
		{"8 UH 0,r0[0] fence-peer", Event{Seq: 8, Kind: EventHelper, Minor: 0, Resource: "r0", Helper: "fence-peer"}},
		{"9 UH-post 0,r0[0] fence-peer 0x0004", Event{Seq: 9, Kind: EventHelperDone, Minor: 0, Resource: "r0", Helper: "fence-peer", HelperExit: 4}},
		{"10 SP 0,r0[0] 42.5", Event{Seq: 10, Kind: EventSync, Minor: 0, Resource: "r0", SyncPercent: 42.5}},
		{"11 R - r1", Event{Seq: 11, Kind: EventNoVolumes, Minor: -1, Resource: "r1"}},
		{"4 # unknown minor", Event{Seq: 4, Kind: EventInfo, Minor: -1, Text: "unknown minor"}},
		{"5 ?? 0,r0[0] <other message, state info broadcast reason:9>", Event{Seq: 5, Kind: EventOtherReason, Minor: -1,
			Text: "0,r0[0] <other message, state info broadcast reason:9>"}},
	} {
		got, err := ParseEvent(tc.line)
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.line, got, tc.want)
		}
	}
	for _, bad := range []string{
		"", "7", "x ST 0,r0[0] { }", "7 ST 0,r0[0] { cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate r---",
		"7 ST 0r0[0] { cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate r--- }",
		"7 ST 0,r0[x] { cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate r--- }",
		"7 ST 0,r0[0] { cs:Nope ro:Primary/Secondary ds:UpToDate/UpToDate r--- }",
		"7 ST 0,r0[0] { cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate q--- }",
		"9 UH-post 0,r0[0] fence-peer 4", "10 SP 0,r0[0] 101", "11 R r1", "12 XX 0,r0[0]",
		"99999999999 ST 0,r0[0] { cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate r--- }",
	} {
		if ev, err := ParseEvent(bad); !errors.Is(err, ErrParse) {
			t.Errorf("%q: %+v, err %v (want ErrParse)", bad, ev, err)
		}
	}
}

func FuzzParseProc(f *testing.F) {
	for _, s := range []string{procConnected, procSyncing, procStandAlone, procNoMinors,
		"version: 8.4.11\n 0: cs:Unconfigured\n", "version: 8.4.1 (api:1)\n 9: cs:Connected ro:Primary/Primary ds:UpToDate/UpToDate A s---\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseProc(b)
		if err != nil {
			if !errors.Is(err, ErrParse) {
				t.Fatalf("error not ErrParse: %v", err)
			}
			return
		}
		for m, s := range p.Minors {
			if s.Minor != m {
				t.Fatalf("minor %d stored under %d", s.Minor, m)
			}
			if s.Configured() && (!roles[s.Role] || !roles[s.PeerRole] || !diskStates[s.Disk] || !diskStates[s.PeerDisk]) {
				t.Fatalf("accepted an unknown state: %+v", s)
			}
		}
	})
}

// eventsReal is `drbdsetup events all` on DRBD 8.4.11 (the VM lab,
// drbd-utils 9.22 handing off to drbdsetup-84) across a
// --clear-bitmap new-current-uuid: the initial dump (its sequence number
// uninitialised), then the change.
const eventsReal = `1795782004 ST 0,r0[0] { cs:Connected ro:Secondary/Secondary ds:Inconsistent/Inconsistent r--- }
14 R - r0
15 R - r0
9 ST-prev 0,r0[0] { cs:Connected ro:Secondary/Secondary ds:Inconsistent/Inconsistent r--- }
9 ST-new 0,r0[0] { cs:Connected ro:Secondary/Secondary ds:UpToDate/UpToDate r--- }
9 ST 0,r0[0] { cs:Connected ro:Secondary/Secondary ds:UpToDate/UpToDate r--- }`

func TestParseEventReal(t *testing.T) {
	var kinds []string
	for _, line := range strings.Split(eventsReal, "\n") {
		ev, err := ParseEvent(line)
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, string(ev.Kind)+" "+string(ev.State.Disk))
	}
	if got := strings.Join(kinds, ","); got != "ST Inconsistent,R ,R ,ST-prev Inconsistent,ST-new UpToDate,ST UpToDate" {
		t.Fatal(got)
	}
}

func FuzzParseEvent(f *testing.F) {
	for _, line := range strings.Split(eventsReal, "\n") {
		f.Add(line)
	}
	for _, s := range []string{
		"7 ST 0,r0[0] { cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate r--- }",
		"12 ST-prev 3,da[ta[1] { cs:WFConnection ro:Secondary/Unknown ds:Outdated/DUnknown s--u }",
		"8 UH 0,r0[0] fence-peer", "9 UH-post 0,r0[0] fence-peer 0x0004", "10 SP 0,r0[0] 42.5", "11 R - r1", "4 # x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		ev, err := ParseEvent(line)
		if err != nil {
			if !errors.Is(err, ErrParse) {
				t.Fatalf("error not ErrParse: %v", err)
			}
			return
		}
		switch ev.Kind {
		case EventState, EventStatePrev, EventStateNew:
			if !connStates[ev.State.Conn] || !roles[ev.State.Role] || !diskStates[ev.State.PeerDisk] {
				t.Fatalf("accepted an unknown state: %+v", ev)
			}
		}
	})
}
