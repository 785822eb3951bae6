// Package vipaddr adds and removes virtual IP addresses on interfaces
// through netlink, idempotently, and finds its own orphans after a crash.
//
// Guarantees: Add and Remove converge the kernel to the asked state whatever
// it was (adding an address that is there, or removing one that is not, is
// not an error); every address added is recorded in a state file before the
// netlink call, and IPv4 addresses carry the label "<ifname>:lh" (when it
// fits in 15 bytes), so a restarted daemon can remove what a crashed one
// left. Lifetimes: a non-zero lifetime makes the kernel remove the address
// by itself (the second layer of the kernel fence); zero means forever.
//
// Not guaranteed: that nobody else removes or adds the same address.
package vipaddr

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LabelSuffix marks IPv4 VIPs added by leasehold (`ip addr` shows eth0:lh).
const LabelSuffix = ":lh"

// VIP is one address on one interface.
type VIP struct {
	Iface  string       `json:"iface"`
	Prefix netip.Prefix `json:"prefix"`
}

func (v VIP) String() string { return v.Prefix.String() + " dev " + v.Iface }

// Manager adds and removes VIPs. Safe for concurrent use.
type Manager struct {
	state string // path of the JSON state file; "" = none
	mu    sync.Mutex
}

// New returns a Manager recording its addresses in stateFile ("" disables
// the record; labels alone then find IPv4 orphans).
func New(stateFile string) *Manager { return &Manager{state: stateFile} }

// Add puts v on its interface. lifetime 0 = permanent; otherwise valid and
// preferred lifetimes are set (rounded up to whole seconds, at least 1) and
// a repeated Add extends them.
func (m *Manager) Add(v VIP, lifetime time.Duration) error {
	link, err := netlink.LinkByName(v.Iface)
	if err != nil {
		return fmt.Errorf("vipaddr: add %s: %w", v, err)
	}
	if err := m.record(v, true); err != nil {
		return err
	}
	a := addr(v)
	if lifetime > 0 {
		secs := int(math.Ceil(lifetime.Seconds()))
		a.ValidLft, a.PreferedLft = max(secs, 1), max(secs, 1)
	}
	if err := netlink.AddrReplace(link, a); err != nil {
		return fmt.Errorf("vipaddr: add %s: %w", v, err)
	}
	return nil
}

// Remove deletes v from its interface; absent is fine.
func (m *Manager) Remove(v VIP) error {
	link, err := netlink.LinkByName(v.Iface)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return m.record(v, false)
		}
		return fmt.Errorf("vipaddr: remove %s: %w", v, err)
	}
	if err := netlink.AddrDel(link, addr(v)); err != nil &&
		!errors.Is(err, syscall.EADDRNOTAVAIL) && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("vipaddr: remove %s: %w", v, err)
	}
	return m.record(v, false)
}

// Has reports whether v's address is configured on its interface.
func (m *Manager) Has(v VIP) (bool, error) {
	link, err := netlink.LinkByName(v.Iface)
	if err != nil {
		return false, fmt.Errorf("vipaddr: %s: %w", v, err)
	}
	fam := netlink.FAMILY_V4
	if v.Prefix.Addr().Is6() {
		fam = netlink.FAMILY_V6
	}
	addrs, err := netlink.AddrList(link, fam)
	if err != nil {
		return false, fmt.Errorf("vipaddr: list %s: %w", v.Iface, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == v.Prefix.Addr() {
			return true, nil
		}
	}
	return false, nil
}

// Orphans lists VIPs this node added and did not remove: those in the state
// file plus any IPv4 address labelled with LabelSuffix.
func (m *Manager) Orphans() ([]VIP, error) {
	out, err := m.load()
	if err != nil {
		return nil, err
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("vipaddr: list addresses: %w", err)
	}
	for _, a := range addrs {
		if len(a.Label) <= len(LabelSuffix) || a.Label[len(a.Label)-len(LabelSuffix):] != LabelSuffix {
			continue
		}
		link, err := netlink.LinkByIndex(a.LinkIndex)
		if err != nil {
			continue
		}
		ip, _ := netip.AddrFromSlice(a.IP.To4())
		ones, _ := a.Mask.Size()
		v := VIP{Iface: link.Attrs().Name, Prefix: netip.PrefixFrom(ip, ones)}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

// RemoveOrphans removes every orphan and returns what it removed.
func (m *Manager) RemoveOrphans() ([]VIP, error) {
	vs, err := m.Orphans()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, v := range vs {
		errs = append(errs, m.Remove(v))
	}
	return vs, errors.Join(errs...)
}

func addr(v VIP) *netlink.Addr {
	p := v.Prefix
	a := &netlink.Addr{IPNet: &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}}
	if p.Addr().Is4() && len(v.Iface)+len(LabelSuffix) <= 15 {
		a.Label = v.Iface + LabelSuffix
	}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

func (m *Manager) load() ([]VIP, error) {
	if m.state == "" {
		return nil, nil
	}
	b, err := os.ReadFile(m.state)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vipaddr: state: %w", err)
	}
	var vs []VIP
	if err := json.Unmarshal(b, &vs); err != nil {
		return nil, fmt.Errorf("vipaddr: state %s: %w", m.state, err)
	}
	return vs, nil
}

// record adds (on) or removes v in the state file, atomically.
func (m *Manager) record(v VIP, on bool) error {
	if m.state == "" {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	vs, err := m.load()
	if err != nil {
		return err
	}
	i := slices.Index(vs, v)
	switch {
	case on && i >= 0, !on && i < 0:
		return nil
	case on:
		vs = append(vs, v)
	default:
		vs = slices.Delete(vs, i, i+1)
	}
	b, _ := json.Marshal(vs)
	if err := os.MkdirAll(filepath.Dir(m.state), 0o755); err != nil {
		return fmt.Errorf("vipaddr: state: %w", err)
	}
	tmp := m.state + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("vipaddr: state: %w", err)
	}
	if err := os.Rename(tmp, m.state); err != nil {
		return fmt.Errorf("vipaddr: state: %w", err)
	}
	return nil
}
