package keepalived

import (
	"github.com/leasehold/leasehold/config"

	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// kaYAML is the generated file, with the keepalived line behind each of
// its lines (0: none) so config.Parse's messages can point at the source.
type kaYAML struct {
	lines []string
	src   []int
}

func (y *kaYAML) add(src int, format string, args ...any) {
	y.lines = append(y.lines, fmt.Sprintf(format, args...))
	y.src = append(y.src, src)
}

func (y *kaYAML) bytes() []byte { return []byte(strings.Join(y.lines, "\n") + "\n") }

// srcOf returns the keepalived line behind YAML line n (1-based), 0 if
// the line was made up by the converter.
func (y *kaYAML) srcOf(n int) int {
	if n < 1 || n > len(y.src) {
		return 0
	}
	return y.src[n-1]
}

// mapErrors rewrites config.Parse's errors on the generated file to name the
// keepalived line they came from (the first maxErrors of them).
func (y *kaYAML) mapErrors(src *kaSources, outName string, err error) error {
	var out []error
	all := flatten(err)
	for i, e := range all {
		if i == maxErrors {
			out = append(out, fmt.Errorf("%s: %d more errors, not shown", outName, len(all)-maxErrors))
			break
		}
		var ce *config.Error
		if errors.As(e, &ce) && ce.Line > 0 {
			if n := y.srcOf(ce.Line); n > 0 {
				file, line := src.at(n)
				out = append(out, &config.Error{File: file, Line: line, Key: ce.Key,
					Msg: fmt.Sprintf("%s (line %d of the generated %s)", ce.Msg, ce.Line, outName)})
				continue
			}
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

var warnLineRe = regexp.MustCompile(`^(.*?):(\d+): ([^:]+): (.*)$`)

// mapWarning turns one of config.Parse's warning strings into an Error at the
// keepalived line behind it.
func (y *kaYAML) mapWarning(src *kaSources, outName, w string) *config.Error {
	m := warnLineRe.FindStringSubmatch(w)
	if m == nil || m[1] != outName {
		return &config.Error{File: outName, Key: "(check)", Msg: w}
	}
	n, _ := strconv.Atoi(m[2])
	if n := y.srcOf(n); n > 0 {
		file, line := src.at(n)
		return &config.Error{File: file, Line: line, Key: m[3], Msg: m[4]}
	}
	return &config.Error{File: outName, Line: n, Key: m[3], Msg: m[4]}
}

// emit writes the YAML. Keys config.Config does not have yet are written as
// comments (with a warning) so that nothing is lost and the file parses.
func (k *kaConv) emit(opt Options) *kaYAML {
	y := &kaYAML{}
	y.add(0, "# leasehold.yaml converted from %s by `leasehold config import-keepalived`.", printable(k.file))
	y.add(0, "# Review every warning the import printed; check with: leasehold config check FILE")
	y.add(0, "")
	switch {
	case opt.NodeName != "":
		y.add(0, "node:")
		y.add(0, "  name: %s", yq(opt.NodeName))
	case k.nodeName != "" && !sampleRouterIDs[k.nodeName]:
		k.warnAt(k.nodeLine, "router_id", "node.name %s taken from router_id: it MUST differ on every node (a quorum lease names its holder by it; "+
			"two nodes of one name both hold it): if the other node's router_id is the same, import with --node NAME", k.nodeName)
		y.add(k.nodeLine, "node:")
		y.add(k.nodeLine, "  name: %s   # global_defs router_id: must differ on every node", yq(k.nodeName))
	default:
		if k.nodeName != "" {
			k.warnAt(k.nodeLine, "router_id", "router_id %s is keepalived's sample value, most likely the same on every node: NOT used as node.name "+
				"(node.name MUST differ on every node; the hostname is used at run time): import with --node NAME to set it", k.nodeName)
		}
		y.add(0, "# node:")
		y.add(0, "#   name: lb1   # default: the hostname")
	}
	y.add(0, "")
	k.emitQuorum(y, opt.Quorum)
	y.add(0, "")

	k.emitNamed(y, "vrrp_script", k.scripts)
	k.emitNamed(y, "vrrp_sync_group", k.groups)

	y.add(0, "vrrp_instance:")
	for _, in := range k.instances {
		file, line := k.pos(in.line)
		y.add(in.line, "  %s:   # %s:%d", yq(in.name), printable(file), line)
		done := map[string]bool{}
		keys := append([]string{}, instanceOrder...)
		for key := range in.kvs {
			if !slices.Contains(instanceOrder, key) {
				keys = append(keys, key)
			}
		}
		for _, key := range keys {
			kv := in.kvs[key]
			if kv == nil || done[key] {
				continue
			}
			done[key] = true
			if config.HasKey("vrrp_instance", "*", key) {
				k.emitKV(y, "    ", kv, false)
				continue
			}
			k.warnAt(kv.Line, key, "instance %s: %s", in.name, notYet+pendingWhy(key))
			k.emitKV(y, "    ", kv, true)
		}
		k.emitMySQL(y, in)
	}
	k.emitLVS(y, opt)
	k.emitLVSSync(y)
	return y
}

// emitLVS writes lvs_mode, the virtual_server_groups used and the virtual
// servers. lvs_mode is all: keepalived's behaviour, and the only one
// without a lease (the import writes quorum backend none).
func (k *kaConv) emitLVS(y *kaYAML, opt Options) {
	if len(k.lvsItems) == 0 {
		return
	}
	first := k.lvsItems[0].Line
	y.add(0, "")
	y.add(first, "# keepalived's virtual_server blocks. lvs_mode all is keepalived's behaviour:")
	y.add(first, "# every director keeps the IPVS table, only the VIP moves. With a quorum")
	y.add(first, "# (etcd or raft), lvs_mode owner keeps the table on the lease's owner only")
	y.add(first, "# (each virtual server then needs follow: the instance whose lease it follows).")
	y.add(first, "lvs_mode: all")
	why := "quorum backend none: keepalived's behaviour, every director keeps the table"
	if opt.Quorum != config.BackendNone {
		why += "; when you switch the backend to " + opt.Quorum + ", consider lvs_mode owner (only the lease's owner keeps the table) and check each virtual server's follow"
	}
	k.warnAt(first, "lvs_mode", "lvs_mode all written (%s)", why)
	var groups []*kaKV
	for _, name := range k.vsGroupOrder {
		if k.vsGroupUsed[name] {
			groups = append(groups, k.vsGroups[name])
		} else {
			g := k.vsGroups[name]
			k.warnAt(g.Line, "virtual_server_group", "virtual_server_group %s: no virtual_server uses it: not written", name)
		}
	}
	if len(groups) > 0 {
		y.add(groups[0].Line, "virtual_server_group:")
		for _, g := range groups {
			k.emitKV(y, "  ", g, false)
		}
	}
	k.emitKV(y, "", &kaKV{Key: "virtual_server", Items: k.lvsItems, Line: first}, false)
}

// sampleRouterIDs are router_id values of keepalived's samples, copied
// unchanged to every node.
var sampleRouterIDs = map[string]bool{"LVS_DEVEL": true}

// pendingWhy adds what a missing key means in practice.
func pendingWhy(key string) string {
	switch key {
	case "track_script", "vrrp_script":
		return ": until then a failing check does NOT move the VIP"
	case "track_interface":
		return ": until then a down tracked interface does NOT move the VIP"
	case "vrrp_sync_group":
		return ": until then the group's instances fail over independently"
	}
	if notifyKeys[key] {
		return ": until then the script is NOT run on transitions"
	}
	return ""
}

// emitNamed writes vrrp_script or vrrp_sync_group, for real where config.Config
// has the section (and each sub-key), as comments otherwise.
func (k *kaConv) emitNamed(y *kaYAML, section string, items []*kaNamed) {
	if len(items) == 0 {
		return
	}
	has := config.HasKey(section)
	if !has {
		y.add(0, "# %s: %s", section, notYet)
	}
	c := ""
	if !has {
		c = "# "
	}
	y.add(items[0].line, "%s%s:", c, section)
	for _, it := range items {
		if !has {
			k.warnAt(it.line, section, "%s %s: %s", section, it.name, notYet+pendingWhy(section))
		}
		file, line := k.pos(it.line)
		y.add(it.line, "%s  %s:   # %s:%d", c, yq(it.name), printable(file), line)
		for _, kv := range it.kvs {
			sub := has && config.HasKey(section, "*", kv.Key)
			if has && !sub {
				k.warnAt(kv.Line, kv.Key, "%s %s: %s", section, it.name, notYet)
			}
			switch {
			case !has: // the whole section is a comment
				k.emitKV(y, "#     ", kv, false)
			default:
				k.emitKV(y, "    ", kv, !sub)
			}
		}
	}
	y.add(0, "")
}

func (k *kaConv) emitKV(y *kaYAML, indent string, kv *kaKV, commented bool) {
	c := ""
	if commented {
		c = "# "
	}
	tail := ""
	if kv.Comment != "" {
		tail = "   # " + printable(kv.Comment) // it may quote a name from the input
	}
	switch {
	case kv.Items != nil:
		// A list of mappings; never commented.
		y.add(kv.Line, "%s%s:%s", indent, kv.Key, tail)
		for _, it := range kv.Items {
			start := len(y.lines)
			for _, m := range it.Map {
				k.emitKV(y, indent+"    ", m, false)
			}
			if len(y.lines) == start {
				y.add(it.Line, "%s  - {}", indent)
				continue
			}
			y.lines[start] = indent + "  - " + strings.TrimPrefix(y.lines[start], indent+"    ")
		}
	case kv.IsMap && len(kv.Map) == 0:
		y.add(kv.Line, "%s%s%s: {}%s", indent, c, kv.Key, tail)
	case kv.IsList:
		if len(kv.List) == 0 {
			y.add(kv.Line, "%s%s%s: []%s", indent, c, kv.Key, tail)
			return
		}
		y.add(kv.Line, "%s%s%s:%s", indent, c, kv.Key, tail)
		for _, v := range kv.List {
			y.add(kv.Line, "%s%s  - %s", indent, c, v)
		}
	case kv.Map != nil:
		y.add(kv.Line, "%s%s%s:%s", indent, c, kv.Key, tail)
		for _, m := range kv.Map {
			k.emitKV(y, indent+"  ", m, commented)
		}
	default:
		y.add(kv.Line, "%s%s%s: %s%s", indent, c, kv.Key, kv.Scalar, tail)
	}
}

func (k *kaConv) emitQuorum(y *kaYAML, q string) {
	y.add(0, "quorum:")
	y.add(0, "  # none = plain VRRP, exactly what keepalived gave you: NO split-brain")
	y.add(0, "  # protection. If this node freezes or keepalived is killed with -9, the")
	y.add(0, "  # VIP stays here while the peer takes it too (two masters, ARP flapping).")
	y.add(0, "  # Switch to etcd or raft as soon as a quorum exists.")
	y.add(0, "  backend: none")
	switch q {
	case config.BackendEtcd:
		y.add(0, "  # --quorum etcd: an etcd cluster of three or five members.")
		y.add(0, "  # Fill in, then replace `backend: none` above with these lines.")
		y.add(0, "  # backend: etcd")
		y.add(0, "  # ttl: 2s                 # lease time to live")
		y.add(0, "  # etcd:")
		y.add(0, "  #   endpoints: [\"https://10.0.0.11:2379\", \"https://10.0.0.12:2379\", \"https://10.0.0.13:2379\"]")
		y.add(0, "  #   prefix: /leasehold/")
		y.add(0, "  #   ca_file: /etc/leasehold/etcd-ca.pem")
		y.add(0, "  #   cert_file: /etc/leasehold/etcd-client.pem")
		y.add(0, "  #   key_file: /etc/leasehold/etcd-client-key.pem")
	case config.BackendRaft:
		y.add(0, "  # --quorum raft: three voters, both nodes and a witness (`leasehold witness`).")
		y.add(0, "  # Fill in, then replace `backend: none` above with these lines.")
		y.add(0, "  # backend: raft")
		y.add(0, "  # ttl: 2s")
		y.add(0, "  # raft:")
		y.add(0, "  #   id: lb1                      # default: node.name")
		y.add(0, "  #   bind: 10.0.0.1:7946          # this voter's raft transport")
		y.add(0, "  #   client_bind: 10.0.0.1:7947   # this voter's client API")
		y.add(0, "  #   data_dir: /var/lib/leasehold/raft")
		y.add(0, "  #   peers:")
		y.add(0, "  #     - {id: lb1, addr: \"10.0.0.1:7946\", client: \"10.0.0.1:7947\"}")
		y.add(0, "  #     - {id: lb2, addr: \"10.0.0.2:7946\", client: \"10.0.0.2:7947\"}")
		y.add(0, "  #     - {id: witness, addr: \"10.0.0.3:7946\", client: \"10.0.0.3:7947\"}")
	}
}
