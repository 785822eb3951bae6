// Package labdaemon runs `leasehold run` inside netlab hosts, with a client
// for its status API (one statusapi.Client per Daemon, reused by every
// call). Used by the lab, the drills and the acceptance tests.
package labdaemon

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/leasehold/leasehold/daemon/statusapi"
	"github.com/leasehold/leasehold/lab/netlab"
)

// Daemon is a running `leasehold run` in a lab host (Start), or only the
// status API of one started elsewhere (Attach).
type Daemon struct {
	Host *netlab.Host
	Proc *netlab.Proc
	Sock string
	Dir  string
	log  *SyncBuffer

	clientOnce sync.Once
	client     *statusapi.Client
}

// Attach returns a Daemon for the status API on the unix socket sock of a
// daemon this process did not start (no Host, Proc or log).
func Attach(sock string) *Daemon { return &Daemon{Sock: sock, log: &SyncBuffer{}} }

// Client returns the daemon's status API client, created on first use and
// reused by every later call.
func (d *Daemon) Client() *statusapi.Client {
	d.clientOnce.Do(func() { d.client = statusapi.NewClient("unix:" + d.Sock) })
	return d.client
}

// Close closes the client's idle connections (the Daemon stays usable).
func (d *Daemon) Close() { d.Client().CloseIdleConnections() }

// SyncBuffer is a goroutine-safe bytes.Buffer.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start writes conf (YAML; "%SOCK%" and "%DIR%" are replaced by the status
// socket path and a private directory) and runs the leasehold binary bin in
// host.
func Start(ctx context.Context, bin string, host *netlab.Host, dir, conf string, extraArgs ...string) (*Daemon, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	d := &Daemon{Host: host, Sock: filepath.Join(dir, "lh.sock"), Dir: dir, log: &SyncBuffer{}}
	conf = replaceAll(conf, map[string]string{"%SOCK%": d.Sock, "%DIR%": dir})
	path := filepath.Join(dir, "leasehold.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	args := append([]string{"run", "-c", path, "-log-level", "debug"}, extraArgs...)
	cmd := host.Command(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = d.log, d.log
	var err error
	if d.Proc, err = host.StartCmd(cmd); err != nil {
		return nil, err
	}
	return d, nil
}

func replaceAll(s string, kv map[string]string) string {
	for k, v := range kv {
		s = string(bytes.ReplaceAll([]byte(s), []byte(k), []byte(v)))
	}
	return s
}

// Log is what the daemon printed so far.
func (d *Daemon) Log() string { return d.log.String() }

// Signal sends sig to the daemon.
func (d *Daemon) Signal(sig syscall.Signal) error { return d.Proc.Signal(sig) }

// Kill9 kills the daemon, waits for it and closes the client's idle
// connections.
func (d *Daemon) Kill9() {
	d.Proc.Signal(syscall.SIGKILL)
	d.Proc.Wait(context.Background())
	d.Close()
}

// Status is the part of GET /status tests read.
type Status struct {
	Node    string `json:"node"`
	Quorum  string `json:"quorum"`
	Fence   string `json:"fence"`
	Warning string `json:"warning"`
	Groups  []struct {
		Group      string `json:"group"`
		Role       string `json:"role"`
		Epoch      uint64 `json:"epoch"`
		FenceArmed bool   `json:"fence_armed"`
		LastError  string `json:"last_error"`
	} `json:"groups"`
	Instances []struct {
		Name  string            `json:"name"`
		State string            `json:"state"`
		Drops map[string]uint64 `json:"drops"`
		Recv  uint64            `json:"adverts_received"`
	} `json:"instances"`
	SocketDrops map[string]uint64 `json:"socket_drops"`
}

// Status reads the status API (at most statusapi.DefaultTimeout).
func (d *Daemon) Status() (Status, error) {
	var s Status
	err := d.Client().Status(context.Background(), &s)
	return s, err
}

// Metrics reads the Prometheus text.
func (d *Daemon) Metrics() (string, error) {
	return d.Client().Metrics(context.Background())
}

// WaitReady polls the status API until it answers.
func (d *Daemon) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, err := d.Status()
		if err == nil {
			return nil
		}
		select {
		case <-d.Proc.Done():
			return fmt.Errorf("leasehold exited: %s", tail(d.Log(), 20))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("status API not up after %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Role returns the first group's role ("" if unknown).
func (d *Daemon) Role() string {
	s, err := d.Status()
	if err != nil || len(s.Groups) == 0 {
		return ""
	}
	return s.Groups[0].Role
}

func tail(s string, n int) string {
	lines := bytes.Split(bytes.TrimRight([]byte(s), "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// Tail returns the last n lines of the log.
func (d *Daemon) Tail(n int) string { return tail(d.Log(), n) }
