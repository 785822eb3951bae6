package labctl

import (
	"context"
	"fmt"
	"net"

	"github.com/leasehold/leasehold/lab/netlab"
)

// Respond answers every TCP connection on port (all addresses, so also on
// the VIP whenever this node has it) with name, as an HTTP/1.1 response
// (netlab.Answer: `curl VIP:PORT` prints it): the process form of
// netlab.Responder, for a lab that outlives the command that brought it up
// (`leasehold lab responder`).
func Respond(ctx context.Context, port uint16, name string) error {
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		return fmt.Errorf("labctl: responder: %w", err)
	}
	defer ln.Close()
	if err := netlab.Serve(ctx, ln, name); err != nil {
		return fmt.Errorf("labctl: responder: %w", err)
	}
	return nil
}
