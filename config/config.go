// Package config reads leasehold's configuration file: YAML whose names
// follow keepalived's vocabulary (vrrp_instance, virtual_router_id,
// advert_int, virtual_ipaddress, unicast_peer, ...).
//
// Guarantees: unknown keys and bad values are errors naming the file, the
// line and the key; cross-field rules are checked (VRID range, v2 whole
// second intervals, v3 centisecond intervals, IPv6 implies VRRPv3, unique
// VRIDs per interface). Nothing here touches the network.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/leasehold/leasehold/lvs"
)

// Config is the whole file.
type Config struct {
	Node     Node                  `yaml:"node"`
	Quorum   Quorum                `yaml:"quorum"`
	Fencing  Fencing               `yaml:"fencing"`
	Status   Status                `yaml:"status"`
	StateDir string                `yaml:"state_dir"`
	Script   map[string]*Script    `yaml:"vrrp_script"`
	Sync     map[string]*SyncGroup `yaml:"vrrp_sync_group"`
	Instance map[string]*Instance  `yaml:"vrrp_instance"`
	// LVS: lvs_mode (owner or all), virtual_server_group (name → "IP
	// [PORT]", "A.B.C.D-E [PORT]" or "fwmark N [inet|inet6]" entries) and
	// the virtual servers.
	LVSMode            string              `yaml:"lvs_mode"`
	VirtualServerGroup map[string][]string `yaml:"virtual_server_group"`
	VirtualServer      []VirtualServer     `yaml:"virtual_server"`

	// LVS is the virtual servers resolved by Validate.
	LVS lvs.Config `yaml:"-"`

	file  string
	lines map[string]int // key path → line
	// quorumOnly: a witness or `lease` file needs no vrrp_instance.
	quorumOnly bool
	// Warnings are problems that keepalived also only warns about.
	Warnings []string `yaml:"-"`
}

// Node names this machine.
type Node struct {
	Name string `yaml:"name"`
}

// Status configures the local status API.
type Status struct {
	// Listen is "unix:/path" (default /run/leasehold/leasehold.sock) or a
	// loopback "127.0.0.1:port".
	Listen string `yaml:"listen"`
	// Pprof serves Go's profiler under /debug/pprof/ (unix socket only;
	// off by default): for diagnosing memory or goroutine growth in the
	// field.
	Pprof bool `yaml:"pprof"`
}

// Fencing configures the kernel fence and the watchdog.
type Fencing struct {
	// NFTables: auto (use it if usable, else say so and rely on address
	// lifetimes), required (refuse to start without it), off.
	NFTables string `yaml:"nftables"`
	// Margin is kept between the fence's expiry and the local deadline.
	Margin Duration `yaml:"margin"`
	// Watchdog: off, auto or required; WatchdogDevice default /dev/watchdog.
	Watchdog       string `yaml:"watchdog"`
	WatchdogDevice string `yaml:"watchdog_device"`
}

// Script is a vrrp_script: a health check whose result changes the
// priority of the instances that track it (or faults them, weight 0).
type Script struct {
	Script   string   `yaml:"script"` // absolute path and arguments, quoted as keepalived quotes them (script.Split)
	Interval Duration `yaml:"interval"`
	Timeout  Duration `yaml:"timeout"`
	Weight   int      `yaml:"weight"`
	Rise     int      `yaml:"rise"`
	Fall     int      `yaml:"fall"`
	InitFail bool     `yaml:"init_fail"`
	User     string   `yaml:"user"`
}

// SyncGroup is a vrrp_sync_group: instances that move together under one
// lease (its key is the sync group's name).
type SyncGroup struct {
	Group []string `yaml:"group"`
	// Notify scripts for the group as a whole, as keepalived's
	// vrrp_sync_group runs them: the state's own script with its own
	// arguments, then notify with its own and GROUP NAME STATE 0. With a
	// quorum the state is the lease's (MASTER while the group is owned).
	NotifyScripts `yaml:",inline"`
}

// NotifyScripts are keepalived's notify_* of an instance or a sync group:
// command lines, an absolute path and arguments quoted as keepalived
// quotes them (script.Split).
type NotifyScripts struct {
	NotifyMaster  string   `yaml:"notify_master"`
	NotifyBackup  string   `yaml:"notify_backup"`
	NotifyFault   string   `yaml:"notify_fault"`
	NotifyStop    string   `yaml:"notify_stop"`
	Notify        string   `yaml:"notify"`
	NotifyTimeout Duration `yaml:"notify_timeout"`
}

// Any reports whether a script is set.
func (n NotifyScripts) Any() bool {
	return n.NotifyMaster+n.NotifyBackup+n.NotifyFault+n.NotifyStop+n.Notify != ""
}

// Hook is a program run with a timeout (peer fencing, resources).
type Hook struct {
	Path     string   `yaml:"path"`
	Args     []string `yaml:"args"`
	Timeout  Duration `yaml:"timeout"`
	Required *bool    `yaml:"required"` // default true
	User     string   `yaml:"user"`
}

// Quorum selects the lease backend.
type Quorum struct {
	// Backend is etcd, raft or none. It must be given: none (plain VRRP, no
	// split-brain protection) is never a silent default.
	Backend        string   `yaml:"backend"`
	TTL            Duration `yaml:"ttl"`
	RenewInterval  Duration `yaml:"renew_interval"`
	Drift          Duration `yaml:"drift"`
	Margin         Duration `yaml:"margin"`
	DemoteBudget   Duration `yaml:"demote_budget"`
	RequestTimeout Duration `yaml:"request_timeout"`
	Etcd           Etcd     `yaml:"etcd"`
	Raft           Raft     `yaml:"raft"`
}

// Etcd is the etcd backend's connection.
type Etcd struct {
	Endpoints   []string `yaml:"endpoints"`
	Prefix      string   `yaml:"prefix"`
	CertFile    string   `yaml:"cert_file"`
	KeyFile     string   `yaml:"key_file"`
	CAFile      string   `yaml:"ca_file"`
	Username    string   `yaml:"username"`
	Password    string   `yaml:"password"`
	DialTimeout Duration `yaml:"dial_timeout"`
}

// Raft is the embedded raft backend: this node's voter and its peers.
type Raft struct {
	ID         string     `yaml:"id"`          // this voter's id (default: node.name)
	Bind       string     `yaml:"bind"`        // raft transport host:port
	ClientBind string     `yaml:"client_bind"` // client API host:port
	DataDir    string     `yaml:"data_dir"`
	Peers      []RaftPeer `yaml:"peers"` // every voter, this one and the witness included
	CertFile   string     `yaml:"cert_file"`
	KeyFile    string     `yaml:"key_file"`
	CAFile     string     `yaml:"ca_file"`
	// Raft timings (defaults 100 ms, 100 ms, 50 ms).
	HeartbeatTimeout   Duration `yaml:"heartbeat_timeout"`
	ElectionTimeout    Duration `yaml:"election_timeout"`
	LeaderLeaseTimeout Duration `yaml:"leader_lease_timeout"`
}

// RaftPeer is one voter (a node or the witness).
type RaftPeer struct {
	ID     string `yaml:"id"`
	Addr   string `yaml:"addr"`   // raft transport host:port
	Client string `yaml:"client"` // client API host:port
}

// Instance is one vrrp_instance.
type Instance struct {
	Interface         string         `yaml:"interface"`
	State             string         `yaml:"state"`
	VirtualRouterID   int            `yaml:"virtual_router_id"`
	Priority          int            `yaml:"priority"`
	AdvertInt         Duration       `yaml:"advert_int"`
	Version           int            `yaml:"version"`
	NoPreempt         bool           `yaml:"nopreempt"`
	PreemptDelay      Duration       `yaml:"preempt_delay"`
	Accept            bool           `yaml:"accept"`
	Authentication    Authentication `yaml:"authentication"`
	VirtualIPAddress  []string       `yaml:"virtual_ipaddress"`
	UnicastSrcIP      string         `yaml:"unicast_src_ip"`
	UnicastPeer       []string       `yaml:"unicast_peer"`
	GarpMasterDelay   *Duration      `yaml:"garp_master_delay"`
	GarpMasterRepeat  *int           `yaml:"garp_master_repeat"`
	GarpMasterRefresh Duration       `yaml:"garp_master_refresh"`
	// V3ChecksumPseudoHeader: VRRPv3 IPv4 checksums include the pseudo-header
	// (RFC 5798, keepalived's default). false = keepalived's
	// vrrp_v3_checksum_as_v2. Both are accepted on receive.
	V3ChecksumPseudoHeader *bool `yaml:"v3_checksum_pseudo_header"`

	// Health (keepalived's track_script / track_interface: "eth1" or
	// "eth1 weight -10").
	TrackScript    []string `yaml:"track_script"`
	TrackInterface []string `yaml:"track_interface"`
	// Notify scripts, called with keepalived's arguments.
	NotifyScripts `yaml:",inline"`
	// Lease-gated ownership (quorum etcd/raft): peer-fence hooks run by a
	// new owner, resource hooks, and the ARP/NA probe before claiming.
	FencePeer []Hook `yaml:"fence_peer"`
	Promote   []Hook `yaml:"promote"`
	Demote    []Hook `yaml:"demote"`
	Probe     *bool  `yaml:"probe"`

	// Resolved by Validate.
	Name    string       `yaml:"-"`
	VIPs    []VIP        `yaml:"-"`
	Src     netip.Addr   `yaml:"-"`
	Peers   []netip.Addr `yaml:"-"`
	IPv6    bool         `yaml:"-"`
	AuthKey [8]byte      `yaml:"-"`
	Tracks  []TrackIface `yaml:"-"`
}

// TrackIface is one resolved track_interface entry.
type TrackIface struct {
	Name   string
	Weight int
}

// Authentication is keepalived's authentication block (PASS: VRRPv2
// only), or leasehold's own HMAC between leasehold nodes (v2 or v3; not
// understood by keepalived): auth_type HMAC with key_file, a file of at
// least 16 bytes that is not world-readable.
type Authentication struct {
	AuthType string `yaml:"auth_type"`
	AuthPass string `yaml:"auth_pass"`
	KeyFile  string `yaml:"key_file"`
}

// VIP is one virtual_ipaddress entry.
type VIP struct {
	Prefix netip.Prefix
	Dev    string // interface; the instance's unless "dev X" was given
}

// Duration is a time.Duration written as seconds like keepalived ("1",
// "0.1") or as a Go duration ("100ms").
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML accepts a number of seconds or a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want seconds or a duration like 100ms", n.Line)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// ParseDuration parses "1", "0.1" (seconds) or "100ms".
func ParseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 || f > 1e6 {
			return 0, fmt.Errorf("%q out of range", s)
		}
		return time.Duration(f*1e6+0.5) * time.Microsecond, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither seconds nor a duration (like 100ms)", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return v, nil
}

// Error is one problem, with its place.
type Error struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Key, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Key, e.Msg)
}

// Load reads and validates a file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, b)
}

var lineRe = regexp.MustCompile(`line (\d+): (.*)`)

// LoadQuorum reads a file that may have no vrrp_instance (a witness's, or
// one only used by `leasehold lease`); the quorum section is validated.
func LoadQuorum(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return parse(path, b, true)
}

// Parse decodes and validates data; file names it in errors.
func Parse(file string, data []byte) (*Config, error) { return parse(file, data, false) }

func parse(file string, data []byte, quorumOnly bool) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(file, err)
	}
	c := &Config{file: file, lines: map[string]int{}, quorumOnly: quorumOnly}
	if len(root.Content) == 0 {
		return nil, &Error{File: file, Key: "(file)", Msg: "empty configuration"}
	}
	indexLines(root.Content[0], "", c.lines)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return nil, yamlError(file, err)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// yamlError turns yaml.v3's "line N: ..." messages into file:line errors.
func yamlError(file string, err error) error {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	var errs []error
	for _, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		sub := lineRe.FindStringSubmatch(m)
		if sub == nil {
			errs = append(errs, &Error{File: file, Key: "(syntax)", Msg: m})
			continue
		}
		line, _ := strconv.Atoi(sub[1])
		msg := sub[2]
		key := "(value)"
		if f := regexp.MustCompile(`field (\S+) not found in type`).FindStringSubmatch(msg); f != nil {
			key, msg = f[1], "unknown key"
		}
		errs = append(errs, &Error{File: file, Line: line, Key: key, Msg: msg})
	}
	return errors.Join(errs...)
}

// indexLines records the line of every mapping key by dotted path.
func indexLines(n *yaml.Node, path string, out map[string]int) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			out[p] = k.Line
			indexLines(n.Content[i+1], p, out)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			out[p] = c.Line
			indexLines(c, p, out)
		}
	}
}

// ErrAt builds an Error for a key path (dotted, as in the file), finding
// its line (or its nearest parent's). Packages that validate what the file
// turns into report through it, so every error names file, line and key.
func (c *Config) ErrAt(path, format string, args ...any) error { return c.errAt(path, format, args...) }

func (c *Config) errAt(path, format string, args ...any) error {
	line := 0
	for p := path; p != ""; {
		if l, ok := c.lines[p]; ok {
			line = l
			break
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return &Error{File: c.file, Line: line, Key: path, Msg: fmt.Sprintf(format, args...)}
}

func (c *Config) warn(path, format string, args ...any) {
	c.Warnings = append(c.Warnings, c.errAt(path, format, args...).Error())
}

// Names returns the instance names in order.
func (c *Config) Names() []string {
	names := make([]string, 0, len(c.Instance))
	for n := range c.Instance {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
