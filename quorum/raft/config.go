package raft

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	hraft "github.com/hashicorp/raft"
)

// Peer is one voter of the raft group.
type Peer struct {
	// ID is the voter's raft server ID (unique, stable across restarts).
	ID string `yaml:"id" json:"id"`
	// Addr is its raft transport address (host:port).
	Addr string `yaml:"addr" json:"addr"`
	// ClientAddr is its client API address (host:port), used to point
	// clients at the leader. May be empty for a voter that serves no clients.
	ClientAddr string `yaml:"client_addr" json:"client_addr,omitempty"`
}

// TLSConfig enables mutual TLS on the raft transport and the client API.
// Every party presents CertFile/KeyFile and accepts only peers whose
// certificate chains to CAFile.
type TLSConfig struct {
	CertFile string `yaml:"cert_file" json:"cert_file"`
	KeyFile  string `yaml:"key_file" json:"key_file"`
	CAFile   string `yaml:"ca_file" json:"ca_file"`
}

// Config configures one raft voter (a Member).
type Config struct {
	// ID is this voter's raft server ID; it must appear in Peers.
	ID string
	// BindAddr is the raft transport address (host:port) to listen on.
	BindAddr string
	// ClientAddr is the client API address (host:port) to listen on.
	ClientAddr string
	// Peers lists every voter, this one and the witness included. It is the
	// voter set bootstrapped when the data directory is empty.
	Peers []Peer
	// DataDir holds the write-ahead log, the stable store and snapshots.
	DataDir string
	// TLS, if set, requires mutual TLS on the transport and client API.
	TLS *TLSConfig
	// HeartbeatTimeout, ElectionTimeout and LeaderLeaseTimeout are handed
	// to hashicorp/raft.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	// Witness marks a voter that runs no VIPs (informative: a witness is a
	// full voter).
	Witness bool

	// Test seams (set only by this package's tests).
	wrapStream   func(hraft.StreamLayer) hraft.StreamLayer
	wrapListener func(net.Listener) net.Listener
}

// DefaultConfig returns the timings suited to a LAN: 100 ms heartbeat and
// election timeouts, 50 ms leader lease.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   100 * time.Millisecond,
		ElectionTimeout:    100 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond,
	}
}

// rpcTimeout bounds each transport RPC: ten election timeouts, at least 1 s
// (a slow fsync must not look like a dead peer).
func (c Config) rpcTimeout() time.Duration {
	return max(10*c.ElectionTimeout, time.Second)
}

// MinTTL is the smallest session TTL this group accepts. Safety never
// depends on it (a new leader restarts every lease with the full TTL); it
// keeps leases alive across a leader change: a follower notices a dead leader
// after 1–2×HeartbeatTimeout and the election takes about ElectionTimeout, so
// the TTL must be at least twice their sum (400 ms with the defaults; measured
// leader changes on loopback take 165–255 ms).
func (c Config) MinTTL() time.Duration {
	return 2 * (c.HeartbeatTimeout + c.ElectionTimeout)
}

// ValidateTTL checks a session TTL against this configuration.
func (c Config) ValidateTTL(ttl time.Duration) error {
	if ttl < c.MinTTL() {
		return fmt.Errorf("raft: ttl %v is below the minimum %v for heartbeat %v and election %v timeouts",
			ttl, c.MinTTL(), c.HeartbeatTimeout, c.ElectionTimeout)
	}
	return nil
}

// Validate checks the configuration, including cross-field rules.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("raft: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.ID == "" {
		bad("id", "must be set")
	}
	if _, _, err := net.SplitHostPort(c.BindAddr); err != nil {
		bad("bind_addr", "%v", err)
	}
	if _, _, err := net.SplitHostPort(c.ClientAddr); err != nil {
		bad("client_addr", "%v", err)
	}
	if c.DataDir == "" {
		bad("data_dir", "must be set")
	}
	seenID := map[string]bool{}
	seenAddr := map[string]bool{}
	self := false
	for i, p := range c.Peers {
		if p.ID == "" || p.Addr == "" {
			bad(fmt.Sprintf("peers[%d]", i), "id and addr must be set")
			continue
		}
		if seenID[p.ID] {
			bad(fmt.Sprintf("peers[%d]", i), "duplicate id %q", p.ID)
		}
		if seenAddr[p.Addr] {
			bad(fmt.Sprintf("peers[%d]", i), "duplicate addr %q", p.Addr)
		}
		seenID[p.ID], seenAddr[p.Addr] = true, true
		if p.ID == c.ID {
			self = true
		}
	}
	if !self {
		bad("peers", "must include this voter %q", c.ID)
	}
	if len(c.Peers) == 2 {
		bad("peers", "2 voters cannot survive the loss of either: use 1, 3 (2 nodes + a witness) or more")
	}
	if c.TLS != nil && (c.TLS.CertFile == "" || c.TLS.KeyFile == "" || c.TLS.CAFile == "") {
		bad("tls", "cert_file, key_file and ca_file must all be set")
	}
	if c.ID != "" {
		if err := hraft.ValidateConfig(c.raftConfig()); err != nil {
			bad("timeouts", "%v", err)
		}
	}
	return errors.Join(errs...)
}

func (c Config) raftConfig() *hraft.Config {
	rc := hraft.DefaultConfig()
	rc.LocalID = hraft.ServerID(c.ID)
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.CommitTimeout = max(c.HeartbeatTimeout/10, time.Millisecond)
	return rc
}

func (c Config) clientAddrOf(id string) string {
	for _, p := range c.Peers {
		if p.ID == id {
			return p.ClientAddr
		}
	}
	return ""
}

// load reads the key pair and CA.
func (t *TLSConfig) load() (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("raft: tls: %w", err)
	}
	pem, err := os.ReadFile(t.CAFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("raft: tls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return tls.Certificate{}, nil, fmt.Errorf("raft: tls: %s: no certificates", t.CAFile)
	}
	return cert, pool, nil
}

// serverConfig requires and verifies client certificates.
func (t *TLSConfig) serverConfig() (*tls.Config, error) {
	cert, pool, err := t.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// clientConfig presents our certificate and verifies the server's against
// the CA (the server name is set per dial from the address).
func (t *TLSConfig) clientConfig() (*tls.Config, error) {
	cert, pool, err := t.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS12,
	}, nil
}
