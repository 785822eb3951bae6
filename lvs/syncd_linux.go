package lvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// The IPVS generic netlink commands and attributes of the sync daemons
// (include/uapi/linux/ip_vs.h); moby/ipvs v1.1.0 has no daemon commands.
const (
	ipvsGenlVersion = 1

	ipvsCmdNewDaemon = 9
	ipvsCmdDelDaemon = 10
	ipvsCmdGetDaemon = 11

	ipvsCmdAttrDaemon = 3

	ipvsDaemonAttrState       = 1 // u32: IP_VS_STATE_MASTER, _BACKUP
	ipvsDaemonAttrMcastIfn    = 2 // string
	ipvsDaemonAttrSyncID      = 3 // u32
	ipvsDaemonAttrSyncMaxlen  = 4 // u16
	ipvsDaemonAttrMcastGroup  = 5 // in_addr (network order)
	ipvsDaemonAttrMcastGroup6 = 6 // in6_addr
	ipvsDaemonAttrMcastPort   = 7 // u16
	ipvsDaemonAttrMcastTTL    = 8 // u8
)

var _ SyncKernel = (*IPVS)(nil)

// daemonAttr is the nested IPVS_CMD_ATTR_DAEMON of a NEW_DAEMON (all of
// c) or DEL_DAEMON (the state alone, c nil).
func daemonAttr(state SyncState, c *SyncConfig) *nl.RtAttr {
	a := nl.NewRtAttr(ipvsCmdAttrDaemon|int(nl.NLA_F_NESTED), nil)
	a.AddRtAttr(ipvsDaemonAttrState, nl.Uint32Attr(uint32(state)))
	if c == nil {
		return a
	}
	a.AddRtAttr(ipvsDaemonAttrMcastIfn, nl.ZeroTerminated(c.Interface))
	a.AddRtAttr(ipvsDaemonAttrSyncID, nl.Uint32Attr(uint32(c.SyncID)))
	if c.MaxLen != 0 {
		a.AddRtAttr(ipvsDaemonAttrSyncMaxlen, nl.Uint16Attr(c.MaxLen))
	}
	if c.McastAddr.Is4() {
		b := c.McastAddr.As4()
		a.AddRtAttr(ipvsDaemonAttrMcastGroup, b[:])
	} else if c.McastAddr.Is6() {
		b := c.McastAddr.As16()
		a.AddRtAttr(ipvsDaemonAttrMcastGroup6, b[:])
	}
	if c.McastPort != 0 {
		a.AddRtAttr(ipvsDaemonAttrMcastPort, nl.Uint16Attr(c.McastPort))
	}
	if c.McastTTL != 0 {
		a.AddRtAttr(ipvsDaemonAttrMcastTTL, nl.Uint8Attr(c.McastTTL))
	}
	return a
}

// parseDaemon reads one GET_DAEMON answer (after its netlink header: the
// generic netlink header, then IPVS_CMD_ATTR_DAEMON).
func parseDaemon(msg []byte) (SyncDaemon, error) {
	var d SyncDaemon
	if len(msg) < nl.SizeofGenlmsg {
		return d, errors.New("lvs: short GET_DAEMON answer")
	}
	attrs, err := nl.ParseRouteAttr(msg[nl.SizeofGenlmsg:])
	if err != nil {
		return d, fmt.Errorf("lvs: GET_DAEMON answer: %w", err)
	}
	for _, a := range attrs {
		if a.Attr.Type&nl.NLA_TYPE_MASK != ipvsCmdAttrDaemon {
			continue
		}
		inner, err := nl.ParseRouteAttr(a.Value)
		if err != nil {
			return d, fmt.Errorf("lvs: GET_DAEMON daemon: %w", err)
		}
		for _, b := range inner {
			v := b.Value
			switch b.Attr.Type & nl.NLA_TYPE_MASK {
			case ipvsDaemonAttrState:
				if len(v) >= 4 {
					d.State = SyncState(binary.NativeEndian.Uint32(v))
				}
			case ipvsDaemonAttrMcastIfn:
				d.Interface = string(trimNUL(v))
			case ipvsDaemonAttrSyncID:
				if len(v) >= 4 {
					d.SyncID = uint8(binary.NativeEndian.Uint32(v))
				}
			case ipvsDaemonAttrSyncMaxlen:
				if len(v) >= 2 {
					d.MaxLen = binary.NativeEndian.Uint16(v)
				}
			case ipvsDaemonAttrMcastGroup:
				if a, ok := netip.AddrFromSlice(v); ok && len(v) == 4 && !a.IsUnspecified() {
					d.McastAddr = a
				}
			case ipvsDaemonAttrMcastGroup6:
				if a, ok := netip.AddrFromSlice(v); ok && len(v) == 16 && !a.IsUnspecified() {
					d.McastAddr = a
				}
			case ipvsDaemonAttrMcastPort:
				if len(v) >= 2 {
					d.McastPort = binary.NativeEndian.Uint16(v)
				}
			case ipvsDaemonAttrMcastTTL:
				if len(v) >= 1 {
					d.McastTTL = v[0]
				}
			}
		}
	}
	if d.State == 0 {
		return d, errors.New("lvs: GET_DAEMON answer without a state")
	}
	return d, nil
}

func trimNUL(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}

// daemonRequest is an IPVS generic netlink request with cmd.
func (k *IPVS) daemonRequest(cmd uint8, flags int) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(int(k.family), flags)
	req.AddData(&nl.Genlmsg{Command: cmd, Version: ipvsGenlVersion})
	return req
}

// StartSync implements SyncKernel (IPVS_CMD_NEW_DAEMON).
func (k *IPVS) StartSync(state SyncState, c SyncConfig) error {
	req := k.daemonRequest(ipvsCmdNewDaemon, unix.NLM_F_ACK)
	req.AddData(daemonAttr(state, &c))
	_, err := req.Execute(unix.NETLINK_GENERIC, 0)
	return err
}

// StopSync implements SyncKernel (IPVS_CMD_DEL_DAEMON).
func (k *IPVS) StopSync(state SyncState) error {
	req := k.daemonRequest(ipvsCmdDelDaemon, unix.NLM_F_ACK)
	req.AddData(daemonAttr(state, nil))
	_, err := req.Execute(unix.NETLINK_GENERIC, 0)
	if errors.Is(err, syscall.ESRCH) {
		return ErrNoSync
	}
	return err
}

// SyncDaemons implements SyncKernel (IPVS_CMD_GET_DAEMON, a dump).
func (k *IPVS) SyncDaemons() ([]SyncDaemon, error) {
	req := k.daemonRequest(ipvsCmdGetDaemon, unix.NLM_F_DUMP)
	msgs, err := req.Execute(unix.NETLINK_GENERIC, k.family)
	if err != nil {
		return nil, err
	}
	out := make([]SyncDaemon, 0, len(msgs))
	for _, m := range msgs {
		d, err := parseDaemon(m)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}
