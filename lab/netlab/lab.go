package netlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Sentinel errors.
var (
	ErrBadOptions = errors.New("netlab: bad options")
	ErrNoHost     = errors.New("netlab: no such host")
	ErrNotUp      = errors.New("netlab: lab is not up")
	ErrForeignPID = errors.New("netlab: process is not in the host's namespace")
)

// ClientName is the name of the client host added by Options.Client.
const ClientName = "client"

// DefaultStateDir is where state files go when Options.StateFile is empty.
var DefaultStateDir = filepath.Join(os.TempDir(), "netlab")

// Options configure a Lab.
type Options struct {
	// Hosts are the node names, 1–6 characters [a-z0-9], starting with a
	// letter, not "sw". Host i (0-based) gets address .i+1 in both subnets.
	Hosts []string
	// Client adds a host named "client" at address .254.
	Client bool
	// Subnet4 is the IPv4 /24 of the lab (default 10.99.0.0/24). Labs are
	// isolated from each other, so every lab may use the same subnet.
	Subnet4 netip.Prefix
	// Subnet6 is the IPv6 /64 of the lab (default fd6c:6864::/64, ULA).
	Subnet6 netip.Prefix
	// StateFile is where the lab records what it created (default
	// DefaultStateDir/<id>.json).
	StateFile string
}

// DefaultOptions returns two nodes, n1 and n2, and a client.
func DefaultOptions() Options {
	return Options{Hosts: []string{"n1", "n2"}, Client: true}
}

var hostNameRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,5}$`)

// Validate checks o and fills defaults.
func (o *Options) Validate() error {
	if len(o.Hosts) == 0 && !o.Client {
		return fmt.Errorf("%w: no hosts", ErrBadOptions)
	}
	if len(o.Hosts) > 200 {
		return fmt.Errorf("%w: at most 200 hosts", ErrBadOptions)
	}
	seen := map[string]bool{}
	for _, h := range o.Hosts {
		if !hostNameRE.MatchString(h) || h == "sw" || h == ClientName {
			return fmt.Errorf("%w: host name %q (want 1-6 of [a-z0-9], not sw or client)", ErrBadOptions, h)
		}
		if seen[h] {
			return fmt.Errorf("%w: duplicate host %q", ErrBadOptions, h)
		}
		seen[h] = true
	}
	if !o.Subnet4.IsValid() {
		o.Subnet4 = netip.MustParsePrefix("10.99.0.0/24")
	}
	if !o.Subnet6.IsValid() {
		o.Subnet6 = netip.MustParsePrefix("fd6c:6864::/64")
	}
	if !o.Subnet4.Addr().Is4() || o.Subnet4.Bits() != 24 {
		return fmt.Errorf("%w: Subnet4 %s is not an IPv4 /24", ErrBadOptions, o.Subnet4)
	}
	if !o.Subnet6.Addr().Is6() || o.Subnet6.Addr().Is4In6() || o.Subnet6.Bits() != 64 {
		return fmt.Errorf("%w: Subnet6 %s is not an IPv6 /64", ErrBadOptions, o.Subnet6)
	}
	o.Subnet4 = o.Subnet4.Masked()
	o.Subnet6 = o.Subnet6.Masked()
	return nil
}

// Lab is a set of namespaces on one bridge. Create it with New, then Up;
// always call Down (also after a failed Up).
type Lab struct {
	id    string
	opts  Options
	tb    Timebase
	state *stateFile

	sw     *Host
	hosts  []*Host
	byName map[string]*Host

	mu sync.Mutex
	up bool
}

var validIDRE = regexp.MustCompile(`^lh[0-9a-f]{4}$`)

func validID(id string) bool { return validIDRE.MatchString(id) }

// New plans a lab: it picks a random id not in use and names everything,
// but creates nothing.
func New(opts Options) (*Lab, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	var id string
	for range 64 {
		var b [2]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("netlab: random id: %w", err)
		}
		cand := "lh" + hex.EncodeToString(b[:])
		if m, _ := filepath.Glob(filepath.Join(netnsDir, cand+"-*")); len(m) > 0 {
			continue
		}
		if _, err := os.Stat(filepath.Join(DefaultStateDir, cand+".json")); err == nil {
			continue
		}
		id = cand
		break
	}
	if id == "" {
		return nil, fmt.Errorf("netlab: no free lab id")
	}
	if opts.StateFile == "" {
		opts.StateFile = filepath.Join(DefaultStateDir, id+".json")
	}
	return plan(id, opts), nil
}

// plan names every namespace, link and address of lab id.
func plan(id string, opts Options) *Lab {
	l := &Lab{id: id, opts: opts, tb: NewTimebase(), byName: map[string]*Host{}}
	l.state = &stateFile{path: opts.StateFile, st: State{ID: id}}
	idb, _ := hex.DecodeString(id[2:])

	l.sw = &Host{lab: l, Name: "sw", NS: id + "-sw", Iface: id + "-br",
		MAC: net.HardwareAddr{0x02, 0x6c, idb[0], idb[1], 0xff, 0x01}}
	add := func(name string, idx byte) {
		h := &Host{
			lab:   l,
			Name:  name,
			NS:    id + "-" + name,
			Iface: id + "-" + name,
			port:  "p-" + name,
			IPv4:  addrIn(opts.Subnet4, idx),
			IPv6:  addrIn(opts.Subnet6, idx),
			MAC:   net.HardwareAddr{0x02, 0x6c, idb[0], idb[1], 0x00, idx},
		}
		l.hosts = append(l.hosts, h)
		l.byName[name] = h
	}
	for i, h := range opts.Hosts {
		add(h, byte(i+1))
	}
	if opts.Client {
		add(ClientName, 254)
	}
	return l
}

// addrIn returns the address with last byte idx in prefix p.
func addrIn(p netip.Prefix, idx byte) netip.Addr {
	if p.Addr().Is4() {
		a := p.Addr().As4()
		a[3] = idx
		return netip.AddrFrom4(a)
	}
	a := p.Addr().As16()
	a[15] = idx
	return netip.AddrFrom16(a)
}

// ID returns the lab's random prefix, e.g. "lh3f2a".
func (l *Lab) ID() string { return l.id }

// StateFile returns the path of the lab's state file.
func (l *Lab) StateFile() string { return l.opts.StateFile }

// Timebase returns the lab's time origin; checkers of this lab share it.
func (l *Lab) Timebase() Timebase { return l.tb }

// Subnet4 and Subnet6 return the lab's subnets.
func (l *Lab) Subnet4() netip.Prefix { return l.opts.Subnet4 }

// Subnet6 returns the lab's IPv6 subnet.
func (l *Lab) Subnet6() netip.Prefix { return l.opts.Subnet6 }

// VIP4 returns .100 of the IPv4 subnet, an address no host is given.
func (l *Lab) VIP4() netip.Addr { return addrIn(l.opts.Subnet4, 100) }

// VIP6 returns ::64 (100) of the IPv6 subnet, an address no host is given.
func (l *Lab) VIP6() netip.Addr { return addrIn(l.opts.Subnet6, 100) }

// ProbeAddr6 returns ::fd (253) of the IPv6 subnet, the source address of
// the ARPProber's IPv6 neighbour solicitations; no host is given it.
func (l *Lab) ProbeAddr6() netip.Addr { return addrIn(l.opts.Subnet6, 253) }

// Addr4 returns address .idx of the IPv4 subnet (for extra VIPs; hosts use
// 1..len(Hosts) and 254).
func (l *Lab) Addr4(idx byte) netip.Addr { return addrIn(l.opts.Subnet4, idx) }

// Addr6 returns address ::idx of the IPv6 subnet.
func (l *Lab) Addr6(idx byte) netip.Addr { return addrIn(l.opts.Subnet6, idx) }

// Host returns the named host (a node name, "client", or "sw" for the
// switch namespace), or nil.
func (l *Lab) Host(name string) *Host {
	if name == "sw" {
		return l.sw
	}
	return l.byName[name]
}

// Hosts returns the hosts in the order of Options.Hosts, the client last.
func (l *Lab) Hosts() []*Host { return slices.Clone(l.hosts) }

// Nodes returns the hosts except the client.
func (l *Lab) Nodes() []*Host {
	var out []*Host
	for _, h := range l.hosts {
		if h.Name != ClientName {
			out = append(out, h)
		}
	}
	return out
}

// Switch returns the switch namespace as a Host: NS is its namespace, Iface
// the bridge, MAC the bridge's MAC; it has no IP addresses.
func (l *Lab) Switch() *Host { return l.sw }

// HostByMAC returns the name of the host owning mac, or "".
func (l *Lab) HostByMAC(mac net.HardwareAddr) string {
	for _, h := range l.hosts {
		if slices.Equal(h.MAC, mac) {
			return h.Name
		}
	}
	if slices.Equal(l.sw.MAC, mac) {
		return l.sw.Name
	}
	return ""
}

// Up creates the namespaces, the bridge and the links. On error it removes
// what it created before returning.
func (l *Lab) Up(ctx context.Context) (err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.up {
		return nil
	}
	all := append([]*Host{l.sw}, l.hosts...)
	// Record intent first: a crash half-way leaves a state file naming
	// everything that might exist.
	if err := l.state.update(func(st *State) {
		st.Owner = recordOf(os.Getpid(), "", os.Args[0])
		st.Layout = &Layout{Hosts: l.opts.Hosts, Client: l.opts.Client,
			Subnet4: l.opts.Subnet4.String(), Subnet6: l.opts.Subnet6.String()}
		for _, h := range all {
			st.Namespaces = append(st.Namespaces, h.NS)
		}
	}); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			l.state.mu.Lock()
			st := l.state.st
			l.state.mu.Unlock()
			teardown(st)
			os.Remove(l.opts.StateFile)
		}
	}()
	for _, h := range all {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := createNetns(h.NS); err != nil {
			return err
		}
		h.nsPath = nsPath(h.NS)
	}
	if err := l.setupSwitch(); err != nil {
		return err
	}
	for _, h := range l.hosts {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := l.setupHost(h); err != nil {
			return fmt.Errorf("netlab: host %s: %w", h.Name, err)
		}
	}
	l.up = true
	return nil
}

// writeSysctl writes /proc/sys/<key> ("net/ipv6/conf/all/accept_dad") in
// the namespace at path.
func writeSysctl(path string, kv ...string) error {
	return doInNetns(path, func() error {
		for i := 0; i+1 < len(kv); i += 2 {
			if err := os.WriteFile("/proc/sys/"+kv[i], []byte(kv[i+1]), 0o644); err != nil {
				return fmt.Errorf("netlab: sysctl %s: %w", kv[i], err)
			}
		}
		return nil
	})
}

func handleAt(path string) (*netlink.Handle, netns.NsHandle, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, 0, fmt.Errorf("netlab: open %s: %w", path, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, 0, fmt.Errorf("netlab: netlink handle in %s: %w", path, err)
	}
	return h, ns, nil
}

func (l *Lab) setupSwitch() error {
	if err := writeSysctl(l.sw.nsPath,
		"net/ipv6/conf/all/disable_ipv6", "1",
		"net/ipv6/conf/default/disable_ipv6", "1"); err != nil {
		return err
	}
	nh, ns, err := handleAt(l.sw.nsPath)
	if err != nil {
		return err
	}
	defer ns.Close()
	defer nh.Close()
	if err := linkUpByName(nh, "lo"); err != nil {
		return err
	}
	// STP is off by default, so ports forward as soon as they are up.
	no := false
	br := &netlink.Bridge{
		LinkAttrs:         netlink.LinkAttrs{Name: l.sw.Iface, HardwareAddr: l.sw.MAC},
		MulticastSnooping: &no,
	}
	if err := nh.LinkAdd(br); err != nil {
		return fmt.Errorf("netlab: add bridge: %w", err)
	}
	if err := nh.LinkSetHardwareAddr(br, l.sw.MAC); err != nil {
		return fmt.Errorf("netlab: bridge mac: %w", err)
	}
	if err := nh.LinkSetUp(br); err != nil {
		return fmt.Errorf("netlab: bridge up: %w", err)
	}
	return nil
}

func linkUpByName(nh *netlink.Handle, name string) error {
	lk, err := nh.LinkByName(name)
	if err != nil {
		return fmt.Errorf("netlab: link %s: %w", name, err)
	}
	if err := nh.LinkSetUp(lk); err != nil {
		return fmt.Errorf("netlab: link %s up: %w", name, err)
	}
	return nil
}

func (l *Lab) setupHost(h *Host) error {
	// Before the veth exists, so it inherits "default".
	if err := writeSysctl(h.nsPath,
		"net/ipv6/conf/all/accept_dad", "0",
		"net/ipv6/conf/default/accept_dad", "0",
		"net/ipv6/conf/default/accept_ra", "0",
		"net/ipv6/conf/default/router_solicitations", "0"); err != nil {
		return err
	}
	swh, swns, err := handleAt(l.sw.nsPath)
	if err != nil {
		return err
	}
	defer swns.Close()
	defer swh.Close()
	hh, hns, err := handleAt(h.nsPath)
	if err != nil {
		return err
	}
	defer hns.Close()
	defer hh.Close()

	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: h.port},
		PeerName:         h.Iface,
		PeerHardwareAddr: h.MAC,
		PeerNamespace:    netlink.NsFd(int(hns)),
	}
	if err := swh.LinkAdd(veth); err != nil {
		return fmt.Errorf("netlab: add veth: %w", err)
	}
	port, err := swh.LinkByName(h.port)
	if err != nil {
		return fmt.Errorf("netlab: veth %s: %w", h.port, err)
	}
	br, err := swh.LinkByName(l.sw.Iface)
	if err != nil {
		return fmt.Errorf("netlab: bridge: %w", err)
	}
	if err := swh.LinkSetMaster(port, br); err != nil {
		return fmt.Errorf("netlab: enslave %s: %w", h.port, err)
	}
	if err := swh.LinkSetUp(port); err != nil {
		return fmt.Errorf("netlab: %s up: %w", h.port, err)
	}
	if err := linkUpByName(hh, "lo"); err != nil {
		return err
	}
	lk, err := hh.LinkByName(h.Iface)
	if err != nil {
		return fmt.Errorf("netlab: link %s: %w", h.Iface, err)
	}
	if err := hh.LinkSetHardwareAddr(lk, h.MAC); err != nil {
		return fmt.Errorf("netlab: mac: %w", err)
	}
	for _, a := range []netip.Prefix{
		netip.PrefixFrom(h.IPv4, l.opts.Subnet4.Bits()),
		netip.PrefixFrom(h.IPv6, l.opts.Subnet6.Bits()),
	} {
		addr := &netlink.Addr{IPNet: prefixToIPNet(a)}
		if a.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := hh.AddrAdd(lk, addr); err != nil {
			return fmt.Errorf("netlab: add %s: %w", a, err)
		}
	}
	if err := hh.LinkSetUp(lk); err != nil {
		return fmt.Errorf("netlab: %s up: %w", h.Iface, err)
	}
	h.ifindex = lk.Attrs().Index
	return nil
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// Down kills every process the lab started or that runs in its
// namespaces, deletes the namespaces and the state file. Safe to call more
// than once and after a failed Up. Sockets the caller still holds open in
// the lab's namespaces keep those (now unnamed) namespaces alive until
// closed.
func (l *Lab) Down(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.up = false
	l.state.close()
	if _, err := os.Stat(l.opts.StateFile); err != nil {
		return nil
	}
	return Cleanup(l.opts.StateFile)
}

// NamespaceNames returns the names of every namespace of the lab.
func (l *Lab) NamespaceNames() []string {
	out := []string{l.sw.NS}
	for _, h := range l.hosts {
		out = append(out, h.NS)
	}
	return out
}

func (l *Lab) isUp() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.up
}

// String describes the lab for logs.
func (l *Lab) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lab %s:", l.id)
	for _, h := range l.hosts {
		fmt.Fprintf(&b, " %s=%s/%s", h.Name, h.IPv4, h.MAC)
	}
	return b.String()
}
