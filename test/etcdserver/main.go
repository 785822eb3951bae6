// Command etcdserver runs one embedded etcd member (go.etcd.io/etcd/server/v3/embed)
// for the lab and the acceptance tests, so a quorum can live in its own
// network namespace as a real process. Tuned for 1 s lease TTLs
// (heartbeat 50 ms, election 500 ms).
//
//	etcdserver -name q1 -data DIR -client http://10.99.0.250:2379 -peer http://10.99.0.250:2380 \
//	    [-cluster q1=http://...:2380,q2=...]
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	name := flag.String("name", "q1", "member name")
	data := flag.String("data", "", "data directory (required)")
	client := flag.String("client", "http://127.0.0.1:2379", "client URL to listen on and advertise")
	peer := flag.String("peer", "http://127.0.0.1:2380", "peer URL to listen on and advertise")
	cluster := flag.String("cluster", "", "initial cluster (name=peerURL,...); default: this member alone")
	flag.Parse()
	if *data == "" {
		fmt.Fprintln(os.Stderr, "etcdserver: -data is required")
		os.Exit(2)
	}
	cfg := embed.NewConfig()
	cfg.Name, cfg.Dir = *name, *data
	cu, err1 := url.Parse(*client)
	pu, err2 := url.Parse(*peer)
	if err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "etcdserver: bad URL")
		os.Exit(2)
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = *name + "=" + *peer
	if *cluster != "" {
		cfg.InitialCluster = *cluster
	}
	cfg.TickMs, cfg.ElectionMs = 50, 500
	cfg.LogLevel = "error"
	cfg.Logger = "zap"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcdserver:", err)
		os.Exit(1)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		fmt.Fprintln(os.Stderr, "etcdserver: not ready after 60 s")
		e.Close()
		os.Exit(1)
	}
	slog.Info("etcd ready", "name", *name, "client", *client, "members", strings.Count(cfg.InitialCluster, "="))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
	case err := <-e.Err():
		fmt.Fprintln(os.Stderr, "etcdserver:", err)
	}
	e.Close()
}
