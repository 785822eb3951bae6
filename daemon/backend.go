package daemon

import (
	"fmt"
	"log/slog"

	"github.com/leasehold/leasehold/config"
	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/quorum/etcd"
	"github.com/leasehold/leasehold/quorum/raft"
)

// OpenQuorum connects to the plan's quorum as a client (etcd, or the raft
// group through its voters' client APIs).
func OpenQuorum(p *Plan, log *slog.Logger) (quorum.Backend, error) {
	switch p.Config.Quorum.Backend {
	case config.BackendEtcd:
		return etcd.New(p.Etcd, p.Quorum, log)
	case config.BackendRaft:
		return raft.NewBackend(p.RaftClients, p.Raft.TLS, p.Quorum, log)
	}
	return nil, fmt.Errorf("quorum backend %q has no leases (want etcd or raft)", p.Config.Quorum.Backend)
}

// OpenQuorumClient connects to c's quorum as a client that never holds a
// lease (the `leasehold lease` CLI): only the client side of the quorum
// section matters, no voter is configured.
func OpenQuorumClient(c *config.Config, log *slog.Logger) (quorum.Backend, error) {
	p := &Plan{Config: c, Quorum: quorumOptions(c), Etcd: etcdConfig(c.Quorum.Etcd), RaftClients: raftClients(c.Quorum.Raft)}
	p.Raft.TLS = raftTLS(c.Quorum.Raft)
	return OpenQuorum(p, log)
}
