package lvs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
)

// ErrNoIPVS: the kernel has no IPVS (its generic netlink family "IPVS"
// is not registered: the ip_vs module is not loaded or not built).
var ErrNoIPVS = errors.New("lvs: the kernel has no IPVS (generic netlink family \"IPVS\" not found: load the ip_vs module)")

// ipvsPersistent is IP_VS_SVC_F_PERSISTENT.
const ipvsPersistent = 0x1

// OpenIPVS opens the kernel's IPVS table through moby/ipvs. It checks
// the generic netlink family "IPVS" first: moby/ipvs does not fail
// without it (its handle opens, and later calls break), so without it
// OpenIPVS returns ErrNoIPVS.
func OpenIPVS() (*IPVS, error) {
	fam, err := netlink.GenlFamilyGet("IPVS")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoIPVS, err)
	}
	h, err := ipvs.New("")
	if err != nil {
		return nil, fmt.Errorf("lvs: open IPVS: %w", err)
	}
	return &IPVS{h: h, family: fam.ID}, nil
}

// IPVS is the kernel's table (Kernel) through moby/ipvs, and its sync
// daemons (SyncKernel) through the generic netlink family itself.
type IPVS struct {
	h      *ipvs.Handle
	family uint16 // the generic netlink family "IPVS"'s id
}

var _ Kernel = (*IPVS)(nil)

// Close releases the netlink socket.
func (k *IPVS) Close() { k.h.Close() }

func family(six bool) uint16 {
	if six {
		return syscall.AF_INET6
	}
	return syscall.AF_INET
}

func defaultNetmask(six bool) uint32 {
	if six {
		return 128
	}
	return 0xffffffff
}

func toService(v Virtual) *ipvs.Service {
	six := v.Key.Six
	s := &ipvs.Service{FWMark: v.Key.FWMark, SchedName: v.Scheduler, Timeout: v.Timeout, Netmask: v.Netmask}
	if v.Key.FWMark == 0 {
		six = v.Key.Addr.Addr().Is6()
		s.Address = net.IP(v.Key.Addr.Addr().AsSlice())
		s.Port = v.Key.Addr.Port()
		s.Protocol = uint16(v.Key.Proto)
	}
	s.AddressFamily = family(six)
	if s.Netmask == 0 {
		s.Netmask = defaultNetmask(six)
	}
	if s.Timeout > 0 {
		s.Flags = ipvsPersistent
	}
	return s
}

func fromService(s *ipvs.Service) Virtual {
	six := s.AddressFamily == syscall.AF_INET6
	v := Virtual{Scheduler: s.SchedName, Netmask: s.Netmask}
	if s.FWMark != 0 {
		v.Key = Key{FWMark: s.FWMark, Six: six}
	} else {
		a, _ := netip.AddrFromSlice(s.Address)
		if !six {
			a = a.Unmap()
		}
		v.Key = Key{Proto: Protocol(s.Protocol), Addr: netip.AddrPortFrom(a, s.Port)}
	}
	if s.Flags&ipvsPersistent != 0 {
		v.Timeout = s.Timeout
	}
	if v.Netmask == defaultNetmask(six) {
		v.Netmask = 0
	}
	return v
}

func toDest(d Dest) *ipvs.Destination {
	return &ipvs.Destination{Address: net.IP(d.Addr.Addr().AsSlice()), Port: d.Addr.Port(), Weight: d.Weight,
		ConnectionFlags: uint32(d.Forward), AddressFamily: family(d.Addr.Addr().Is6())}
}

// Table implements Kernel.
func (k *IPVS) Table() ([]Virtual, error) {
	ss, err := k.h.GetServices()
	if err != nil {
		return nil, err
	}
	out := make([]Virtual, 0, len(ss))
	for _, s := range ss {
		v := fromService(s)
		ds, err := k.h.GetDestinations(s)
		if err != nil {
			return nil, fmt.Errorf("%s: real servers: %w", v.Key, err)
		}
		for _, d := range ds {
			a, _ := netip.AddrFromSlice(d.Address)
			if d.AddressFamily == syscall.AF_INET {
				a = a.Unmap()
			}
			v.Dests = append(v.Dests, Dest{Addr: netip.AddrPortFrom(a, d.Port), Weight: d.Weight,
				Forward: Forward(d.ConnectionFlags & ipvs.ConnectionFlagFwdMask)})
		}
		out = append(out, v)
	}
	return out, nil
}

// AddService implements Kernel.
func (k *IPVS) AddService(v Virtual) error { return k.h.NewService(toService(v)) }

// UpdateService implements Kernel.
func (k *IPVS) UpdateService(v Virtual) error { return k.h.UpdateService(toService(v)) }

// DelService implements Kernel.
func (k *IPVS) DelService(key Key) error { return k.h.DelService(toService(Virtual{Key: key})) }

// AddDest implements Kernel.
func (k *IPVS) AddDest(key Key, d Dest) error {
	return k.h.NewDestination(toService(Virtual{Key: key}), toDest(d))
}

// UpdateDest implements Kernel.
func (k *IPVS) UpdateDest(key Key, d Dest) error {
	return k.h.UpdateDestination(toService(Virtual{Key: key}), toDest(d))
}

// DelDest implements Kernel.
func (k *IPVS) DelDest(key Key, d Dest) error {
	return k.h.DelDestination(toService(Virtual{Key: key}), toDest(d))
}
