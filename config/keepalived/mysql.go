package keepalived

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/leasehold/leasehold/config"
)

// This file proposes the native mysql section (package storage/mysql) for
// an instance whose keepalived configuration watches MySQL/MariaDB with a
// script: a tracked vrrp_script, a notify, or an LVS real server's
// notify_up/notify_down (seed 002: a virtual_server on the local mysqld
// whose notify_down kills keepalived) whose command names mysql, mysqld
// or mariadb. Never silently: every script recognised is named with its
// file and line.
//
// The mysql section needs a quorum (etcd or raft) and the import writes
// backend none, so the proposal is a commented block under the instance
// with what the operator must supply. With --quorum etcd or raft (the
// operator is setting up a lease anyway) a tracked check script is not
// converted as a track script: the section's native check replaces it.
// Without, the script is kept (a failed mysqld must still move the VIP
// until the section is in use) and the warning says how to replace it.
// Notify scripts are always kept (they may do more than read_only).

// mysqlWords spot a command about MySQL/MariaDB.
var mysqlWords = regexp.MustCompile(`(?i)mysql|mariadb`)

// kaMySQL is the proposal for one instance.
type kaMySQL struct {
	line    int      // where the proposal is written (the instance's line)
	why     []string // what was recognised, "vrrp_script chk_mysql (file:line)"
	address string   // the local server, when the configuration names it
	check   []string // the native check's settings, "interval: 2"
}

// mysqlProposals finds the scripts about MySQL and prepares a proposal per
// instance; run after the instances' tracking and the virtual servers are
// resolved.
func (k *kaConv) mysqlProposals() {
	k.mysql = map[string]*kaMySQL{}
	replace := k.quorum == config.BackendEtcd || k.quorum == config.BackendRaft
	prop := func(in *kaInstance) *kaMySQL {
		if p := k.mysql[in.name]; p != nil {
			return p
		}
		p := &kaMySQL{line: in.line}
		k.mysql[in.name] = p
		return p
	}
	for _, in := range k.instances {
		if ts := in.kvs["track_script"]; ts != nil {
			var kept []string
			for _, v := range ts.List {
				name := unquote(v)
				sc := k.scriptByName[name]
				cmd := scriptCommand(sc)
				if sc == nil || !mysqlWords.MatchString(cmd) {
					kept = append(kept, v)
					continue
				}
				p := prop(in)
				p.why = append(p.why, fmt.Sprintf("vrrp_script %s (%s)", name, k.where(sc.line)))
				p.check = scriptCheck(sc)
				if replace {
					k.warnAt(sc.line, "track_script", "instance %s: vrrp_script %s runs %q, a MySQL/MariaDB check: NOT converted as a track script; "+
						"the mysql section proposed under the instance (commented) checks the server natively and makes it writable only under the lease: "+
						"fill it in and uncomment it with the quorum, or a failed server does NOT move the VIP", in.name, name, cmd)
					continue
				}
				k.warnAt(sc.line, "track_script", "instance %s: vrrp_script %s runs %q, a MySQL/MariaDB check: kept as a track script; "+
					"a mysql section (proposed under the instance, commented) would check the server natively and make it writable only under the lease, "+
					"but needs a quorum: import with --quorum etcd or raft to have it replace the script", in.name, name, cmd)
				kept = append(kept, v)
			}
			if len(kept) == 0 {
				delete(in.kvs, "track_script")
			} else {
				ts.List = kept
			}
		}
		for key := range notifyKeys {
			if n := in.kvs[key]; n != nil && mysqlWords.MatchString(unquote(n.Scalar)) {
				p := prop(in)
				p.why = append(p.why, fmt.Sprintf("%s (%s)", key, k.where(n.Line)))
				k.warnAt(n.Line, key, "instance %s: %s runs %s, about MySQL/MariaDB: kept; with the proposed mysql section leasehold sets read_only "+
					"itself on promote and demote: remove what the script does of that", in.name, key, unquote(n.Scalar))
			}
		}
	}
	for _, vs := range k.vss {
		for _, rs := range vs.reals {
			for _, n := range rs.notifies {
				cmd := strings.Join(n.Args, " ")
				if !mysqlWords.MatchString(cmd) {
					continue
				}
				in := k.instByName[vs.follow]
				if in == nil {
					k.warnAt(n.Line, n.Key, "virtual_server %s: real_server %s: %s runs %s, about MySQL/MariaDB: no vrrp_instance holds the virtual server's address, "+
						"so no mysql section is proposed; see docs/operating.md (MySQL/MariaDB dual master)", vs.header, rs.addr, n.Key, cmd)
					continue
				}
				p := prop(in)
				p.why = append(p.why, fmt.Sprintf("%s of real_server %s in virtual_server %s (%s)", n.Key, rs.addr, vs.header, k.where(n.Line)))
				p.address = fmt.Sprintf("%s:%d", bracket(rs.addr.String()), rs.port)
				p.check = rsCheck(vs, rs)
				k.warnAt(n.Line, n.Key, "virtual_server %s: real_server %s: %s runs %s, about MySQL/MariaDB: not converted (keepalived's failover by script is what the mysql section replaces); "+
					"a mysql section is proposed under instance %s (commented: it needs a quorum) with the real server as the local server and its check's timing; "+
					"until it is in use a dead mysqld does NOT move the VIP (keepalived's notify_down did); if the virtual server only watched mysqld, remove it from the output", vs.header, rs.addr, n.Key, cmd, in.name)
			}
		}
	}
}

func bracket(a string) string {
	if strings.Contains(a, ":") {
		return "[" + a + "]"
	}
	return a
}

// where is "file:line" of the importer's line n.
func (k *kaConv) where(n int) string {
	f, l := k.pos(n)
	return fmt.Sprintf("%s:%d", printable(f), l)
}

// scriptCommand is a vrrp_script's command ("" without one).
func scriptCommand(sc *kaNamed) string {
	if sc == nil {
		return ""
	}
	for _, kv := range sc.kvs {
		if kv.Key == "script" {
			return unquote(kv.Scalar)
		}
	}
	return ""
}

// scriptCheck carries a vrrp_script's timing and weight over to the
// native check (keepalived's defaults: interval 1 s, fall 1, rise 1).
func scriptCheck(sc *kaNamed) []string {
	vals := map[string]string{"interval": "1", "fall": "1", "rise": "1", "weight": "0"}
	for _, kv := range sc.kvs {
		if _, ok := vals[kv.Key]; ok || kv.Key == "timeout" {
			vals[kv.Key] = kv.Scalar
		}
	}
	var out []string
	for _, key := range []string{"interval", "timeout", "fall", "rise", "weight"} {
		if v, ok := vals[key]; ok {
			out = append(out, key+": "+v)
		}
	}
	return out
}

// rsCheck carries a real server's first checker's timing over to the
// native check: interval delay_loop, timeout connect_timeout, fall retry+1
// (keepalived takes a server down after retry+1 failures), weight 0 (the
// failover keepalived's notify_down caused).
func rsCheck(vs *kaVS, rs *kaRS) []string {
	get := func(key, def string) string {
		levels := [][]*kaKV{}
		if len(rs.checks) > 0 {
			levels = append(levels, rs.checks[0].Map)
		}
		levels = append(levels, rs.timing, vs.timing)
		for _, l := range levels {
			for _, kv := range l {
				if kv.Key == key {
					return kv.Scalar
				}
			}
		}
		return def
	}
	retry, _ := strconv.Atoi(get("retry", "1"))
	return []string{"interval: " + get("delay_loop", "60"), "timeout: " + get("connect_timeout", "5"),
		"fall: " + strconv.Itoa(retry+1), "rise: 1", "weight: 0"}
}

// emitMySQL writes the proposal under instance in (commented).
func (k *kaConv) emitMySQL(y *kaYAML, in *kaInstance) {
	p := k.mysql[in.name]
	if p == nil {
		return
	}
	slices.Sort(p.why)
	p.why = slices.Compact(p.why)
	y.add(p.line, "    # Proposed by the import, which found MySQL/MariaDB in %s:", strings.Join(p.why, ", "))
	y.add(p.line, "    # leasehold's MySQL/MariaDB resource: the server is writable only while this")
	y.add(p.line, "    # node holds the lease (read_only, an epoch table, the peer fence) and a native")
	y.add(p.line, "    # check replaces the script. It needs quorum etcd or raft and the watchdog;")
	y.add(p.line, "    # fill in the lines marked SUPPLY, then uncomment (docs/operating.md, \"A")
	y.add(p.line, "    # MySQL/MariaDB dual master that follows the lease\": my.cnf, grants).")
	y.add(p.line, "    # mysql:")
	if p.address != "" {
		y.add(p.line, "    #   address: %q   # the local server (the real server keepalived checked); or socket: /run/mysqld/mysqld.sock", p.address)
	} else {
		y.add(p.line, "    #   socket: /run/mysqld/mysqld.sock   # the local server (Debian's default socket); or address: 127.0.0.1:3306")
	}
	y.add(p.line, "    #   credentials_file: /etc/leasehold/mysql.cnf   # SUPPLY: [client] user and password, mode 0600")
	peer := "SUPPLY: the other master's host:3306 (it is set read-only by a new owner), or remove the line"
	if pe := in.kvs["unicast_peer"]; pe != nil && len(pe.List) == 1 {
		y.add(p.line, "    #   peer: \"%s:3306\"   # the other master (this instance's unicast_peer): check its port", bracket(unquote(pe.List[0])))
	} else {
		y.add(p.line, "    #   peer: \"HOST:3306\"   # %s", peer)
	}
	if len(p.check) > 0 {
		y.add(p.line, "    #   check: {%s}   # the timing and weight of what it replaces", strings.Join(p.check, ", "))
	}
}
