package statusapi_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os/signal"
	"syscall"

	"github.com/leasehold/leasehold/daemon/statusapi"
)

// The daemon's wiring: the server runs beside the other components until
// the signal context ends.
func ExampleNewServer() {
	var metrics http.Handler // promhttp.HandlerFor(registry, promhttp.HandlerOpts{})
	srv, err := statusapi.NewServer(statusapi.Options{
		Listen:  "unix:/run/leasehold/leasehold.sock",
		Status:  func() any { return map[string]string{"node": "n1"} }, // the daemon's status document
		Metrics: metrics,
		Pprof:   false, // opt-in; unix sockets only
		Log:     slog.Default(),
	})
	if err != nil {
		fmt.Println(err) // e.g. pprof asked for on a TCP address
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go srv.Run(ctx) // returns after ctx ends, connections closed within ShutdownTimeout
}

// A poller keeps one Client per daemon for its whole life.
func ExampleClient() {
	c := statusapi.NewClient("unix:/run/leasehold/leasehold.sock")
	defer c.CloseIdleConnections()
	var st struct {
		Node string `json:"node"`
	}
	if err := c.Status(context.Background(), &st); err != nil {
		fmt.Println("daemon not answering:", err)
	}
}
