package netlab

import (
	"encoding/json"
	"net/netip"
	"slices"
	"time"
)

// Report combines the checkers' findings for one measurement. It is
// JSON-serialisable; durations are in microseconds.
type Report struct {
	VIP string `json:"vip"`
	// Fault is the instant the fault was injected, and OldOwner the node
	// that held the VIP before it (both optional, from ReportOptions).
	Fault    *Stamp `json:"fault,omitempty"`
	OldOwner string `json:"old_owner,omitempty"`

	Addr *AddrSummary `json:"addr,omitempty"`
	ARP  *ARPSummary  `json:"arp,omitempty"`
	TCP  *TCPSummary  `json:"tcp,omitempty"`
}

// AddrSummary is what the netlink address monitor saw.
type AddrSummary struct {
	Events         []AddrEvent `json:"events"`
	Holders        []Interval  `json:"holders"`
	DualIntervals  []Interval  `json:"dual_intervals"`
	DualTotalUS    int64       `json:"dual_total_us"`
	DualMaxUS      int64       `json:"dual_max_us"`
	NewOwner       string      `json:"new_owner,omitempty"`
	TimeToNewOwnUS int64       `json:"time_to_new_owner_us,omitempty"`
	FinalHolders   []string    `json:"final_holders"`
}

// ARPSummary is what the ARP prober saw.
type ARPSummary struct {
	Rounds     int            `json:"rounds"`
	DualRounds int            `json:"dual_rounds"`
	Dual       []ARPRound     `json:"dual,omitempty"`
	Changes    []ARPRound     `json:"changes"`
	GARPs      map[string]int `json:"garps,omitempty"`
	// NonHolderGARPs counts, per host, gratuitous ARPs (unsolicited NAs)
	// for the VIP sent in a round during which the host never had the VIP
	// configured (by the address monitor): announcements by a node that is
	// not the owner. Must be 0; set only when both checkers ran.
	NonHolderGARPs map[string]int `json:"non_holder_garps,omitempty"`
	// NonHolderGARPRounds are the rounds those GARPs were heard in.
	NonHolderGARPRounds []ARPRound `json:"non_holder_garp_rounds,omitempty"`
}

// TCPSummary is what the client TCP prober saw. With a fault instant,
// OutageMaxUS and OutageTotalUS count only outage time after the fault
// (outages before it, e.g. before the first election, are listed but not
// counted); without one they count every outage.
type TCPSummary struct {
	Probes         int        `json:"probes"`
	Failures       int        `json:"failures"`
	Outages        []Interval `json:"outages"`
	OutageMaxUS    int64      `json:"outage_max_us"`
	OutageTotalUS  int64      `json:"outage_total_us"`
	Answerers      []Interval `json:"answerers"`
	Flips          int        `json:"flips"`
	NewOwner       string     `json:"new_owner,omitempty"`
	TimeToNewOwnUS int64      `json:"time_to_new_owner_us,omitempty"`
}

// ReportOptions name the fault, for the "time to new owner" figures.
type ReportOptions struct {
	// Fault is when the fault was injected (zero: none).
	Fault Stamp
	// OldOwner is the node that held the VIP before the fault.
	OldOwner string
}

// BuildReport summarises the checkers; any of them may be nil.
func BuildReport(vip netip.Addr, opts ReportOptions, addr *AddrMonitor, arp *ARPProber, tcp *TCPProber) Report {
	r := Report{VIP: vip.String(), OldOwner: opts.OldOwner}
	if !opts.Fault.IsZero() {
		f := opts.Fault
		r.Fault = &f
	}
	if addr != nil {
		s := &AddrSummary{
			Events:        addr.Events(),
			Holders:       addr.HolderIntervals(),
			DualIntervals: addr.DualIntervals(),
		}
		total, longest := sumMax(s.DualIntervals)
		s.DualTotalUS, s.DualMaxUS = total.Microseconds(), longest.Microseconds()
		if n := len(s.Holders); n > 0 {
			s.FinalHolders = s.Holders[n-1].Who
		}
		if r.Fault != nil {
			for _, ev := range s.Events {
				if ev.Added && ev.Host != opts.OldOwner && !ev.At.Before(opts.Fault) {
					s.NewOwner = ev.Host
					s.TimeToNewOwnUS = ev.At.MonoUS - opts.Fault.MonoUS
					break
				}
			}
		}
		r.Addr = s
	}
	if arp != nil {
		dual := arp.DualRounds()
		r.ARP = &ARPSummary{
			Rounds:     len(arp.Rounds()),
			DualRounds: len(dual),
			Dual:       dual,
			Changes:    arp.Changes(),
			GARPs:      arp.GARPCount(),
		}
		if addr != nil {
			r.ARP.NonHolderGARPs, r.ARP.NonHolderGARPRounds = NonHolderGARPs(arp.Rounds(), arp.Interval, addr.HolderIntervals())
		}
	}
	if tcp != nil {
		samples := tcp.Samples()
		s := &TCPSummary{Probes: len(samples), Outages: tcp.Outages(), Answerers: tcp.Answerers()}
		for _, x := range samples {
			if !x.OK() {
				s.Failures++
			}
		}
		counted := s.Outages
		if r.Fault != nil {
			counted = nil
			for _, iv := range s.Outages {
				if iv.End.Before(opts.Fault) || iv.End == opts.Fault {
					continue
				}
				if iv.Start.Before(opts.Fault) {
					iv = newInterval(opts.Fault, iv.End, iv.Open, iv.Who)
				}
				counted = append(counted, iv)
			}
		}
		total, longest := sumMax(counted)
		s.OutageTotalUS, s.OutageMaxUS = total.Microseconds(), longest.Microseconds()
		var last string
		for _, iv := range s.Answerers {
			if len(iv.Who) == 1 {
				if last != "" && iv.Who[0] != last {
					s.Flips++
				}
				last = iv.Who[0]
			}
		}
		if r.Fault != nil {
			for _, x := range samples {
				if x.OK() && x.Node != opts.OldOwner && !x.At.Before(opts.Fault) {
					s.NewOwner = x.Node
					s.TimeToNewOwnUS = x.At.MonoUS - opts.Fault.MonoUS
					break
				}
			}
		}
		r.TCP = s
	}
	return r
}

// garpSlack widens a round when GARPs are matched with the address
// monitor: the monitor stamps an address when it reads netlink's message,
// which on a loaded machine can come well after the daemon added the
// address and sent its burst (seen: two soaks at once on 2 cores). A GARP
// of a demoted node's schedule (garp_master_delay, refresh: seconds later)
// is still caught.
const garpSlack = 250 * time.Millisecond

// NonHolderGARPs counts the GARPs of each round's hosts that did not hold
// the VIP (holders: the address monitor's HolderIntervals) at any instant
// of the round [At, At+interval], widened by garpSlack on both sides, and
// returns the rounds they were heard in.
func NonHolderGARPs(rounds []ARPRound, interval time.Duration, holders []Interval) (map[string]int, []ARPRound) {
	var out map[string]int
	var at []ARPRound
	// A burst heard in the last moments of the observation may belong to
	// an address the monitor had not reported yet when it stopped (seen:
	// a handback starting as a drill ended): rounds closer than garpSlack
	// to the monitor's end are not judged.
	var monEnd int64
	if n := len(holders); n > 0 {
		monEnd = holders[n-1].End.MonoUS
	}
	for _, r := range rounds {
		if r.At.MonoUS+interval.Microseconds()+garpSlack.Microseconds() > monEnd {
			continue
		}
		start := r.At.MonoUS - garpSlack.Microseconds()
		end := r.At.MonoUS + interval.Microseconds() + garpSlack.Microseconds()
		for host, n := range r.GARPs {
			held := false
			for _, iv := range holders {
				if iv.End.MonoUS >= start && iv.Start.MonoUS <= end && slices.Contains(iv.Who, host) {
					held = true
					break
				}
			}
			if !held {
				if out == nil {
					out = map[string]int{}
				}
				out[host] += n
				if len(at) == 0 || at[len(at)-1].At != r.At {
					at = append(at, r)
				}
			}
		}
	}
	return out, at
}

// NonHolderGARPTotal is the number of GARPs sent by hosts without the VIP.
func (r Report) NonHolderGARPTotal() int {
	if r.ARP == nil {
		return 0
	}
	n := 0
	for _, c := range r.ARP.NonHolderGARPs {
		n += c
	}
	return n
}

// DualHolder returns the total time two or more namespaces held the VIP.
func (r Report) DualHolder() time.Duration {
	if r.Addr == nil {
		return 0
	}
	return time.Duration(r.Addr.DualTotalUS) * time.Microsecond
}

// JSON returns the report indented.
func (r Report) JSON() []byte {
	b, _ := json.MarshalIndent(r, "", "  ")
	return b
}
