package drbd

import (
	"fmt"
	"strconv"
	"strings"
)

// EventKind is the tag of a `drbdsetup events` line (DRBD 8.4).
type EventKind string

// Event kinds of DRBD 8.4's `drbdsetup events` (drbdsetup-84).
const (
	EventState       EventKind = "ST"      // the current state (initial dump or after a change)
	EventStatePrev   EventKind = "ST-prev" // a change: the state before
	EventStateNew    EventKind = "ST-new"  // a change: the state after
	EventHelper      EventKind = "UH"      // a user-mode helper is called (fence-peer, split-brain, ...)
	EventHelperDone  EventKind = "UH-post" // it returned (HelperExit)
	EventSync        EventKind = "SP"      // resync progress (SyncPercent)
	EventNoVolumes   EventKind = "R"       // a resource without volumes
	EventInfo        EventKind = "#"       // a reply without configuration context (Text)
	EventOtherReason EventKind = "??"      // a broadcast of a reason drbdsetup does not know (Text)
)

// Event is one line of `drbdsetup events` (8.4):
//
//	7 ST 0,r0[0] { cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate r--- }
//	8 UH 0,r0[0] fence-peer
//	9 UH-post 0,r0[0] fence-peer 0x0004
//	10 SP 0,r0[0] 42.5
//	11 R - r1
type Event struct {
	Seq      uint32
	Kind     EventKind
	Minor    int // -1 for R and the text kinds
	Resource string
	Volume   int
	// State: ST, ST-prev, ST-new (Minor set; no protocol or statistics).
	State State
	// Helper and HelperExit: UH and UH-post.
	Helper     string
	HelperExit int
	// SyncPercent: SP.
	SyncPercent float64
	// Text: # and ??.
	Text string
}

// maxEventLine bounds a line: drbdsetup prints well under 200 bytes.
const maxEventLine = 4096

// ParseEvent parses one line of `drbdsetup events` (DRBD 8.4; the line's
// newline removed). Lines it does not understand are errors wrapping
// ErrParse: the caller decides whether to skip them.
func ParseEvent(line string) (Event, error) {
	if len(line) > maxEventLine {
		return Event{}, fmt.Errorf("%w: events line of %d bytes", ErrParse, len(line))
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return Event{}, fmt.Errorf("%w: events line %q", ErrParse, clip(line))
	}
	seq, err := strconv.ParseUint(f[0], 10, 32)
	if err != nil {
		return Event{}, fmt.Errorf("%w: events line %q: sequence %q", ErrParse, clip(line), clip(f[0]))
	}
	ev := Event{Seq: uint32(seq), Kind: EventKind(f[1]), Minor: -1}
	bad := func(what string) (Event, error) {
		return Event{}, fmt.Errorf("%w: events line %q: %s", ErrParse, clip(line), what)
	}
	switch ev.Kind {
	case EventInfo, EventOtherReason:
		_, ev.Text, _ = strings.Cut(strings.TrimSpace(line), " "+f[1])
		ev.Text = strings.TrimSpace(ev.Text)
		return ev, nil
	case EventNoVolumes:
		if len(f) != 4 || f[2] != "-" {
			return bad("want SEQ R - RESOURCE")
		}
		ev.Resource = f[3]
		return ev, nil
	case EventState, EventStatePrev, EventStateNew, EventHelper, EventHelperDone, EventSync:
	default:
		return bad("unknown kind " + strconv.Quote(clip(f[1])))
	}
	if len(f) < 3 {
		return bad("no MINOR,RESOURCE[VOLUME]")
	}
	if ev.Minor, ev.Resource, ev.Volume, err = parseMNV(f[2]); err != nil {
		return bad(err.Error())
	}
	args := f[3:]
	switch ev.Kind {
	case EventState, EventStatePrev, EventStateNew:
		// { cs:X ro:A/B ds:C/D flags }
		if len(args) != 6 || args[0] != "{" || args[5] != "}" {
			return bad("want { cs: ro: ds: flags }")
		}
		cs, ok := strings.CutPrefix(args[1], "cs:")
		if !ok || !connStates[ConnState(cs)] {
			return bad("connection state " + strconv.Quote(clip(args[1])))
		}
		st := State{Minor: ev.Minor, Conn: ConnState(cs)}
		st.Connected = connectedStates[st.Conn]
		if err := parseStatePairs(&st, args[2], args[3]); err != nil {
			return bad(err.Error())
		}
		if fl := args[4]; len(fl) != 4 || (fl[0] != 'r' && fl[0] != 's') {
			return bad("flags " + strconv.Quote(clip(fl)))
		}
		st.Suspended = args[4][0] == 's'
		ev.State = st
	case EventHelper:
		if len(args) != 1 {
			return bad("want UH MINOR,RESOURCE[VOLUME] HELPER")
		}
		ev.Helper = args[0]
	case EventHelperDone:
		if len(args) != 2 {
			return bad("want UH-post MINOR,RESOURCE[VOLUME] HELPER 0xCODE")
		}
		hex, ok := strings.CutPrefix(args[1], "0x")
		code, err := strconv.ParseUint(hex, 16, 32)
		if !ok || err != nil {
			return bad("exit code " + strconv.Quote(clip(args[1])))
		}
		ev.Helper, ev.HelperExit = args[0], int(code)
	case EventSync:
		if len(args) != 1 {
			return bad("want SP MINOR,RESOURCE[VOLUME] PERCENT")
		}
		pct, err := strconv.ParseFloat(args[0], 64)
		if err != nil || pct < 0 || pct > 100 {
			return bad("percent " + strconv.Quote(clip(args[0])))
		}
		ev.SyncPercent = pct
	}
	return ev, nil
}

// parseMNV parses drbdsetup's "MINOR,RESOURCE[VOLUME]" ("0,r0[0]").
func parseMNV(s string) (int, string, int, error) {
	m, rest, ok := strings.Cut(s, ",")
	open := strings.LastIndexByte(rest, '[')
	if !ok || open <= 0 || !strings.HasSuffix(rest, "]") {
		return 0, "", 0, fmt.Errorf("want MINOR,RESOURCE[VOLUME], have %q", clip(s))
	}
	minor, err1 := strconv.Atoi(m)
	vol, err2 := strconv.Atoi(rest[open+1 : len(rest)-1])
	if err1 != nil || err2 != nil || minor < 0 || vol < 0 {
		return 0, "", 0, fmt.Errorf("want MINOR,RESOURCE[VOLUME], have %q", clip(s))
	}
	return minor, rest[:open], vol, nil
}
