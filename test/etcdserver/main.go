// Command etcdserver runs one embedded etcd member (package
// lab/etcdmember) for the acceptance tests, so a quorum can live in its
// own network namespace as a real process. The lab runs the same member as
// `leasehold lab etcd-member`.
//
//	etcdserver -name q1 -data DIR -client http://10.99.0.250:2379 -peer http://10.99.0.250:2380 \
//	    [-cluster q1=http://...:2380,q2=...]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/leasehold/leasehold/lab/etcdmember"
)

func main() {
	var o etcdmember.Options
	o.Flags(flag.CommandLine)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := etcdmember.Run(ctx, o, slog.Default()); err != nil {
		fmt.Fprintln(os.Stderr, "etcdserver:", err)
		os.Exit(1)
	}
}
