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
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"slices"
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
	LVSSyncDaemon      *LVSSyncDaemon      `yaml:"lvs_sync_daemon"`

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
	// lifetimes), required (refuse to start without it), off. Default:
	// required with a quorum backend, auto with backend none.
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
	// DRBD is a DRBD resource that follows the lease (quorum etcd or
	// raft): promoted after the promote hooks, demoted before them.
	DRBD *DRBD `yaml:"drbd"`
	// MySQL is the local MySQL/MariaDB server that follows the lease
	// (quorum etcd or raft): writable only while the group is owned;
	// promoted after the hooks and DRBD, demoted before them.
	MySQL *MySQL `yaml:"mysql"`

	// Resolved by Validate.
	Name    string       `yaml:"-"`
	VIPs    []VIP        `yaml:"-"`
	Src     netip.Addr   `yaml:"-"`
	Peers   []netip.Addr `yaml:"-"`
	IPv6    bool         `yaml:"-"`
	AuthKey [8]byte      `yaml:"-"`
	Tracks  []TrackIface `yaml:"-"`
}

// DRBD is an instance's drbd section: a DRBD 8.4 resource made Primary,
// mounted and its services started while the group is owned. The file's
// rules are checked here; the resource's own (names, paths, services) by
// package storage/drbd when the plan is built.
type DRBD struct {
	Resource     string   `yaml:"resource"`
	Device       string   `yaml:"device"` // /dev/drbdN
	Mount        string   `yaml:"mount"`
	FSType       string   `yaml:"fstype"`
	MountOptions string   `yaml:"mount_options"`
	Services     []string `yaml:"services"` // systemd units or scripts' absolute paths, started in order
	KillHolders  bool     `yaml:"kill_holders"`
	// AfterSplitBrain: manual (report and wait for the operator; the
	// default) or lease (the node that does not hold the lease discards
	// its writes since the split and resyncs; see storage/drbd).
	AfterSplitBrain string   `yaml:"after_split_brain"`
	StepTimeout     Duration `yaml:"step_timeout"` // each program run (default 10 s)
}

// MySQL is an instance's mysql section (see package storage/mysql, which
// checks the resource's own rules when the plan is built).
type MySQL struct {
	Socket          string `yaml:"socket"`           // the local server's unix socket, or
	Address         string `yaml:"address"`          // its host:port
	CredentialsFile string `yaml:"credentials_file"` // [client] user, password; mode 0600
	// CatchupTimeout bounds the wait for the relay log at promotion
	// (default half the promotion step, quorum.ttl/2; with peer_timeout
	// it must fit in that step); CatchupPolicy: refuse (default) or
	// promote_anyway.
	CatchupTimeout Duration `yaml:"catchup_timeout"`
	CatchupPolicy  string   `yaml:"catchup_policy"`
	StepTimeout    Duration `yaml:"step_timeout"` // each statement (default 5 s)
	// Peer is the other master's host:port, set read-only by a new owner
	// (best effort, bounded by PeerTimeout, default a quarter of the
	// promotion step).
	Peer                string     `yaml:"peer"`
	PeerCredentialsFile string     `yaml:"peer_credentials_file"`
	PeerTimeout         Duration   `yaml:"peer_timeout"`
	Check               MySQLCheck `yaml:"check"`
}

// MySQLCheck is the native health check of a mysql section, weighted like
// a vrrp_script (weight 0: failing puts the group in FAULT).
type MySQLCheck struct {
	Interval Duration `yaml:"interval"` // default 1 s
	Timeout  Duration `yaml:"timeout"`  // default interval
	Weight   int      `yaml:"weight"`
	Rise     int      `yaml:"rise"`
	Fall     int      `yaml:"fall"`    // default 3
	MaxLag   Duration `yaml:"max_lag"` // 0: lag not checked
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
		return nil, yamlError(file, err, nil)
	}
	c := &Config{file: file, lines: map[string]int{}, quorumOnly: quorumOnly}
	if len(root.Content) == 0 {
		return nil, &Error{File: file, Key: "(file)", Msg: "empty configuration"}
	}
	doc := root.Content[0]
	indexLines(doc, "", c.lines)
	// checkNodes does what yaml.v3's Decoder does with KnownFields (and its
	// duplicate keys check) in linear time; decodeNodes then decodes the
	// big maps entry by entry: yaml.v3 checks a mapping's keys in
	// quadratic time (43,000 instances took minutes).
	err := checkNodes(file, doc, reflect.TypeOf(*c), "")
	if derr := decodeNodes(doc, c); derr != nil {
		err = errors.Join(err, yamlError(file, derr, doc))
	}
	if err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// yamlError turns yaml.v3's "line N: ..." messages into file:line errors
// naming the key whose value is at fault (found in root, the document, by
// line and value; nil: a syntax error, no keys yet).
func yamlError(file string, err error, root *yaml.Node) error {
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
		if f := unknownFieldRe.FindStringSubmatch(msg); f != nil {
			key, msg = f[1], "unknown key"
		} else if root != nil {
			if k := keyOfValue(root, line, msg); k != "" {
				key = k
			}
		}
		errs = append(errs, &Error{File: file, Line: line, Key: key, Msg: msg})
	}
	return errors.Join(errs...)
}

var (
	unknownFieldRe = regexp.MustCompile(`field (\S+) not found in type`)
	// cannotRe is yaml.v3's type error: the value's tag, the value
	// (shortened to 7 bytes and "..." when long) for scalars.
	cannotRe = regexp.MustCompile("cannot unmarshal (!!\\w+)(?: `(.*)`)? into")
)

// keyOfValue finds the dotted key whose value, at line, a yaml.v3 type
// error msg is about: on a line holding several (a flow mapping), the one
// of the message's kind and value.
func keyOfValue(root *yaml.Node, line int, msg string) string {
	type at struct {
		path string
		n    *yaml.Node
	}
	var onLine []at
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		if n.Line > line {
			return
		}
		if n.Line == line && path != "" {
			onLine = append(onLine, at{path, n})
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := n.Content[i].Value
				if path != "" {
					p = path + "." + p
				}
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(root, "")
	if len(onLine) == 0 {
		return ""
	}
	if m := cannotRe.FindStringSubmatch(msg); m != nil {
		value := strings.TrimSuffix(m[2], "...")
		for _, a := range onLine {
			if a.n.ShortTag() == m[1] && (a.n.Kind != yaml.ScalarNode || strings.HasPrefix(a.n.Value, value)) {
				return a.path
			}
		}
	}
	return onLine[len(onLine)-1].path
}

// checkNodes checks n, to be decoded into t at the dotted path: mapping
// keys must be fields of a struct (yaml.v3's KnownFields) and unique, and
// a number with a fraction is refused where t is an integer (yaml.v3
// would truncate priority: 100.5 to 100).
func checkNodes(file string, n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[yaml.Unmarshaler]()) {
		return nil // its own parser (Duration)
	}
	var errs []error
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!float" {
			return &Error{File: file, Line: n.Line, Key: path, Msg: fmt.Sprintf("%s: want a whole number", n.Value)}
		}
	case reflect.Struct, reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		seen := make(map[string]int, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn, k := n.Content[i], n.Content[i].Value
			if kn.Kind == yaml.ScalarNode && k == "<<" {
				continue // a merge: yaml.v3 checks it
			}
			if at, dup := seen[k]; dup {
				errs = append(errs, &Error{File: file, Line: kn.Line, Key: joinKey(path, k), Msg: fmt.Sprintf("also given at line %d", at)})
				continue
			}
			seen[k] = kn.Line
			et := t.Elem
			if t.Kind() == reflect.Struct {
				ft, ok := fieldByKey(t, k)
				if !ok {
					errs = append(errs, &Error{File: file, Line: kn.Line, Key: k, Msg: "unknown key"})
					continue
				}
				et = func() reflect.Type { return ft }
			}
			errs = append(errs, checkNodes(file, n.Content[i+1], et(), joinKey(path, k)))
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for i, c := range n.Content {
			errs = append(errs, checkNodes(file, c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)))
		}
	}
	return errors.Join(errs...)
}

// decodeNodes decodes doc into c as yaml.v3 would, but each map of the
// top level (vrrp_instance, vrrp_script, ...) entry by entry.
func decodeNodes(doc *yaml.Node, c *Config) error {
	rv := reflect.ValueOf(c).Elem()
	type bigMap struct {
		field reflect.Value
		n     *yaml.Node
	}
	var maps []bigMap
	top := doc
	if doc.Kind == yaml.MappingNode {
		cp := *doc
		cp.Content = slices.Clone(doc.Content)
		for i := 0; i+1 < len(cp.Content); i += 2 {
			f := fieldByName(rv, cp.Content[i].Value)
			if v := cp.Content[i+1]; f.IsValid() && f.Kind() == reflect.Map && v.Kind == yaml.MappingNode {
				maps = append(maps, bigMap{f, v})
				cp.Content[i+1] = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: v.Line, Column: v.Column}
			}
		}
		top = &cp
	}
	var msgs []string
	collect := func(err error) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			msgs = append(msgs, te.Errors...)
		} else if err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	collect(top.Decode(c))
	for _, m := range maps {
		if m.field.IsNil() {
			m.field.Set(reflect.MakeMap(m.field.Type()))
		}
		et := m.field.Type().Elem()
		for i := 0; i+1 < len(m.n.Content); i += 2 {
			k, v := m.n.Content[i], m.n.Content[i+1]
			elem := reflect.New(et)
			if !(v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null") {
				collect(v.Decode(elem.Interface()))
			}
			m.field.SetMapIndex(reflect.ValueOf(k.Value).Convert(m.field.Type().Key()), elem.Elem())
		}
	}
	if len(msgs) > 0 {
		return &yaml.TypeError{Errors: msgs}
	}
	return nil
}

// fieldByName is the field of struct value v named key in YAML (top level:
// no inline structs).
func fieldByName(v reflect.Value, key string) reflect.Value {
	t := v.Type()
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name == key {
			return v.Field(i)
		}
	}
	return reflect.Value{}
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// HasKey reports whether the file has the key path ("*" steps into a
// map's values): vrrp_instance, *, track_script.
func HasKey(path ...string) bool {
	t := reflect.TypeFor[Config]()
	for _, key := range path {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if key == "*" {
			if t.Kind() != reflect.Map {
				return false
			}
			t = t.Elem()
			continue
		}
		ft, found := fieldByKey(t, key)
		if !found {
			return false
		}
		t = ft
	}
	return true
}

// fieldByKey finds the type of the field of struct type t named key in
// YAML, looking into inline structs.
func fieldByKey(t reflect.Type, key string) (reflect.Type, bool) {
	if t.Kind() != reflect.Struct {
		return nil, false
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" && opts == "inline" {
			if ft, ok := fieldByKey(f.Type, key); ok {
				return ft, true
			}
			continue
		}
		if name == key {
			return f.Type, true
		}
	}
	return nil, false
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
