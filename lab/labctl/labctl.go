package labctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/leasehold/leasehold/daemon/statusapi"
	"github.com/leasehold/leasehold/lab/labdaemon"
	"github.com/leasehold/leasehold/lab/mariadb"
	"github.com/leasehold/leasehold/lab/netlab"
)

// Sentinel errors.
var (
	ErrBadOptions = errors.New("labctl: bad options")
	ErrNoLab      = errors.New("labctl: no such lab")
	ErrAmbiguous  = errors.New("labctl: more than one lab is up; name one")
	ErrNotReady   = errors.New("labctl: lab not ready")
)

// DefaultDir holds one directory per lab. It is not netlab's state
// directory on purpose: tests clean labs whose owner process is gone from
// there, and a lab outlives `leasehold lab up`.
const DefaultDir = "/run/leasehold-lab"

// Ports used inside every lab.
const (
	ProbePort = 8080 // the responder naming the node
	RaftPort  = 7000
	RaftCli   = 7001
	EtcdPort  = 2379
	EtcdPeer  = 2380
)

// QuorumHost is the name of the host running the witness or etcd.
const QuorumHost = "q"

// Options configure a lab.
type Options struct {
	// Name names the lab and its directory (default: lab1, lab2, ...).
	Name string
	// Nodes is the number of leasehold nodes (default 2, at most 6).
	Nodes int
	// Quorum is "raft" (each node a voter, plus a witness in q) or "etcd"
	// (an embedded etcd member in q).
	Quorum string
	// Groups is the number of VRRP groups per node (VRIDs 1..G, VIPs
	// .100...; default 1, at most 100).
	Groups int
	// TTL is the lease TTL (default 1 s).
	TTL time.Duration
	// Auth is the nodes' advert authentication: "" (none, as keepalived
	// labs) or "hmac" (authenticated adverts, a key file in the lab
	// directory).
	Auth string
	// MySQL: each node also runs a MariaDB server (a dual-master pair
	// with GTID replication, as seed 002), and group 1 gets a mysql
	// section (2 nodes only; Debian's mariadb-server).
	MySQL bool
	// SemiSync: the MariaDB pair replicates semi-synchronously (with
	// MySQL only; see mariadb.Server.SemiSync).
	SemiSync bool
	// Binary is the leasehold executable run in the lab (required).
	Binary string
	// Dir is the parent directory (default DefaultDir).
	Dir string
}

var nameOK = func(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Validate fills defaults and checks o.
func (o *Options) Validate() error {
	if o.Nodes == 0 {
		o.Nodes = 2
	}
	if o.Quorum == "" {
		o.Quorum = "raft"
	}
	if o.Groups == 0 {
		o.Groups = 1
	}
	if o.TTL == 0 {
		o.TTL = time.Second
	}
	if o.Dir == "" {
		o.Dir = DefaultDir
	}
	switch {
	case o.Nodes < 1 || o.Nodes > 6:
		return fmt.Errorf("%w: --nodes %d: want 1-6", ErrBadOptions, o.Nodes)
	case o.Quorum != "raft" && o.Quorum != "etcd":
		return fmt.Errorf("%w: --quorum %q: want raft or etcd", ErrBadOptions, o.Quorum)
	case o.Groups < 1 || o.Groups > 100:
		return fmt.Errorf("%w: --groups %d: want 1-100", ErrBadOptions, o.Groups)
	case o.Auth != "" && o.Auth != "hmac":
		return fmt.Errorf("%w: --auth %q: want hmac or nothing", ErrBadOptions, o.Auth)
	case o.MySQL && o.Nodes != 2:
		return fmt.Errorf("%w: --mysql wants --nodes 2 (a dual-master pair)", ErrBadOptions)
	case o.SemiSync && !o.MySQL:
		return fmt.Errorf("%w: --semi-sync needs --mysql", ErrBadOptions)
	case o.MySQL && !mariadb.Available():
		return fmt.Errorf("%w: --mysql needs MariaDB (Debian package mariadb-server: %s)", ErrBadOptions, mariadb.Mariadbd)
	case o.Binary == "":
		return fmt.Errorf("%w: no leasehold binary", ErrBadOptions)
	case o.Name != "" && !nameOK(o.Name):
		return fmt.Errorf("%w: --name %q: want 1-32 of [a-z0-9_-]", ErrBadOptions, o.Name)
	}
	return nil
}

// Meta is what a lab records in its directory (lab.json): enough for any
// later process to attach to it, restart its daemons and tear it down.
type Meta struct {
	Name    string                       `json:"name"`
	ID      string                       `json:"id"` // netlab id: prefix of every namespace
	Quorum  string                       `json:"quorum"`
	Nodes   []string                     `json:"nodes"` // highest priority first
	Groups  int                          `json:"groups"`
	TTL     string                       `json:"ttl"`
	Binary  string                       `json:"binary"`
	Created time.Time                    `json:"created"`
	Daemons map[string]netlab.ProcRecord `json:"daemons"`
	// MySQL: the nodes run MariaDB (MariaDB: their processes).
	MySQL     bool                         `json:"mysql,omitempty"`
	SemiSync  bool                         `json:"semi_sync,omitempty"`
	MariaDB   map[string]netlab.ProcRecord `json:"mariadb,omitempty"`
	Responder map[string]netlab.ProcRecord `json:"responders"`
	QuorumPID netlab.ProcRecord            `json:"quorum_proc"`
}

// Lab is a running lab, brought up by Up or attached to by Open.
type Lab struct {
	dir string
	net *netlab.Lab
	log *slog.Logger

	mu      sync.Mutex
	meta    Meta
	clients map[string]*statusapi.Client // per node, for the Lab's life
}

func metaPath(dir string) string  { return filepath.Join(dir, "lab.json") }
func stateFile(dir string) string { return filepath.Join(dir, "netlab.json") }

func (l *Lab) saveMeta() error {
	l.mu.Lock()
	b, err := json.MarshalIndent(l.meta, "", "  ")
	l.mu.Unlock()
	if err != nil {
		return err
	}
	tmp := metaPath(l.dir) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("labctl: write meta: %w", err)
	}
	return os.Rename(tmp, metaPath(l.dir))
}

// Up builds the namespaces, starts the quorum, the nodes' daemons and
// responders (all detached: they outlive the caller) and waits until every
// group has exactly one owner. On error it removes everything it created.
func Up(ctx context.Context, o Options, log *slog.Logger) (_ *Lab, err error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	hosts := []string{}
	for i := 1; i <= o.Nodes; i++ {
		hosts = append(hosts, fmt.Sprintf("n%d", i))
	}
	hosts = append(hosts, QuorumHost)
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("labctl: %w", err)
	}
	// The directory is the lock on the name: Mkdir fails if it exists.
	name := o.Name
	var dir string
	if name != "" {
		dir = filepath.Join(o.Dir, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, fmt.Errorf("%w: lab %q: %v", ErrBadOptions, name, err)
		}
	} else {
		for i := 1; ; i++ {
			name = fmt.Sprintf("lab%d", i)
			dir = filepath.Join(o.Dir, name)
			err := os.Mkdir(dir, 0o755)
			if err == nil {
				break
			}
			if !errors.Is(err, fs.ErrExist) || i > 999 {
				return nil, fmt.Errorf("labctl: %w", err)
			}
		}
	}
	nl, err := netlab.New(netlab.Options{Hosts: hosts, Client: true, StateFile: stateFile(dir)})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	l := &Lab{dir: dir, net: nl, log: log, meta: Meta{
		Name: name, ID: nl.ID(), Quorum: o.Quorum, MySQL: o.MySQL, SemiSync: o.SemiSync, Nodes: hosts[:o.Nodes], Groups: o.Groups,
		TTL: o.TTL.String(), Binary: o.Binary, Created: time.Now().UTC(),
		Daemons: map[string]netlab.ProcRecord{}, Responder: map[string]netlab.ProcRecord{},
	}}
	if err := l.saveMeta(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer func() {
		if err != nil {
			l.Down(context.Background())
		}
	}()
	if err := nl.Up(ctx); err != nil {
		return nil, err
	}
	if o.MySQL {
		if err := l.startMySQL(ctx); err != nil {
			return nil, err
		}
	}
	if err := l.writeConfigs(o); err != nil {
		return nil, err
	}
	if err := l.startQuorum(); err != nil {
		return nil, err
	}
	for _, n := range l.meta.Nodes {
		h := nl.Host(n)
		rec, err := h.StartDetached(l.logPath("responder-"+n), o.Binary, "lab", "responder",
			"--port", fmt.Sprint(ProbePort), "--name", n)
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		l.meta.Responder[n] = rec
		l.mu.Unlock()
	}
	for _, n := range l.meta.Nodes {
		if err := l.startDaemon(n); err != nil {
			return nil, err
		}
	}
	if err := l.saveMeta(); err != nil {
		return nil, err
	}
	for _, n := range l.meta.Nodes {
		if err := l.waitReady(ctx, n, 30*time.Second); err != nil {
			return nil, err
		}
	}
	if err := l.WaitSteady(ctx, 60*time.Second); err != nil {
		return nil, err
	}
	return l, nil
}

// Dir returns the lab's directory (configs, logs, state).
func (l *Lab) Dir() string { return l.dir }

// Name returns the lab's name.
func (l *Lab) Name() string { return l.meta.Name }

// Meta returns a copy of what the lab recorded.
func (l *Lab) Meta() Meta {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.meta
	m.Daemons = cloneMap(m.Daemons)
	m.Responder = cloneMap(m.Responder)
	return m
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Netlab returns the namespaces lab.
func (l *Lab) Netlab() *netlab.Lab { return l.net }

// Nodes returns the leasehold nodes, highest priority first.
func (l *Lab) Nodes() []string { return slices.Clone(l.meta.Nodes) }

// VIP returns the VIP of group 1, the one drills watch.
func (l *Lab) VIP() netip.Addr { return l.VIPOf(1) }

// VIPOf returns the VIP of group g (1-based).
func (l *Lab) VIPOf(g int) netip.Addr { return l.net.Addr4(byte(99 + g)) }

// ProbePort returns the port of the responders.
func (l *Lab) ProbePort() uint16 { return ProbePort }

// Backend returns "raft" or "etcd".
func (l *Lab) Backend() string { return l.meta.Quorum }

// LogPath returns the log file of a node's daemon (or of "q").
func (l *Lab) LogPath(node string) string { return l.logPath(node) }

func (l *Lab) logPath(name string) string { return filepath.Join(l.dir, name+".log") }

func (l *Lab) sock(node string) string { return filepath.Join(l.dir, node, "lh.sock") }

// TTL returns the lease TTL.
func (l *Lab) TTL() time.Duration {
	d, _ := time.ParseDuration(l.meta.TTL)
	return d
}

// Open attaches to the lab in dir (see Resolve).
func Open(dir string, log *slog.Logger) (*Lab, error) {
	b, err := os.ReadFile(metaPath(dir))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoLab, err)
	}
	l := &Lab{dir: dir, log: log}
	if err := json.Unmarshal(b, &l.meta); err != nil {
		return nil, fmt.Errorf("labctl: %s: %w", metaPath(dir), err)
	}
	if l.net, err = netlab.Attach(stateFile(dir)); err != nil {
		return nil, err
	}
	return l, nil
}

// List returns the directories of the labs under parent (default
// DefaultDir), sorted.
func List(parent string) ([]string, error) {
	if parent == "" {
		parent = DefaultDir
	}
	ents, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		d := filepath.Join(parent, e.Name())
		if _, err := os.Stat(stateFile(d)); err == nil {
			out = append(out, d)
		} else if _, err := os.Stat(metaPath(d)); err == nil {
			out = append(out, d)
		}
	}
	return out, nil
}

// Resolve finds the directory of lab name under parent; with name empty,
// the only lab there.
func Resolve(parent, name string) (string, error) {
	if parent == "" {
		parent = DefaultDir
	}
	if name != "" {
		d := filepath.Join(parent, name)
		if !nameOK(name) {
			return "", fmt.Errorf("%w: %q", ErrNoLab, name)
		}
		if _, err := os.Stat(d); err != nil {
			return "", fmt.Errorf("%w: %q (%s)", ErrNoLab, name, d)
		}
		return d, nil
	}
	labs, err := List(parent)
	if err != nil {
		return "", err
	}
	switch len(labs) {
	case 0:
		return "", fmt.Errorf("%w: none under %s (run `leasehold lab up`)", ErrNoLab, parent)
	case 1:
		return labs[0], nil
	}
	names := make([]string, len(labs))
	for i, d := range labs {
		names[i] = filepath.Base(d)
	}
	return "", fmt.Errorf("%w: %s", ErrAmbiguous, strings.Join(names, ", "))
}

// Down kills every process of the lab (recorded PIDs and anything left in
// its namespaces), deletes the namespaces and the lab's directory.
func (l *Lab) Down(ctx context.Context) error {
	return Remove(l.dir)
}

// Remove tears down the lab in dir whatever state it is in (also after a
// crash of `lab up` itself): processes recorded in lab.json and in the
// netlab state file, anything running in its namespaces, the namespaces,
// then the directory.
func Remove(dir string) error {
	var errs []error
	if b, err := os.ReadFile(metaPath(dir)); err == nil {
		var m Meta
		if json.Unmarshal(b, &m) == nil {
			var recs []netlab.ProcRecord
			for _, r := range m.Daemons {
				recs = append(recs, r)
			}
			for _, r := range m.Responder {
				recs = append(recs, r)
			}
			recs = append(recs, m.QuorumPID)
			for _, r := range recs {
				if r.PID > 0 && r.StartTime != 0 && r.Alive() {
					r.Signal(syscall.SIGKILL)
				}
			}
		}
	}
	if err := netlab.Cleanup(stateFile(dir)); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// client returns the node's status API client: one per node for the
// Lab's life, so polling reuses its connections (a restarted daemon is
// reached on the same socket path).
func (l *Lab) client(node string) *statusapi.Client {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.clients == nil {
		l.clients = map[string]*statusapi.Client{}
	}
	c, ok := l.clients[node]
	if !ok {
		c = statusapi.NewClient("unix:" + l.sock(node))
		l.clients[node] = c
	}
	return c
}

// Close closes the idle connections of the Lab's status clients (the Lab
// stays usable).
func (l *Lab) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.clients {
		c.CloseIdleConnections()
	}
}

// statusOf reads a node daemon's status API.
func (l *Lab) statusOf(ctx context.Context, node string) (labdaemon.Status, error) {
	var st labdaemon.Status
	err := l.client(node).Status(ctx, &st)
	return st, err
}

// Metrics reads a node daemon's Prometheus text.
func (l *Lab) Metrics(ctx context.Context, node string) (string, error) {
	return l.client(node).Metrics(ctx)
}

// ServingPID returns the PID of the process serving a node's status
// socket (SO_PEERCRED), to compare with the one the lab recorded.
func (l *Lab) ServingPID(ctx context.Context, node string) (int, error) {
	return l.client(node).PeerPID(ctx)
}

func (l *Lab) waitReady(ctx context.Context, node string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := l.statusOf(ctx, node); err == nil {
			return nil
		}
		l.mu.Lock()
		rec := l.meta.Daemons[node]
		l.mu.Unlock()
		if !rec.Alive() {
			return fmt.Errorf("%w: %s's daemon exited; its log %s ends:\n%s", ErrNotReady, node, l.logPath(node), tailFile(l.logPath(node), 15))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%w: %s's status API not up after %v", ErrNotReady, node, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
