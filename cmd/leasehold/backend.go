package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/leasehold/leasehold/config"
	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/quorum/etcd"
	"github.com/leasehold/leasehold/quorum/raft"
)

// Default TTLs per backend: etcd's default servers round leases up to 2 s;
// the raft group allows shorter ones.
const (
	defaultEtcdTTL = 2 * time.Second
	defaultRaftTTL = time.Second
)

// quorumOptions turns the config's quorum section into lease timings: the
// defaults scaled to the TTL, then any value the file sets.
func quorumOptions(c *config.Config) quorum.Options {
	q := c.Quorum
	ttl := q.TTL.D()
	if ttl == 0 {
		ttl = defaultEtcdTTL
		if q.Backend == config.BackendRaft {
			ttl = defaultRaftTTL
		}
	}
	o := quorum.ScaledOptions(ttl)
	if ttl == defaultEtcdTTL {
		o = quorum.DefaultOptions()
	}
	set := func(dst *time.Duration, v config.Duration) {
		if v != 0 {
			*dst = v.D()
		}
	}
	set(&o.RenewInterval, q.RenewInterval)
	set(&o.Drift, q.Drift)
	set(&o.Margin, q.Margin)
	set(&o.DemoteBudget, q.DemoteBudget)
	set(&o.RequestTimeout, q.RequestTimeout)
	o.Node = c.Node.Name
	return o
}

// raftTLS returns the raft TLS settings, nil when off.
func raftTLS(r config.Raft) *raft.TLSConfig {
	if r.CertFile == "" {
		return nil
	}
	return &raft.TLSConfig{CertFile: r.CertFile, KeyFile: r.KeyFile, CAFile: r.CAFile}
}

// openBackend connects to the configured quorum as a client.
func openBackend(c *config.Config, log *slog.Logger) (quorum.Backend, error) {
	opts := quorumOptions(c)
	switch c.Quorum.Backend {
	case config.BackendEtcd:
		e := c.Quorum.Etcd
		ec := etcd.DefaultConfig()
		ec.Endpoints = e.Endpoints
		if e.Prefix != "" {
			ec.Prefix = e.Prefix
		}
		ec.CertFile, ec.KeyFile, ec.CAFile = e.CertFile, e.KeyFile, e.CAFile
		ec.Username, ec.Password = e.Username, e.Password
		if e.DialTimeout != 0 {
			ec.DialTimeout = e.DialTimeout.D()
		}
		return etcd.New(ec, opts, log)
	case config.BackendRaft:
		r := c.Quorum.Raft
		// The local voter first: it forwards to the leader.
		addrs := []string{}
		if r.ClientBind != "" {
			addrs = append(addrs, r.ClientBind)
		}
		for _, p := range r.Peers {
			if p.Client != "" && p.Client != r.ClientBind {
				addrs = append(addrs, p.Client)
			}
		}
		return raft.NewBackend(addrs, raftTLS(r), opts, log)
	}
	return nil, fmt.Errorf("quorum backend %q has no leases (want etcd or raft)", c.Quorum.Backend)
}

// raftMemberConfig builds this node's (or the witness's) raft voter.
func raftMemberConfig(c *config.Config, witness bool) raft.Config {
	r := c.Quorum.Raft
	rc := raft.DefaultConfig()
	rc.ID, rc.BindAddr, rc.ClientAddr, rc.DataDir = r.ID, r.Bind, r.ClientBind, r.DataDir
	for _, p := range r.Peers {
		rc.Peers = append(rc.Peers, raft.Peer{ID: p.ID, Addr: p.Addr, ClientAddr: p.Client})
	}
	rc.TLS = raftTLS(r)
	rc.Witness = witness
	if v := r.HeartbeatTimeout.D(); v != 0 {
		rc.HeartbeatTimeout = v
	}
	if v := r.ElectionTimeout.D(); v != 0 {
		rc.ElectionTimeout = v
	}
	if v := r.LeaderLeaseTimeout.D(); v != 0 {
		rc.LeaderLeaseTimeout = v
	}
	return rc
}
