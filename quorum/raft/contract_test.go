package raft

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/quorum/quorumtest"
)

// raftCluster runs the contract against three real voters. Each contender's
// backend dials through its own hole, so Partition cuts only that contender.
type raftCluster struct {
	v     *voters
	mu    sync.Mutex
	holes map[string]*hole
}

var _ quorumtest.Cluster = (*raftCluster)(nil)

func startRaftCluster(t *testing.T) quorumtest.Cluster {
	return &raftCluster{v: startVoters(t, 3, nil), holes: map[string]*hole{}}
}

func TestContract(t *testing.T) {
	quorumtest.RunContract(t, startRaftCluster)
}

func (c *raftCluster) Name() string          { return "raft-3" }
func (c *raftCluster) MinTTL() time.Duration { return c.v.cfgs[0].MinTTL() }

func (c *raftCluster) Backend(t testing.TB, node string, opts quorum.Options) quorum.Backend {
	c.mu.Lock()
	h, ok := c.holes[node]
	if !ok {
		h = newHole()
		c.holes[node] = h
	}
	c.mu.Unlock()
	return newBackend(t, c.v.clientAddrs(), nil, opts, WithDialer(h.dial))
}

func (c *raftCluster) hole(node string) *hole {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.holes[node]
}

func (c *raftCluster) Partition(t testing.TB, node string) { c.hole(node).set(true) }
func (c *raftCluster) Heal(t testing.TB, node string)      { c.hole(node).set(false) }

func (c *raftCluster) KillLeader(t testing.TB) string {
	t.Helper()
	l := c.v.waitLeader()
	c.v.stop(l)
	return c.v.cfgs[l].ID
}

func (c *raftCluster) Restart(t testing.TB, member string) {
	t.Helper()
	for i, cfg := range c.v.cfgs {
		if cfg.ID == member {
			c.v.start(i)
			return
		}
	}
	t.Fatalf("no member %q", member)
}

func (c *raftCluster) StopAll(t testing.TB) { c.v.stopAll() }

func (c *raftCluster) StartAll(t testing.TB) {
	for i := range c.v.members {
		if c.v.members[i] == nil {
			c.v.start(i)
		}
	}
	c.v.waitLeader()
}

func (c *raftCluster) WriteRaw(t testing.TB, group string, value []byte) {
	t.Helper()
	var err error
	for range 50 {
		l := c.v.waitLeader()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = c.v.members[l].writeRaw(ctx, group, value)
		cancel()
		if err == nil {
			return
		}
	}
	t.Fatalf("write raw %s: %v", group, err)
}
