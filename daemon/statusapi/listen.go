package statusapi

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Sentinel errors.
var (
	// ErrNotLoopback: a TCP status address that is not loopback.
	ErrNotLoopback = errors.New("statusapi: not a loopback address")
	// ErrInUse: a live daemon already serves the unix socket.
	ErrInUse = errors.New("statusapi: socket in use")
	// ErrPprofNotUnix: the profiler was asked for on a TCP listener.
	ErrPprofNotUnix = errors.New("statusapi: pprof is served on a unix socket only")
)

// Listen opens the status listener. spec is "unix:/path" (the directory
// is created, a stale socket left by a dead daemon removed, the socket
// made mode 0660) or a loopback host:port (127.0.0.1:9100, [::1]:9100,
// localhost:9100); any other address is refused with ErrNotLoopback.
func Listen(spec string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(spec, "unix:"); ok {
		return listenUnix(path)
	}
	host, _, err := net.SplitHostPort(spec)
	if err != nil {
		return nil, fmt.Errorf("statusapi: listen %q: want unix:/path or 127.0.0.1:port: %w", spec, err)
	}
	if !loopback(host) {
		return nil, fmt.Errorf("%w: %q: the status API listens on a unix socket or a loopback address only "+
			"(unix:/run/leasehold/leasehold.sock, 127.0.0.1:PORT, [::1]:PORT)", ErrNotLoopback, spec)
	}
	l, err := net.Listen("tcp", spec)
	if err != nil {
		return nil, fmt.Errorf("statusapi: %w", err)
	}
	return l, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func listenUnix(path string) (net.Listener, error) {
	if path == "" {
		return nil, fmt.Errorf("statusapi: listen \"unix:\": no path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("statusapi: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("statusapi: %s exists and is not a socket; not removing it", path)
		}
		if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
			c.Close()
			return nil, fmt.Errorf("%w: %s answers (another leasehold running?)", ErrInUse, path)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("statusapi: remove stale socket: %w", err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("statusapi: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("statusapi: %w", err)
	}
	return l, nil
}
