package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/leasehold/leasehold/daemon/statusapi"
	"github.com/leasehold/leasehold/fencing"
	"github.com/leasehold/leasehold/lvs"
	"github.com/leasehold/leasehold/node"
	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/quorum/raft"
	"github.com/leasehold/leasehold/storage/drbd"
	"github.com/leasehold/leasehold/storage/mysql"
	"github.com/leasehold/leasehold/vrrp"
	"github.com/leasehold/leasehold/vrrp/vipaddr"
)

// Platform is the operating system a daemon runs on: every edge where it
// touches the kernel, another process or the network. OS returns the real
// one; tests pass an in-memory one. Constructors start nothing; the
// daemon calls them from Run, in the order the ownership protocol needs
// (orphans, quorum, fence, watchdog, sockets).
type Platform interface {
	// VRRPSocket opens the advert socket of an interface and family.
	VRRPSocket(iface string, six bool) (vrrp.Socket, error)
	// Announcer opens the gratuitous ARP / unsolicited NA sender of an
	// interface for vips.
	Announcer(iface string, vips []netip.Addr) (vrrp.VIPAnnouncer, error)
	// Prober probes vips on iface before they are claimed.
	Prober(iface string, vips []netip.Addr) node.Prober
	// Addresses adds and removes VIPs, labelled so that a later run finds
	// the orphans of a crash (state kept under stateDir).
	Addresses(stateDir string) Addresses
	// Fence installs the kernel fence for mode (fencing.nftables: auto,
	// required, off) and describes what is in use.
	Fence(ctx context.Context, mode string, log *slog.Logger) (fencing.Fence, string, error)
	// Watchdog opens the watchdog device (not yet armed).
	Watchdog(device string, mode fencing.WatchdogMode, log *slog.Logger) Watchdog
	// Quorum connects to the plan's quorum as a client.
	Quorum(p *Plan, log *slog.Logger) (quorum.Backend, error)
	// Voter builds this node's raft voter (backend raft).
	Voter(cfg raft.Config, log *slog.Logger) (Voter, error)
	// LVS opens the kernel's IPVS table (failing clearly without IPVS)
	// and the real-server checks' prober.
	LVS() (lvs.Kernel, lvs.Prober, error)
	// StatusListener opens the status API's listener ("unix:/path" or a
	// loopback host:port); nil without error: no status API.
	StatusListener(spec string) (net.Listener, error)
	// DRBD runs the programs DRBD resources need (drbdadm, mount,
	// systemctl, ...) and reads /proc/drbd and the mount table.
	DRBD() drbd.Executor
	// MySQL returns the local MySQL/MariaDB server of cfg and its peer
	// (nil: no peer fence); nothing is connected yet.
	MySQL(cfg mysql.Config) (local, peer mysql.Server, err error)
}

// Addresses is what the daemon needs of the VIP addresses on interfaces.
type Addresses interface {
	// Add adds v (lifetime > 0: the kernel drops it by itself after it).
	Add(v vipaddr.VIP, lifetime time.Duration) error
	Remove(v vipaddr.VIP) error
	// RemoveOrphans removes the VIPs an earlier run left behind.
	RemoveOrphans() ([]vipaddr.VIP, error)
}

// Watchdog is a watchdog device (fencing.Watchdog).
type Watchdog interface {
	Probe() error
	Armed() bool
	Arm(timeout time.Duration) error
	Feed() error
	Disarm() error
}

// Voter is this node's member of the raft group; it runs until ctx ends.
type Voter interface {
	Run(ctx context.Context) error
}

// OS is the real platform: raw sockets, netlink, nftables, /dev/watchdog
// and the network quorum.
func OS() Platform { return osPlatform{} }

type osPlatform struct{}

func (osPlatform) VRRPSocket(iface string, six bool) (vrrp.Socket, error) {
	return vrrp.Listen(iface, six, vrrp.ConnOptions{Multicast: true})
}

func (osPlatform) Announcer(iface string, vips []netip.Addr) (vrrp.VIPAnnouncer, error) {
	return vrrp.NewAnnouncer(iface, vips)
}

func (osPlatform) LVS() (lvs.Kernel, lvs.Prober, error) {
	k, err := lvs.OpenIPVS()
	if err != nil {
		return nil, nil, err
	}
	return k, &lvs.NetProber{}, nil
}

func (osPlatform) StatusListener(spec string) (net.Listener, error) { return statusapi.Listen(spec) }

func (osPlatform) DRBD() drbd.Executor { return drbd.OS{} }

func (osPlatform) MySQL(cfg mysql.Config) (mysql.Server, mysql.Server, error) {
	return mysql.Servers(cfg)
}

func (osPlatform) Prober(iface string, vips []netip.Addr) node.Prober {
	return NewProber(vrrp.Probe, iface, vips)
}

func (osPlatform) Addresses(stateDir string) Addresses {
	return vipaddr.New(stateDir + "/vips.json")
}

func (osPlatform) Fence(ctx context.Context, mode string, log *slog.Logger) (fencing.Fence, string, error) {
	if mode == "off" {
		log.Warn("fencing.nftables off: address lifetimes are the only kernel fence")
		return fencing.LifetimeOnly{}, "address lifetimes only (nftables off)", nil
	}
	if err := fencing.Usable(); err != nil {
		if mode == "required" {
			return nil, "", fmt.Errorf("fencing.nftables required but not usable: %w", err)
		}
		log.Error("nftables is not usable: address lifetimes are the only kernel fence; the lease TTL must exceed the lifetime + 2 s", "err", err)
		return fencing.LifetimeOnly{}, "address lifetimes only (nftables unusable: " + err.Error() + ")", nil
	}
	f, err := fencing.NewNFT("", log)
	if err != nil {
		return nil, "", err
	}
	if err := f.Install(ctx); err != nil {
		return nil, "", fmt.Errorf("install nftables fence: %w", err)
	}
	return f, "nftables timeout sets + address lifetimes", nil
}

func (osPlatform) Watchdog(device string, mode fencing.WatchdogMode, log *slog.Logger) Watchdog {
	return fencing.NewWatchdog(device, mode, log)
}

func (osPlatform) Quorum(p *Plan, log *slog.Logger) (quorum.Backend, error) {
	return OpenQuorum(p, log)
}

func (osPlatform) Voter(cfg raft.Config, log *slog.Logger) (Voter, error) {
	return raft.NewMember(cfg, log)
}

// NewProber probes a group's VIPs on iface with probe (vrrp.Probe on the
// real platform), waiting 20 ms for answers (node.Prober).
func NewProber(probe vrrp.ProbeFunc, iface string, vips []netip.Addr) node.Prober {
	return prober{probe: probe, iface: iface, vips: vips, wait: 20 * time.Millisecond}
}

type prober struct {
	probe vrrp.ProbeFunc
	iface string
	vips  []netip.Addr
	wait  time.Duration
}

func (p prober) Probe(ctx context.Context) (string, error) {
	c, ok, err := p.probe(ctx, p.iface, p.vips, p.wait)
	if err != nil || !ok {
		return "", err
	}
	return c.String(), nil
}
