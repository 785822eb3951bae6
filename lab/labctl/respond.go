package labctl

import (
	"context"
	"fmt"
	"net"
	"time"
)

// Respond answers every TCP connection on port (all addresses, so also on
// the VIP whenever this node has it) with name and a newline: the process
// form of netlab.Responder, for a lab that outlives the command that
// brought it up (`leasehold lab responder`).
func Respond(ctx context.Context, port uint16, name string) error {
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		return fmt.Errorf("labctl: responder: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer ln.Close()
	line := []byte(name + "\n")
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return fmt.Errorf("labctl: responder: accept: %w", err)
		}
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write(line)
		c.Close()
	}
}
