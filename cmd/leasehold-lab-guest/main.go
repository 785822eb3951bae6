// Command leasehold-lab-guest is the agent inside a lab VM (lab/vm): the
// host's only way to run things in the guest besides the kernel command
// line. The image's /init runs it as
//
//	leasehold-lab-guest -port ctl [-dir /root]
//
// in a respawn loop (-dir is the working directory of exec and spawn). It is a static binary (CGO_ENABLED=0), standard
// library and golang.org/x/sys only, so it runs in a busybox initramfs.
//
// It finds the virtio-serial port whose /sys/class/virtio-ports/*/name is
// the -port value (waiting for it to appear), opens /dev/vportNpM read-write
// once (the port can be open only once) and serves JSON lines on it:
// requests {"id":N,"op":...}, replies {"id":N,...} with "err" on failure,
// each request in its own goroutine, replies whole lines in completion
// order. While the host side of the port is not connected reads return
// EOF; the agent then closes the port, and reopens it 200 ms later.
//
// Ops (package lab/vm/agent has the details and the wire types):
//
//	exec   {"script":S,"timeout_ms":T}          → {"rc":N,"out":S[,"truncated":true]}
//	       /bin/sh -c S in /root, stdin /dev/null; rc -1 when the timeout
//	       killed its process group; out is stdout+stderr, capped at 1 MiB
//	spawn  {"argv":[...],"log":PATH}            → {"pid":P,"start_time":S}
//	       own session, output appended to PATH, reaped by the agent;
//	       S is field 22 of /proc/P/stat
//	signal {"pid":P,"start_time":S,"sig":N}     → {} only if P still has start time S
//	alive  {"pid":P,"start_time":S}             → {"alive":bool}
//	http   {"unix":SOCK,"method":M,"path":P,"body":B,"timeout_ms":T}
//	                                            → {"status":N,"body":S}
//
// Bounds: at most 64 requests in flight (more are refused with "err"),
// request lines of at most 4 MiB.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/leasehold/leasehold/lab/vm/agent"
)

const retry = 200 * time.Millisecond

func main() {
	port := flag.String("port", "ctl", "name of the virtio-serial port to serve")
	dir := flag.String("dir", "/root", "working directory of exec and spawn")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv := agent.NewServer(*dir, "/bin/sh")
	var lastErr string
	logOnce := func(msg string) { // the console is slow under TCG: no repeats
		if msg != lastErr {
			fmt.Fprintln(os.Stderr, "leasehold-lab-guest:", msg)
			lastErr = msg
		}
	}
	for ctx.Err() == nil {
		if err := serveOnce(ctx, srv, *port); err != nil {
			logOnce(err.Error())
		}
		select {
		case <-ctx.Done():
		case <-time.After(retry):
		}
	}
}

// serveOnce opens the port and serves it until a read fails (EOF while
// the host is not connected).
func serveOnce(ctx context.Context, srv *agent.Server, name string) error {
	dev, err := agent.FindPort(name)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("port %s not opened: %w", dev, err)
	}
	stopClose := context.AfterFunc(ctx, func() { f.Close() })
	defer stopClose()
	defer f.Close()
	err = srv.Serve(ctx, f)
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("serving %s: host not connected", dev)
	}
	return fmt.Errorf("serving %s: %w", dev, err)
}
