package drbd

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrParse: a /proc/drbd or events line is not DRBD 8.4's format.
var ErrParse = errors.New("drbd: parse")

// ErrNoMinor: /proc/drbd does not list the minor (not configured: the
// kernel lists only configured minors, or prints cs:Unconfigured).
var ErrNoMinor = errors.New("drbd: minor not listed")

// Role is a DRBD role (ro:).
type Role string

// Roles of DRBD 8.4.
const (
	Primary     Role = "Primary"
	Secondary   Role = "Secondary"
	RoleUnknown Role = "Unknown"
)

// DiskState is a DRBD disk state (ds:).
type DiskState string

// Disk states of DRBD 8.4, worst to best as DRBD orders them.
const (
	Diskless     DiskState = "Diskless"
	Attaching    DiskState = "Attaching"
	Failed       DiskState = "Failed"
	Negotiating  DiskState = "Negotiating"
	Inconsistent DiskState = "Inconsistent"
	Outdated     DiskState = "Outdated"
	DUnknown     DiskState = "DUnknown"
	Consistent   DiskState = "Consistent"
	UpToDate     DiskState = "UpToDate"
)

// ConnState is a DRBD 8.4 connection state (cs:).
type ConnState string

// Connection states of DRBD 8.4 (drbd_strings.c), and Unconfigured (a
// minor /proc/drbd lists without a configuration).
const (
	Unconfigured   ConnState = "Unconfigured"
	StandAlone     ConnState = "StandAlone"
	Disconnecting  ConnState = "Disconnecting"
	Unconnected    ConnState = "Unconnected"
	Timeout        ConnState = "Timeout"
	BrokenPipe     ConnState = "BrokenPipe"
	NetworkFailure ConnState = "NetworkFailure"
	ProtocolError  ConnState = "ProtocolError"
	TearDown       ConnState = "TearDown"
	WFConnection   ConnState = "WFConnection"
	WFReportParams ConnState = "WFReportParams"
	Connected      ConnState = "Connected"
	StartingSyncS  ConnState = "StartingSyncS"
	StartingSyncT  ConnState = "StartingSyncT"
	WFBitMapS      ConnState = "WFBitMapS"
	WFBitMapT      ConnState = "WFBitMapT"
	WFSyncUUID     ConnState = "WFSyncUUID"
	SyncSource     ConnState = "SyncSource"
	SyncTarget     ConnState = "SyncTarget"
	VerifyS        ConnState = "VerifyS"
	VerifyT        ConnState = "VerifyT"
	PausedSyncS    ConnState = "PausedSyncS"
	PausedSyncT    ConnState = "PausedSyncT"
	Ahead          ConnState = "Ahead"
	Behind         ConnState = "Behind"
)

var (
	roles      = setOf(Primary, Secondary, RoleUnknown)
	diskStates = setOf(Diskless, Attaching, Failed, Negotiating, Inconsistent, Outdated, DUnknown, Consistent, UpToDate)
	connStates = setOf(StandAlone, Disconnecting, Unconnected, Timeout, BrokenPipe, NetworkFailure,
		ProtocolError, TearDown, WFConnection, WFReportParams, Connected, StartingSyncS, StartingSyncT,
		WFBitMapS, WFBitMapT, WFSyncUUID, SyncSource, SyncTarget, VerifyS, VerifyT, PausedSyncS,
		PausedSyncT, Ahead, Behind)
)

func setOf[T ~string](vs ...T) map[T]bool {
	m := make(map[T]bool, len(vs))
	for _, v := range vs {
		m[v] = true
	}
	return m
}

// State is one minor's state as DRBD 8.4 reports it.
type State struct {
	Minor          int
	Conn           ConnState
	Role, PeerRole Role
	Disk, PeerDisk DiskState
	Protocol       byte // 'A', 'B', 'C'; 0 without a network configuration
	Suspended      bool // I/O suspended (the "s" flag: fencing, no data, user)
	OutOfSyncKiB   int64
	// Resyncing: a progress line was seen; SyncPercent is its figure.
	Resyncing   bool
	SyncPercent float64
	// Connected: Conn is Connected or a resync/verify state (the peer is
	// there and replicating).
	Connected bool
}

// Configured reports whether the minor has a configuration.
func (s State) Configured() bool { return s.Conn != "" && s.Conn != Unconfigured }

// String is /proc/drbd's state line without the minor.
func (s State) String() string {
	if !s.Configured() {
		return fmt.Sprintf("minor %d cs:%s", s.Minor, Unconfigured)
	}
	return fmt.Sprintf("minor %d cs:%s ro:%s/%s ds:%s/%s", s.Minor, s.Conn, s.Role, s.PeerRole, s.Disk, s.PeerDisk)
}

// connectedStates are the states in which the peer is there (replication
// or resync running).
var connectedStates = setOf(Connected, StartingSyncS, StartingSyncT, WFBitMapS, WFBitMapT, WFSyncUUID,
	SyncSource, SyncTarget, VerifyS, VerifyT, PausedSyncS, PausedSyncT, Ahead, Behind)

// Proc is /proc/drbd parsed: the module's version and its minors.
type Proc struct {
	Version string // "8.4.11"
	API     string // "1"
	Minors  map[int]State
}

// maxProcBytes bounds what ParseProc reads: far above any real
// /proc/drbd (a few hundred bytes per minor), small enough to keep a
// malformed input cheap.
const maxProcBytes = 1 << 20

// ParseProc parses DRBD 8.4's /proc/drbd:
//
//	version: 8.4.11 (api:1/proto:86-101)
//	srcversion: 211FB288A383ED945B83420
//	 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----
//	    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0
//		[=>..................] sync'ed: 10.3% (60/64)M
//	 1: cs:Unconfigured
//
// Indented lines belong to the minor above them; those it does not know
// (finish:, resync:, act_log:) are skipped. A DRBD 9 /proc/drbd (no minor
// lines, version 9.x) is refused: this package speaks 8.4.
func ParseProc(b []byte) (Proc, error) {
	if len(b) > maxProcBytes {
		return Proc{}, fmt.Errorf("%w: /proc/drbd: %d bytes (more than %d)", ErrParse, len(b), maxProcBytes)
	}
	p := Proc{Minors: map[int]State{}}
	cur := -1
	for n, line := range strings.Split(string(b), "\n") {
		n++
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			continue
		case strings.HasPrefix(line, "version: "):
			v, api, err := parseVersion(line)
			if err != nil {
				return Proc{}, fmt.Errorf("%w: /proc/drbd line %d: %v", ErrParse, n, err)
			}
			p.Version, p.API = v, api
			cur = -1
		case strings.HasPrefix(line, "srcversion:"), strings.HasPrefix(line, "GIT-hash:"), strings.HasPrefix(line, "build by"):
			cur = -1
		case isMinorLine(trimmed):
			s, err := parseMinorLine(trimmed)
			if err != nil {
				return Proc{}, fmt.Errorf("%w: /proc/drbd line %d: %v", ErrParse, n, err)
			}
			if _, dup := p.Minors[s.Minor]; dup {
				return Proc{}, fmt.Errorf("%w: /proc/drbd line %d: minor %d listed twice", ErrParse, n, s.Minor)
			}
			p.Minors[s.Minor] = s
			cur = s.Minor
		case line[0] == ' ' || line[0] == '\t':
			if cur < 0 {
				return Proc{}, fmt.Errorf("%w: /proc/drbd line %d: %q belongs to no minor", ErrParse, n, trimmed)
			}
			s := p.Minors[cur]
			if err := parseDetail(&s, trimmed); err != nil {
				return Proc{}, fmt.Errorf("%w: /proc/drbd line %d: %v", ErrParse, n, err)
			}
			p.Minors[cur] = s
		default:
			return Proc{}, fmt.Errorf("%w: /proc/drbd line %d: unexpected %q", ErrParse, n, clip(trimmed))
		}
	}
	if p.Version == "" {
		return Proc{}, fmt.Errorf("%w: /proc/drbd: no version line", ErrParse)
	}
	if !strings.HasPrefix(p.Version, "8.4.") {
		return Proc{}, fmt.Errorf("%w: /proc/drbd: DRBD %s, want 8.4.x", ErrParse, p.Version)
	}
	return p, nil
}

// Minor returns the state of minor m: ErrNoMinor when it is not listed or
// listed as cs:Unconfigured (the State is returned then too).
func (p Proc) Minor(m int) (State, error) {
	s, ok := p.Minors[m]
	if !ok {
		return State{Minor: m, Conn: Unconfigured}, fmt.Errorf("%w: minor %d is not in /proc/drbd (drbdadm up?)", ErrNoMinor, m)
	}
	if !s.Configured() {
		return s, fmt.Errorf("%w: minor %d is cs:Unconfigured (drbdadm up?)", ErrNoMinor, m)
	}
	return s, nil
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// parseVersion parses "version: 8.4.11 (api:1/proto:86-101)".
func parseVersion(line string) (string, string, error) {
	f := strings.Fields(strings.TrimPrefix(line, "version: "))
	if len(f) == 0 || !isDotted(f[0]) {
		return "", "", fmt.Errorf("version line %q", clip(line))
	}
	api := ""
	if len(f) > 1 {
		inner := strings.Trim(f[1], "()")
		for part := range strings.SplitSeq(inner, "/") {
			if v, ok := strings.CutPrefix(part, "api:"); ok {
				api = v
			}
		}
	}
	return f[0], api, nil
}

// isDotted: "8.4.11" and the like (a digit first, a dot somewhere).
func isDotted(s string) bool {
	return s != "" && s[0] >= '0' && s[0] <= '9' && strings.Contains(s, ".")
}

// isMinorLine: "N: cs:..." (the caller trimmed the leading spaces).
func isMinorLine(s string) bool {
	i := strings.IndexByte(s, ':')
	if i <= 0 || i > 7 {
		return false
	}
	for _, c := range s[:i] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return strings.HasPrefix(s[i+1:], " cs:")
}

// parseMinorLine parses
// "0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----"
// and "1: cs:Unconfigured".
func parseMinorLine(s string) (State, error) {
	head, rest, _ := strings.Cut(s, ":")
	minor, err := strconv.Atoi(head)
	if err != nil || minor < 0 || minor > 1<<20 {
		return State{}, fmt.Errorf("minor %q", head)
	}
	f := strings.Fields(rest)
	st := State{Minor: minor}
	cs, ok := strings.CutPrefix(f[0], "cs:")
	if !ok {
		return State{}, fmt.Errorf("minor %d: want cs: first, have %q", minor, clip(f[0]))
	}
	if ConnState(cs) == Unconfigured {
		if len(f) != 1 {
			return State{}, fmt.Errorf("minor %d: cs:Unconfigured followed by %q", minor, clip(strings.Join(f[1:], " ")))
		}
		st.Conn = Unconfigured
		return st, nil
	}
	if !connStates[ConnState(cs)] {
		return State{}, fmt.Errorf("minor %d: unknown connection state %q", minor, clip(cs))
	}
	st.Conn = ConnState(cs)
	st.Connected = connectedStates[st.Conn]
	if len(f) < 4 || len(f) > 5 {
		return State{}, fmt.Errorf("minor %d: want cs: ro: ds: [protocol] flags, have %d fields", minor, len(f))
	}
	if err := parseStatePairs(&st, f[1], f[2]); err != nil {
		return State{}, fmt.Errorf("minor %d: %v", minor, err)
	}
	flags := f[len(f)-1]
	if len(f) == 5 {
		p := f[3]
		if len(p) != 1 || p[0] < 'A' || p[0] > 'C' {
			return State{}, fmt.Errorf("minor %d: protocol %q", minor, clip(p))
		}
		st.Protocol = p[0]
	}
	if len(flags) < 4 || (flags[0] != 'r' && flags[0] != 's') {
		return State{}, fmt.Errorf("minor %d: flags %q", minor, clip(flags))
	}
	st.Suspended = flags[0] == 's'
	return st, nil
}

// parseStatePairs parses "ro:A/B" and "ds:C/D" into st.
func parseStatePairs(st *State, ro, ds string) error {
	r, ok := strings.CutPrefix(ro, "ro:")
	if !ok {
		return fmt.Errorf("want ro:, have %q", clip(ro))
	}
	me, peer, ok := strings.Cut(r, "/")
	if !ok || !roles[Role(me)] || !roles[Role(peer)] {
		return fmt.Errorf("roles %q", clip(r))
	}
	st.Role, st.PeerRole = Role(me), Role(peer)
	d, ok := strings.CutPrefix(ds, "ds:")
	if !ok {
		return fmt.Errorf("want ds:, have %q", clip(ds))
	}
	me, peer, ok = strings.Cut(d, "/")
	if !ok || !diskStates[DiskState(me)] || !diskStates[DiskState(peer)] {
		return fmt.Errorf("disk states %q", clip(d))
	}
	st.Disk, st.PeerDisk = DiskState(me), DiskState(peer)
	return nil
}

// parseDetail reads what matters in a minor's indented lines: oos: from
// the statistics line and the resync progress.
func parseDetail(st *State, s string) error {
	switch {
	case strings.HasPrefix(s, "ns:"):
		for _, kv := range strings.Fields(s) {
			if v, ok := strings.CutPrefix(kv, "oos:"); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil || n < 0 {
					return fmt.Errorf("oos %q", clip(v))
				}
				st.OutOfSyncKiB = n
			}
		}
	case strings.HasPrefix(s, "["):
		_, after, ok := strings.Cut(s, "sync'ed:")
		if !ok {
			return nil // a progress bar without figures: nothing to read
		}
		f := strings.Fields(after)
		if len(f) == 0 {
			return fmt.Errorf("sync'ed: without a figure")
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil || pct < 0 || pct > 100 || !strings.HasSuffix(f[0], "%") {
			return fmt.Errorf("sync'ed %q", clip(f[0]))
		}
		st.SyncPercent, st.Resyncing = pct, true
	}
	return nil
}
