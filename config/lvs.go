package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/leasehold/leasehold/lvs"
	"github.com/leasehold/leasehold/script"
)

// VirtualServer is a virtual_server block in keepalived's vocabulary; the
// header `virtual_server IP PORT | fwmark N | group NAME` is the keys ip
// and port, fwmark, or group. Follow names the vrrp_instance or
// vrrp_sync_group whose lease the table follows (lvs_mode owner).
type VirtualServer struct {
	IP     string `yaml:"ip"`
	Port   int    `yaml:"port"`
	FWMark uint32 `yaml:"fwmark"`
	Group  string `yaml:"group"`
	Follow string `yaml:"follow"`

	LbAlgo    string `yaml:"lb_algo"`
	LvsSched  string `yaml:"lvs_sched"`
	LbKind    string `yaml:"lb_kind"`
	LvsMethod string `yaml:"lvs_method"`
	// PersistenceTimeout in seconds (keepalived's bare
	// `persistence_timeout` is 360).
	PersistenceTimeout     Duration `yaml:"persistence_timeout"`
	PersistenceGranularity string   `yaml:"persistence_granularity"`
	Protocol               string   `yaml:"protocol"`
	Quorum                 *int     `yaml:"quorum"`
	Hysteresis             int      `yaml:"hysteresis"`
	QuorumUp               string   `yaml:"quorum_up"`
	QuorumDown             string   `yaml:"quorum_down"`
	SorryServer            string   `yaml:"sorry_server"` // "IP [PORT]"
	SorryServerInhibit     bool     `yaml:"sorry_server_inhibit"`
	Alpha                  bool     `yaml:"alpha"`
	Omega                  bool     `yaml:"omega"`
	InhibitOnFailure       bool     `yaml:"inhibit_on_failure"`
	CheckTiming            `yaml:",inline"`
	RealServer             []RealServer `yaml:"real_server"`
}

// CheckTiming are the checker timings a virtual server, a real server or
// a checker may set; the nearest one wins (keepalived's inheritance).
type CheckTiming struct {
	DelayLoop        *Duration `yaml:"delay_loop"`
	ConnectTimeout   *Duration `yaml:"connect_timeout"`
	Retry            *int      `yaml:"retry"`
	NbGetRetry       *int      `yaml:"nb_get_retry"` // retry's old name
	DelayBeforeRetry *Duration `yaml:"delay_before_retry"`
	Warmup           *Duration `yaml:"warmup"`
}

// RealServer is a real_server block (header `real_server IP [PORT]`).
type RealServer struct {
	IP               string `yaml:"ip"`
	Port             *int   `yaml:"port"` // default: the virtual server's
	Weight           *int   `yaml:"weight"`
	InhibitOnFailure *bool  `yaml:"inhibit_on_failure"`
	LbKind           string `yaml:"lb_kind"`
	LvsMethod        string `yaml:"lvs_method"`
	CheckTiming      `yaml:",inline"`
	TCPCheck         *Checker `yaml:"TCP_CHECK"`
	HTTPGet          *Checker `yaml:"HTTP_GET"`
	SSLGet           *Checker `yaml:"SSL_GET"`
	MiscCheck        *Checker `yaml:"MISC_CHECK"`
	// NotifyUp and NotifyDown run when the checkers bring the server back
	// or take it out (keepalived's notify_up/notify_down: an absolute
	// path and arguments, quoted as keepalived quotes them).
	NotifyUp   string `yaml:"notify_up"`
	NotifyDown string `yaml:"notify_down"`
}

// Checker is a TCP_CHECK, HTTP_GET, SSL_GET or MISC_CHECK block (one of
// each kind per real server).
type Checker struct {
	ConnectIP   string `yaml:"connect_ip"`
	ConnectPort int    `yaml:"connect_port"`
	Alpha       *bool  `yaml:"alpha"`
	CheckTiming `yaml:",inline"`
	// HTTP_GET, SSL_GET.
	URL         []URL  `yaml:"url"`
	VirtualHost string `yaml:"virtualhost"`
	// MISC_CHECK.
	MiscPath    string   `yaml:"misc_path"`
	MiscTimeout Duration `yaml:"misc_timeout"`
	MiscDynamic bool     `yaml:"misc_dynamic"`
	User        string   `yaml:"user"`
}

// URL is an HTTP_GET / SSL_GET url block.
type URL struct {
	Path       string `yaml:"path"`
	Digest     string `yaml:"digest"`
	StatusCode string `yaml:"status_code"` // "200" or "200-299 301"; default 200-299
}

// LVSSyncDaemon is keepalived's global_defs `lvs_sync_daemon INTERFACE
// INSTANCE [id N] [maxlen N] [port N] [ttl N] [group IP]`: the kernel's
// IPVS connection-sync daemons on interface, master on the owner of the
// instance's lease (its sync group's, if it is in one), backup on the
// other directors.
type LVSSyncDaemon struct {
	Interface string `yaml:"interface"`
	Instance  string `yaml:"instance"`
	ID        *int   `yaml:"id"`
	MaxLen    int    `yaml:"maxlen"`
	Port      int    `yaml:"port"`
	TTL       int    `yaml:"ttl"`
	Group     string `yaml:"group"`
}

// validateLVSSync resolves lvs_sync_daemon into c.LVS.Sync.
func (c *Config) validateLVSSync() error {
	sd := c.LVSSyncDaemon
	if sd == nil {
		return nil
	}
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, c.errAt("lvs_sync_daemon"+key, format, args...))
	}
	if len(c.VirtualServer) == 0 {
		bad("", "only with virtual_server")
	}
	if c.Quorum.Backend == BackendNone {
		bad("", "follows a lease (master on its owner): needs quorum etcd or raft")
	}
	sc := lvs.SyncConfig{Interface: sd.Interface, Group: sd.Instance}
	switch {
	case sd.Interface == "":
		bad(".interface", "required: the interface the sync daemons send and listen on")
	case len(sd.Interface) > 15:
		bad(".interface", "%q: longer than an interface name (15)", sd.Interface)
	}
	switch {
	case sd.Instance == "":
		bad(".instance", "required: the vrrp_instance whose lease makes this director the sync master")
	case c.Instance[sd.Instance] == nil:
		bad(".instance", "no vrrp_instance named %q", sd.Instance)
	default:
		if g, ok := c.SyncOf()[sd.Instance]; ok {
			sc.Group = g
		}
	}
	if sd.ID != nil {
		if *sd.ID < 0 || *sd.ID > 255 {
			bad(".id", "%d: want 0-255", *sd.ID)
		}
		sc.SyncID = uint8(*sd.ID)
	}
	if sd.MaxLen != 0 && (sd.MaxLen < 1 || sd.MaxLen > 65535-28) {
		bad(".maxlen", "%d: want 1-65507", sd.MaxLen)
	}
	sc.MaxLen = uint16(sd.MaxLen)
	if sd.Port < 0 || sd.Port > 65535 {
		bad(".port", "%d: want 1-65535", sd.Port)
	}
	sc.McastPort = uint16(sd.Port)
	if sd.TTL < 0 || sd.TTL > 255 {
		bad(".ttl", "%d: want 1-255", sd.TTL)
	}
	sc.McastTTL = uint8(sd.TTL)
	if sd.Group != "" {
		a, err := netip.ParseAddr(sd.Group)
		if err != nil || !a.IsMulticast() {
			bad(".group", "%q: want a multicast address", sd.Group)
		}
		sc.McastAddr = a
	}
	c.LVS.Sync = &sc
	return errors.Join(errs...)
}

func (c *Config) validateLVS() error {
	// lvs_sync_daemon after the virtual servers: c.LVS is set then.
	err := c.validateVirtualServers()
	return errors.Join(err, c.validateLVSSync())
}

func (c *Config) validateVirtualServers() error {
	var errs []error
	bad := func(key, format string, args ...any) { errs = append(errs, c.errAt(key, format, args...)) }
	if len(c.VirtualServer) == 0 {
		if c.LVSMode != "" {
			c.warn("lvs_mode", "set without any virtual_server")
		}
		if len(c.VirtualServerGroup) > 0 {
			c.warn("virtual_server_group", "no virtual_server uses these groups")
		}
		return nil
	}
	switch lvs.Mode(c.LVSMode) {
	case lvs.ModeOwner:
		if c.Quorum.Backend == BackendNone {
			bad("lvs_mode", "owner needs a lease (quorum etcd or raft); with quorum none use lvs_mode all (keepalived's behaviour)")
		}
	case lvs.ModeAll:
	case "":
		// Missing: the line is virtual_server's.
		errs = append(errs, &Error{File: c.file, Line: c.lines["virtual_server"], Key: "lvs_mode", Msg: "required with virtual_server: owner (the table exists only on the lease's owner) or all (every director keeps it, as keepalived does)"})
	default:
		bad("lvs_mode", "%q: want owner or all", c.LVSMode)
	}
	c.LVS = lvs.Config{Mode: lvs.Mode(c.LVSMode)}
	groups, err := c.lvsGroups()
	errs = append(errs, err)
	seen := map[lvs.Key]string{}
	groupUse := map[string]string{}
	for i := range c.VirtualServer {
		p := fmt.Sprintf("virtual_server[%d]", i)
		s, err := c.virtualServer(p, &c.VirtualServer[i], groups, groupUse)
		errs = append(errs, err)
		for _, k := range s.Keys {
			if other, dup := seen[k]; dup {
				bad(p, "%s is also a service of %s", k, other)
			}
			seen[k] = p
		}
		c.LVS.Services = append(c.LVS.Services, s)
	}
	return errors.Join(errs...)
}

// lvsGroups resolves every virtual_server_group entry: "IP [PORT]",
// "A.B.C.D-E [PORT]" (a range of the last byte) or "fwmark N
// [inet|inet6]". Protocols are filled in per virtual server.
func (c *Config) lvsGroups() (map[string][]lvs.Key, error) {
	var errs []error
	out := map[string][]lvs.Key{}
	for _, name := range sortedKeys(c.VirtualServerGroup) {
		for i, e := range c.VirtualServerGroup[name] {
			keys, err := groupEntry(e)
			if err != nil {
				errs = append(errs, c.errAt(fmt.Sprintf("virtual_server_group.%s[%d]", name, i), "%v", err))
			}
			out[name] = append(out[name], keys...)
		}
		if len(c.VirtualServerGroup[name]) == 0 {
			errs = append(errs, c.errAt("virtual_server_group."+name, "empty group"))
		}
	}
	return out, errors.Join(errs...)
}

func groupEntry(e string) ([]lvs.Key, error) {
	f := strings.Fields(e)
	if len(f) == 0 || len(f) > 3 {
		return nil, fmt.Errorf("%q: want IP [PORT], IP-LAST [PORT] or fwmark N [inet|inet6]", e)
	}
	if f[0] == "fwmark" {
		if len(f) < 2 {
			return nil, fmt.Errorf("%q: fwmark needs a number", e)
		}
		m, err := strconv.ParseUint(f[1], 10, 32)
		if err != nil || m == 0 {
			return nil, fmt.Errorf("%q: fwmark wants 1-4294967295", e)
		}
		six := len(f) == 3 && f[2] == "inet6"
		if len(f) == 3 && f[2] != "inet" && !six {
			return nil, fmt.Errorf("%q: want inet or inet6 after the mark", e)
		}
		return []lvs.Key{{FWMark: uint32(m), Six: six}}, nil
	}
	if len(f) > 2 {
		return nil, fmt.Errorf("%q: want IP [PORT]", e)
	}
	port := 0
	if len(f) == 2 {
		var err error
		if port, err = parsePort(f[1]); err != nil {
			return nil, fmt.Errorf("%q: %v", e, err)
		}
	}
	first, last, isRange := strings.Cut(f[0], "-")
	a, err := netip.ParseAddr(first)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IP address or range", f[0])
	}
	n := 1
	if isRange {
		hi, err := strconv.Atoi(last)
		lo := int(a.As16()[15])
		if err != nil || hi < lo || hi > 255 {
			return nil, fmt.Errorf("%q: a range is A.B.C.D-E with D <= E <= 255", f[0])
		}
		n = hi - lo + 1
	}
	var keys []lvs.Key
	for range n {
		keys = append(keys, lvs.Key{Addr: netip.AddrPortFrom(a, uint16(port))})
		a = a.Next()
	}
	return keys, nil
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 0 || p > 65535 {
		return 0, fmt.Errorf("port %q: want 0-65535", s)
	}
	return p, nil
}

// parseServer reads "IP [PORT]" (sorry_server).
func parseServer(s string, port int) (netip.AddrPort, error) {
	f := strings.Fields(s)
	if len(f) == 0 || len(f) > 2 {
		return netip.AddrPort{}, fmt.Errorf("%q: want IP [PORT]", s)
	}
	a, err := netip.ParseAddr(f[0])
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not an IP address", f[0])
	}
	if len(f) == 2 {
		if port, err = parsePort(f[1]); err != nil {
			return netip.AddrPort{}, err
		}
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// lvsCommand builds a MISC_CHECK or quorum_up/down command line.
func (c *Config) lvsCommand(key, line, user string, timeout time.Duration) (*script.Command, error) {
	if err := c.validateCommand(key, line); err != nil {
		return nil, err
	}
	cmd, _ := script.ParseLine(line)
	cmd.Timeout, cmd.RunAs = timeout, user
	return &cmd, nil
}

// eventScript is an optional script run on an event (quorum_up,
// notify_down, ...): its key, its command line, where it goes.
type eventScript struct {
	key, line string
	dst       **script.Command
}

// eventScripts parses each given command line (10 s to run) into its dst.
func (c *Config) eventScripts(p string, scripts ...eventScript) error {
	var errs []error
	for _, e := range scripts {
		if e.line != "" {
			cmd, err := c.lvsCommand(p+e.key, e.line, "", 10*time.Second)
			errs = append(errs, err)
			*e.dst = cmd
		}
	}
	return errors.Join(errs...)
}

// virtualServer resolves one virtual server. groupUse records which
// virtual server took each group with each protocol: a second one would
// repeat every key of the group (an error per key, and work that grows
// with the product of the two counts); it gets one error instead.
func (c *Config) virtualServer(p string, v *VirtualServer, groups map[string][]lvs.Key, groupUse map[string]string) (lvs.Service, error) {
	var errs []error
	bad := func(key, format string, args ...any) { errs = append(errs, c.errAt(p+key, format, args...)) }
	s := lvs.Service{Hysteresis: v.Hysteresis, Omega: v.Omega, Quorum: 1}
	proto, err := lvs.ParseProtocol(or(v.Protocol, "TCP"))
	if err != nil {
		bad(".protocol", "%v", err)
	}
	port := 0
	switch {
	case btoi(v.IP != "")+btoi(v.FWMark != 0)+btoi(v.Group != "") != 1:
		bad("", "give exactly one of ip (and port), fwmark or group")
	case v.IP != "":
		a, err := netip.ParseAddr(v.IP)
		if err != nil {
			bad(".ip", "%q is not an IP address", v.IP)
		}
		if v.Port < 0 || v.Port > 65535 {
			bad(".port", "%d: want 0-65535", v.Port)
		}
		port = v.Port
		s.Name = fmt.Sprintf("%s %d", v.IP, v.Port)
		s.Keys = []lvs.Key{{Proto: proto, Addr: netip.AddrPortFrom(a, uint16(v.Port))}}
	case v.FWMark != 0:
		s.Name = fmt.Sprintf("fwmark %d", v.FWMark)
		s.Keys = []lvs.Key{{FWMark: v.FWMark}}
	default:
		s.Name = "group " + v.Group
		keys, ok := groups[v.Group]
		if !ok {
			bad(".group", "no virtual_server_group named %q", v.Group)
		}
		use := v.Group + "/" + proto.String()
		if other, dup := groupUse[use]; dup {
			bad(".group", "virtual_server_group %q with protocol %s is already %s's: its services would be defined twice", v.Group, proto, other)
			keys = nil
		} else if ok {
			groupUse[use] = p
		}
		for _, k := range keys {
			if k.FWMark == 0 {
				k.Proto = proto
			}
			s.Keys = append(s.Keys, k)
		}
	}
	if v.Port != 0 && v.IP == "" {
		bad(".port", "only with ip")
	}

	// The lease it follows.
	switch {
	case v.Follow == "" && c.LVSMode == string(lvs.ModeOwner):
		bad(".follow", "required with lvs_mode owner: the vrrp_instance or vrrp_sync_group whose lease the table follows")
	case v.Follow != "":
		s.Follow = v.Follow
		if g, ok := c.SyncOf()[v.Follow]; ok {
			s.Follow = g // an instance of a sync group moves with the group's lease
		} else if _, ok := c.Sync[v.Follow]; !ok && c.Instance[v.Follow] == nil {
			bad(".follow", "no vrrp_instance or vrrp_sync_group named %q", v.Follow)
		}
	}
	if in := c.Instance[v.Follow]; in != nil && v.IP != "" && !hasVIP(in, v.IP) {
		c.warn(p+".ip", "%s is not a virtual_ipaddress of %s: the service gets traffic only where that address is", v.IP, v.Follow)
	}

	if v.LbAlgo != "" && v.LvsSched != "" {
		bad(".lvs_sched", "lb_algo and lvs_sched are the same setting: give one")
	}
	if s.Scheduler, err = lvs.ParseScheduler(or(v.LvsSched, v.LbAlgo, "wlc")); err != nil {
		bad(".lb_algo", "%v", err)
	}
	if v.LbKind != "" && v.LvsMethod != "" {
		bad(".lvs_method", "lb_kind and lvs_method are the same setting: give one")
	}
	if s.Forward, err = lvs.ParseForward(or(v.LvsMethod, v.LbKind, "NAT")); err != nil {
		bad(".lb_kind", "%v", err)
	}
	if d := v.PersistenceTimeout.D(); d != 0 {
		if d%time.Second != 0 || d > 0xffffffff*time.Second {
			bad(".persistence_timeout", "%v: want whole seconds", d)
		}
		s.Persistence = d
	}
	if port == 0 && v.IP != "" && s.Persistence == 0 {
		bad(".port", "port 0 (all ports) needs persistence_timeout (IPVS)")
	}
	if g := v.PersistenceGranularity; g != "" {
		if s.Persistence == 0 {
			bad(".persistence_granularity", "needs persistence_timeout")
		}
		if m, err := netip.ParseAddr(g); err == nil && m.Is4() {
			b := m.As4()
			s.Netmask = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		} else if n, err := strconv.Atoi(g); err == nil && n >= 1 && n <= 128 {
			s.Netmask = uint32(n)
		} else {
			bad(".persistence_granularity", "%q: want an IPv4 netmask (255.255.255.0) or an IPv6 prefix length", g)
		}
	}
	if v.Quorum != nil {
		s.Quorum = *v.Quorum
	}
	if s.Quorum < 0 || v.Hysteresis < 0 {
		bad(".quorum", "quorum and hysteresis must not be negative")
	}
	errs = append(errs, c.eventScripts(p, eventScript{".quorum_up", v.QuorumUp, &s.QuorumUp}, eventScript{".quorum_down", v.QuorumDown, &s.QuorumDown}))

	six := false
	if len(s.Keys) > 0 && s.Keys[0].FWMark == 0 {
		six = s.Keys[0].Addr.Addr().Is6()
	}
	if v.SorryServer != "" {
		a, err := parseServer(v.SorryServer, port)
		if err != nil {
			bad(".sorry_server", "%v", err)
		}
		s.Sorry = &lvs.RealServer{Addr: a, Weight: 1, Forward: s.Forward, Inhibit: v.SorryServerInhibit}
	}
	reals := map[netip.AddrPort]bool{}
	for i := range v.RealServer {
		rp := fmt.Sprintf("%s.real_server[%d]", p, i)
		r, err := c.realServer(rp, v, &v.RealServer[i], s, port)
		errs = append(errs, err)
		if reals[r.Addr] {
			errs = append(errs, c.errAt(rp+".ip", "%s is listed twice", r.Addr))
		}
		reals[r.Addr] = true
		if i == 0 && len(s.Keys) > 0 && s.Keys[0].FWMark != 0 {
			six = r.Addr.Addr().Is6()
		}
		if r.Addr.Addr().Is6() != six && r.Forward != lvs.TUN {
			errs = append(errs, c.errAt(rp+".ip", "%s is not of the virtual server's address family (only TUN crosses families)", r.Addr.Addr()))
		}
		s.Reals = append(s.Reals, r)
	}
	if s.Sorry != nil && reals[s.Sorry.Addr] {
		bad(".sorry_server", "%s is also a real_server", s.Sorry.Addr)
	}
	if len(v.RealServer) == 0 && s.Sorry == nil {
		c.warn(p+".real_server", "no real servers: the service accepts connections it cannot forward")
	}
	for i, k := range s.Keys {
		if k.FWMark != 0 && k.Six != six {
			s.Keys[i].Six = six // an unqualified fwmark takes its real servers' family
		}
	}
	return s, errors.Join(errs...)
}

func (c *Config) realServer(p string, v *VirtualServer, rs *RealServer, s lvs.Service, port int) (lvs.RealServer, error) {
	var errs []error
	bad := func(key, format string, args ...any) { errs = append(errs, c.errAt(p+key, format, args...)) }
	r := lvs.RealServer{Weight: lvs.DefaultWeight, Forward: s.Forward, Inhibit: v.InhibitOnFailure}
	a, err := netip.ParseAddr(rs.IP)
	if err != nil {
		bad(".ip", "%q is not an IP address", rs.IP)
	}
	if rs.Port != nil {
		if *rs.Port < 0 || *rs.Port > 65535 {
			bad(".port", "%d: want 0-65535", *rs.Port)
		}
		port = *rs.Port
	}
	r.Addr = netip.AddrPortFrom(a, uint16(port))
	if rs.Weight != nil {
		r.Weight = *rs.Weight
	}
	if r.Weight < 0 || r.Weight > lvs.MaxWeight {
		bad(".weight", "%d: want 0-%d", r.Weight, lvs.MaxWeight)
	}
	if rs.InhibitOnFailure != nil {
		r.Inhibit = *rs.InhibitOnFailure
	}
	if rs.LbKind != "" || rs.LvsMethod != "" {
		if r.Forward, err = lvs.ParseForward(or(rs.LvsMethod, rs.LbKind)); err != nil {
			bad(".lvs_method", "%v", err)
		}
	}
	for _, ck := range []struct {
		kind lvs.CheckKind
		b    *Checker
	}{{lvs.TCPCheck, rs.TCPCheck}, {lvs.HTTPGet, rs.HTTPGet}, {lvs.SSLGet, rs.SSLGet}, {lvs.MiscCheck, rs.MiscCheck}} {
		if ck.b == nil {
			continue
		}
		chk, err := c.checker(p+"."+string(ck.kind), ck.kind, ck.b, []CheckTiming{ck.b.CheckTiming, rs.CheckTiming, v.CheckTiming}, r.Addr)
		errs = append(errs, err)
		chk.Alpha = v.Alpha
		if ck.b.Alpha != nil {
			chk.Alpha = *ck.b.Alpha
		}
		r.Checks = append(r.Checks, chk)
	}
	errs = append(errs, c.eventScripts(p, eventScript{".notify_up", rs.NotifyUp, &r.NotifyUp}, eventScript{".notify_down", rs.NotifyDown, &r.NotifyDown}))
	return r, errors.Join(errs...)
}

// checker resolves a checker; timings come from the nearest level that
// sets them (the checker, its real server, its virtual server).
func (c *Config) checker(p string, kind lvs.CheckKind, b *Checker, levels []CheckTiming, rs netip.AddrPort) (lvs.Check, error) {
	var errs []error
	bad := func(key, format string, args ...any) { errs = append(errs, c.errAt(p+key, format, args...)) }
	dur := func(get func(CheckTiming) *Duration, def time.Duration) time.Duration {
		for _, l := range levels {
			if d := get(l); d != nil {
				return d.D()
			}
		}
		return def
	}
	k := lvs.Check{Kind: kind, Target: rs, Retry: lvs.DefaultRetry(kind)}
	k.DelayLoop = dur(func(t CheckTiming) *Duration { return t.DelayLoop }, lvs.DefaultDelayLoop)
	k.ConnectTimeout = dur(func(t CheckTiming) *Duration { return t.ConnectTimeout }, lvs.DefaultConnectTimeout)
	k.DelayBeforeRetry = dur(func(t CheckTiming) *Duration { return t.DelayBeforeRetry }, lvs.DefaultDelayBeforeRetry(kind))
	k.Warmup = dur(func(t CheckTiming) *Duration { return t.Warmup }, k.DelayLoop)
	for _, l := range levels {
		if l.Retry != nil && l.NbGetRetry != nil {
			bad(".retry", "retry and nb_get_retry are the same setting: give one")
		}
		if r := l.Retry; r != nil || l.NbGetRetry != nil {
			if r == nil {
				r = l.NbGetRetry
			}
			k.Retry = *r
			break
		}
	}
	if k.DelayLoop < 10*time.Millisecond {
		bad(".delay_loop", "%v: want at least 10ms", k.DelayLoop)
	}
	if k.ConnectTimeout <= 0 {
		bad(".connect_timeout", "must be positive")
	}
	if k.Retry < 0 {
		bad(".retry", "%d: must not be negative", k.Retry)
	}
	if b.ConnectIP != "" {
		a, err := netip.ParseAddr(b.ConnectIP)
		if err != nil {
			bad(".connect_ip", "%q is not an IP address", b.ConnectIP)
		}
		k.Target = netip.AddrPortFrom(a, k.Target.Port())
	}
	if b.ConnectPort < 0 || b.ConnectPort > 65535 {
		bad(".connect_port", "%d: want 0-65535", b.ConnectPort)
	} else if b.ConnectPort != 0 {
		k.Target = netip.AddrPortFrom(k.Target.Addr(), uint16(b.ConnectPort))
	}
	web := kind == lvs.HTTPGet || kind == lvs.SSLGet
	if !web && (len(b.URL) > 0 || b.VirtualHost != "") {
		bad(".url", "only HTTP_GET and SSL_GET take url and virtualhost")
	}
	if kind != lvs.MiscCheck && (b.MiscPath != "" || b.MiscTimeout != 0 || b.MiscDynamic || b.User != "") {
		bad(".misc_path", "only MISC_CHECK takes misc_path, misc_timeout, misc_dynamic and user")
	}
	switch kind {
	case lvs.HTTPGet, lvs.SSLGet:
		if len(b.URL) == 0 {
			bad(".url", "at least one url with a path is required")
		}
		k.VirtualHost = b.VirtualHost
		for i, u := range b.URL {
			up := fmt.Sprintf(".url[%d]", i)
			if !strings.HasPrefix(u.Path, "/") {
				bad(up+".path", "%q: want an absolute path like /health", u.Path)
			}
			codes, err := lvs.ParseStatusCodes(u.StatusCode)
			if err != nil {
				bad(up+".status_code", "%v", err)
			}
			d := strings.ToLower(u.Digest)
			if _, err := hex.DecodeString(d); d != "" && (err != nil || len(d) != 32) {
				bad(up+".digest", "%q: want the 32 hex digits of an MD5 sum (genhash)", u.Digest)
			}
			k.URLs = append(k.URLs, lvs.URL{Path: u.Path, Digest: d, Status: codes})
		}
	case lvs.MiscCheck:
		if b.ConnectIP != "" || b.ConnectPort != 0 {
			bad(".connect_ip", "MISC_CHECK connects nowhere itself: give the address to the script")
		}
		timeout := b.MiscTimeout.D()
		if timeout == 0 {
			timeout = k.DelayLoop
		}
		if b.MiscPath == "" {
			bad(".misc_path", "required")
		} else {
			cmd, err := c.lvsCommand(p+".misc_path", b.MiscPath, b.User, timeout)
			errs = append(errs, err)
			k.Command = cmd
		}
		k.Dynamic = b.MiscDynamic
	}
	return k, errors.Join(errs...)
}

func hasVIP(in *Instance, ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	for _, v := range in.VIPs {
		// Compared as addresses: a string per VIP made an import of many
		// virtual servers on one instance allocate quadratically.
		if v.Prefix.Addr() == a {
			return true
		}
	}
	return false
}

// or returns the first non-empty string.
func or(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
