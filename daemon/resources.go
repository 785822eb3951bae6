package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"

	"github.com/leasehold/leasehold/fencing"
	"github.com/leasehold/leasehold/lvs"
	"github.com/leasehold/leasehold/node/resource"
	"github.com/leasehold/leasehold/storage/drbd"
	"github.com/leasehold/leasehold/storage/mysql"
)

// resources builds a group's resource chain, promoted in this order after
// the lease is held and before the VIP goes up, demoted in reverse after
// the VIP is down: the watchdog (when any resource the kernel cannot
// fence follows), the promote/demote hooks of the configuration, then the
// members' DRBD resources (so a demote hook runs once DRBD is Secondary),
// then their MySQL servers (made writable last, on a mounted datadir;
// read-only first), then the IPVS sync daemons' master role
// (lvs_sync_daemon) and the IPVS table of the virtual servers following
// the group (lvs_mode owner).
func (d *Daemon) resources(group string, promote, demote []fencing.Hook, drbds []drbd.Config, mysqls []instanceMySQL, log *slog.Logger) (*resource.Chain, error) {
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
		policy := dc.AfterSplitBrain
		if policy == "" {
			policy = drbd.SplitBrainManual
		}
		sb := &splitBrainWatch{group: group, self: d.cfg.Node.Name, marker: drbd.SplitBrainMarker(d.cfg.StateDir, dc.Resource),
			policy: policy, r: r, q: d.backend, log: log.With("drbd", dc.Resource)}
		d.drbd = append(d.drbd, groupDRBD{group: group, r: r, sb: sb})
	}
	for _, m := range mysqls {
		local, peer, err := d.plat.MySQL(m.cfg)
		if err != nil {
			return nil, fmt.Errorf("group %s: instance %s: %w", group, m.instance, err)
		}
		r, err := mysql.New(m.cfg, local, peer, log)
		if err != nil {
			return nil, fmt.Errorf("group %s: instance %s: %w", group, m.instance, err)
		}
		rs = append(rs, r)
		d.mysql = append(d.mysql, groupMySQL{group: group, instance: m.instance, r: r})
	}
	// Resources the kernel cannot fence keep the watchdog armed while
	// owned: armed first, disarmed last. The IPVS table is not one of
	// them: IPVS sees the VIP's packets after the kernel fence (its
	// LOCAL_IN hook runs after the fence's filter-priority chain), so an
	// expired fence stops its traffic too.
	if d.watchdog != nil && len(rs) > 0 {
		rs = append([]resource.Resource{d.watchdog.resource(group)}, rs...)
	}
	// The sync daemons turn master before the table is added (its
	// connections are sent from the start) and back to backup after it
	// is removed.
	if d.lvsSync != nil && d.cfg.LVS.Sync.Group == group {
		rs = append(rs, d.lvsSync)
	}
	if d.lvs != nil && d.cfg.LVS.Mode == lvs.ModeOwner && slices.Contains(d.lvs.Groups(), group) {
		rs = append(rs, d.lvs.Table(group))
	}
	return resource.NewChain(rs...), nil
}

// groupDRBD is a DRBD resource of a group, for status and metrics.
type groupDRBD struct {
	group string
	r     *drbd.Resource
	sb    *splitBrainWatch
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
	// SplitBrain: DRBD's last split brain on this node, what the node
	// decided about it (after_split_brain) and what it discarded.
	SplitBrain SplitBrainStatus `json:"split_brain"`
}

func (g groupDRBD) status() DRBDStatus {
	st := DRBDStatus{Group: g.group, Resource: strings.TrimPrefix(g.r.Name(), "drbd ")}
	st.Refusals, st.LastRefusal = g.r.Refusals()
	st.OutdatedAtQuorum, _ = g.r.OutdatedMark()
	if g.sb != nil {
		st.SplitBrain = g.sb.status()
	}
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

// instanceMySQL is the mysql section of one member instance of a group.
type instanceMySQL struct {
	instance string
	cfg      mysql.Config
}

// groupMySQL is a MySQL server of a group, for status, metrics and the
// instance's health check.
type groupMySQL struct {
	group, instance string
	r               *mysql.Resource
}

// MySQLStatus is one MySQL server in GET /status: the resource's last
// outcomes (no query is sent to the server for it).
type MySQLStatus struct {
	Group    string `json:"group"`
	Instance string `json:"instance"`
	Server   string `json:"server"`
	// Writable is the epoch the server was made writable for (0: it is
	// kept read-only).
	Writable       uint64 `json:"writable_epoch"`
	Healthy        bool   `json:"healthy"`
	LastCheck      string `json:"last_check,omitempty"`
	Refusals       uint64 `json:"promotions_refused,omitempty"`
	LastRefusal    string `json:"last_refusal,omitempty"`
	PromotedAnyway uint64 `json:"promoted_anyway,omitempty"`
	LastCatchup    string `json:"last_catchup,omitempty"`
	LastPeerFence  string `json:"last_peer_fence,omitempty"`
	Killed         uint64 `json:"connections_killed,omitempty"`
	BypassKilled   uint64 `json:"bypass_connections_killed,omitempty"`
	Corrected      uint64 `json:"writable_without_lease_corrected,omitempty"`
	Reasserted     uint64 `json:"read_only_reasserted,omitempty"`
	LastReassert   string `json:"last_reassert,omitempty"`
	SemiSync       string `json:"semi_sync,omitempty"`
}

func (g groupMySQL) status() MySQLStatus {
	s := g.r.Stats()
	return MySQLStatus{Group: g.group, Instance: g.instance, Server: strings.TrimPrefix(g.r.Name(), "mysql "),
		Writable: s.Promoted, Healthy: s.Healthy, LastCheck: s.LastCheck, Refusals: s.Refusals, LastRefusal: s.LastRefusal,
		PromotedAnyway: s.PromotedAnyway, LastCatchup: s.LastCatchup, LastPeerFence: s.LastPeerFence,
		Killed: s.Killed, BypassKilled: s.BypassKilled, Corrected: s.Corrected,
		Reasserted: s.Reasserted, LastReassert: s.LastReassert, SemiSync: s.SemiSync}
}

// setupLVS opens the kernel's IPVS table and removes what an earlier run
// left there (its state file under state_dir), before any group can
// own: without IPVS in the kernel the daemon does not start.
func (d *Daemon) setupLVS() error {
	if len(d.cfg.LVS.Services) == 0 {
		return nil
	}
	k, p, err := d.plat.LVS()
	if err != nil {
		return fmt.Errorf("virtual_server: %w", err)
	}
	dir, err := lvs.New(d.cfg.LVS, lvs.Options{Kernel: k, Prober: p, StateFile: filepath.Join(d.cfg.StateDir, "lvs.json"),
		Log: d.log.With("lvs", d.cfg.LVS.Mode)})
	if err != nil {
		return err
	}
	if err := dir.Reconcile(); err != nil {
		return fmt.Errorf("virtual_server: first reconcile (orphans of an earlier run): %w", err)
	}
	d.lvs = dir
	if sc := d.cfg.LVS.Sync; sc != nil {
		sk, ok := k.(lvs.SyncKernel)
		if !ok {
			return errors.New("lvs_sync_daemon: this platform's IPVS has no sync daemons")
		}
		// Backup until the group owns (a master an earlier run left is
		// stopped).
		s := lvs.NewSync(sk, *sc, d.log.With("lvs_sync_daemon", sc.Interface))
		if err := s.Start(); err != nil {
			return err
		}
		d.lvsSync = s
	}
	return nil
}
