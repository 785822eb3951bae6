package statusapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// Client defaults.
const (
	// DefaultTimeout bounds every call (dial, request, whole body).
	DefaultTimeout = 2 * time.Second
	// clientIdle is below DefaultIdleTimeout: the client drops an idle
	// connection before the server would, so a reused connection is never
	// one the server is closing.
	clientIdle = 2 * time.Second
	// maxBody caps what one answer may hold (/metrics of 100 groups is
	// well below).
	maxBody = 16 << 20
)

// Client reads one daemon's status API over a single reused transport.
// It is safe for concurrent use; keep one per daemon.
type Client struct {
	spec string
	base string
	tr   *http.Transport
	hc   *http.Client
}

// NewClient returns a client for spec ("unix:/path" or host:port). It
// opens nothing until the first call.
func NewClient(spec string) *Client {
	c := &Client{spec: spec}
	dialer := &net.Dialer{Timeout: DefaultTimeout}
	c.tr = &http.Transport{
		MaxIdleConns:          2,
		MaxIdleConnsPerHost:   2,
		MaxConnsPerHost:       4,
		IdleConnTimeout:       clientIdle,
		ResponseHeaderTimeout: DefaultTimeout,
		DisableCompression:    true,
	}
	if path, ok := strings.CutPrefix(spec, "unix:"); ok {
		c.base = "http://leasehold"
		c.tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", path)
		}
	} else {
		c.base = "http://" + spec
		c.tr.DialContext = dialer.DialContext
	}
	c.hc = &http.Client{Transport: c.tr, Timeout: DefaultTimeout}
	return c
}

// Spec returns the address the client reads.
func (c *Client) Spec() string { return c.spec }

// Get returns the body of GET path; a status other than 200 is an error.
// A GET that fails on the connection (closed or reset, not a timeout) is
// tried twice more on a fresh one: a server at its connection cap closes
// idle and silent connections to make room.
func (c *Client) Get(ctx context.Context, path string) ([]byte, error) {
	b, err := c.get(ctx, path)
	for i := 0; i < 2 && err != nil && ctx.Err() == nil && retryable(err); i++ {
		b, err = c.get(ctx, path)
	}
	return b, err
}

func retryable(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errHTTPStatus) {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

var errHTTPStatus = errors.New("statusapi: HTTP status")

func (c *Client) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("statusapi: %w", err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("statusapi: GET %s on %s: %w", path, c.spec, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("statusapi: GET %s on %s: %w", path, c.spec, err)
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("statusapi: GET %s on %s: answer larger than %d bytes", path, c.spec, maxBody)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: GET %s on %s: %s: %.200s", errHTTPStatus, path, c.spec, resp.Status, b)
	}
	return b, nil
}

// Status decodes GET /status into v.
func (c *Client) Status(ctx context.Context, v any) error {
	b, err := c.Get(ctx, "/status")
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("statusapi: /status on %s: %w", c.spec, err)
	}
	return nil
}

// Metrics returns the Prometheus text of GET /metrics.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	b, err := c.Get(ctx, "/metrics")
	return string(b), err
}

// CloseIdleConnections closes the client's idle keep-alive connections
// (call it when done with a daemon; the Client stays usable).
func (c *Client) CloseIdleConnections() { c.tr.CloseIdleConnections() }

// PeerPID returns the PID of the process serving a unix socket (the
// kernel's SO_PEERCRED of a fresh connection).
func (c *Client) PeerPID(ctx context.Context) (int, error) {
	path, ok := strings.CutPrefix(c.spec, "unix:")
	if !ok {
		return 0, fmt.Errorf("statusapi: %s is not a unix socket: no peer PID", c.spec)
	}
	d := net.Dialer{Timeout: DefaultTimeout}
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return 0, fmt.Errorf("statusapi: %w", err)
	}
	defer conn.Close()
	raw, err := conn.(*net.UnixConn).SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("statusapi: %w", err)
	}
	var cred *syscall.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return 0, fmt.Errorf("statusapi: %w", err)
	}
	if serr != nil {
		return 0, fmt.Errorf("statusapi: SO_PEERCRED on %s: %w", path, serr)
	}
	return int(cred.Pid), nil
}
