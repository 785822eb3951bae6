package drill

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/leasehold/leasehold/lab/netlab"
)

// CheckerSource is a target that builds its own checkers (VMs).
type CheckerSource interface {
	Checkers() (Checkers, error)
}

// netlabTarget is a lab of network namespaces (labctl.Lab).
type netlabTarget interface {
	Netlab() *netlab.Lab
}

// checkersOf returns the target's checkers; for a netns lab: the netlink
// monitor in every node's namespace, the ARP prober from the switch and
// the client TCP prober.
func checkersOf(t Target) (Checkers, error) {
	if cs, ok := t.(CheckerSource); ok {
		return cs.Checkers()
	}
	nt, ok := t.(netlabTarget)
	if !ok {
		return Checkers{}, fmt.Errorf("drill: the target %T neither builds checkers nor is a netns lab", t)
	}
	l := nt.Netlab()
	var hosts []*netlab.Host
	for _, n := range t.Nodes() {
		hosts = append(hosts, l.Host(n))
	}
	tb := l.Timebase()
	mon := netlab.NewAddrMonitor(tb, t.VIP(), hosts...)
	arp := netlab.NewARPProber(l, t.VIP())
	tcp := netlab.NewTCPProber(tb, l.Host(netlab.ClientName), netip.AddrPortFrom(t.VIP(), t.ProbePort()))
	return Checkers{Timebase: tb, Addr: mon, ARP: arp, ARPInterval: arp.Interval, Client: tcp, ClientInterval: tcp.Interval,
		Run: []Checker{mon, arp, tcp}}, nil
}

// Checkers are the invariant checkers of one observation, built by the
// target: the netns lab watches netlink in every namespace and probes
// from its switch; the VM lab probes from the host's end of the VMs'
// segment.
type Checkers struct {
	Timebase netlab.Timebase
	// Addr reports where the VIP is configured, per node. Nil when the
	// target cannot watch inside its nodes (VMs): the drill then takes a
	// move of the VIP from the ARP answers and does not judge gratuitous
	// ARPs of non-holders.
	Addr AddrView
	// ARP: the probe rounds for the VIP (two MACs in a round = split
	// brain) and their interval.
	ARP         ARPView
	ARPInterval time.Duration
	// Client: the client's probes through the VIP and their interval.
	Client         ClientView
	ClientInterval time.Duration
	// Run are started for the observation, each until its context ends;
	// the observation begins once every one is Ready.
	Run []Checker
}

// Checker is one running checker.
type Checker interface {
	Run(context.Context) error
	Ready() <-chan struct{}
}

// AddrView is netlab.AddrMonitor's record.
type AddrView interface {
	Events() []netlab.AddrEvent
	DualIntervals() []netlab.Interval
	HolderIntervals() []netlab.Interval
}

// ARPView is a record of ARP probe rounds (netlab.ARPProber's).
type ARPView interface {
	Rounds() []netlab.ARPRound
}

// ClientView is a client prober's record (netlab.TCPProber's).
type ClientView interface {
	Samples() []netlab.TCPSample
	Answerers() []netlab.Interval
	Outages() []netlab.Interval
}

// ProcessView is a target whose daemons' processes are not this
// machine's (VMs): it says whether the process pid (with that start
// time) still runs on node. Other targets' processes are checked here.
type ProcessView interface {
	ProcessAlive(ctx context.Context, node string, pid int, startTime uint64) bool
}

// The faults a target may offer beyond signals and quorum cuts; a
// scenario whose fault the target lacks is not offered (ScenariosFor).
type (
	// VRRPCutter drops VRRP in and out of a node (a netns lab does it
	// with nftables in the node's namespace).
	VRRPCutter interface {
		CutVRRP(ctx context.Context, node string, on bool) error
	}
	// LinkSetter takes a node's interface (VRRP and clients) down and
	// up (a netns lab: the veth in the node's namespace).
	LinkSetter interface {
		SetLink(ctx context.Context, node string, up bool) error
	}
	// VRRPLinkCutter cuts a node's VRRP and client link, leaving its
	// quorum link (a target whose quorum runs over a link of its own).
	VRRPLinkCutter interface {
		CutVRRPLink(ctx context.Context, node string, on bool) error
	}
	// Isolator cuts every link of a node (VRRP segment and quorum).
	Isolator interface {
		Isolate(ctx context.Context, node string, on bool) error
	}
	// PowerCutter switches a node off at once (no shutdown, no flush);
	// Restart brings it back.
	PowerCutter interface {
		PowerCut(ctx context.Context, node string) error
	}
	// Resetter is a target whose owners arm a watchdog (WatchdogArmed):
	// kill9 and freeze must then reset the owner's machine before another
	// node takes over. ResetAt is when node's machine last reset by
	// itself (zero: never).
	Resetter interface {
		WatchdogArmed() bool
		ResetAt(node string) time.Time
	}
)

// DataGuard is a target with replicated storage (DRBD in the VM lab
// with Options.DRBD). For each drill it starts a watch before the fault:
// both nodes' roles sampled (two Primaries in one sample is the storage
// split brain) and a writer on the Primary whose records are
// acknowledged only once durable; Check, once the target is steady again,
// reads every acknowledged record back from the Primary then.
type DataGuard interface {
	GuardData(ctx context.Context) (DataWatch, error)
}

// DataWatch is one drill's data guard.
type DataWatch interface {
	// Check stops the sampler and the writer and checks the records on
	// the node that is Primary now.
	Check(ctx context.Context) DataReport
}

// DataReport is what a DataWatch saw.
type DataReport struct {
	// Samples of the nodes' roles; SampleRate is the slowest node's rate
	// while it could be read; TwoPrimary the samples saying Primary while
	// the other node was (presumed) Primary, TwoPrimaryUS how long both
	// were (both must be 0).
	Samples      int     `json:"samples"`
	SampleRate   float64 `json:"samples_per_s"`
	TwoPrimary   int     `json:"two_primary_samples"`
	TwoPrimaryUS int64   `json:"two_primary_us"`
	// Acked records were acknowledged as durable; Lost of them are
	// missing or damaged on the final Primary (must be 0).
	Acked int `json:"acked_records"`
	Lost  int `json:"lost_records"`
	// Primary is the node that was Primary at the check.
	Primary string `json:"primary,omitempty"`
	// WriterGapUS is the writer's longest stretch without an
	// acknowledged record (the fault to writable again on the new
	// Primary, for a failover).
	WriterGapUS int64 `json:"writer_gap_us"`
	// Err: the check could not be done (no Primary, unreadable records).
	Err string `json:"error,omitempty"`
}
