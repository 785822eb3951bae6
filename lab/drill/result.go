package drill

import (
	"fmt"
	"slices"
	"time"

	"github.com/leasehold/leasehold/lab/netlab"
)

// Result is one drill run: what was done, what the checkers saw, the
// verdict. Times are microseconds; timeline instants are relative to the
// start of the observation.
type Result struct {
	Scenario string    `json:"scenario"`
	Run      int       `json:"run,omitempty"`
	Target   string    `json:"target,omitempty"`
	Duration string    `json:"fault_duration,omitempty"`
	Fault    string    `json:"fault"`
	VIP      string    `json:"vip"`
	Nodes    []string  `json:"nodes"`
	Started  time.Time `json:"started"`

	Pass    bool     `json:"pass"`
	Verdict string   `json:"verdict"`
	Reasons []string `json:"reasons,omitempty"`
	Notes   []string `json:"notes,omitempty"`

	OldOwner   string `json:"old_owner"`
	NewOwner   string `json:"new_owner,omitempty"`
	FinalOwner string `json:"final_owner"`

	// DualARPRounds counts ARP probe rounds answered by two MACs: THE
	// split-brain invariant, must be 0.
	ARPRounds     int   `json:"arp_rounds"`
	DualARPRounds int   `json:"dual_arp_rounds"`
	DualARPUS     int64 `json:"dual_arp_us"` // rounds × probe interval
	// AddrBothUS is how long the VIP was configured on two nodes (netlink).
	// Not a split brain by itself: after kill -9 the dead node's address
	// lingers until its lifetime runs out while the nftables fence already
	// keeps it from answering ARP or accepting traffic.
	AddrBothUS int64 `json:"addr_configured_on_both_us"`
	// OutageUS is the client's total TCP outage from the fault to the
	// restore; RestoreOutageUS from the restore to the end (handback).
	OutageUS        int64 `json:"client_outage_us"`
	OutageMaxUS     int64 `json:"client_outage_max_us"`
	RestoreOutageUS int64 `json:"restore_outage_us"`
	ClientProbes    int   `json:"client_probes"`
	ClientFailures  int   `json:"client_failures"`
	// TimeToNewOwnerUS: from the fault to the first client answer from
	// the new owner; AddrNewOwnerUS: to the VIP added on it (netlink).
	TimeToNewOwnerUS int64 `json:"time_to_new_owner_us,omitempty"`
	AddrNewOwnerUS   int64 `json:"addr_new_owner_us,omitempty"`
	// OldOwnerLastARPUS: from the fault to the old owner's last ARP
	// answer during the fault (-1: never answered after the fault).
	OldOwnerLastARPUS int64 `json:"old_owner_last_arp_us"`
	// NonHolderGARPs counts, per node, gratuitous ARPs for the VIP sent in
	// a probe round during which the node never had the VIP: a node that
	// is not the owner announcing it. Must be 0.
	NonHolderGARPs map[string]int `json:"non_holder_garps,omitempty"`
	// Data is the replicated storage's check (targets with a DataGuard).
	Data *DataReport `json:"data,omitempty"`
	// NonHolderGARPAtUS: when (since the start of the observation) those
	// GARPs were heard, per round.
	NonHolderGARPAtUS []int64 `json:"non_holder_garp_at_us,omitempty"`
	// ServedAfterVIPUS: after the restore, from the VIP going up on the
	// node that holds it at the end to the first client answer from that
	// node (-1: none seen). A blackhole (clients still sending to another
	// MAC) shows here.
	ServedAfterVIPUS int64 `json:"served_after_vip_us"`
	// SteadyOutageUS is the client outage after the target reported
	// steady again while the VIP stayed where it was (an outage around a
	// move of the VIP, a handback, is a handover and counted in
	// RestoreOutageUS): a blackhole. Must stay within two probe intervals.
	SteadyOutageUS int64 `json:"steady_outage_us"`
	// WatchdogResetUS: from the fault to the old owner's machine
	// resetting (its watchdog); TakeoverUS: to the first status of
	// another node as owner. Kill9 and freeze on a target whose owners
	// arm a watchdog require WatchdogResetUS < TakeoverUS.
	WatchdogResetUS int64 `json:"watchdog_reset_us,omitempty"`
	TakeoverUS      int64 `json:"takeover_us,omitempty"`
	// VIPResolutionUS is how precisely the instants the VIP moved are
	// known: 0 from the netlink monitor; the ARP probe interval when a
	// target without one (VMs) takes them from the ARP answers.
	VIPResolutionUS int64 `json:"vip_resolution_us,omitempty"`
	// ProbeIntervalUS is the client prober's interval.
	ProbeIntervalUS int64 `json:"probe_interval_us"`

	EpochBefore map[string]uint64 `json:"epoch_before"`
	EpochAfter  map[string]uint64 `json:"epoch_after"`
	Transitions []LogLine         `json:"transitions,omitempty"`

	Timeline Timeline `json:"timeline"`
	// MySQL: the write checker's audit, on a lab up with --mysql.
	MySQL *MySQLWrites `json:"mysql,omitempty"`
}

// Span is [From, To) in microseconds since the start of the observation.
type Span struct {
	From int64  `json:"from"`
	To   int64  `json:"to"`
	Who  string `json:"who,omitempty"`
}

// Mark is an instant on the timeline.
type Mark struct {
	At    int64  `json:"at"`
	Node  string `json:"node"`
	Role  string `json:"role"`
	Epoch uint64 `json:"epoch"`
	Up    bool   `json:"up"`
}

// Timeline is what the HTML report draws.
type Timeline struct {
	EndUS     int64             `json:"end_us"`
	FaultUS   int64             `json:"fault_us"`
	RestoreUS int64             `json:"restore_us,omitempty"`
	VIP       map[string][]Span `json:"vip_configured"` // per node, netlink
	ARP       map[string][]Span `json:"answers_arp"`    // per node
	DualARP   []Span            `json:"dual_arp,omitempty"`
	Client    []Span            `json:"client"` // Who: answering node, "" = failure
	Status    []Mark            `json:"status"` // role/epoch changes
}

func rel(st, origin netlab.Stamp) int64 { return st.MonoUS - origin.MonoUS }

// measure fills the figures and the timeline from the session's data.
func (r *Result) measure(s *session, ph phases) {
	o := s.start
	r.Timeline = Timeline{EndUS: rel(s.end, o), FaultUS: rel(ph.fault, o), VIP: map[string][]Span{}, ARP: map[string][]Span{}}
	if ph.fault.IsZero() {
		r.Timeline.FaultUS = 0
	}
	restore := s.end
	if !ph.restore.IsZero() {
		restore = ph.restore
		r.Timeline.RestoreUS = rel(ph.restore, o)
	}
	fault := ph.fault
	if fault.IsZero() {
		fault = s.end
	}

	// netlink: per-node spans, overlap.
	open := map[string]int64{}
	for _, ev := range s.addrEvents() {
		at := rel(ev.At, o)
		if ev.Added {
			if _, ok := open[ev.Host]; !ok {
				open[ev.Host] = max(at, 0)
			}
			if r.AddrNewOwnerUS == 0 && ev.Host != ph.victim && !ev.At.Before(fault) && (ph.served == "" || ev.Host == ph.served) {
				r.AddrNewOwnerUS = ev.At.MonoUS - fault.MonoUS
			}
		} else if from, ok := open[ev.Host]; ok {
			r.Timeline.VIP[ev.Host] = append(r.Timeline.VIP[ev.Host], Span{From: from, To: at})
			delete(open, ev.Host)
		}
	}
	for h, from := range open {
		r.Timeline.VIP[h] = append(r.Timeline.VIP[h], Span{From: from, To: r.Timeline.EndUS})
	}
	if s.c.Addr != nil {
		for _, iv := range s.c.Addr.DualIntervals() {
			r.AddrBothUS += iv.DurUS
		}
	}

	// ARP: per-node spans of consecutive answered rounds.
	rounds := s.c.ARP.Rounds()
	r.ARPRounds = len(rounds)
	r.OldOwnerLastARPUS = -1
	interval := s.c.ARPInterval
	cur := map[string]*Span{}
	for i, rd := range rounds {
		at := rel(rd.At, o)
		next := at + interval.Microseconds()
		if i+1 < len(rounds) {
			next = rel(rounds[i+1].At, o)
		}
		if len(rd.Hosts) > 1 {
			r.DualARPRounds++
			r.Timeline.DualARP = append(r.Timeline.DualARP, Span{From: at, To: next, Who: fmt.Sprint(rd.Hosts)})
		}
		for _, h := range rd.Hosts {
			if h == ph.victim && !rd.At.Before(fault) && rd.At.Before(restore) {
				r.OldOwnerLastARPUS = rd.At.MonoUS - fault.MonoUS
			}
			if sp := cur[h]; sp != nil && sp.To == at {
				sp.To = next
				continue
			}
			if sp := cur[h]; sp != nil {
				r.Timeline.ARP[h] = append(r.Timeline.ARP[h], *sp)
			}
			cur[h] = &Span{From: at, To: next}
		}
	}
	for h, sp := range cur {
		r.Timeline.ARP[h] = append(r.Timeline.ARP[h], *sp)
	}
	for _, spans := range r.Timeline.ARP {
		slices.SortFunc(spans, func(a, b Span) int { return int(a.From - b.From) })
	}
	r.DualARPUS = int64(r.DualARPRounds) * interval.Microseconds()

	// Client: answerer timeline and outages clipped to the phases.
	for _, iv := range s.c.Client.Answerers() {
		sp := Span{From: rel(iv.Start, o), To: rel(iv.End, o)}
		if len(iv.Who) == 1 {
			sp.Who = iv.Who[0]
		}
		r.Timeline.Client = append(r.Timeline.Client, sp)
	}
	for _, x := range s.c.Client.Samples() {
		r.ClientProbes++
		if !x.OK() {
			r.ClientFailures++
		} else if r.TimeToNewOwnerUS == 0 && x.Node != ph.victim && !x.At.Before(fault) && (ph.served == "" || x.Node == ph.served) {
			r.TimeToNewOwnerUS = x.At.MonoUS - fault.MonoUS
			r.NewOwner = x.Node
		}
	}
	moves := s.vipMoves(rounds)
	for _, iv := range s.c.Client.Outages() {
		r.OutageUS += clip(iv, fault, restore)
		r.OutageMaxUS = max(r.OutageMaxUS, clip(iv, fault, restore))
		if !ph.restore.IsZero() {
			r.RestoreOutageUS += clip(iv, ph.restore, s.end)
		}
		if !ph.steady.IsZero() && !vipMoved(moves, iv, 200*time.Millisecond) {
			r.SteadyOutageUS += clip(iv, ph.steady, s.end)
		}
	}
	r.ProbeIntervalUS = s.c.ClientInterval.Microseconds()
	if s.c.Addr == nil {
		r.VIPResolutionUS = interval.Microseconds()
	}
	r.ServedAfterVIPUS = servedAfterVIP(s, moves, restore)
	if s.c.Addr != nil {
		garps, at := netlab.NonHolderGARPs(rounds, interval, s.c.Addr.HolderIntervals())
		r.NonHolderGARPs = garps
		for _, rd := range at {
			r.NonHolderGARPAtUS = append(r.NonHolderGARPAtUS, rel(rd.At, o))
		}
	}

	s.mu.Lock()
	for _, x := range s.samples {
		r.Timeline.Status = append(r.Timeline.Status, Mark{At: rel(x.At, o), Node: x.Node, Role: x.Role, Epoch: x.Epoch, Up: x.Up})
	}
	for _, err := range s.errs {
		r.Notes = append(r.Notes, "checker: "+err.Error())
	}
	s.mu.Unlock()
}

// addrEvents are the address monitor's events (none without one).
func (s *session) addrEvents() []netlab.AddrEvent {
	if s.c.Addr == nil {
		return nil
	}
	return s.c.Addr.Events()
}

// vipMoves are the instants the VIP was added or removed somewhere: from
// the address monitor, or, without one, the ARP rounds whose answering
// hosts differ from the round before (Added: a host began answering).
func (s *session) vipMoves(rounds []netlab.ARPRound) []netlab.AddrEvent {
	if s.c.Addr != nil {
		return s.c.Addr.Events()
	}
	var out []netlab.AddrEvent
	var prev []string
	for _, rd := range rounds {
		for _, h := range rd.Hosts {
			if !slices.Contains(prev, h) {
				out = append(out, netlab.AddrEvent{At: rd.At, Host: h, Added: true})
			}
		}
		for _, h := range prev {
			if !slices.Contains(rd.Hosts, h) {
				out = append(out, netlab.AddrEvent{At: rd.At, Host: h})
			}
		}
		prev = rd.Hosts
	}
	return out
}

// vipMoved reports whether the VIP was added or removed anywhere within
// slack of the interval iv.
func vipMoved(events []netlab.AddrEvent, iv netlab.Interval, slack time.Duration) bool {
	from, to := iv.Start.MonoUS-slack.Microseconds(), iv.End.MonoUS+slack.Microseconds()
	for _, ev := range events {
		if ev.At.MonoUS >= from && ev.At.MonoUS <= to {
			return true
		}
	}
	return false
}

// servedAfterVIP is the time from the last VIP addition at or after from
// (on the node holding the VIP at the end) to the first client answer from
// that node after it; -1 when the VIP did not move after from or the node
// never answered.
func servedAfterVIP(s *session, moves []netlab.AddrEvent, from netlab.Stamp) int64 {
	var up netlab.Stamp
	var host string
	for _, ev := range moves {
		if ev.Added && !ev.At.Before(from) {
			up, host = ev.At, ev.Host
		}
	}
	if host == "" {
		return -1
	}
	for _, x := range s.c.Client.Samples() {
		if x.OK() && x.Node == host && !x.At.Before(up) {
			return x.At.MonoUS - up.MonoUS
		}
	}
	return -1
}

// clip returns the microseconds of iv inside [from, to).
func clip(iv netlab.Interval, from, to netlab.Stamp) int64 {
	a, b := max(iv.Start.MonoUS, from.MonoUS), min(iv.End.MonoUS, to.MonoUS)
	return max(b-a, 0)
}

// judge sets the verdict.
func (r *Result) judge(ph phases, perr, steadyErr error) {
	if r.DualARPRounds > 0 {
		r.Reasons = append(r.Reasons, fmt.Sprintf("SPLIT BRAIN: %d ARP probe rounds answered by two MACs", r.DualARPRounds))
	}
	if perr != nil {
		r.Reasons = append(r.Reasons, "drill: "+perr.Error())
	}
	switch ph.expect {
	case expectTakeover:
		if r.NewOwner == "" {
			r.Reasons = append(r.Reasons, "no new owner served the client: "+r.takeoverSeen(ph.victim))
		}
	case expectWithdrawn:
		// After the TTL plus a margin, nobody may answer for the VIP.
		from := r.Timeline.FaultUS + ph.withdrawBy.Microseconds()
		for h, spans := range r.Timeline.ARP {
			for _, sp := range spans {
				if sp.To > from && sp.From < r.Timeline.RestoreUS {
					r.Reasons = append(r.Reasons, fmt.Sprintf("%s answered ARP for the VIP without a quorum %s after the fault (the lease TTL and a second had passed)",
						h, us(max(sp.From, from)-r.Timeline.FaultUS)))
					break
				}
			}
		}
	}
	if steadyErr != nil {
		r.Reasons = append(r.Reasons, "not steady after the drill: "+steadyErr.Error())
	}
	if r.Timeline.RestoreUS > 0 {
		if grants := r.grantsAfterRestore(); len(grants) > 1 {
			r.Reasons = append(r.Reasons, fmt.Sprintf("%d ownership changes after the restore (%v): at most one handback; "+
				"a node coming back must not disturb the owner", len(grants), grants))
		}
	}
	if n := sumCounts(r.NonHolderGARPs); n > 0 {
		r.Reasons = append(r.Reasons, fmt.Sprintf("%d gratuitous ARPs for the VIP from nodes that did not hold it: %v", n, r.NonHolderGARPs))
	}
	// The client is served again once the lab is steady: an outage then is
	// a blackhole (clients still sending to a MAC that no longer answers).
	// Two probe intervals, and the resolution of the instants the VIP
	// moved (0 from netlink; an ARP probe interval when taken from ARP).
	limit := 2*r.ProbeIntervalUS + r.VIPResolutionUS
	what := "two probe intervals"
	if r.VIPResolutionUS > 0 {
		what += " and an ARP round"
	}
	if steadyErr == nil && r.SteadyOutageUS > limit {
		r.Reasons = append(r.Reasons, fmt.Sprintf("client blackholed for %s after the lab was steady again (limit %s, %s)",
			us(r.SteadyOutageUS), what, us(limit)))
	}
	// Measured from the VIP going up, the first probe on the client's grid
	// starts up to one interval later: two failed probes and the phase.
	if served := limit + r.ProbeIntervalUS; r.ServedAfterVIPUS > served {
		r.Reasons = append(r.Reasons, fmt.Sprintf("after the restore the client reached the node holding the VIP only %s after the VIP went up on it "+
			"(limit %s and the probe grid's phase, %s): clients kept another MAC", us(r.ServedAfterVIPUS), what, us(served)))
	}
	if r.AddrBothUS > 0 && r.DualARPRounds == 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("the VIP was configured on two nodes for %s (netlink), but only one answered ARP: "+
			"the stale address waits for its lifetime to run out while the nftables fence already blocks it", us(r.AddrBothUS)))
	}
	if d := r.Data; d != nil {
		if d.TwoPrimary > 0 || d.TwoPrimaryUS > 0 {
			r.Reasons = append(r.Reasons, fmt.Sprintf("STORAGE SPLIT BRAIN: two DRBD Primaries in %d of %d samples, for %s", d.TwoPrimary, d.Samples, us(d.TwoPrimaryUS)))
		}
		if d.Lost > 0 {
			r.Reasons = append(r.Reasons, fmt.Sprintf("%d of %d acknowledged records missing or damaged on the Primary %s", d.Lost, d.Acked, d.Primary))
		}
		if d.Err != "" {
			r.Reasons = append(r.Reasons, "data check: "+d.Err)
		}
	}
	r.Pass = len(r.Reasons) == 0
	r.Verdict = "PASS"
	if !r.Pass {
		r.Verdict = "FAIL"
	}
}

// grantsAfterRestore lists the grants ("node@epoch") first reported owner
// after the restore, in order: a resumed node that made the owner yield
// and others take turns shows as several.
func (r *Result) grantsAfterRestore() []string {
	seen := map[uint64]bool{}
	for _, m := range r.Timeline.Status {
		if m.At < r.Timeline.RestoreUS && m.Role == "owner" {
			seen[m.Epoch] = true
		}
	}
	var out []string
	for _, m := range r.Timeline.Status {
		if m.At >= r.Timeline.RestoreUS && m.Up && m.Role == "owner" && !seen[m.Epoch] {
			seen[m.Epoch] = true
			if len(out) == 0 && m.Node == r.NewOwner && m.Node != r.OldOwner {
				// The takeover itself, first polled after the restore.
				continue
			}
			out = append(out, fmt.Sprintf("%s@%d", m.Node, m.Epoch))
		}
	}
	return out
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// takeoverSeen says what the status polls saw of a takeover from victim
// after the fault, for a run where the client was never served by another
// node.
func (r *Result) takeoverSeen(victim string) string {
	for _, m := range r.Timeline.Status {
		if m.At >= r.Timeline.FaultUS && m.Node != victim && m.Up && m.Role == "owner" {
			return fmt.Sprintf("%s reported role owner at +%s (epoch %d) but never answered the client's probes (client outage %s)",
				m.Node, us(m.At-r.Timeline.FaultUS), m.Epoch, us(r.OutageUS))
		}
	}
	victimDown := false
	for _, m := range r.Timeline.Status {
		if m.At >= r.Timeline.FaultUS && m.Node == victim && !m.Up {
			victimDown = true
		}
	}
	if !victimDown {
		return fmt.Sprintf("no role change: no other node reported role owner, and %s's daemon kept answering as if the fault had not hit it (client outage %s)",
			victim, us(r.OutageUS))
	}
	return fmt.Sprintf("no role change: no other node reported role owner after %s went down (client outage %s)", victim, us(r.OutageUS))
}

// us formats microseconds as a rounded duration.
func us(v int64) string {
	d := time.Duration(v) * time.Microsecond
	switch {
	case d == 0:
		return "0"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}
