package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/leasehold/leasehold/script"
	"github.com/leasehold/leasehold/vrrp"
)

// Defaults, as keepalived's where it has one.
const (
	DefaultPriority         = 100
	DefaultAdvertInt        = time.Second
	DefaultGarpMasterDelay  = 5 * time.Second
	DefaultGarpMasterRepeat = 5
	DefaultStatusListen     = "unix:/run/leasehold/leasehold.sock"
	DefaultStateDir         = "/run/leasehold"
)

// Backends.
const (
	BackendNone = "none"
	BackendEtcd = "etcd"
	BackendRaft = "raft"
)

func (c *Config) validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if c.Node.Name == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			add(c.errAt("node.name", "not set and the hostname is unknown"))
		}
		c.Node.Name = h
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.Status.Listen == "" {
		c.Status.Listen = DefaultStatusListen
	}
	add(c.validateStatus())
	add(c.validateQuorum())
	add(c.validateFencing())
	for _, name := range sortedKeys(c.Script) {
		add(c.validateScript(name, c.Script[name]))
	}
	add(c.validateSync())
	if len(c.Instance) == 0 && !c.quorumOnly {
		add(c.errAt("vrrp_instance", "at least one instance is required"))
	}
	add(c.validateDRBDUnique())
	add(c.validateMySQLUnique())
	type key struct {
		iface string
		six   bool
		vrid  int
	}
	seen := map[key]string{}
	for _, name := range c.Names() {
		in := c.Instance[name]
		if in == nil {
			add(c.errAt("vrrp_instance."+name, "empty instance"))
			continue
		}
		in.Name = name
		add(c.validateInstance(in))
		k := key{in.Interface, in.IPv6, in.VirtualRouterID}
		if other, dup := seen[k]; dup {
			add(c.errAt("vrrp_instance."+name+".virtual_router_id",
				"VRID %d on %s is also used by instance %s", in.VirtualRouterID, in.Interface, other))
		}
		seen[k] = name
	}
	add(c.validateLVS()) // after the instances: it reads their VIPs
	return errors.Join(errs...)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// MinFenceMargin is the least fencing.margin a lease-gated node uses by
// default: the time one refresh of the kernel fence may take before the
// node stops trusting it.
const MinFenceMargin = 50 * time.Millisecond

func (c *Config) validateFencing() error {
	f := &c.Fencing
	var errs []error
	switch f.NFTables {
	case "":
		// A lease-gated node owns only behind the kernel fence: without
		// nftables it refuses to start unless the file says otherwise
		// (auto or off). Plain VRRP has no lease to fence with.
		f.NFTables = "required"
		if c.Quorum.Backend == BackendNone {
			f.NFTables = "auto"
		}
	case "auto", "required", "off":
	default:
		errs = append(errs, c.errAt("fencing.nftables", "%q: want auto, required or off", f.NFTables))
	}
	// With a quorum, an unset margin is scaled to the TTL by the plan
	// (daemon.NewPlan: TTL/10, at least 50 ms); plain VRRP has no fence
	// deadline and keeps 50 ms.
	if f.Margin == 0 && c.Quorum.Backend == BackendNone {
		f.Margin = Duration(MinFenceMargin)
	}
	if f.Margin < 0 {
		errs = append(errs, c.errAt("fencing.margin", "%v: must not be negative", f.Margin.D()))
	}
	switch f.Watchdog {
	case "":
		f.Watchdog = "off"
	case "off", "auto", "required":
	default:
		errs = append(errs, c.errAt("fencing.watchdog", "%q: want off, auto or required", f.Watchdog))
	}
	if f.WatchdogDevice == "" {
		f.WatchdogDevice = "/dev/watchdog"
	}
	if f.NFTables == "off" && c.Quorum.Backend != BackendNone {
		c.warn("fencing.nftables", "off: address lifetimes alone fence the VIP; the lease TTL must exceed the lifetime + 2 s")
	}
	return errors.Join(errs...)
}

// SyncOf maps each instance in a sync group to the group's name.
func (c *Config) SyncOf() map[string]string {
	out := map[string]string{}
	for name, g := range c.Sync {
		if g == nil {
			continue
		}
		for _, in := range g.Group {
			out[in] = name
		}
	}
	return out
}

func (c *Config) validateSync() error {
	var errs []error
	seen := map[string]string{}
	for _, name := range sortedKeys(c.Sync) {
		g := c.Sync[name]
		p := "vrrp_sync_group." + name
		if g == nil || len(g.Group) == 0 {
			errs = append(errs, c.errAt(p, "empty sync group: list its instances under group"))
			continue
		}
		if _, clash := c.Instance[name]; clash {
			errs = append(errs, c.errAt(p, "%q is also an instance name (both would name the same lease)", name))
		}
		if len(g.Group) == 1 {
			c.warn(p+".group", "a sync group of one instance does nothing (as in keepalived)")
		}
		for i, in := range g.Group {
			key := fmt.Sprintf("%s.group[%d]", p, i)
			if _, ok := c.Instance[in]; !ok {
				errs = append(errs, c.errAt(key, "no vrrp_instance named %q", in))
			}
			if other, dup := seen[in]; dup {
				errs = append(errs, c.errAt(key, "%q is already in sync group %s", in, other))
			}
			seen[in] = name
		}
		errs = append(errs, c.validateNotify(p+".", &g.NotifyScripts))
	}
	return errors.Join(errs...)
}

// validateNotify checks notify_* under the key prefix p ("...NAME.") and
// fills in the default timeout.
func (c *Config) validateNotify(p string, n *NotifyScripts) error {
	var errs []error
	for _, kv := range [][2]string{{"notify_master", n.NotifyMaster}, {"notify_backup", n.NotifyBackup},
		{"notify_fault", n.NotifyFault}, {"notify_stop", n.NotifyStop}, {"notify", n.Notify}} {
		if kv[1] != "" {
			errs = append(errs, c.validateCommand(p+kv[0], kv[1]))
		}
	}
	if n.NotifyTimeout < 0 {
		errs = append(errs, c.errAt(p+"notify_timeout", "must not be negative"))
	}
	if n.NotifyTimeout == 0 {
		n.NotifyTimeout = Duration(10 * time.Second)
	}
	return errors.Join(errs...)
}

func (c *Config) validateScript(name string, s *Script) error {
	p := "vrrp_script." + name + "."
	if s == nil {
		return c.errAt("vrrp_script."+name, "empty script block")
	}
	var errs []error
	bad := func(key, format string, args ...any) { errs = append(errs, c.errAt(p+key, format, args...)) }
	errs = append(errs, c.validateCommand(p+"script", s.Script))
	if s.Interval == 0 {
		s.Interval = Duration(time.Second)
	}
	if s.Timeout == 0 {
		s.Timeout = s.Interval
	}
	if s.Weight < -253 || s.Weight > 253 {
		bad("weight", "%d: want -253..253", s.Weight)
	}
	if s.Rise == 0 {
		s.Rise = 1
	}
	if s.Fall == 0 {
		s.Fall = 1
	}
	if s.Rise < 0 || s.Fall < 0 {
		bad("rise", "rise and fall must be >= 1")
	}
	return errors.Join(errs...)
}

// validateCommand checks a script or notify command line as it will run:
// split as keepalived splits it (quotes, backslash escapes), its program an
// absolute path (script.ParseLine).
func (c *Config) validateCommand(key, line string) error {
	_, err := script.ParseLine(line)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, script.ErrUnsafe):
		return c.errAt(key, "%q: an absolute path is required (optionally followed by arguments)", line)
	default:
		return c.errAt(key, "%q: %v", line, err)
	}
}

func (c *Config) validateHooks(path string, hs []Hook) error {
	var errs []error
	for i := range hs {
		h := &hs[i]
		hp := fmt.Sprintf("%s[%d]", path, i)
		if !strings.HasPrefix(h.Path, "/") {
			errs = append(errs, c.errAt(hp+".path", "%q: an absolute path is required", h.Path))
		}
		if h.Timeout == 0 {
			h.Timeout = Duration(5 * time.Second)
		}
		if h.Required == nil {
			t := true
			h.Required = &t
		}
	}
	return errors.Join(errs...)
}

func (c *Config) validateStatus() error {
	l := c.Status.Listen
	if path, ok := strings.CutPrefix(l, "unix:"); ok {
		if !strings.HasPrefix(path, "/") {
			return c.errAt("status.listen", "unix socket path %q must be absolute", path)
		}
		return nil
	}
	if c.Status.Pprof {
		return c.errAt("status.pprof", "the profiler is served on a unix socket only (status.listen is %q)", l)
	}
	ap, err := netip.ParseAddrPort(l)
	if err != nil {
		return c.errAt("status.listen", "%q is neither unix:/path nor 127.0.0.1:port", l)
	}
	if !ap.Addr().IsLoopback() {
		return c.errAt("status.listen", "%s is not a loopback address: the status API is local only", ap.Addr())
	}
	return nil
}

func (c *Config) validateQuorum() error {
	q := &c.Quorum
	switch q.Backend {
	case BackendNone:
		c.warn("quorum.backend", "none: plain VRRP with NO split-brain protection (keepalived-equivalent)")
		return nil
	case BackendEtcd:
		if len(q.Etcd.Endpoints) == 0 {
			return c.errAt("quorum.etcd.endpoints", "at least one endpoint is required")
		}
		if (q.Etcd.CertFile == "") != (q.Etcd.KeyFile == "") {
			return c.errAt("quorum.etcd.cert_file", "cert_file and key_file go together")
		}
		if q.Etcd.Password != "" && q.Etcd.Username == "" {
			return c.errAt("quorum.etcd.username", "password given without username")
		}
		return nil
	case BackendRaft:
		if q.Raft.ID == "" {
			q.Raft.ID = c.Node.Name
		}
		r := q.Raft
		var errs []error
		if r.Bind == "" {
			errs = append(errs, c.errAt("quorum.raft.bind", "required (host:port of this voter's raft transport)"))
		}
		if r.ClientBind == "" {
			errs = append(errs, c.errAt("quorum.raft.client_bind", "required (host:port of this voter's client API)"))
		}
		if r.DataDir == "" {
			errs = append(errs, c.errAt("quorum.raft.data_dir", "required"))
		}
		if (r.CertFile == "") != (r.KeyFile == "") || (r.CertFile != "" && r.CAFile == "") {
			errs = append(errs, c.errAt("quorum.raft.cert_file", "mutual TLS needs cert_file, key_file and ca_file together"))
		}
		self := false
		if len(r.Peers) < 3 {
			errs = append(errs, c.errAt("quorum.raft.peers", "need at least 3 voters (two nodes and a witness), have %d", len(r.Peers)))
		}
		for i, p := range r.Peers {
			if p.ID == "" || p.Addr == "" || p.Client == "" {
				errs = append(errs, c.errAt(fmt.Sprintf("quorum.raft.peers[%d]", i), "id, addr and client are required"))
			}
			self = self || p.ID == r.ID
		}
		if !self {
			errs = append(errs, c.errAt("quorum.raft.peers", "this voter (id %q) is not among the peers", r.ID))
		}
		return errors.Join(errs...)
	case "":
		return c.errAt("quorum.backend", "required: etcd, raft, or none (none = plain VRRP without split-brain protection)")
	default:
		return c.errAt("quorum.backend", "%q: want etcd, raft or none", q.Backend)
	}
}

func (c *Config) validateInstance(in *Instance) error {
	p := "vrrp_instance." + in.Name + "."
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, c.errAt(p+key, format, args...))
	}
	if in.Interface == "" {
		bad("interface", "required")
	} else if len(in.Interface) > 15 {
		bad("interface", "%q is longer than 15 characters", in.Interface)
	}
	switch strings.ToUpper(in.State) {
	case "", "BACKUP":
		in.State = "BACKUP"
	case "MASTER":
		in.State = "MASTER"
	default:
		bad("state", "%q: want MASTER or BACKUP", in.State)
	}
	if in.VirtualRouterID < 1 || in.VirtualRouterID > 255 {
		bad("virtual_router_id", "%d: want 1-255", in.VirtualRouterID)
	}
	if _, set := c.lines[p+"priority"]; !set {
		in.Priority = DefaultPriority
	}
	if in.Priority < 1 || in.Priority > 255 {
		bad("priority", "%d: want 1-255 (255 = address owner; 0 is reserved for release)", in.Priority)
	}
	if in.Priority == 255 && in.State == "BACKUP" {
		c.warn(p+"priority", "255 (address owner) with state BACKUP: it will become master at once")
	}
	if in.NoPreempt && in.State == "MASTER" {
		c.warn(p+"nopreempt", "nopreempt only takes effect with state BACKUP (as in keepalived)")
	}

	// Addresses decide the family.
	var has4, has6 bool
	for i, s := range in.VirtualIPAddress {
		v, err := parseVIP(s, in.Interface)
		if err != nil {
			bad(fmt.Sprintf("virtual_ipaddress[%d]", i), "%v", err)
			continue
		}
		has4 = has4 || v.Prefix.Addr().Is4()
		has6 = has6 || v.Prefix.Addr().Is6()
		in.VIPs = append(in.VIPs, v)
	}
	if len(in.VirtualIPAddress) == 0 {
		bad("virtual_ipaddress", "at least one address is required")
	}
	if has4 && has6 {
		bad("virtual_ipaddress", "mixes IPv4 and IPv6: use one instance per family (RFC 5798)")
	}
	in.IPv6 = has6
	switch {
	case in.Version == 0 && has6:
		in.Version = 3
	case in.Version == 0:
		in.Version = 2
	case in.Version == 2 && has6:
		bad("version", "2 with IPv6 addresses: IPv6 needs VRRPv3")
	case in.Version != 2 && in.Version != 3:
		bad("version", "%d: want 2 or 3", in.Version)
	}

	if _, set := c.lines[p+"advert_int"]; !set {
		in.AdvertInt = Duration(DefaultAdvertInt)
	}
	ai := in.AdvertInt.D()
	switch in.Version {
	case 2:
		if ai < time.Second || ai > 255*time.Second || ai%time.Second != 0 {
			bad("advert_int", "%v: VRRPv2 needs whole seconds 1-255", ai)
		}
	case 3:
		if ai < 10*time.Millisecond || ai > 40950*time.Millisecond || ai%(10*time.Millisecond) != 0 {
			bad("advert_int", "%v: VRRPv3 needs 0.01-40.95 s in centiseconds", ai)
		}
	}
	if d := in.PreemptDelay.D(); d < 0 || d > vrrp.MaxPreemptDelay {
		bad("preempt_delay", "%v: valid 0..%v (keepalived's limit)", d, vrrp.MaxPreemptDelay)
	}

	if in.Authentication.KeyFile != "" && !strings.EqualFold(in.Authentication.AuthType, "HMAC") {
		bad("authentication.key_file", "key_file given without auth_type HMAC")
	}
	switch strings.ToUpper(in.Authentication.AuthType) {
	case "":
		if in.Authentication.AuthPass != "" {
			bad("authentication.auth_type", "auth_pass given without auth_type PASS")
		}
	case "HMAC":
		in.Authentication.AuthType = "HMAC"
		switch {
		case in.Authentication.AuthPass != "":
			bad("authentication.auth_pass", "not used with auth_type HMAC (the key is in key_file)")
		case in.Authentication.KeyFile == "":
			bad("authentication.key_file", "required with auth_type HMAC")
		case !filepath.IsAbs(in.Authentication.KeyFile):
			bad("authentication.key_file", "%q: want an absolute path", in.Authentication.KeyFile)
		}
	case "PASS":
		in.Authentication.AuthType = "PASS"
		if in.Version != 2 {
			bad("authentication", "VRRPv3 has no authentication (RFC 5798 §9); remove the block or use version 2")
		}
		if in.Authentication.AuthPass == "" {
			bad("authentication.auth_pass", "required with auth_type PASS")
		}
		if len(in.Authentication.AuthPass) > 8 {
			c.warn(p+"authentication.auth_pass", "longer than 8 characters: truncated to %q as keepalived does",
				in.Authentication.AuthPass[:8])
		}
		copy(in.AuthKey[:], in.Authentication.AuthPass)
	case "AH":
		bad("authentication.auth_type", "AH is not supported (it was removed from VRRPv3 and is rarely interoperable); use PASS or none")
	default:
		bad("authentication.auth_type", "%q: want PASS (keepalived) or HMAC (leasehold nodes only)", in.Authentication.AuthType)
	}

	if in.UnicastSrcIP != "" {
		a, err := netip.ParseAddr(in.UnicastSrcIP)
		switch {
		case err != nil:
			bad("unicast_src_ip", "%q is not an IP address", in.UnicastSrcIP)
		case a.Is6() != in.IPv6:
			bad("unicast_src_ip", "%s is not of the instance's address family", a)
		default:
			in.Src = a
		}
	}
	for i, s := range in.UnicastPeer {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		switch {
		case err != nil:
			bad(fmt.Sprintf("unicast_peer[%d]", i), "%q is not an IP address", s)
		case a.Is6() != in.IPv6:
			bad(fmt.Sprintf("unicast_peer[%d]", i), "%s is not of the instance's address family", a)
		case a.IsMulticast():
			bad(fmt.Sprintf("unicast_peer[%d]", i), "%s is multicast", a)
		default:
			in.Peers = append(in.Peers, a)
		}
	}
	if in.GarpMasterDelay == nil {
		d := Duration(DefaultGarpMasterDelay)
		in.GarpMasterDelay = &d
	}
	if in.GarpMasterRepeat == nil {
		r := DefaultGarpMasterRepeat
		in.GarpMasterRepeat = &r
	}
	if *in.GarpMasterRepeat < 0 || *in.GarpMasterRepeat > 100 {
		bad("garp_master_repeat", "%d: want 0-100", *in.GarpMasterRepeat)
	}
	if in.V3ChecksumPseudoHeader == nil {
		t := true
		in.V3ChecksumPseudoHeader = &t
	}
	for i, s := range in.TrackScript {
		if _, ok := c.Script[s]; !ok {
			bad(fmt.Sprintf("track_script[%d]", i), "no vrrp_script named %q", s)
		}
	}
	for i, s := range in.TrackInterface {
		f := strings.Fields(s)
		t := TrackIface{}
		switch {
		case len(f) == 1:
			t.Name = f[0]
		case len(f) == 3 && f[1] == "weight":
			w, err := strconv.Atoi(f[2])
			if err != nil || w < -253 || w > 253 {
				bad(fmt.Sprintf("track_interface[%d]", i), "weight %q: want -253..253", f[2])
			}
			t.Name, t.Weight = f[0], w
		default:
			bad(fmt.Sprintf("track_interface[%d]", i), "%q: want IFACE or \"IFACE weight N\"", s)
			continue
		}
		in.Tracks = append(in.Tracks, t)
	}
	errs = append(errs, c.validateNotify(p, &in.NotifyScripts), c.validateHooks(p+"fence_peer", in.FencePeer), c.validateHooks(p+"promote", in.Promote),
		c.validateHooks(p+"demote", in.Demote))
	if in.Probe == nil {
		t := true
		in.Probe = &t
	}
	errs = append(errs, c.validateDRBD(p+"drbd", in.DRBD))
	if in.MySQL != nil && c.Quorum.Backend == BackendNone {
		errs = append(errs, c.errAt(p+"mysql", "needs a quorum (etcd or raft): a MySQL master following plain VRRP is the dual-writer this section exists to prevent"))
	}
	if c.Quorum.Backend == BackendNone && (len(in.FencePeer)+len(in.Promote)+len(in.Demote) > 0) {
		c.warn(p+"fence_peer", "fence_peer/promote/demote hooks need a quorum (etcd or raft): ignored with backend none")
	}
	return errors.Join(errs...)
}

// parseVIP parses keepalived's "ADDR[/LEN] [dev IFACE]".
func parseVIP(s, iface string) (VIP, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return VIP{}, errors.New("empty address")
	}
	v := VIP{Dev: iface}
	for i := 1; i < len(f); i += 2 {
		if i+1 >= len(f) {
			return VIP{}, fmt.Errorf("%q: %q needs a value", s, f[i])
		}
		switch f[i] {
		case "dev":
			v.Dev = f[i+1]
		default:
			return VIP{}, fmt.Errorf("%q: option %q is not supported (only dev)", s, f[i])
		}
	}
	var err error
	if strings.Contains(f[0], "/") {
		v.Prefix, err = netip.ParsePrefix(f[0])
	} else {
		var a netip.Addr
		a, err = netip.ParseAddr(f[0])
		v.Prefix = netip.PrefixFrom(a, a.BitLen())
	}
	if err != nil || !v.Prefix.Addr().IsValid() {
		return VIP{}, fmt.Errorf("%q is not an IP address or prefix", f[0])
	}
	a := v.Prefix.Addr()
	if a.IsMulticast() || a.IsUnspecified() || a.IsLoopback() || net.IP(a.AsSlice()).Equal(net.IPv4bcast) {
		return VIP{}, fmt.Errorf("%s cannot be a virtual address", a)
	}
	if a.Is4In6() {
		return VIP{}, fmt.Errorf("%s: write IPv4 addresses plainly", a)
	}
	return v, nil
}

// validateDRBD checks an instance's drbd section's file-level rules (key
// prefix p, "vrrp_instance.NAME.drbd"); the resource's own are checked by
// storage/drbd when the plan is built.
func (c *Config) validateDRBD(p string, d *DRBD) error {
	if d == nil {
		return nil
	}
	var errs []error
	if c.Quorum.Backend == BackendNone {
		errs = append(errs, c.errAt(p, "needs a quorum (etcd or raft): DRBD failover without a lease is the split brain this section exists to prevent"))
	}
	switch d.AfterSplitBrain {
	case "":
		d.AfterSplitBrain = "manual"
	case "manual", "lease":
	default:
		errs = append(errs, c.errAt(p+".after_split_brain", "%q: want manual (report and wait for the operator) or lease (the node without the lease discards its writes)", d.AfterSplitBrain))
	}
	if d.StepTimeout < 0 {
		errs = append(errs, c.errAt(p+".step_timeout", "must not be negative"))
	}
	return errors.Join(errs...)
}

// validateDRBDUnique refuses one DRBD resource or device in two instances.
func (c *Config) validateDRBDUnique() error {
	var errs []error
	res, dev := map[string]string{}, map[string]string{}
	for _, name := range c.Names() {
		in := c.Instance[name]
		if in == nil || in.DRBD == nil {
			continue
		}
		p := "vrrp_instance." + name + ".drbd."
		if other, dup := res[in.DRBD.Resource]; dup && in.DRBD.Resource != "" {
			errs = append(errs, c.errAt(p+"resource", "%q is also the drbd resource of instance %s", in.DRBD.Resource, other))
		}
		if other, dup := dev[in.DRBD.Device]; dup && in.DRBD.Device != "" {
			errs = append(errs, c.errAt(p+"device", "%s is also the drbd device of instance %s", in.DRBD.Device, other))
		}
		res[in.DRBD.Resource], dev[in.DRBD.Device] = name, name
	}
	return errors.Join(errs...)
}

// validateMySQLUnique refuses one MySQL server (socket or address) in two
// instances.
func (c *Config) validateMySQLUnique() error {
	var errs []error
	seen := map[string]string{}
	for _, name := range c.Names() {
		in := c.Instance[name]
		if in == nil || in.MySQL == nil {
			continue
		}
		key, where := "socket", in.MySQL.Socket
		if where == "" {
			key, where = "address", in.MySQL.Address
		}
		if other, dup := seen[where]; dup && where != "" {
			errs = append(errs, c.errAt("vrrp_instance."+name+".mysql."+key, "%s is also the mysql server of instance %s", where, other))
		}
		seen[where] = name
	}
	return errors.Join(errs...)
}
