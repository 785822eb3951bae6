package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/leasehold/leasehold/config"
	"github.com/leasehold/leasehold/fencing"
	"github.com/leasehold/leasehold/node"
	"github.com/leasehold/leasehold/node/health"
	"github.com/leasehold/leasehold/quorum"
	"github.com/leasehold/leasehold/quorum/etcd"
	"github.com/leasehold/leasehold/quorum/raft"
	"github.com/leasehold/leasehold/script"
	"github.com/leasehold/leasehold/storage/drbd"
	"github.com/leasehold/leasehold/storage/mysql"
	"github.com/leasehold/leasehold/vrrp"
)

// Default TTLs per backend: etcd's default servers round leases up to 2 s;
// the raft group allows shorter ones.
const (
	defaultEtcdTTL = 2 * time.Second
	defaultRaftTTL = time.Second
	// etcdMinTTL is the smallest TTL a tuned etcd server grants.
	etcdMinTTL = time.Second
)

// Plan is a configuration file turned into what the daemon runs: the file
// as read, and the runtime configuration of every package built from it,
// each validated by that package with its cross-field rules. `config
// check`, `run` and a SIGHUP reload all go through NewPlan, so a file one
// accepts the others accept; every error names file, line and key.
//
// A plan touches no OS state beyond reading the scripts and hooks it names
// (their safety is part of the file's validity). Whether nftables, the
// watchdog device or the quorum are reachable is the platform's business
// at start.
type Plan struct {
	Config *config.Config
	// Quorum are the lease timings (lease mode only).
	Quorum quorum.Options
	// Raft is this node's voter (backend raft).
	Raft raft.Config
	// RaftClients are the raft client APIs to try, this node's voter first.
	RaftClients []string
	// Etcd is the etcd client (backend etcd).
	Etcd etcd.Config
	// Instances are the VRRP instances by name (Src unset when the file
	// leaves it to the interface's address).
	Instances map[string]vrrp.InstanceConfig
	// DRBD are the instances' DRBD resources, by instance name.
	DRBD map[string]drbd.Config
	// MySQL are the instances' MySQL servers, by instance name.
	MySQL map[string]mysql.Config
	// Watchdog: armed while a group with resources the kernel cannot fence
	// is owned (Needed), with a whole-second Timeout inside the lease.
	Watchdog WatchdogPlan
	// Warnings name file, line and key of what runs differently than the
	// file might suggest.
	Warnings []string
}

// WatchdogPlan is the watchdog part of a plan.
type WatchdogPlan struct {
	Mode    fencing.WatchdogMode
	Device  string
	Needed  bool
	Timeout time.Duration
}

// LeaseMode reports whether the node holds leases (quorum etcd or raft).
func (p *Plan) LeaseMode() bool { return p.Config.Quorum.Backend != config.BackendNone }

// Load reads a daemon configuration file and builds its plan.
func Load(path string) (*Plan, error) {
	c, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return NewPlan(c)
}

// LoadQuorum reads a file that needs only node and quorum (a raft witness,
// or `leasehold lease`) and builds its plan; witness builds the voter as a
// witness.
func LoadQuorum(path string, witness bool) (*Plan, error) {
	c, err := config.LoadQuorum(path)
	if err != nil {
		return nil, err
	}
	p := &Plan{Config: c, Instances: map[string]vrrp.InstanceConfig{}, Warnings: c.Warnings}
	if err := p.quorum(witness); err != nil {
		return nil, err
	}
	return p, nil
}

// NewPlan validates a parsed configuration against every package it
// configures.
func NewPlan(c *config.Config) (*Plan, error) {
	p := &Plan{Config: c, Instances: map[string]vrrp.InstanceConfig{}, DRBD: map[string]drbd.Config{}, MySQL: map[string]mysql.Config{},
		Warnings: c.Warnings}
	var errs []error
	if err := p.quorum(false); err != nil {
		errs = append(errs, err)
	}
	for _, name := range c.Names() {
		if err := p.instance(c.Instance[name]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := p.watchdog(); err != nil {
		errs = append(errs, err)
	}
	if err := p.scripts(); err != nil {
		errs = append(errs, err)
	}
	if err := p.lvsScripts(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// keyedErr matches the "pkg: key: message" errors of the packages'
// Validate functions.
var keyedErr = regexp.MustCompile(`^(?:quorum|raft|etcd|drbd|mysql): ([a-z_]+(?:\.[a-z_]+)?(?:\[\d+\])?): (.*)$`)

// attribute maps a package's validation errors to file keys: section is
// the key prefix, rename maps the package's names to the file's.
func (p *Plan) attribute(err error, section string, rename map[string]string) error {
	if err == nil {
		return nil
	}
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	out := make([]error, 0, len(list))
	for _, e := range list {
		m := keyedErr.FindStringSubmatch(e.Error())
		if m == nil {
			out = append(out, p.Config.ErrAt(section, "%v", e))
			continue
		}
		key, msg := m[1], m[2]
		if k, ok := rename[key]; ok {
			key = k
		}
		out = append(out, p.Config.ErrAt(section+"."+key, "%s", msg))
	}
	return errors.Join(out...)
}

// quorum builds and checks the lease timings and the backend's client or
// voter.
func (p *Plan) quorum(witness bool) error {
	c := p.Config
	q := c.Quorum
	if q.Backend == config.BackendNone {
		return nil
	}
	p.Quorum = quorumOptions(c)
	minTTL := etcdMinTTL
	var errs []error
	switch q.Backend {
	case config.BackendRaft:
		p.Raft = raftMemberConfig(c, witness)
		minTTL = p.Raft.MinTTL()
		errs = append(errs, p.attribute(p.Raft.Validate(), "quorum.raft", map[string]string{
			"bind_addr": "bind", "client_addr": "client_bind"}))
		p.RaftClients = raftClients(q.Raft)
	case config.BackendEtcd:
		p.Etcd = etcdConfig(q.Etcd)
		errs = append(errs, p.attribute(p.Etcd.Validate(), "quorum.etcd", nil))
	}
	// The fence's margin bounds how long one refresh of the kernel fence
	// may take (fencing.Refresh): unset, it grows with the TTL, so a
	// loaded machine (a refresh of 100–400 ms was seen at a load of 10 on
	// 2 cores, 80 ms in an emulated guest) does not demote an owner with
	// plenty of lease left.
	if c.Fencing.Margin == 0 {
		c.Fencing.Margin = config.Duration(max(config.MinFenceMargin, p.Quorum.TTL/10))
	}
	if m := c.Fencing.Margin.D(); !witness && m >= p.Quorum.TTL/4 {
		errs = append(errs, c.ErrAt("fencing.margin", "%v is too large for quorum.ttl %v: the fence would lapse long before the lease; want < ttl/4", m, p.Quorum.TTL))
	}
	if !witness {
		errs = append(errs, p.attribute(p.Quorum.Validate(minTTL), "quorum", nil))
		if c.Fencing.NFTables == "off" && p.Quorum.TTL < 3*time.Second+c.Fencing.Margin.D() {
			errs = append(errs, c.ErrAt("quorum.ttl", "%v is too short with fencing.nftables off: address lifetimes "+
				"(1 s resolution, removed up to 1.25 s late) need ttl >= 3 s + fencing.margin", p.Quorum.TTL))
		}
	}
	return errors.Join(errs...)
}

// raftClients lists the voters' client APIs, this node's first (it
// forwards to the leader).
func raftClients(r config.Raft) []string {
	var out []string
	if r.ClientBind != "" {
		out = append(out, r.ClientBind)
	}
	for _, peer := range r.Peers {
		if peer.Client != "" && peer.Client != r.ClientBind {
			out = append(out, peer.Client)
		}
	}
	return out
}

// quorumOptions turns the config's quorum section into lease timings: the
// defaults scaled to the TTL, then any value the file sets.
func quorumOptions(c *config.Config) quorum.Options {
	q := c.Quorum
	ttl := q.TTL.D()
	if ttl == 0 {
		ttl = defaultEtcdTTL
		if q.Backend == config.BackendRaft {
			ttl = defaultRaftTTL
		}
	}
	o := quorum.ScaledOptions(ttl)
	if ttl == defaultEtcdTTL {
		o = quorum.DefaultOptions()
	}
	set := func(dst *time.Duration, v config.Duration) {
		if v != 0 {
			*dst = v.D()
		}
	}
	set(&o.RenewInterval, q.RenewInterval)
	set(&o.Drift, q.Drift)
	set(&o.Margin, q.Margin)
	set(&o.DemoteBudget, q.DemoteBudget)
	set(&o.RequestTimeout, q.RequestTimeout)
	o.Node = c.Node.Name
	return o
}

func etcdConfig(e config.Etcd) etcd.Config {
	ec := etcd.DefaultConfig()
	ec.Endpoints = e.Endpoints
	if e.Prefix != "" {
		ec.Prefix = e.Prefix
	}
	ec.CertFile, ec.KeyFile, ec.CAFile = e.CertFile, e.KeyFile, e.CAFile
	ec.Username, ec.Password = e.Username, e.Password
	if e.DialTimeout != 0 {
		ec.DialTimeout = e.DialTimeout.D()
	}
	return ec
}

// raftTLS returns the raft TLS settings, nil when off.
func raftTLS(r config.Raft) *raft.TLSConfig {
	if r.CertFile == "" {
		return nil
	}
	return &raft.TLSConfig{CertFile: r.CertFile, KeyFile: r.KeyFile, CAFile: r.CAFile}
}

// raftMemberConfig builds this node's (or the witness's) raft voter.
func raftMemberConfig(c *config.Config, witness bool) raft.Config {
	r := c.Quorum.Raft
	rc := raft.DefaultConfig()
	rc.ID, rc.BindAddr, rc.ClientAddr, rc.DataDir = r.ID, r.Bind, r.ClientBind, r.DataDir
	for _, p := range r.Peers {
		rc.Peers = append(rc.Peers, raft.Peer{ID: p.ID, Addr: p.Addr, ClientAddr: p.Client})
	}
	rc.TLS = raftTLS(r)
	rc.Witness = witness
	if v := r.HeartbeatTimeout.D(); v != 0 {
		rc.HeartbeatTimeout = v
	}
	if v := r.ElectionTimeout.D(); v != 0 {
		rc.ElectionTimeout = v
	}
	if v := r.LeaderLeaseTimeout.D(); v != 0 {
		rc.LeaderLeaseTimeout = v
	}
	return rc
}

// instance builds an instance's VRRP configuration and checks it with the
// VRRP machine's own rules, and its hooks with the fencing package's.
func (p *Plan) instance(ic *config.Instance) error {
	key := "vrrp_instance." + ic.Name
	var addrs []netip.Addr
	for _, v := range ic.VIPs {
		addrs = append(addrs, v.Prefix.Addr())
	}
	icfg := instanceConfig(ic, addrs)
	p.Instances[ic.Name] = icfg
	m := icfg.Machine
	if !m.PrimaryIP.IsValid() {
		// The socket's address is known only at start; the family is.
		m.PrimaryIP = netip.IPv4Unspecified()
		if ic.IPv6 {
			m.PrimaryIP = netip.IPv6Unspecified()
		}
	}
	var errs []error
	if err := m.Validate(); err != nil {
		errs = append(errs, p.Config.ErrAt(key, "%v", err))
	}
	if ic.Authentication.AuthType == "HMAC" {
		k, err := readHMACKey(ic.Authentication.KeyFile)
		if err != nil {
			errs = append(errs, p.Config.ErrAt(key+".authentication.key_file", "%v", err))
		}
		icfg.HMACKey = k
		p.Instances[ic.Name] = icfg
	}
	for _, hs := range []struct {
		key   string
		hooks []config.Hook
	}{{"fence_peer", ic.FencePeer}, {"promote", ic.Promote}, {"demote", ic.Demote}} {
		for i, h := range hooks(hs.hooks) {
			if err := fencing.CheckHook(h); err != nil {
				errs = append(errs, p.Config.ErrAt(fmt.Sprintf("%s.%s[%d]", key, hs.key, i), "%v", err))
			}
		}
	}
	if ic.DRBD != nil {
		errs = append(errs, p.drbd(key+".drbd", ic))
	}
	if ic.MySQL != nil {
		errs = append(errs, p.mysql(key+".mysql", ic))
	}
	if p.LeaseMode() {
		nc := node.Config{Group: ic.Name, StepTimeout: stepTimeout(p.Quorum), RetryInterval: max(ic.AdvertInt.D(), 100*time.Millisecond),
			DemoteBudget: p.Quorum.DemoteBudget}
		if err := nc.Validate(); err != nil {
			errs = append(errs, p.Config.ErrAt(key, "%v", err))
		}
	}
	return errors.Join(errs...)
}

// drbd builds an instance's DRBD resource and checks it with the drbd
// package's rules; its service scripts are checked as hooks are.
func (p *Plan) drbd(key string, ic *config.Instance) error {
	d := ic.DRBD
	dc := drbd.Config{Resource: d.Resource, Device: d.Device, Mount: d.Mount, FSType: d.FSType, MountOptions: d.MountOptions,
		KillHolders: d.KillHolders, AfterSplitBrain: d.AfterSplitBrain, StepTimeout: d.StepTimeout.D()}
	var errs []error
	for i, s := range d.Services {
		sk := fmt.Sprintf("%s.services[%d]", key, i)
		sv, err := drbd.ParseService(s)
		if err != nil {
			errs = append(errs, p.Config.ErrAt(sk, "%v", err))
			continue
		}
		if sv.Script != "" {
			if err := script.Check(sv.Script); err != nil {
				errs = append(errs, p.Config.ErrAt(sk, "%v", err))
			}
		}
		dc.Services = append(dc.Services, sv)
	}
	if len(errs) == 0 {
		errs = append(errs, p.attribute(dc.Validate(), key, nil))
	}
	p.DRBD[ic.Name] = dc
	return errors.Join(errs...)
}

// mysql builds an instance's MySQL resource and checks it with the mysql
// package's rules (the credentials files are read: mode and syntax).
func (p *Plan) mysql(key string, ic *config.Instance) error {
	m := ic.MySQL
	mc := mysql.Config{Socket: m.Socket, Address: m.Address, CredentialsFile: m.CredentialsFile,
		CatchupTimeout: m.CatchupTimeout.D(), CatchupPolicy: mysql.Policy(m.CatchupPolicy), StepTimeout: m.StepTimeout.D(),
		Peer: m.Peer, PeerCredentialsFile: m.PeerCredentialsFile, PeerTimeout: m.PeerTimeout.D(),
		Check: mysql.CheckConfig{Interval: m.Check.Interval.D(), Timeout: m.Check.Timeout.D(), Weight: m.Check.Weight,
			Rise: m.Check.Rise, Fall: m.Check.Fall, MaxLag: m.Check.MaxLag.D()}}
	var errs []error
	if p.LeaseMode() {
		// The whole promotion (peer fence, catch-up, epoch, read_only) is
		// one step of the group, cut off at its step timeout: the waits
		// must fit inside it, with room for the statements after them.
		step := stepTimeout(p.Quorum)
		if mc.CatchupTimeout == 0 {
			mc.CatchupTimeout = step / 2
		}
		if mc.PeerTimeout == 0 && mc.Peer != "" {
			mc.PeerTimeout = step / 4
		}
		if sum := mc.CatchupTimeout + mc.PeerTimeout; sum >= step {
			errs = append(errs, p.Config.ErrAt(key+".catchup_timeout", "catchup_timeout %v + peer_timeout %v do not fit in the "+
				"promotion step (%v, half the quorum.ttl): the promotion would be cut off before the policy applies; lower them or raise quorum.ttl",
				mc.CatchupTimeout, mc.PeerTimeout, step))
		}
	}
	p.MySQL[ic.Name] = mc
	return errors.Join(append(errs, p.attribute(mc.Validate(), key, nil))...)
}

// readHMACKey reads an authentication key file: not accessible to others
// than its owner and group, at least vrrp.MinKeyLen bytes (a trailing
// newline is not part of the key).
func readHMACKey(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 {
		return nil, fmt.Errorf("%s: mode %04o lets others read or write the key: chmod o-rwx (e.g. 0600)", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) < vrrp.MinKeyLen {
		return nil, fmt.Errorf("%s: key of %d bytes, want at least %d", path, len(b), vrrp.MinKeyLen)
	}
	return b, nil
}

// stepTimeout bounds each promotion step of a group.
func stepTimeout(o quorum.Options) time.Duration { return max(o.TTL/2, 500*time.Millisecond) }

func instanceConfig(ic *config.Instance, addrs []netip.Addr) vrrp.InstanceConfig {
	state := vrrp.StateBackup
	if ic.State == "MASTER" {
		state = vrrp.StateMaster
	}
	var authType uint8
	if ic.Authentication.AuthType == "PASS" {
		authType = vrrp.AuthPass
	}
	return vrrp.InstanceConfig{
		Name:  ic.Name,
		Iface: ic.Interface,
		Machine: vrrp.Config{
			VRID:           uint8(ic.VirtualRouterID),
			Priority:       uint8(ic.Priority),
			Version:        uint8(ic.Version),
			AdvertInterval: ic.AdvertInt.D(),
			Preempt:        !ic.NoPreempt,
			PreemptDelay:   ic.PreemptDelay.D(),
			InitialState:   state,
			AcceptMode:     ic.Accept,
			PrimaryIP:      ic.Src,
		},
		Expect: vrrp.Expect{
			Version:  uint8(ic.Version),
			VRID:     uint8(ic.VirtualRouterID),
			AuthType: authType,
			AuthData: ic.AuthKey,
			Interval: ic.AdvertInt.D(),
			CheckTTL: true,
		},
		Src:         ic.Src,
		Peers:       ic.Peers,
		VIPs:        addrs,
		Encode:      vrrp.EncodeOptions{V3ChecksumNoPseudo: !*ic.V3ChecksumPseudoHeader},
		GarpRepeat:  *ic.GarpMasterRepeat,
		GarpDelay:   ic.GarpMasterDelay.D(),
		GarpRefresh: ic.GarpMasterRefresh.D(),
	}
}

func hooks(hs []config.Hook) []fencing.Hook {
	out := make([]fencing.Hook, 0, len(hs))
	for _, h := range hs {
		out = append(out, fencing.Hook{Path: h.Path, Args: h.Args, Timeout: h.Timeout.D(), Required: *h.Required, RunAs: h.User})
	}
	return out
}

// watchdog decides whether the watchdog is needed and with what timeout.
func (p *Plan) watchdog() error {
	c := p.Config
	mode, err := fencing.ParseWatchdogMode(c.Fencing.Watchdog)
	if err != nil {
		return c.ErrAt("fencing.watchdog", "%v", err)
	}
	w := WatchdogPlan{Mode: mode, Device: c.Fencing.WatchdogDevice}
	drbdAt, mysqlAt := "", ""
	for _, name := range c.Names() {
		ic := c.Instance[name]
		w.Needed = w.Needed || len(ic.Promote)+len(ic.Demote) > 0 || ic.DRBD != nil || ic.MySQL != nil
		if ic.DRBD != nil && drbdAt == "" {
			drbdAt = "vrrp_instance." + name + ".drbd"
		}
		if ic.MySQL != nil && mysqlAt == "" {
			mysqlAt = "vrrp_instance." + name + ".mysql"
		}
	}
	if p.LeaseMode() && mode == fencing.WatchdogOff {
		if drbdAt != "" {
			p.Warnings = append(p.Warnings, c.ErrAt("fencing.watchdog", "off with %s: a DRBD demotion that fails or hangs "+
				"leaves this node Primary with nothing to reset it; use auto or required", drbdAt).Error())
		}
		if mysqlAt != "" {
			p.Warnings = append(p.Warnings, c.ErrAt("fencing.watchdog", "off with %s: a MySQL demotion that fails or hangs "+
				"(mysqld unreachable) leaves the server writable with nothing to reset the node; use auto or required", mysqlAt).Error())
		}
	}
	if drbdAt != "" && p.LeaseMode() {
		if b := p.Quorum.DemoteBudget; b < time.Second {
			p.Warnings = append(p.Warnings, c.ErrAt("quorum.demote_budget", "%v with %s: stopping services, unmounting "+
				"(dirty data is written first) and drbdadm secondary must fit in it, or the watchdog resets the node; "+
				"measure a demotion and raise demote_budget (and ttl)", b, drbdAt).Error())
		}
	}
	w.Needed = w.Needed && mode != fencing.WatchdogOff && p.LeaseMode()
	if w.Needed {
		o := p.Quorum
		// Whole seconds, inside the local deadline: the reset must come
		// before the lease can pass to another node.
		w.Timeout = (o.TTL - o.Drift - o.Margin - o.DemoteBudget).Truncate(time.Second)
		if w.Timeout < time.Second {
			msg := fmt.Sprintf("a whole-second watchdog timeout does not fit inside the lease (quorum.ttl %v): use ttl >= 2s", o.TTL)
			if mode == fencing.WatchdogRequired {
				return c.ErrAt("fencing.watchdog", "required: %s", msg)
			}
			p.Warnings = append(p.Warnings, c.ErrAt("fencing.watchdog", "%s; the watchdog stays off", msg).Error())
			w.Needed = false
		}
	}
	p.Watchdog = w
	return nil
}

// scripts checks the health trackers and notifiers the way the daemon
// builds them (the same constructors; nothing is started).
func (p *Plan) scripts() error {
	c := p.Config
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var errs []error
	for _, name := range c.Names() {
		ic := c.Instance[name]
		var native []health.Script
		if mc, ok := p.MySQL[name]; ok && mc.Validate() == nil { // an invalid section is reported under its own keys
			native = append(native, mysqlCheck(mc, func(context.Context) error { return nil }))
		}
		if _, err := newTracker(c, ic, log, native...); err != nil {
			errs = append(errs, c.ErrAt("vrrp_instance."+name+".track_script", "%v", err))
		}
		if _, err := newInstanceNotifier(ic, log); err != nil {
			errs = append(errs, c.ErrAt("vrrp_instance."+name+".notify", "%v", err))
		}
	}
	for _, name := range sortedNames(c.Sync) {
		if _, err := newSyncNotifier(name, c.Sync[name], log); err != nil {
			errs = append(errs, c.ErrAt("vrrp_sync_group."+name+".notify", "%v", err))
		}
	}
	return errors.Join(errs...)
}

// lvsScripts checks the programs of MISC_CHECK, quorum_up and
// quorum_down as they will run (script.Check: ownership and permissions;
// the user to run as exists).
func (p *Plan) lvsScripts() error {
	var errs []error
	check := func(key string, cmd *script.Command) {
		if cmd == nil {
			return
		}
		if err := errors.Join(script.Check(cmd.Path), script.CheckUser(cmd.RunAs)); err != nil {
			errs = append(errs, p.Config.ErrAt(key, "%v", err))
		}
	}
	for i, s := range p.Config.LVS.Services {
		vs := fmt.Sprintf("virtual_server[%d]", i)
		check(vs+".quorum_up", s.QuorumUp)
		check(vs+".quorum_down", s.QuorumDown)
		for j, r := range s.Reals {
			for _, c := range r.Checks {
				check(fmt.Sprintf("%s.real_server[%d].%s.misc_path", vs, j, c.Kind), c.Command)
			}
			check(fmt.Sprintf("%s.real_server[%d].notify_up", vs, j), r.NotifyUp)
			check(fmt.Sprintf("%s.real_server[%d].notify_down", vs, j), r.NotifyDown)
		}
	}
	return errors.Join(errs...)
}

func sortedNames[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// DRBDGroup finds the instance whose drbd section names resource and
// returns its lease's group (the instance, or its vrrp_sync_group) and
// the resource's configuration.
func (p *Plan) DRBDGroup(resource string) (group string, dc drbd.Config, err error) {
	syncOf := p.Config.SyncOf()
	var known []string
	for _, name := range sortedNames(p.DRBD) {
		c := p.DRBD[name]
		known = append(known, c.Resource)
		if c.Resource != resource {
			continue
		}
		group = name
		if g, ok := syncOf[name]; ok {
			group = g
		}
		return group, c, nil
	}
	if len(known) == 0 {
		return "", drbd.Config{}, fmt.Errorf("no vrrp_instance has a drbd section (resource %q)", resource)
	}
	return "", drbd.Config{}, fmt.Errorf("no vrrp_instance's drbd section names resource %q (configured: %s)", resource, strings.Join(known, ", "))
}
