package lvs

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/leasehold/leasehold/script"
)

// Mode says when a director holds its table.
type Mode string

const (
	// ModeOwner: a virtual server exists only while this node owns the
	// lease of the group it follows.
	ModeOwner Mode = "owner"
	// ModeAll: every director keeps the table (keepalived's behaviour);
	// only the VIP moves.
	ModeAll Mode = "all"
)

// Protocol is a virtual server's L4 protocol (IPPROTO_* numbers, as IPVS
// takes them).
type Protocol uint16

const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	}
	return strconv.Itoa(int(p))
}

// ParseProtocol reads keepalived's protocol TCP|UDP|SCTP.
func ParseProtocol(s string) (Protocol, error) {
	switch strings.ToUpper(s) {
	case "TCP":
		return TCP, nil
	case "UDP":
		return UDP, nil
	case "SCTP":
		return SCTP, nil
	}
	return 0, fmt.Errorf("%q: want TCP, UDP or SCTP", s)
}

// Forward is a real server's forwarding method (lb_kind / lvs_method).
type Forward uint8

// The values are IPVS's connection flags (IP_VS_CONN_F_*).
const (
	NAT Forward = 0
	TUN Forward = 2
	DR  Forward = 3
)

func (f Forward) String() string {
	switch f {
	case NAT:
		return "NAT"
	case TUN:
		return "TUN"
	case DR:
		return "DR"
	}
	return strconv.Itoa(int(f))
}

// ParseForward reads lb_kind / lvs_method NAT|DR|TUN. TUN's options
// (type gue/gre, checksums) are not supported.
func ParseForward(s string) (Forward, error) {
	switch strings.ToUpper(s) {
	case "NAT":
		return NAT, nil
	case "DR":
		return DR, nil
	case "TUN":
		return TUN, nil
	}
	return 0, fmt.Errorf("%q: want NAT, DR or TUN (tunnel types other than ipip are not supported)", s)
}

// Schedulers are the IPVS schedulers keepalived names (lvs_sched).
var Schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "mh", "sed", "nq", "fo", "ovf", "twos"}

// ParseScheduler checks an lb_algo / lvs_sched name. Whether the kernel
// has the scheduler's module shows when the service is added.
func ParseScheduler(s string) (string, error) {
	s = strings.ToLower(s)
	for _, k := range Schedulers {
		if s == k {
			return s, nil
		}
	}
	return "", fmt.Errorf("%q: want one of %s", s, strings.Join(Schedulers, ", "))
}

// Key names one kernel service: an address, port and protocol, or a
// firewall mark of a family.
type Key struct {
	FWMark uint32
	Six    bool // fwmark services: the address family
	Proto  Protocol
	Addr   netip.AddrPort
}

func (k Key) String() string {
	if k.FWMark != 0 {
		fam := "inet"
		if k.Six {
			fam = "inet6"
		}
		return fmt.Sprintf("fwmark %d %s", k.FWMark, fam)
	}
	return fmt.Sprintf("%s %s", k.Proto, k.Addr)
}

// Config is the LVS part of a validated configuration.
type Config struct {
	Mode     Mode
	Services []Service
	// Sync, if set, runs the kernel's connection-sync daemons following
	// a group's lease (lvs_sync_daemon).
	Sync *SyncConfig
}

// Service is one virtual_server: the kernel services it stands for (one,
// or one per entry of its virtual_server_group) with the same real servers
// and checks.
type Service struct {
	// Name is how status and metrics name it: keepalived's header
	// ("192.168.1.99 80", "fwmark 5", "group web").
	Name string
	// Follow is the group (vrrp_instance or vrrp_sync_group) whose lease
	// the table follows in ModeOwner.
	Follow      string
	Keys        []Key
	Scheduler   string
	Forward     Forward
	Persistence time.Duration // 0: not persistent
	// Netmask is persistence_granularity (IPv4 mask as a number; IPv6:
	// prefix length); 0: the kernel's default (a single client).
	Netmask    uint32
	Quorum     int
	Hysteresis int
	QuorumUp   *script.Command
	QuorumDown *script.Command
	Sorry      *RealServer // sorry_server: Inhibit from sorry_server_inhibit
	Omega      bool
	Reals      []RealServer
}

// RealServer is one real_server.
type RealServer struct {
	Addr    netip.AddrPort
	Weight  int
	Forward Forward
	// Inhibit: a failed server stays in the table with weight 0
	// (inhibit_on_failure) instead of being removed.
	Inhibit bool
	Checks  []Check
	// NotifyUp and NotifyDown run when the checkers bring the server
	// back or take it out, one at a time in the order of the changes,
	// with LEASEHOLD_VIRTUAL_SERVER and LEASEHOLD_REAL_SERVER set.
	NotifyUp, NotifyDown *script.Command
}

// CheckKind is a checker type.
type CheckKind string

const (
	TCPCheck  CheckKind = "TCP_CHECK"
	HTTPGet   CheckKind = "HTTP_GET"
	SSLGet    CheckKind = "SSL_GET"
	MiscCheck CheckKind = "MISC_CHECK"
)

// Check is one checker of a real server with its timing resolved
// (checker, then real server, then virtual server, then keepalived's
// default).
type Check struct {
	Kind             CheckKind
	Target           netip.AddrPort // connect_ip / connect_port, else the real server's
	ConnectTimeout   time.Duration
	DelayLoop        time.Duration
	DelayBeforeRetry time.Duration
	Retry            int
	Warmup           time.Duration
	// Alpha: the checker starts failed (keepalived's alpha): the server
	// enters the table only after a first success.
	Alpha bool
	// HTTP_GET / SSL_GET.
	URLs        []URL
	VirtualHost string
	// MISC_CHECK.
	Command *script.Command // Timeout is misc_timeout
	Dynamic bool            // misc_dynamic
}

// URL is an HTTP_GET / SSL_GET url block.
type URL struct {
	Path   string
	Digest string // lower-case hex MD5 of the body; "" = not checked
	Status []StatusRange
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Lo, Hi int }

// ParseStatusCodes reads keepalived's status_code list ("200",
// "200-299 400-499 503"); empty means 200-299.
func ParseStatusCodes(s string) ([]StatusRange, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return []StatusRange{{200, 299}}, nil
	}
	var out []StatusRange
	for _, w := range f {
		lo, hi, isRange := strings.Cut(w, "-")
		if !isRange {
			hi = lo
		}
		l, err1 := strconv.Atoi(lo)
		h, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || l < 100 || h > 599 || l > h {
			return nil, fmt.Errorf("%q: want codes or ranges within 100-599 (like 200-299 503)", w)
		}
		out = append(out, StatusRange{l, h})
	}
	return out, nil
}

func statusOK(rs []StatusRange, code int) bool {
	for _, r := range rs {
		if code >= r.Lo && code <= r.Hi {
			return true
		}
	}
	return false
}

// Keepalived's defaults.
const (
	DefaultDelayLoop      = 60 * time.Second
	DefaultConnectTimeout = 5 * time.Second
	DefaultPersistence    = 6 * time.Minute // persistence_timeout without a value
	DefaultWeight         = 1
	MaxWeight             = 65535
)

// DefaultRetry is a checker's retry count when none is set: 0 for
// MISC_CHECK, 1 otherwise.
func DefaultRetry(k CheckKind) int {
	if k == MiscCheck {
		return 0
	}
	return 1
}

// DefaultDelayBeforeRetry is 3 s for HTTP_GET and SSL_GET, 1 s otherwise.
func DefaultDelayBeforeRetry(k CheckKind) time.Duration {
	if k == HTTPGet || k == SSLGet {
		return 3 * time.Second
	}
	return time.Second
}
