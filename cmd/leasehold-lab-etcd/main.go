// Command leasehold-lab-etcd runs one embedded etcd member (package
// lab/etcdmember) as a real server process: the quorum of `leasehold lab up
// --quorum etcd` and of the acceptance tests. It is a binary of its own so
// that the daemon does not link etcd's server (measured: 10 MB of binary
// and 5 MiB of RSS at 200 instances; docs/benchmarks.md). `make build`
// puts it beside bin/leasehold, where the lab looks for it.
//
//	leasehold-lab-etcd -name q1 -data DIR -client http://10.99.0.250:2379 -peer http://10.99.0.250:2380 \
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
		fmt.Fprintln(os.Stderr, "leasehold-lab-etcd:", err)
		os.Exit(1)
	}
}
