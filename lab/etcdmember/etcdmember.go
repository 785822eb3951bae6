// Package etcdmember runs one embedded etcd member
// (go.etcd.io/etcd/server/v3/embed) as a real server for the lab and the
// acceptance tests, tuned for 1 s lease TTLs (heartbeat 50 ms, election
// 500 ms).
//
// Guarantees: Run returns only after the member has stopped (its listeners
// closed); it returns an error if the member is not ready within
// Options.ReadyTimeout. Not guaranteed: data survives (the lab throws it
// away).
package etcdmember

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// ErrBadOptions is returned for missing or malformed options.
var ErrBadOptions = errors.New("etcdmember: bad options")

// Options configure one member.
type Options struct {
	Name    string // member name (default q1)
	DataDir string // required
	Client  string // client URL to listen on and advertise
	Peer    string // peer URL to listen on and advertise
	// Cluster is the initial cluster (name=peerURL,...); default: this
	// member alone.
	Cluster      string
	ReadyTimeout time.Duration // default 60 s
}

// Flags registers the options on fs (the flags of leasehold-lab-etcd).
func (o *Options) Flags(fs *flag.FlagSet) {
	fs.StringVar(&o.Name, "name", "q1", "member name")
	fs.StringVar(&o.DataDir, "data", "", "data directory (required)")
	fs.StringVar(&o.Client, "client", "http://127.0.0.1:2379", "client URL to listen on and advertise")
	fs.StringVar(&o.Peer, "peer", "http://127.0.0.1:2380", "peer URL to listen on and advertise")
	fs.StringVar(&o.Cluster, "cluster", "", "initial cluster (name=peerURL,...); default: this member alone")
}

// Run starts the member and serves until ctx ends or the server fails.
func Run(ctx context.Context, o Options, log *slog.Logger) error {
	if o.DataDir == "" {
		return fmt.Errorf("%w: data directory is required", ErrBadOptions)
	}
	if o.Name == "" {
		o.Name = "q1"
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 60 * time.Second
	}
	cfg := embed.NewConfig()
	cfg.Name, cfg.Dir = o.Name, o.DataDir
	cu, err := url.Parse(o.Client)
	if err != nil {
		return fmt.Errorf("%w: client URL: %v", ErrBadOptions, err)
	}
	pu, err := url.Parse(o.Peer)
	if err != nil {
		return fmt.Errorf("%w: peer URL: %v", ErrBadOptions, err)
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = o.Name + "=" + o.Peer
	if o.Cluster != "" {
		cfg.InitialCluster = o.Cluster
	}
	cfg.TickMs, cfg.ElectionMs = 50, 500
	cfg.LogLevel = "error"
	cfg.Logger = "zap"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("etcdmember: start: %w", err)
	}
	defer e.Close()
	t := time.NewTimer(o.ReadyTimeout)
	defer t.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case <-t.C:
		return fmt.Errorf("etcdmember: not ready after %v", o.ReadyTimeout)
	case <-ctx.Done():
		return nil
	}
	log.Info("etcd ready", "name", o.Name, "client", o.Client, "members", strings.Count(cfg.InitialCluster, "="))
	select {
	case <-ctx.Done():
		return nil
	case err := <-e.Err():
		return fmt.Errorf("etcdmember: %w", err)
	}
}
