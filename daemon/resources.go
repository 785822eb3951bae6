package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/leasehold/leasehold/fencing"
	"github.com/leasehold/leasehold/node/resource"
	"github.com/leasehold/leasehold/storage/drbd"
)

// resources builds a group's resource chain, promoted in this order after
// the lease is held and before the VIP goes up, demoted in reverse after
// the VIP is down: the watchdog (when any resource follows), the
// promote/demote hooks of the configuration, then the members' DRBD
// resources (so a demote hook runs once DRBD is Secondary). MySQL and
// IPVS resources join the chain here as they are configured.
func (d *Daemon) resources(group string, promote, demote []fencing.Hook, drbds []drbd.Config, log *slog.Logger) (*resource.Chain, error) {
	var rs []resource.Resource
	if len(promote)+len(demote) > 0 {
		rs = append(rs, resource.Hooks{Group: group, Promotes: promote, Demotes: demote, Log: log,
			Failed: func(kind string) { d.metrics.hookFails.WithLabelValues(group, kind).Inc() }})
	}
	for _, dc := range drbds {
		r, err := drbd.New(dc, d.plat.DRBD(), log)
		if err != nil {
			return nil, fmt.Errorf("group %s: %w", group, err)
		}
		if d.backend != nil {
			// A node its peer marked outdated at the quorum (fence-peer)
			// never promotes until a resync clears the mark.
			me := d.cfg.Node.Name
			r.OutdatedAtQuorum = drbd.MarkedAtQuorum(d.backend, group, me)
			r.ClearOutdated = func(ctx context.Context) error { return d.backend.ClearOutdated(ctx, group, me) }
		}
		rs = append(rs, r)
		d.drbd = append(d.drbd, groupDRBD{group: group, r: r})
	}
	// Resources the kernel cannot fence keep the watchdog armed while
	// owned: armed first, disarmed last.
	if d.watchdog != nil && len(rs) > 0 {
		rs = append([]resource.Resource{d.watchdog.resource(group)}, rs...)
	}
	return resource.NewChain(rs...), nil
}

// groupDRBD is a DRBD resource of a group, for status and metrics.
type groupDRBD struct {
	group string
	r     *drbd.Resource
}

// DRBDStatus is one DRBD resource in GET /status: what /proc/drbd says
// now, and the promotions the decision refused.
type DRBDStatus struct {
	Group       string  `json:"group"`
	Resource    string  `json:"resource"`
	Role        string  `json:"role,omitempty"`
	PeerRole    string  `json:"peer_role,omitempty"`
	CState      string  `json:"cstate,omitempty"`
	Disk        string  `json:"disk,omitempty"`
	PeerDisk    string  `json:"peer_disk,omitempty"`
	Suspended   bool    `json:"suspended,omitempty"`
	SyncPercent float64 `json:"sync_percent,omitempty"`
	// Error: /proc/drbd could not be read or parsed, or the minor is not
	// configured.
	Error       string `json:"error,omitempty"`
	Refusals    uint64 `json:"promotions_refused,omitempty"`
	LastRefusal string `json:"last_refusal,omitempty"`
	// OutdatedAtQuorum: the last promotion found this node marked
	// outdated at the quorum (by the peer's fence-peer handler).
	OutdatedAtQuorum bool `json:"outdated_at_quorum,omitempty"`
}

func (g groupDRBD) status() DRBDStatus {
	st := DRBDStatus{Group: g.group, Resource: strings.TrimPrefix(g.r.Name(), "drbd ")}
	st.Refusals, st.LastRefusal = g.r.Refusals()
	st.OutdatedAtQuorum, _ = g.r.OutdatedMark()
	s, err := g.r.State()
	if err != nil {
		st.Error = err.Error()
	}
	if s.Configured() {
		st.Role, st.PeerRole, st.CState, st.Disk, st.PeerDisk = string(s.Role), string(s.PeerRole), string(s.Conn), string(s.Disk), string(s.PeerDisk)
		st.Suspended, st.SyncPercent = s.Suspended, s.SyncPercent
	}
	return st
}
