package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/leasehold/leasehold/config"
	"github.com/leasehold/leasehold/fencing"
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
	for _, m := range d.muxes {
		for k, v := range m.Drops().Snapshot() {
			doc.SocketDrops[k] += v
		}
	}
	return doc
}

// listen opens the status listener: "unix:/path" or a loopback host:port.
func listen(spec string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(spec, "unix:"); ok {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		l, err := net.Listen("unix", path)
		if err != nil {
			return nil, err
		}
		return l, os.Chmod(path, 0o660)
	}
	return net.Listen("tcp", spec)
}

// serveStatus serves the status API until the returned stop is called.
func (d *Daemon) serveStatus(ctx context.Context) (func(), error) {
	l, err := d.plat.StatusListener(d.cfg.Status.Listen)
	if err != nil {
		return nil, fmt.Errorf("status listener %s: %w", d.cfg.Status.Listen, err)
	}
	if l == nil {
		return func() {}, nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(d.Status())
	})
	mux.Handle("GET /metrics", d.metrics.handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	d.log.Info("status API listening", "addr", d.cfg.Status.Listen)
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}, nil
}
