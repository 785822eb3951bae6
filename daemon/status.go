package daemon

import (
	"context"
	"fmt"

	"github.com/leasehold/leasehold/config"
	"github.com/leasehold/leasehold/daemon/statusapi"
	"github.com/leasehold/leasehold/fencing"
	"github.com/leasehold/leasehold/lvs"
	"github.com/leasehold/leasehold/node"
	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/vrrp"
)

// StatusDoc is the JSON of GET /status (and what `leasehold status` prints).
type StatusDoc struct {
	Node        string             `json:"node"`
	Quorum      string             `json:"quorum"`
	Session     string             `json:"session,omitempty"`
	Fence       string             `json:"fence,omitempty"`
	Warning     string             `json:"warning,omitempty"`
	Groups      []node.GroupStatus `json:"groups,omitempty"`
	Instances   []vrrp.Status      `json:"instances"`
	SocketDrops map[string]uint64  `json:"socket_drops,omitempty"`
	// Members: lease mode, each instance's members (self, configured
	// peers, nodes registered at the quorum); adverts from anyone else
	// are dropped and listed as the instance's foreign_speakers.
	Members map[string][]node.RosterEntry `json:"members,omitempty"`
	// DRBD: the groups' DRBD resources, as /proc/drbd says now.
	DRBD []DRBDStatus `json:"drbd,omitempty"`
	// MySQL: the groups' MySQL servers.
	MySQL []MySQLStatus `json:"mysql,omitempty"`
	// LVS: the virtual servers, their real servers with check state and
	// weight (virtual_server configured).
	LVS *lvs.Status `json:"lvs,omitempty"`
	// LVSSync: the connection-sync daemons (lvs_sync_daemon configured).
	LVSSync *lvs.SyncStatus `json:"lvs_sync,omitempty"`
}

// NoQuorumWarning is the status warning of a node without a quorum.
const NoQuorumWarning = "quorum none: plain VRRP, NO split-brain protection"

// Status is the node's state now. It reads each group's and instance's
// own snapshot and takes no lock across kernel or quorum calls.
func (d *Daemon) Status() StatusDoc {
	doc := StatusDoc{Node: d.cfg.Node.Name, Quorum: d.cfg.Quorum.Backend, SocketDrops: map[string]uint64{}}
	if d.cfg.Quorum.Backend == config.BackendNone {
		doc.Warning = NoQuorumWarning
	} else {
		var sess quorum.Session
		if super := d.super.Load(); super != nil {
			sess = super.Session()
		}
		doc.Quorum = describeQuorum(d.cfg, sess)
		doc.Fence = d.fenceDesc
		if _, ok := d.fence.(fencing.LifetimeOnly); ok {
			doc.Warning = "nftables fence not in use: " + d.fenceDesc
		}
	}
	for _, g := range d.groups {
		doc.Groups = append(doc.Groups, g.Status())
	}
	for _, r := range d.rosters {
		if doc.Members == nil {
			doc.Members = map[string][]node.RosterEntry{}
		}
		doc.Members[r.Instance()] = r.Members()
	}
	for _, in := range d.insts {
		doc.Instances = append(doc.Instances, in.Status())
	}
	for _, r := range d.drbd {
		doc.DRBD = append(doc.DRBD, r.status())
	}
	for _, r := range d.mysql {
		doc.MySQL = append(doc.MySQL, r.status())
	}
	for _, m := range d.muxes {
		for k, v := range m.Drops().Snapshot() {
			doc.SocketDrops[k] += v
		}
	}
	if d.lvs != nil {
		st := d.lvs.Status()
		doc.LVS = &st
	}
	if d.lvsSync != nil {
		st := d.lvsSync.Status()
		doc.LVSSync = &st
	}
	return doc
}

// serveStatus serves the status API (bounded: see package statusapi)
// until the returned stop is called (after the daemon's own shutdown, so
// the stop can be watched); stop waits for it to end.
func (d *Daemon) serveStatus() (func(), error) {
	l, err := d.plat.StatusListener(d.cfg.Status.Listen)
	if err != nil {
		return nil, fmt.Errorf("status listener %s: %w", d.cfg.Status.Listen, err)
	}
	if l == nil {
		return func() {}, nil
	}
	srv, err := statusapi.NewServer(statusapi.Options{Listener: l, Status: func() any { return d.Status() },
		Metrics: d.metrics.handler(), Pprof: d.cfg.Status.Pprof, Log: d.log})
	if err != nil {
		l.Close()
		return nil, err
	}
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Run(sctx); err != nil {
			d.log.Error("status API stopped", "err", err)
		}
	}()
	d.log.Info("status API listening", "addr", d.cfg.Status.Listen, "pprof", d.cfg.Status.Pprof)
	return func() { stop(); <-done }, nil
}
