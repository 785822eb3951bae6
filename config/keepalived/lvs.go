package keepalived

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// This file converts virtual_server and virtual_server_group blocks to
// leasehold's LVS section (config.VirtualServer), as keepalived 2.2.7's
// checker reads them (check_parser.c, check_data.c validate_check_config):
//
//   - keywords keepalived does not know at a level (nb_get_retry outside
//     HTTP_GET/SSL_GET, lb_kind in a real_server) and values it refuses
//     (lb_kind dr, lb_algo RR) are ignored by keepalived with a config
//     error; they are dropped here with a warning and keepalived's default
//     is written;
//   - its adjustments are written out: an address service without
//     protocol is UDP, a port-0 service without persistence gets 360 s, a
//     real server of a DR/TUN service takes the service's port (none for a
//     fwmark), a NAT real server without port takes it too, the quorum is
//     cut to the real servers' total weight and the hysteresis below it, a
//     duplicate or wrong-family real server and a service without real
//     servers are removed, a checker without url is removed;
//   - defaults keepalived takes from the virtual server (weight, alpha,
//     virtualhost) are written on each real server or checker;
//   - what leasehold does not do is named with file and line: a checker
//     it has no equivalent for is refused (the real server would stay in
//     the table when it fails), smtp_alert, ha_suspend, thresholds, flags
//     and the like are warned about and dropped; notify_up/down are
//     converted (one about MySQL is not: a mysql section is proposed).

// kaVS is a virtual_server block on its way to YAML.
type kaVS struct {
	line   int
	header string // "192.168.1.99 80", "fwmark 5", "group web"
	ip     netip.Addr
	port   int
	fwmark uint32
	group  string

	sched, forward, protocol string
	protoAt                  int
	persistence              int // seconds; 0: none
	persistAt                int
	granularity              string
	quorum, hysteresis       int
	quorumAt                 int
	quorumUp, quorumDown     *kaKV
	weight                   int
	alpha, omega, inhibit    bool
	virtualhost              string
	timing                   []*kaKV
	sorry                    *kaRS
	sorryInhibit             bool
	reals                    []*kaRS
	follow                   string // the instance it follows, once written
}

// kaRS is a real_server (or the sorry server) on its way to YAML.
type kaRS struct {
	line        int
	addr        netip.Addr
	port        int // 0: none given
	weight      *int
	forward     string // "" : the virtual server's
	inhibit     *bool
	alpha       *bool
	virtualhost string
	timing      []*kaKV
	checks      []*kaKV
	notifies    []*kaStmt // notify_up, notify_down about MySQL (not converted: the mysql proposal)
	scripts     []*kaKV   // notify_up, notify_down converted
}

// lvsSchedulers are keepalived 2.2.7's lvs_schedulers, compared exactly.
var lvsSchedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq", "twos"}

// lvsIgnored are keywords keepalived knows in a virtual_server or
// real_server that leasehold does not do, with what that means.
var lvsIgnored = map[string]string{
	"smtp_alert":              "not converted: leasehold sends no mail",
	"ha_suspend":              "not converted: leasehold checks real servers on every director, with or without the VIP",
	"uthreshold":              "not converted: leasehold sets no connection thresholds (ipvsadm -x/-y)",
	"lthreshold":              "not converted: leasehold sets no connection thresholds (ipvsadm -x/-y)",
	"persistence_engine":      "not converted: leasehold sets no persistence engine (sip): persistence is by client address",
	"hashed":                  "not converted: leasehold sets no service flags",
	"ops":                     "not converted: leasehold sets no one-packet scheduling (ops)",
	"flag-1":                  "not converted: leasehold sets no scheduler flags",
	"flag-2":                  "not converted: leasehold sets no scheduler flags",
	"flag-3":                  "not converted: leasehold sets no scheduler flags",
	"sh-port":                 "not converted: leasehold sets no scheduler flags",
	"sh-fallback":             "not converted: leasehold sets no scheduler flags",
	"mh-port":                 "not converted: leasehold sets no scheduler flags",
	"mh-fallback":             "not converted: leasehold sets no scheduler flags",
	"snmp_name":               "not converted: leasehold has no SNMP",
	"sorry_server_lvs_method": "", // handled where the sorry server is known
}

// lvsCheckers are keepalived's checkers leasehold has no equivalent for.
var lvsCheckers = map[string]bool{
	"SMTP_CHECK": true, "DNS_CHECK": true, "UDP_CHECK": true, "PING_CHECK": true,
	"FILE_CHECK": true, "BFD_CHECK": true, "track_file": true, "track_bfd": true,
}

// checkerCommon are the keywords every checker takes (check_api.c);
// checkerConn those of checkers that connect (not MISC_CHECK).
var (
	checkerTiming = map[string]bool{"retry": true, "delay_before_retry": true, "warmup": true, "delay_loop": true, "connect_timeout": true}
	checkerConn   = map[string]bool{"connect_ip": true, "connect_port": true, "bindto": true, "bind_port": true, "bind_if": true, "connect_timeout": true, "fwmark": true}
)

// lvsWarn warns about s inside what (a virtual server's or real server's
// name).
func (k *kaConv) lvsWarn(s *kaStmt, what, format string, args ...any) {
	k.warnAt(s.Line, s.Key, "%s: %s", what, fmt.Sprintf(format, args...))
}

// arg is s's first argument, or a warning that keepalived finds none.
func (k *kaConv) arg(s *kaStmt, what string) (string, bool) {
	if len(s.Args) == 0 || s.HasBlock {
		k.lvsWarn(s, what, "%s without a value: keepalived ignores it, so does the import", s.Key)
		return "", false
	}
	return s.Args[0], true
}

// kaUint reads keepalived's unsigned number in [lo, hi]; a bad one is
// ignored as keepalived ignores it.
func (k *kaConv) kaUint(s *kaStmt, what string, lo, hi uint64) (uint64, bool) {
	v, ok := k.arg(s, what)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n < lo || n > hi {
		k.lvsWarn(s, what, "%s %q: keepalived wants a whole number %d-%d and ignores it, so does the import", s.Key, v, lo, hi)
		return 0, false
	}
	return n, true
}

// kaTimer reads a keepalived timer (seconds, up to 6 decimals) into a
// kaKV; a bad one is ignored as keepalived ignores it.
func (k *kaConv) kaTimer(s *kaStmt, what string) (*kaKV, bool) {
	v, ok := k.arg(s, what)
	if !ok {
		return nil, false
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || strings.ContainsAny(v, "eExXpP+-") || f > 1e6 {
		k.lvsWarn(s, what, "%s %q: keepalived wants seconds and ignores it, so does the import", s.Key, v)
		return nil, false
	}
	return &kaKV{Key: s.Key, Scalar: strconv.FormatFloat(f, 'f', -1, 64), Line: s.Line}, true
}

// kaBool reads keepalived's optional true/false word (on/yes/true,
// off/no/false; none is true).
func (k *kaConv) kaBool(s *kaStmt, what string) (bool, bool) {
	if len(s.Args) == 0 {
		return true, true
	}
	switch s.Args[0] {
	case "true", "on", "yes":
		return true, true
	case "false", "off", "no":
		return false, true
	}
	k.lvsWarn(s, what, "%s %q: keepalived wants true or false and ignores it, so does the import", s.Key, s.Args[0])
	return false, false
}

// forwarding reads lb_kind / lvs_method: NAT, DR or TUN in capitals, as
// keepalived compares them; TUN's options are refused.
func (k *kaConv) forwarding(s *kaStmt, what string) (string, bool) {
	v, ok := k.arg(s, what)
	if !ok {
		return "", false
	}
	switch v {
	case "NAT", "DR", "TUN":
	default:
		k.lvsWarn(s, what, "%s %q: keepalived knows only NAT, DR and TUN (in capitals) and ignores it (\"unknown routing method\"), so does the import", s.Key, v)
		return "", false
	}
	if len(s.Args) > 1 {
		k.errAt(s.Line, s.Key, "%s: %s %s: tunnel options (type gue/gre, port, checksums) are not supported by leasehold: use plain TUN (ipip) or keep this virtual server on keepalived",
			what, s.Key, strings.Join(s.Args, " "))
		return "", false
	}
	return v, true
}

// server reads "IP [PORT]" of a real or sorry server.
func (k *kaConv) server(s *kaStmt, what string) (netip.Addr, int, bool) {
	if len(s.Args) == 0 {
		k.lvsWarn(s, what, "%s without an address: keepalived skips it, so does the import", s.Key)
		return netip.Addr{}, 0, false
	}
	a, err := netip.ParseAddr(s.Args[0])
	port := 0
	if err == nil && len(s.Args) > 1 {
		var p uint64
		p, err = strconv.ParseUint(s.Args[1], 10, 16)
		port = int(p)
	}
	if err != nil {
		k.lvsWarn(s, what, "%s %s: not an address and port: keepalived skips it (\"Invalid ... ip address/port\"), so does the import", s.Key, strings.Join(s.Args, " "))
		return netip.Addr{}, 0, false
	}
	return a.WithZone(""), port, true
}

// virtualServerGroup converts a virtual_server_group block: its entries
// in leasehold's forms ("IP [PORT]", "A.B.C.D-E [PORT]", "fwmark N
// [inet|inet6]").
func (k *kaConv) virtualServerGroup(b *kaStmt) {
	if len(b.Args) == 0 {
		k.warnAt(b.Line, b.Key, "virtual_server_group without a name: keepalived cannot use it, so it is dropped")
		return
	}
	name := b.Args[0]
	what := "virtual_server_group " + name
	if k.vsGroups == nil {
		k.vsGroups = map[string]*kaKV{}
	}
	if k.vsGroups[name] != nil {
		k.warnAt(b.Line, b.Key, "%s: defined twice: the import keeps the first", what)
		return
	}
	kv := &kaKV{Key: name, IsList: true, Line: b.Line}
	for _, e := range b.Block {
		if entry, ok := k.groupEntry(e, what); ok {
			kv.List = append(kv.List, yq(entry))
		}
	}
	if len(kv.List) == 0 {
		k.warnAt(b.Line, b.Key, "%s has no entries: keepalived removes it (and any virtual_server of it), so does the import", what)
		return
	}
	k.vsGroups[name] = kv
	k.vsGroupOrder = append(k.vsGroupOrder, name)
	info := &kaGroupInfo{}
	for _, e := range kv.List {
		f := strings.Fields(unquote(e))
		if f[0] == "fwmark" {
			if len(f) == 3 && !info.familyKnown {
				info.six, info.familyKnown = f[2] == "inet6", true
			}
			continue
		}
		info.hasAddr = true
		info.zeroPort = info.zeroPort || len(f) == 1
		first, _, _ := strings.Cut(f[0], "-")
		if a, err := netip.ParseAddr(first); err == nil && !info.first.IsValid() {
			info.first = a
			info.six, info.familyKnown = a.Is6(), true
		}
	}
	if k.vsGroupInfo == nil {
		k.vsGroupInfo = map[string]*kaGroupInfo{}
	}
	k.vsGroupInfo[name] = info
}

// kaGroupInfo is what the virtual servers of a group need to know of it,
// read once (a group may serve many virtual servers).
type kaGroupInfo struct {
	hasAddr, zeroPort bool
	first             netip.Addr // the first address entry
	six, familyKnown  bool
}

func (k *kaConv) groupEntry(e *kaStmt, what string) (string, bool) {
	if e.HasBlock {
		k.errAt(e.Line, "virtual_server_group", "%s: entry %q has a block: a '}' is probably missing above line %d", what, e.Words(), e.Line)
		return "", false
	}
	if e.Key == "fwmark" {
		if len(e.Args) == 0 {
			k.lvsWarn(e, what, "fwmark without a number: keepalived ignores it, so does the import")
			return "", false
		}
		m, err := strconv.ParseUint(e.Args[0], 10, 32)
		if err != nil || m == 0 {
			k.lvsWarn(e, what, "fwmark %q: keepalived ignores it (leasehold wants 1-4294967295), so does the import", e.Args[0])
			return "", false
		}
		out := "fwmark " + strconv.FormatUint(m, 10)
		if len(e.Args) > 1 {
			if e.Args[1] != "inet" && e.Args[1] != "inet6" {
				k.lvsWarn(e, what, "fwmark %d family %q: keepalived ignores the entry, so does the import", m, e.Args[1])
				return "", false
			}
			out += " " + e.Args[1]
		}
		return out, true
	}
	port := ""
	if len(e.Args) > 0 {
		p, err := strconv.ParseUint(e.Args[0], 10, 16)
		if err != nil {
			k.lvsWarn(e, what, "%s: port %q: keepalived skips the entry, so does the import", e.Words(), e.Args[0])
			return "", false
		}
		if p != 0 { // keepalived reads port 0 as none
			port = " " + strconv.FormatUint(p, 10)
		}
	}
	addr := e.Key
	if base, bits, ok := strings.Cut(addr, "/"); ok {
		a, err := netip.ParsePrefix(addr)
		if err != nil || !a.Addr().Is4() || a.Bits() < 24 || a.Masked().Addr() != a.Addr() {
			k.errAt(e.Line, "virtual_server_group", "%s: %s: leasehold takes single addresses and ranges of the last byte (A.B.C.D-E, IPv4): "+
				"write the addresses of %s/%s that way", what, e.Key, base, bits)
			return "", false
		}
		last := a.Addr().As4()[3] | byte(0xff>>(a.Bits()-24))
		return fmt.Sprintf("%s-%d%s", a.Addr(), last, port), true
	}
	first, end, isRange := strings.Cut(addr, "-")
	a, err := netip.ParseAddr(first)
	if err != nil {
		k.lvsWarn(e, what, "%s: not an address: keepalived skips the entry, so does the import", e.Key)
		return "", false
	}
	if !isRange {
		return a.String() + port, true
	}
	if a.Is6() {
		k.errAt(e.Line, "virtual_server_group", "%s: %s: leasehold has no IPv6 ranges: list the addresses one per line", what, e.Key)
		return "", false
	}
	last, err := strconv.Atoi(end)
	if err != nil {
		b, err2 := netip.ParseAddr(end)
		if err2 != nil || !b.Is4() {
			k.lvsWarn(e, what, "%s: range end %q: keepalived skips the entry, so does the import", e.Key, end)
			return "", false
		}
		if a.As4()[0] != b.As4()[0] || a.As4()[1] != b.As4()[1] || a.As4()[2] != b.As4()[2] {
			k.errAt(e.Line, "virtual_server_group", "%s: %s: leasehold's ranges vary the last byte only (A.B.C.D-E): split the range", what, e.Key)
			return "", false
		}
		last = int(b.As4()[3])
	}
	if last <= int(a.As4()[3]) || last > 255 {
		k.lvsWarn(e, what, "%s: the range's end is not above its start: keepalived skips the entry, so does the import", e.Key)
		return "", false
	}
	return fmt.Sprintf("%s-%d%s", a, last, port), true
}

// virtualServer reads a virtual_server block; finishVirtualServers
// applies keepalived's adjustments once every block is read.
func (k *kaConv) virtualServer(b *kaStmt) {
	vs := &kaVS{line: b.Line, header: strings.Join(b.Args, " "), quorum: 1, weight: 1}
	what := "virtual_server " + vs.header
	switch {
	case len(b.Args) == 0:
		k.warnAt(b.Line, b.Key, "virtual_server without an address: keepalived skips it, so does the import")
		return
	case b.Args[0] == "group":
		if len(b.Args) < 2 {
			k.warnAt(b.Line, b.Key, "virtual_server group without a name: keepalived skips it, so does the import")
			return
		}
		vs.group = b.Args[1]
	case b.Args[0] == "fwmark":
		var m uint64
		var err error
		if len(b.Args) > 1 {
			m, err = strconv.ParseUint(b.Args[1], 10, 32)
		}
		if len(b.Args) < 2 || err != nil || m == 0 {
			k.warnAt(b.Line, b.Key, "%s: keepalived skips a fwmark it cannot read, so does the import (leasehold wants 1-4294967295)", what)
			return
		}
		vs.fwmark = uint32(m)
	default:
		a, err := netip.ParseAddr(b.Args[0])
		var p uint64
		if err == nil && len(b.Args) > 1 {
			p, err = strconv.ParseUint(b.Args[1], 10, 16)
		}
		if err != nil {
			k.warnAt(b.Line, b.Key, "%s: not an address and port: keepalived skips the block (\"Invalid virtual server IP address\"), so does the import", what)
			return
		}
		vs.ip, vs.port = a.WithZone(""), int(p)
	}
	if !b.HasBlock {
		k.warnAt(b.Line, b.Key, "%s has no { } block: nothing to convert", what)
		return
	}
	for _, s := range b.Block {
		switch s.Key {
		case "delay_loop", "connect_timeout", "delay_before_retry", "warmup", "retry":
			vs.timing = k.timing(s, what, vs.timing)
		case "lb_algo", "lvs_sched":
			if v, ok := k.arg(s, what); ok {
				if !slices.Contains(lvsSchedulers, v) {
					k.lvsWarn(s, what, "%s %q: keepalived knows %s (in lower case) and ignores it (\"Invalid lvs_scheduler\"), so does the import", s.Key, v, strings.Join(lvsSchedulers, " "))
				} else {
					vs.sched = v
				}
			}
		case "lb_kind", "lvs_method":
			if v, ok := k.forwarding(s, what); ok {
				vs.forward = v
			}
		case "persistence_timeout":
			if len(s.Args) == 0 {
				vs.persistence, vs.persistAt = 360, s.Line
				k.lvsWarn(s, what, "persistence_timeout without a value: keepalived uses 360 s; written as 360")
			} else if n, ok := k.kaUint(s, what, 1, 86400*31); ok {
				vs.persistence, vs.persistAt = int(n), s.Line
			}
		case "persistence_granularity":
			if v, ok := k.arg(s, what); ok {
				vs.granularity = v
				if vs.persistence == 0 {
					vs.persistence, vs.persistAt = 360, s.Line
				}
			}
		case "protocol":
			if v, ok := k.arg(s, what); ok {
				switch u := strings.ToUpper(v); u {
				case "TCP", "UDP", "SCTP":
					vs.protocol, vs.protoAt = u, s.Line
				default:
					k.lvsWarn(s, what, "protocol %q: keepalived ignores it (\"Unknown protocol\"), so does the import", v)
				}
			}
		case "quorum":
			if n, ok := k.kaUint(s, what, 1, 1<<32-1); ok {
				vs.quorum, vs.quorumAt = int(n), s.Line
			} else {
				vs.quorum, vs.quorumAt = 1, s.Line // keepalived: "Setting to 1"
			}
		case "hysteresis":
			if n, ok := k.kaUint(s, what, 0, 1<<32-1); ok {
				vs.hysteresis = int(n)
			}
		case "quorum_up", "quorum_down":
			kv := k.notify(s)
			if kv == nil {
				continue
			}
			if s.Key == "quorum_up" && vs.quorumUp == nil {
				vs.quorumUp = kv
			} else if s.Key == "quorum_down" && vs.quorumDown == nil {
				vs.quorumDown = kv
			} else {
				k.lvsWarn(s, what, "%s given twice: keepalived ignores the second (\"already specified\"), so does the import", s.Key)
			}
		case "weight":
			if n, ok := k.kaUint(s, what, 1, 1<<31-1); ok {
				vs.weight = int(n)
			}
		case "alpha":
			vs.alpha = true
		case "omega":
			vs.omega = true
		case "inhibit_on_failure":
			vs.inhibit = true
		case "virtualhost":
			if len(s.Args) > 0 {
				vs.virtualhost = strings.Join(s.Args, " ")
			}
		case "ip_family":
			// The family follows the addresses in leasehold (a fwmark's
			// from its real servers).
			if v, _ := k.arg(s, what); v != "inet" && v != "inet6" {
				k.lvsWarn(s, what, "ip_family %q: keepalived ignores it, so does the import", v)
			}
		case "sorry_server":
			if a, p, ok := k.server(s, what); ok {
				vs.sorry = &kaRS{line: s.Line, addr: a, port: p}
			}
		case "sorry_server_inhibit":
			if vs.sorry == nil {
				k.lvsWarn(s, what, "sorry_server_inhibit before or without sorry_server: keepalived ignores it, so does the import")
			} else {
				vs.sorryInhibit = true
			}
		case "sorry_server_lvs_method":
			if vs.sorry == nil {
				k.lvsWarn(s, what, "sorry_server_lvs_method before or without sorry_server: keepalived ignores it, so does the import")
			} else if v, ok := k.forwarding(s, what); ok {
				vs.sorry.forward = v
			}
		case "real_server":
			if rs := k.realServer(s, what); rs != nil {
				vs.reals = append(vs.reals, rs)
			}
		default:
			if msg, ok := lvsIgnored[s.Key]; ok {
				k.lvsWarn(s, what, "%s: %s", s.Key, msg)
				continue
			}
			k.lvsWarn(s, what, "%s: keepalived 2.2.7 does not know it in a virtual_server (\"Unknown keyword\") and ignores it, so does the import", s.Key)
		}
	}
	k.vss = append(k.vss, vs)
}

// timing reads a checker timing (delay_loop, connect_timeout,
// delay_before_retry, warmup, retry) of a virtual or real server into kvs.
func (k *kaConv) timing(s *kaStmt, what string, kvs []*kaKV) []*kaKV {
	if s.Key == "retry" {
		if n, ok := k.kaUint(s, what, 1, 1<<32-1); ok {
			return setKV(kvs, &kaKV{Key: "retry", Scalar: strconv.FormatUint(n, 10), Line: s.Line})
		}
		return kvs
	}
	if kv, ok := k.kaTimer(s, what); ok {
		return setKV(kvs, kv)
	}
	return kvs
}

// setKV replaces the kaKV of the same key (keepalived: the last one
// counts) or appends kv.
func setKV(kvs []*kaKV, kv *kaKV) []*kaKV {
	for i, o := range kvs {
		if o.Key == kv.Key {
			kvs[i] = kv
			return kvs
		}
	}
	return append(kvs, kv)
}

func (k *kaConv) realServer(b *kaStmt, vsWhat string) *kaRS {
	a, p, ok := k.server(b, vsWhat)
	if !ok {
		return nil
	}
	rs := &kaRS{line: b.Line, addr: a, port: p}
	what := vsWhat + ": real_server " + strings.Join(b.Args, " ")
	for _, s := range b.Block {
		switch s.Key {
		case "weight":
			if n, ok := k.kaUint(s, what, 0, 1<<31-1); ok {
				w := int(n)
				rs.weight = &w
			}
		case "lvs_method":
			if v, ok := k.forwarding(s, what); ok {
				rs.forward = v
			}
		case "inhibit_on_failure":
			if v, ok := k.kaBool(s, what); ok {
				rs.inhibit = &v
			}
		case "alpha":
			if v, ok := k.kaBool(s, what); ok {
				rs.alpha = &v
			}
		case "delay_loop", "connect_timeout", "delay_before_retry", "warmup", "retry":
			rs.timing = k.timing(s, what, rs.timing)
		case "virtualhost":
			if len(s.Args) > 0 {
				rs.virtualhost = strings.Join(s.Args, " ")
			}
		case "TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK":
			if slices.ContainsFunc(rs.checks, func(c *kaKV) bool { return c.Key == s.Key }) {
				k.errAt(s.Line, s.Key, "%s: a second %s: leasehold takes one checker of each kind per real server: keep one, or check the other port with MISC_CHECK", what, s.Key)
				continue
			}
			if c := k.checker(s, what); c != nil {
				rs.checks = append(rs.checks, c)
			}
		default:
			switch {
			case lvsCheckers[s.Key]:
				k.errAt(s.Line, s.Key, "%s: %s: leasehold has no such checker, and without it a failed real server would stay in the table: "+
					"use TCP_CHECK, HTTP_GET or MISC_CHECK (a script), or keep this virtual server on keepalived", what, s.Key)
			case s.Key == "notify_up" || s.Key == "notify_down":
				if mysqlWords.MatchString(strings.Join(s.Args, " ")) { // the mysql proposal says why
					rs.notifies = append(rs.notifies, s)
				} else if kv := k.notify(s); kv != nil {
					rs.scripts = setKV(rs.scripts, kv)
				}
			case lvsIgnored[s.Key] != "":
				k.lvsWarn(s, what, "%s: %s", s.Key, lvsIgnored[s.Key])
			case s.Key == "lb_kind":
				k.lvsWarn(s, what, "lb_kind: keepalived 2.2.7 knows it only in the virtual_server (lvs_method here) and ignores it (\"Unknown keyword\"), so does the import: the virtual server's method applies")
			default:
				k.lvsWarn(s, what, "%s: keepalived 2.2.7 does not know it in a real_server (\"Unknown keyword\") and ignores it, so does the import", s.Key)
			}
		}
	}
	return rs
}

// checker converts a TCP_CHECK, HTTP_GET, SSL_GET or MISC_CHECK block; nil
// when keepalived drops it (an HTTP check without a url).
func (k *kaConv) checker(b *kaStmt, rsWhat string) *kaKV {
	what := rsWhat + ": " + b.Key
	c := &kaKV{Key: b.Key, IsMap: true, Line: b.Line}
	web := b.Key == "HTTP_GET" || b.Key == "SSL_GET"
	misc := b.Key == "MISC_CHECK"
	var urls []*kaKV
	for _, s := range b.Block {
		switch {
		case checkerConn[s.Key] && misc:
			k.lvsWarn(s, what, "%s: keepalived does not know it in MISC_CHECK (\"Unknown keyword\") and ignores it, so does the import", s.Key)
		case s.Key == "retry":
			if n, ok := k.kaUint(s, what, 1, 1<<32-1); ok {
				c.Map = setKV(c.Map, &kaKV{Key: "retry", Scalar: strconv.FormatUint(n, 10), Line: s.Line})
			}
		case s.Key == "nb_get_retry" && web:
			k.lvsWarn(s, what, "nb_get_retry is retry's old name: written as retry")
			if n, ok := k.kaUint(s, what, 0, 1<<32-1); ok {
				c.Map = setKV(c.Map, &kaKV{Key: "retry", Scalar: strconv.FormatUint(n, 10), Line: s.Line})
			}
		case s.Key == "nb_get_retry":
			k.lvsWarn(s, what, "nb_get_retry: keepalived 2.2.7 knows it only in HTTP_GET and SSL_GET and ignores it here (\"Unknown keyword\"), so does the import: "+
				"the retry count stays %s; write retry if %s was meant", k.inheritedRetry(b.Key), strings.Join(s.Args, " "))
		case checkerTiming[s.Key]:
			if kv, ok := k.kaTimer(s, what); ok {
				c.Map = setKV(c.Map, kv)
			}
		case s.Key == "connect_ip":
			if v, ok := k.arg(s, what); ok {
				if a, err := netip.ParseAddr(v); err == nil {
					c.Map = setKV(c.Map, &kaKV{Key: "connect_ip", Scalar: yq(a.String()), Line: s.Line})
				} else {
					k.lvsWarn(s, what, "connect_ip %q: not an address: keepalived drops the checker's connection options; fix it", v)
				}
			}
		case s.Key == "connect_port":
			if n, ok := k.kaUint(s, what, 0, 65535); ok {
				c.Map = setKV(c.Map, &kaKV{Key: "connect_port", Scalar: strconv.FormatUint(n, 10), Line: s.Line})
			}
		case s.Key == "bindto" || s.Key == "bind_port" || s.Key == "bind_if" || s.Key == "fwmark":
			k.lvsWarn(s, what, "%s: not converted: leasehold's checks connect from the kernel's choice of source (no bind address, port, interface or mark)", s.Key)
		case s.Key == "alpha":
			if v, ok := k.kaBool(s, what); ok {
				c.Map = setKV(c.Map, &kaKV{Key: "alpha", Scalar: strconv.FormatBool(v), Line: s.Line})
			}
		case s.Key == "log_all_failures":
			k.lvsWarn(s, what, "log_all_failures: not converted: leasehold logs every change of a real server and counts every check in /metrics")
		case web && s.Key == "virtualhost":
			if len(s.Args) > 0 {
				c.Map = setKV(c.Map, &kaKV{Key: "virtualhost", Scalar: yq(strings.Join(s.Args, " ")), Line: s.Line})
			}
		case web && s.Key == "url":
			if u := k.url(s, what); u != nil {
				urls = append(urls, u)
			}
		case web && (s.Key == "http_protocol" || s.Key == "enable_sni" || s.Key == "fast_recovery"):
			k.lvsWarn(s, what, "%s: not converted: leasehold's check is HTTP/1.1 with SNI (SSL_GET) and keepalived's default recovery", s.Key)
		case misc && s.Key == "misc_path":
			if kv := k.miscPath(s, what); kv != nil {
				c.Map = setKV(c.Map, kv)
			}
		case misc && s.Key == "misc_timeout":
			if n, ok := k.kaUint(s, what, 0, 4294); ok {
				c.Map = setKV(c.Map, &kaKV{Key: "misc_timeout", Scalar: strconv.FormatUint(n, 10), Line: s.Line})
			}
		case misc && s.Key == "misc_dynamic":
			c.Map = setKV(c.Map, &kaKV{Key: "misc_dynamic", Scalar: "true", Line: s.Line})
		case misc && s.Key == "user":
			if len(s.Args) > 0 {
				c.Map = setKV(c.Map, &kaKV{Key: "user", Scalar: yq(s.Args[0]), Line: s.Line})
				if len(s.Args) > 1 {
					k.lvsWarn(s, what, "user %s: group %q not converted: the script runs with the user's own group", s.Args[0], strings.Join(s.Args[1:], " "))
				}
			}
		default:
			k.lvsWarn(s, what, "%s: keepalived 2.2.7 does not know it in %s (\"Unknown keyword\") and ignores it, so does the import", s.Key, b.Key)
		}
	}
	if web {
		if len(urls) == 0 {
			k.warnAt(b.Line, b.Key, "%s has no url with a path: keepalived drops the checker (\"no urls specified\"), so does the import", what)
			return nil
		}
		c.Map = append(c.Map, &kaKV{Key: "url", Items: urls, Line: urls[0].Line})
	}
	if misc && !slices.ContainsFunc(c.Map, func(kv *kaKV) bool { return kv.Key == "misc_path" }) {
		k.warnAt(b.Line, b.Key, "%s has no misc_path: keepalived drops the checker (\"No script path\"), so does the import", what)
		return nil
	}
	return c
}

// inheritedRetry names the retry a checker gets without its own.
func (k *kaConv) inheritedRetry(kind string) string {
	if kind == "MISC_CHECK" {
		return "the real server's, the virtual server's, or 0"
	}
	return "the real server's, the virtual server's, or 1"
}

// url converts "url { path P; digest D; status_code C... }" into one item
// of the url list; nil when keepalived drops it (no path).
func (k *kaConv) url(b *kaStmt, what string) *kaKV {
	u := &kaKV{Key: "url", IsMap: true, Line: b.Line}
	var codes []string
	digest := ""
	for _, s := range b.Block {
		switch s.Key {
		case "path":
			if len(s.Args) > 0 {
				u.Map = setKV(u.Map, &kaKV{Key: "path", Scalar: yq(strings.Join(s.Args, " ")), Line: s.Line})
			}
		case "digest":
			v, ok := k.arg(s, what)
			switch {
			case !ok:
			case digest != "":
				k.lvsWarn(s, what, "a second digest: keepalived ignores it (\"is a duplicate\"), so does the import")
			case len(v) != 32 || !isHex(v):
				k.lvsWarn(s, what, "digest %q: keepalived wants 32 hex digits (an MD5 sum, as genhash prints it) and ignores it, so does the import: the body is not checked", v)
			default:
				digest = strings.ToLower(v)
				u.Map = setKV(u.Map, &kaKV{Key: "digest", Scalar: digest, Line: s.Line})
			}
		case "status_code":
			for _, c := range s.Args {
				if validStatus(c) {
					codes = append(codes, c)
				} else {
					k.lvsWarn(s, what, "status_code %q: keepalived ignores it (\"Invalid HTTP_GET status code\"), so does the import", c)
				}
			}
			if len(codes) > 0 {
				u.Map = setKV(u.Map, &kaKV{Key: "status_code", Scalar: yq(strings.Join(codes, " ")), Line: s.Line})
			}
		case "virtualhost":
			k.lvsWarn(s, what, "url virtualhost: not converted: leasehold sends one Host per checker (write virtualhost in the %s block)", strings.TrimPrefix(what[strings.LastIndex(what, ": ")+2:], ""))
		case "regex", "regex_no_match", "regex_options", "regex_min_offset", "regex_max_offset", "regex_stack":
			k.lvsWarn(s, what, "url %s: not converted: leasehold checks the status code and digest only", s.Key)
		default:
			k.lvsWarn(s, what, "url %s: keepalived 2.2.7 does not know it (\"Unknown keyword\") and ignores it, so does the import", s.Key)
		}
	}
	if !slices.ContainsFunc(u.Map, func(kv *kaKV) bool { return kv.Key == "path" }) {
		k.warnAt(b.Line, b.Key, "%s: url without path: keepalived drops it (\"url has no path\"), so does the import", what)
		return nil
	}
	return u
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// validStatus is keepalived's status_code word: N or N-M within 100-599.
func validStatus(w string) bool {
	lo, hi, isRange := strings.Cut(w, "-")
	if !isRange {
		hi = lo
	}
	l, err1 := strconv.Atoi(lo)
	h, err2 := strconv.Atoi(hi)
	return err1 == nil && err2 == nil && l >= 100 && h <= 599 && l <= h
}

// miscPath converts misc_path: the command as keepalived splits it; its
// program must be an absolute path.
func (k *kaConv) miscPath(s *kaStmt, what string) *kaKV {
	if len(s.Args) == 0 {
		k.lvsWarn(s, what, "misc_path without a script: keepalived ignores it, so does the import")
		return nil
	}
	cmd := strings.Join(s.Args, " ")
	if w, ok := k.commandWords(s); ok {
		cmd = strings.Join(w[1:], " ")
	}
	prog := firstWord(strings.TrimLeft(cmd, " \t"))
	if !strings.HasPrefix(prog, "/") {
		hint := "the full path of " + prog
		if k.lookPath != nil {
			if p, err := k.lookPath(prog); err == nil && strings.HasPrefix(p, "/") {
				hint = p + " (where " + prog + " is on this machine)"
			}
		}
		k.errAt(s.Line, s.Key, "%s: misc_path %q: leasehold runs a MISC_CHECK only by its absolute path: write %s", what, cmd, hint)
		return nil
	}
	if cmd, ok := k.absolute(s, cmd); ok {
		return &kaKV{Key: "misc_path", Scalar: yq(cmd), Line: s.Line}
	}
	return nil
}

// finishVirtualServers applies keepalived's adjustments
// (validate_check_config) and builds each virtual server's YAML item.
func (k *kaConv) finishVirtualServers() {
	for _, vs := range k.vss {
		if item := k.finishVS(vs); item != nil {
			k.lvsItems = append(k.lvsItems, item)
		}
	}
}

// vsFamily tells the virtual server's address family as keepalived sets
// it: its address, its group's addresses, or its first real server not
// tunnelled (a fwmark); six is false when nothing says.
func (k *kaConv) vsFamily(vs *kaVS) (six, known bool) {
	if vs.ip.IsValid() {
		return vs.ip.Is6(), true
	}
	if g := k.vsGroupInfo[vs.group]; g != nil && g.familyKnown {
		return g.six, true
	}
	for _, rs := range vs.reals {
		if rs.forward != "TUN" && (rs.forward != "" || vs.forward != "TUN") {
			return rs.addr.Is6(), true
		}
	}
	return false, false
}

func (k *kaConv) finishVS(vs *kaVS) *kaKV {
	what := "virtual_server " + vs.header
	hasAddr, zeroPort := vs.ip.IsValid(), vs.ip.IsValid() && vs.port == 0
	if vs.group != "" {
		g := k.vsGroupInfo[vs.group]
		if g == nil {
			k.warnAt(vs.line, "virtual_server", "%s: no virtual_server_group %s (or it has no entries): keepalived ignores the virtual server, so does the import", what, vs.group)
			return nil
		}
		hasAddr, zeroPort = g.hasAddr, g.zeroPort
		k.vsGroupUsed[vs.group] = true
	}
	six, _ := k.vsFamily(vs)

	var reals []*kaRS
	seen := map[netip.AddrPort]bool{}
	weightSum := 0
	for _, rs := range vs.reals {
		rsWhat := fmt.Sprintf("%s: real_server %s", what, netip.AddrPortFrom(rs.addr, uint16(rs.port)))
		fwd := or(rs.forward, vs.forward, "NAT")
		if fwd != "TUN" && rs.addr.Is6() != six {
			k.warnAt(rs.line, "real_server", "%s: not of the virtual server's address family: keepalived skips it (\"don't match - skipping real server\"), so does the import", rsWhat)
			continue
		}
		ap := netip.AddrPortFrom(rs.addr, uint16(rs.port))
		if seen[ap] {
			k.warnAt(rs.line, "real_server", "%s: listed twice: keepalived removes the second (\"is duplicated\"), so does the import", rsWhat)
			continue
		}
		seen[ap] = true
		k.serverPort(rs, vs, fwd, rsWhat)
		if rs.weight == nil {
			w := vs.weight
			rs.weight = &w
		}
		weightSum += *rs.weight
		reals = append(reals, rs)
	}
	if len(reals) == 0 {
		k.warnAt(vs.line, "virtual_server", "%s has no real servers: keepalived ignores it (\"has no real servers - ignoring\"), so does the import", what)
		return nil
	}
	if vs.forward == "" {
		vs.forward = "NAT"
		k.warnAt(vs.line, "virtual_server", "%s: no lb_kind keepalived accepts: it forwards by NAT (\"no forwarding method set, setting default NAT\"); written as lb_kind NAT", what)
	}
	if vs.sched == "" {
		vs.sched = "wlc"
		k.warnAt(vs.line, "virtual_server", "%s: no lb_algo keepalived accepts: it schedules by wlc (\"no scheduler set\"); written as lb_algo wlc", what)
	}
	if hasAddr && vs.protocol == "" {
		vs.protocol, vs.protoAt = "UDP", vs.line
		k.warnAt(vs.line, "virtual_server", "%s: no protocol: keepalived makes it UDP (\"no protocol set - defaulting to UDP\"); written as protocol UDP: write protocol TCP in keepalived.conf if TCP was meant", what)
	}
	if !hasAddr && vs.protocol != "" {
		k.warnAt(vs.protoAt, "protocol", "%s: protocol %s with a fwmark: keepalived ignores it, so does the import", what, vs.protocol)
		vs.protocol = ""
	}
	if vs.persistence == 0 {
		if zeroPort {
			vs.persistence, vs.persistAt = 360, vs.line
			k.warnAt(vs.line, "virtual_server", "%s: port 0 (all ports) without persistence_timeout: keepalived makes it persistent for 360 s; written as persistence_timeout 360", what)
		}
	}
	if vs.quorum > weightSum {
		k.warnAt(or0(vs.quorumAt, vs.line), "quorum", "%s: quorum %d exceeds the real servers' total weight %d: keepalived cuts it to %d; written as %d", what, vs.quorum, weightSum, weightSum, weightSum)
		vs.quorum, vs.quorumAt = weightSum, or0(vs.quorumAt, vs.line)
	}
	if vs.hysteresis > 0 && vs.hysteresis >= vs.quorum {
		k.warnAt(or0(vs.quorumAt, vs.line), "hysteresis", "%s: hysteresis %d is not below quorum %d: keepalived sets it to %d; written as %d", what, vs.hysteresis, vs.quorum, max(vs.quorum-1, 0), max(vs.quorum-1, 0))
		vs.hysteresis = max(vs.quorum-1, 0)
	}
	if s := vs.sorry; s != nil {
		fwd := vs.forward
		switch {
		case s.forward != "" && s.forward != vs.forward:
			k.warnAt(s.line, "sorry_server_lvs_method", "%s: sorry_server_lvs_method %s: not converted: leasehold forwards to the sorry server by the virtual server's method (%s)", what, s.forward, vs.forward)
		}
		switch {
		case s.addr.Is6() != six:
			k.warnAt(s.line, "sorry_server", "%s: sorry_server %s is not of the virtual server's address family: keepalived skips it, so does the import", what, s.addr)
			vs.sorry = nil
		case seen[netip.AddrPortFrom(s.addr, uint16(s.port))] || seen[netip.AddrPortFrom(s.addr, uint16(vs.port))] && s.port == 0:
			k.warnAt(s.line, "sorry_server", "%s: sorry_server %s is also a real_server: not converted (leasehold refuses that; keepalived puts that real server back when all are down)", what, s.addr)
			vs.sorry = nil
		default:
			k.serverPort(s, vs, fwd, what+": sorry_server")
		}
	}
	return k.vsItem(vs, reals)
}

// serverPort applies keepalived's port rules to a real or sorry server:
// a DR/TUN server of an address service takes the service's port, of a
// fwmark service none; a NAT one without port takes the service's.
func (k *kaConv) serverPort(rs *kaRS, vs *kaVS, fwd, what string) {
	if vs.group != "" {
		return // keepalived only warns there
	}
	switch {
	case fwd == "NAT":
		if vs.fwmark == 0 && rs.port == 0 {
			rs.port = vs.port
		}
	case vs.fwmark != 0:
		if rs.port != 0 {
			k.warnAt(rs.line, "real_server", "%s: a port with %s forwarding of a fwmark service: keepalived clears it; written without", what, fwd)
			rs.port = 0
		}
	case rs.port == 0:
		rs.port = vs.port
	case rs.port != vs.port:
		k.warnAt(rs.line, "real_server", "%s: port %d differs from the service's %d with %s forwarding: keepalived resets it to %d (%s cannot change ports); written as %d", what, rs.port, vs.port, fwd, vs.port, fwd, vs.port)
		rs.port = vs.port
	}
}

// unquote reads back a scalar yq rendered.
func unquote(s string) string {
	if uq, err := strconv.Unquote(s); err == nil {
		return uq
	}
	return s
}

func or0(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

func or(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// vsItem writes the virtual server as one item of the virtual_server list.
func (k *kaConv) vsItem(vs *kaVS, reals []*kaRS) *kaKV {
	it := &kaKV{Key: "virtual_server", IsMap: true, Line: vs.line}
	add := func(key, v string, line int) { it.Map = append(it.Map, &kaKV{Key: key, Scalar: v, Line: line}) }
	file, fl := k.pos(vs.line)
	switch {
	case vs.ip.IsValid():
		it.Map = append(it.Map, &kaKV{Key: "ip", Scalar: yq(vs.ip.String()), Line: vs.line, Comment: fmt.Sprintf("%s:%d", printable(file), fl)})
		add("port", strconv.Itoa(vs.port), vs.line)
	case vs.fwmark != 0:
		it.Map = append(it.Map, &kaKV{Key: "fwmark", Scalar: strconv.FormatUint(uint64(vs.fwmark), 10), Line: vs.line, Comment: fmt.Sprintf("%s:%d", printable(file), fl)})
	default:
		it.Map = append(it.Map, &kaKV{Key: "group", Scalar: yq(vs.group), Line: vs.line, Comment: fmt.Sprintf("%s:%d", printable(file), fl)})
	}
	if vs.follow = k.follow(vs); vs.follow != "" {
		add("follow", yq(vs.follow), vs.line)
	}
	it.Map = append(it.Map, vs.timing...)
	add("lb_algo", vs.sched, vs.line)
	add("lb_kind", vs.forward, vs.line)
	if vs.persistence > 0 {
		add("persistence_timeout", strconv.Itoa(vs.persistence), vs.persistAt)
	}
	if vs.granularity != "" {
		add("persistence_granularity", yq(vs.granularity), vs.persistAt)
	}
	if vs.protocol != "" {
		add("protocol", vs.protocol, vs.protoAt)
	}
	if vs.quorumAt != 0 {
		add("quorum", strconv.Itoa(vs.quorum), vs.quorumAt)
	}
	if vs.hysteresis > 0 {
		add("hysteresis", strconv.Itoa(vs.hysteresis), vs.quorumAt)
	}
	for _, q := range []*kaKV{vs.quorumUp, vs.quorumDown} {
		if q != nil {
			it.Map = append(it.Map, q)
		}
	}
	for _, f := range []struct {
		key string
		on  bool
	}{{"alpha", vs.alpha}, {"omega", vs.omega}, {"inhibit_on_failure", vs.inhibit}} {
		if f.on {
			add(f.key, "true", vs.line)
		}
	}
	if s := vs.sorry; s != nil {
		add("sorry_server", yq(fmt.Sprintf("%s %d", s.addr, s.port)), s.line)
		if vs.sorryInhibit {
			add("sorry_server_inhibit", "true", s.line)
		}
	}
	list := &kaKV{Key: "real_server", Line: reals[0].line}
	for _, rs := range reals {
		r := &kaKV{Key: "real_server", IsMap: true, Line: rs.line}
		radd := func(key, v string) { r.Map = append(r.Map, &kaKV{Key: key, Scalar: v, Line: rs.line}) }
		radd("ip", yq(rs.addr.String()))
		radd("port", strconv.Itoa(rs.port))
		radd("weight", strconv.Itoa(*rs.weight))
		if rs.forward != "" && rs.forward != vs.forward {
			radd("lvs_method", rs.forward)
		}
		if rs.inhibit != nil && *rs.inhibit != vs.inhibit {
			radd("inhibit_on_failure", strconv.FormatBool(*rs.inhibit))
		}
		r.Map = append(r.Map, rs.timing...)
		r.Map = append(r.Map, rs.scripts...)
		for _, c := range rs.checks {
			has := func(key string) bool { return slices.ContainsFunc(c.Map, func(kv *kaKV) bool { return kv.Key == key }) }
			if rs.alpha != nil && !has("alpha") {
				c.Map = append(c.Map, &kaKV{Key: "alpha", Scalar: strconv.FormatBool(*rs.alpha), Line: rs.line, Comment: "the real server's alpha"})
			}
			if vh := or(rs.virtualhost, vs.virtualhost); vh != "" && (c.Key == "HTTP_GET" || c.Key == "SSL_GET") && !has("virtualhost") {
				c.Map = append(c.Map, &kaKV{Key: "virtualhost", Scalar: yq(vh), Line: rs.line, Comment: "the real or virtual server's virtualhost"})
			}
			r.Map = append(r.Map, c)
		}
		list.Items = append(list.Items, r)
	}
	it.Map = append(it.Map, list)
	return it
}

// follow names the vrrp_instance whose virtual_ipaddress holds the
// virtual server's address (a group's first address), with a warning
// saying which, or why none.
func (k *kaConv) follow(vs *kaVS) string {
	what := "virtual_server " + vs.header
	ip := vs.ip
	if vs.group != "" {
		ip = k.vsGroupInfo[vs.group].first
	}
	if !ip.IsValid() {
		k.warnAt(vs.line, "follow", "%s: a fwmark service has no address to find the vrrp_instance it belongs to: no follow written "+
			"(lvs_mode all does not need it; for lvs_mode owner name the instance whose VIP the marked traffic goes to)", what)
		return ""
	}
	if k.vipHolders == nil {
		// Every instance's addresses, read once.
		k.vipHolders = map[netip.Addr][]string{}
		for _, in := range k.instances {
			for _, a := range vipAddrs(in) {
				if h := k.vipHolders[a]; len(h) == 0 || h[len(h)-1] != in.name {
					k.vipHolders[a] = append(h, in.name)
				}
			}
		}
	}
	holders := k.vipHolders[ip]
	switch len(holders) {
	case 0:
		k.warnAt(vs.line, "follow", "%s: no vrrp_instance has %s in its virtual_ipaddress: no follow written (lvs_mode all does not need it; "+
			"for lvs_mode owner name the instance whose lease the table should follow)", what, ip)
		return ""
	case 1:
		return holders[0]
	}
	k.warnAt(vs.line, "follow", "%s: %s is a virtual_ipaddress of %s: follows the first, %s", what, ip, strings.Join(holders, ", "), holders[0])
	return holders[0]
}

// vipAddrs are the addresses of an instance's virtual_ipaddress entries.
func vipAddrs(in *kaInstance) []netip.Addr {
	var out []netip.Addr
	vips := in.kvs["virtual_ipaddress"]
	if vips == nil {
		return nil
	}
	for _, v := range vips.List {
		a, _, _ := strings.Cut(unquote(v), " ")
		a, _, _ = strings.Cut(a, "/")
		if ip, err := netip.ParseAddr(a); err == nil {
			out = append(out, ip.WithZone(""))
		}
	}
	return out
}
