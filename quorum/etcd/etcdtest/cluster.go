// Package etcdtest runs real etcd members in-process (server/v3/embed) on
// 127.0.0.1 for tests, with a TCP proxy per contender and member so that one
// contender can be cut off. Cluster implements quorumtest.Cluster.
package etcdtest

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/quorum/etcd"
	"github.com/leasehold/leasehold/quorum/quorumtest"
	"github.com/leasehold/leasehold/test/freeport"
)

// Tuned server timings: heartbeat 50 ms, election 500 ms give a minimum lease
// TTL of ceil(1.5 × 500 ms) = 1 s.
const (
	TickMs     = 50
	ElectionMs = 500
)

// Options shape a cluster.
type Options struct {
	Members int
	// ClientTLS, when set, serves clients over https with it.
	ClientTLS *transport.TLSInfo
}

// Cluster is a set of embedded etcd members.
type Cluster struct {
	t       testing.TB
	opts    Options
	members []*member

	mu      sync.Mutex
	proxies map[string][]*quorumtest.Proxy // by contender node
	admin   *clientv3.Client
}

var _ quorumtest.Cluster = (*Cluster)(nil)

type member struct {
	name      string
	dir       string
	peerURL   url.URL
	clientURL url.URL
	e         *embed.Etcd // nil while stopped
}

// Start runs a cluster of n members and stops it in t.Cleanup.
func Start(t testing.TB, n int) *Cluster { return StartOptions(t, Options{Members: n}) }

// StartOptions runs a cluster shaped by o and stops it in t.Cleanup.
func StartOptions(t testing.TB, o Options) *Cluster {
	t.Helper()
	if o.Members < 1 {
		o.Members = 1
	}
	c := &Cluster{t: t, opts: o, proxies: map[string][]*quorumtest.Proxy{}}
	scheme := "http"
	if o.ClientTLS != nil {
		scheme = "https"
	}
	base := t.TempDir()
	for i := range o.Members {
		c.members = append(c.members, &member{
			name:      fmt.Sprintf("m%d", i),
			dir:       filepath.Join(base, fmt.Sprintf("m%d", i)),
			peerURL:   url.URL{Scheme: "http", Host: freeport.Addr(t)},
			clientURL: url.URL{Scheme: scheme, Host: freeport.Addr(t)},
		})
	}
	t.Cleanup(c.shutdown)
	c.StartAll(t)
	return c
}

func (c *Cluster) config(m *member) *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = m.name
	cfg.Dir = m.dir
	cfg.ListenPeerUrls = []url.URL{m.peerURL}
	cfg.AdvertisePeerUrls = []url.URL{m.peerURL}
	cfg.ListenClientUrls = []url.URL{m.clientURL}
	cfg.AdvertiseClientUrls = []url.URL{m.clientURL}
	var ic []string
	for _, o := range c.members {
		ic = append(ic, o.name+"="+o.peerURL.String())
	}
	cfg.InitialCluster = strings.Join(ic, ",")
	cfg.InitialClusterToken = "leasehold-test"
	cfg.TickMs = TickMs
	cfg.ElectionMs = ElectionMs
	cfg.UnsafeNoFsync = true
	cfg.EnableGRPCGateway = false
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	if c.opts.ClientTLS != nil {
		cfg.ClientTLSInfo = *c.opts.ClientTLS
	}
	return cfg
}

func (c *Cluster) startMembers(t testing.TB, ms []*member) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(ms))
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := embed.StartEtcd(c.config(m))
			if err != nil {
				errs[i] = fmt.Errorf("start %s: %w", m.name, err)
				return
			}
			m.e = e
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for _, m := range ms {
		select {
		case <-m.e.Server.ReadyNotify():
		case err := <-m.e.Err():
			t.Fatalf("%s: %v", m.name, err)
		case <-timeout.C:
			t.Fatalf("%s not ready after 30 s", m.name)
		}
		c.memberProxies(m, true)
	}
}

// memberProxies sets every contender proxy in front of m down or up.
func (c *Cluster) memberProxies(m *member, up bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ps := range c.proxies {
		for _, p := range ps {
			if p.Target() != m.clientURL.Host {
				continue
			}
			if up {
				p.Up()
			} else {
				p.Down()
			}
		}
	}
}

// stopMember crashes m: its client connections are reset (so the server
// does not wait for open streams) and it stops without handing over
// leadership.
func (c *Cluster) stopMember(m *member) {
	if m.e == nil {
		return
	}
	c.memberProxies(m, false)
	m.e.Server.HardStop()
	m.e.Close()
	m.e = nil
}

func (c *Cluster) shutdown() {
	c.mu.Lock()
	for _, ps := range c.proxies {
		for _, p := range ps {
			p.Close()
		}
	}
	c.proxies = map[string][]*quorumtest.Proxy{}
	if c.admin != nil {
		c.admin.Close()
		c.admin = nil
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range c.members {
		if m.e == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.e.Server.HardStop()
			m.e.Close()
			m.e = nil
		}()
	}
	wg.Wait()
}

// Name is "etcd-<members>".
func (c *Cluster) Name() string { return fmt.Sprintf("etcd-%d", len(c.members)) }

// MinTTL is 1 s: the members are tuned for it.
func (c *Cluster) MinTTL() time.Duration { return etcd.MinTTL }

// Endpoints are the members' client URLs (no proxy).
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.clientURL.String())
	}
	return eps
}

// Config is a backend configuration that reaches the members directly.
func (c *Cluster) Config() etcd.Config {
	cfg := etcd.DefaultConfig()
	cfg.Endpoints = c.Endpoints()
	return cfg
}

// Logger logs backend warnings to stderr.
func Logger(node string) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", node)
}

// Backend returns an etcd backend for node whose connections go through
// node's own proxies (one per member).
func (c *Cluster) Backend(t testing.TB, node string, opts quorum.Options) quorum.Backend {
	t.Helper()
	return c.EtcdBackend(t, node, opts)
}

// EtcdBackend is Backend with the concrete type (for Requests()).
func (c *Cluster) EtcdBackend(t testing.TB, node string, opts quorum.Options) *etcd.Backend {
	t.Helper()
	cfg := etcd.DefaultConfig()
	c.mu.Lock()
	for _, m := range c.members {
		p, err := quorumtest.StartProxy(m.clientURL.Host)
		if err != nil {
			c.mu.Unlock()
			t.Fatal(err)
		}
		c.proxies[node] = append(c.proxies[node], p)
		cfg.Endpoints = append(cfg.Endpoints, m.clientURL.Scheme+"://"+p.Addr())
	}
	c.mu.Unlock()
	b, err := etcd.New(cfg, opts, Logger(node))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// Partition blackholes every proxy of node.
func (c *Cluster) Partition(t testing.TB, node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.proxies[node]) == 0 {
		t.Fatalf("partition: no connections for %s", node)
	}
	for _, p := range c.proxies[node] {
		p.Blackhole()
	}
}

// Heal undoes Partition.
func (c *Cluster) Heal(t testing.TB, node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.proxies[node] {
		p.Heal()
	}
}

// Leader returns the member that is leader now, waiting up to 10 s for one.
func (c *Cluster) Leader(t testing.TB) string {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	limit := time.Now().Add(10 * time.Second)
	for time.Now().Before(limit) {
		for _, m := range c.members {
			if m.e != nil && m.e.Server.Leader() == m.e.Server.MemberID() {
				return m.name
			}
		}
		<-tick.C
	}
	t.Fatal("no etcd leader after 10 s")
	return ""
}

func (c *Cluster) member(t testing.TB, name string) *member {
	for _, m := range c.members {
		if m.name == name {
			return m
		}
	}
	t.Fatalf("no member %q", name)
	return nil
}

// KillLeader stops the leader member.
func (c *Cluster) KillLeader(t testing.TB) string {
	t.Helper()
	name := c.Leader(t)
	c.stopMember(c.member(t, name))
	return name
}

// Restart starts a stopped member with its data.
func (c *Cluster) Restart(t testing.TB, name string) {
	t.Helper()
	m := c.member(t, name)
	if m.e != nil {
		t.Fatalf("restart: %s is running", name)
	}
	c.startMembers(t, []*member{m})
}

// StopAll stops every member.
func (c *Cluster) StopAll(t testing.TB) {
	var wg sync.WaitGroup
	for _, m := range c.members {
		wg.Add(1)
		go func() { defer wg.Done(); c.stopMember(m) }()
	}
	wg.Wait()
}

// StartAll starts every stopped member and waits until all are ready.
func (c *Cluster) StartAll(t testing.TB) {
	t.Helper()
	var ms []*member
	for _, m := range c.members {
		if m.e == nil {
			ms = append(ms, m)
		}
	}
	c.startMembers(t, ms)
}

// WriteRaw puts value under the group's key with no lease, as another tool would.
func (c *Cluster) WriteRaw(t testing.TB, group string, value []byte) {
	t.Helper()
	cli := c.adminClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, etcd.DefaultConfig().Prefix+"groups/"+group, string(value)); err != nil {
		t.Fatalf("write raw %q: %v", group, err)
	}
}

func (c *Cluster) adminClient(t testing.TB) *clientv3.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.admin != nil {
		return c.admin
	}
	if c.opts.ClientTLS != nil {
		t.Fatal("etcdtest: no admin client for a TLS cluster")
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	c.admin = cli
	return cli
}
