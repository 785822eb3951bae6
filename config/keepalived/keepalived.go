package keepalived

import (
	"github.com/leasehold/leasehold/config"

	"errors"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/leasehold/leasehold/script"
)

// Options tunes Import.
type Options struct {
	// Quorum is none (default), etcd or raft. etcd and raft add a commented
	// template of that backend's section; the backend written stays none
	// until the operator fills the template in.
	Quorum string
	// NodeName overrides global_defs router_id as node.name.
	NodeName string
	// OutName names the generated file in config.Parse's messages (default
	// "leasehold.yaml").
	OutName string
	// LookPath resolves a script or notify command that keepalived would
	// find on $PATH (leasehold needs an absolute path); the command passes
	// exec.LookPath. nil: such commands are errors.
	LookPath func(string) (string, error)
}

// Imported is a keepalived.conf converted to leasehold's YAML.
type Imported struct {
	YAML []byte
	// Config is YAML as config.Parse read and validated it.
	Config *config.Config
	// Warnings name the keepalived file and line of everything that was
	// not converted or whose meaning changed, then config.Parse's own warnings.
	Warnings []*config.Error
}

// Import converts keepalived.conf data (file names it in
// messages) to leasehold's YAML. Every statement is converted, kept as a
// comment with a warning, or reported: nothing is dropped silently. The
// result has been checked by config.Parse; its errors are mapped back to the
// keepalived lines they came from.
func Import(file string, data []byte, opt Options) (*Imported, error) {
	if opt.OutName == "" {
		opt.OutName = "leasehold.yaml"
	}
	switch opt.Quorum {
	case "":
		opt.Quorum = config.BackendNone
	case config.BackendNone, config.BackendEtcd, config.BackendRaft:
	default:
		return nil, fmt.Errorf("config.config: quorum %q: want none, etcd or raft", opt.Quorum)
	}
	k := &kaConv{file: file, garp: map[string]*kaKV{}, lookPath: opt.LookPath, lines: strings.Split(string(data), "\n")}
	stmts, err := kaParse(file, data, k.warnErr)
	if err != nil {
		return nil, err
	}
	k.top(stmts)
	if len(k.instances) == 0 && len(k.errs) == 0 {
		k.errAt(0, "(file)", "no vrrp_instance found: nothing to convert")
		// Say why, if a block swallowed the rest of the file.
		for _, w := range k.warns {
			if strings.Contains(w.Msg, "is not closed") {
				k.errs = append(k.errs, w)
			}
		}
	}
	if len(k.errs) > 0 {
		return nil, errors.Join(k.errs...)
	}
	out := k.emit(opt)
	cfg, err := config.Parse(opt.OutName, out.bytes())
	if err != nil {
		return nil, out.mapErrors(file, opt.OutName, err)
	}
	sort.SliceStable(k.warns, func(i, j int) bool { return k.warns[i].Line < k.warns[j].Line })
	im := &Imported{YAML: out.bytes(), Config: cfg, Warnings: k.warns}
	for _, w := range cfg.Warnings {
		im.Warnings = append(im.Warnings, out.mapWarning(file, opt.OutName, w))
	}
	return im, nil
}

// kaKV is one converted key: a rendered YAML scalar, a list of them, or a
// mapping; Line is its keepalived line. The emitter writes it as YAML when
// config.Config has the key, and as a comment with a warning until it does.
type kaKV struct {
	Key     string
	Scalar  string
	List    []string
	IsList  bool
	Map     []*kaKV
	Line    int
	Comment string
}

type kaInstance struct {
	name string
	line int
	kvs  map[string]*kaKV
}

type kaNamed struct {
	name string
	line int
	kvs  []*kaKV
}

type kaConv struct {
	file      string
	errs      []error
	warns     []*config.Error
	nodeName  string
	nodeLine  int
	version   *kaKV
	strict    bool
	strictAt  int
	garp      map[string]*kaKV // global garp_master_* defaults
	scripts   []*kaNamed
	groups    []*kaNamed
	instances []*kaInstance
	lookPath  func(string) (string, error)
	lines     []string // the file's lines, for commandWords
}

func (k *kaConv) warnErr(e *config.Error) { k.warns = append(k.warns, e) }

func (k *kaConv) warnAt(line int, key, format string, args ...any) {
	k.warns = append(k.warns, &config.Error{File: k.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (k *kaConv) errAt(line int, key, format string, args ...any) {
	k.errs = append(k.errs, &config.Error{File: k.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

const lvsNote = "not converted yet: LVS virtual_server blocks are handled by the lvs package later"

// notYet is the warning for keys leasehold's config.config does not have yet.
const notYet = "not yet supported by leasehold run: kept as a comment in the output"

// knownTop are keepalived top-level keywords leasehold does not convert.
var knownTop = map[string]string{
	"static_ipaddress":     "not converted: leasehold manages only virtual addresses; keep static ones in the OS network configuration",
	"static_routes":        "not converted: leasehold manages only virtual addresses; keep static routes in the OS network configuration",
	"static_rules":         "not converted: leasehold manages only virtual addresses; keep static rules in the OS network configuration",
	"vrrp_track_process":   "not converted: process tracking is not supported",
	"vrrp_track_file":      "not converted: file tracking is not supported",
	"track_file":           "not converted: file tracking is not supported",
	"bfd_instance":         "not converted: BFD is not supported",
	"garp_group":           "not converted: garp groups are not supported",
	"linkbeat_interfaces":  "not converted",
	"net_namespace":        "not converted: run leasehold inside the namespace instead",
	"instance":             "not converted",
	"use_pid_dir":          "not converted",
	"linkbeat_use_polling": "not converted",
}

func (k *kaConv) top(stmts []*kaStmt) {
	// vrrp_script first: instances may track scripts defined below them.
	for _, s := range stmts {
		if s.Key == "vrrp_script" && k.needName(s) && k.needBlock(s) {
			k.script(s)
		}
	}
	for _, s := range stmts {
		switch s.Key {
		case "include":
			k.errAt(s.Line, "include", "include %s: not supported: put the included files' contents into one file and import that", strings.Join(s.Args, " "))
		case "global_defs":
			if k.needBlock(s) {
				k.globals(s)
			}
		case "vrrp_script":
			// done above
		case "vrrp_instance":
			if k.needName(s) && k.needBlock(s) {
				k.instance(s)
			}
		case "vrrp_sync_group":
			if k.needName(s) && k.needBlock(s) {
				k.syncGroup(s)
			}
		case "virtual_server", "virtual_server_group":
			k.warnAt(s.Line, s.Key, "%s (lines %d-%d): %s", s.Words(), s.Line, s.EndLine, lvsNote)
		default:
			if msg, ok := knownTop[s.Key]; ok {
				k.warnAt(s.Line, s.Key, "%s", msg)
				continue
			}
			what := "keyword"
			if s.HasBlock {
				what = "block"
			}
			k.errAt(s.Line, s.Key, "unknown %s %q at the top level (not a keepalived keyword)", what, s.Key)
		}
	}
}

func (k *kaConv) needBlock(s *kaStmt) bool {
	if !s.HasBlock {
		k.errAt(s.Line, s.Key, "%s needs a { ... } block", s.Key)
		return false
	}
	return true
}

func (k *kaConv) needName(s *kaStmt) bool {
	if len(s.Args) != 1 {
		k.errAt(s.Line, s.Key, "want \"%s NAME {\", got %d words after %s", s.Key, len(s.Args), s.Key)
		return false
	}
	return true
}

// one returns s's single argument, or reports.
func (k *kaConv) one(s *kaStmt) (string, bool) {
	if s.HasBlock {
		k.errAt(s.Line, s.Key, "takes a value, not a block")
		return "", false
	}
	if len(s.Args) != 1 {
		k.errAt(s.Line, s.Key, "want one value, got %d (%q): one keyword per line", len(s.Args), strings.Join(s.Args, " "))
		return "", false
	}
	return s.Args[0], true
}

func (k *kaConv) flag(s *kaStmt) bool {
	if len(s.Args) > 0 || s.HasBlock {
		k.errAt(s.Line, s.Key, "takes no value, got %q: one keyword per line", strings.Join(s.Args, " "))
		return false
	}
	return true
}

func (k *kaConv) intIn(s *kaStmt, lo, hi int) (string, bool) {
	v, ok := k.one(s)
	if !ok {
		return "", false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		k.errAt(s.Line, s.Key, "%q: want a whole number %d-%d", v, lo, hi)
		return "", false
	}
	return strconv.Itoa(n), true
}

func (k *kaConv) seconds(s *kaStmt) (string, float64, bool) {
	v, ok := k.one(s)
	if !ok {
		return "", 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		k.errAt(s.Line, s.Key, "%q: want a number of seconds", v)
		return "", 0, false
	}
	return strconv.FormatFloat(f, 'f', -1, 64), f, true
}

// entries are the lines of a list block such as virtual_ipaddress.
func (k *kaConv) entries(s *kaStmt) []*kaStmt {
	if !s.HasBlock {
		if len(s.Args) > 0 {
			// keepalived also accepts a single "track_script name" line form
			// for some keys; be liberal.
			return []*kaStmt{{Key: s.Args[0], Args: s.Args[1:], Line: s.Line}}
		}
		k.errAt(s.Line, s.Key, "needs a { ... } block")
		return nil
	}
	for _, e := range s.Block {
		if e.HasBlock {
			k.errAt(e.Line, s.Key, "entry %q has a block: a '}' is probably missing above line %d", e.Words(), e.Line)
		}
	}
	return s.Block
}

var globalNotes = map[string]string{
	"vrrp_iptables":            "not converted: leasehold fences the VIP with its own nftables tables",
	"vrrp_skip_check_adv_addr": "not converted: leasehold has no such option",
	"notification_email":       "not converted: leasehold sends no mail",
	"notification_email_from":  "not converted: leasehold sends no mail",
	"smtp_server":              "not converted: leasehold sends no mail",
	"smtp_connect_timeout":     "not converted: leasehold sends no mail",
	"smtp_helo_name":           "not converted: leasehold sends no mail",
	"smtp_alert":               "not converted: leasehold sends no mail",
	"enable_script_security":   "not converted: leasehold runs hooks as its own user",
	"script_user":              "not converted: leasehold runs hooks as its own user",
}

func (k *kaConv) globals(g *kaStmt) {
	for _, s := range g.Block {
		switch s.Key {
		case "router_id":
			if v, ok := k.one(s); ok {
				k.nodeName, k.nodeLine = v, s.Line
			}
		case "vrrp_version":
			if v, ok := k.intIn(s, 2, 3); ok {
				k.version = &kaKV{Key: "version", Scalar: v, Line: s.Line, Comment: "global_defs vrrp_version"}
			}
		case "vrrp_strict":
			if k.flag(s) {
				k.strict, k.strictAt = true, s.Line
				k.warnAt(s.Line, s.Key, "not converted: leasehold has no strict mode; its effects on keepalived are carried over (authentication ignored, preempt_delay reset, no accept mode)")
			}
		case "vrrp_garp_master_delay", "vrrp_garp_master_refresh":
			if v, _, ok := k.seconds(s); ok {
				key := strings.TrimPrefix(s.Key, "vrrp_")
				k.garp[key] = &kaKV{Key: key, Scalar: v, Line: s.Line, Comment: "global_defs " + s.Key}
			}
		case "vrrp_garp_master_repeat":
			if v, ok := k.intIn(s, 0, 100); ok {
				k.garp["garp_master_repeat"] = &kaKV{Key: "garp_master_repeat", Scalar: v, Line: s.Line, Comment: "global_defs " + s.Key}
			}
		default:
			if msg, ok := globalNotes[s.Key]; ok {
				k.warnAt(s.Line, s.Key, "%s", msg)
			} else {
				k.warnAt(s.Line, s.Key, "global_defs %s: not converted", s.Key)
			}
		}
	}
}

func (k *kaConv) script(b *kaStmt) {
	sc := &kaNamed{name: b.Args[0], line: b.Line}
	for _, s := range b.Block {
		switch s.Key {
		case "script":
			if len(s.Args) == 0 {
				k.errAt(s.Line, s.Key, "needs a command")
				continue
			}
			// keepalived runs the first word only (the command is
			// quoted when it has arguments); unquoted words after it
			// are kept as its arguments, as the author meant.
			cmd := strings.Join(s.Args, " ")
			if w, ok := k.commandWords(s); ok {
				cmd = strings.Join(w[1:], " ")
				if len(w) > 2 {
					k.warnAt(s.Line, s.Key, "keepalived runs %q without the words after it (an unquoted command); converted with them as its arguments", w[1])
				}
			}
			if cmd, ok := k.absolute(s, cmd); ok {
				sc.kvs = append(sc.kvs, &kaKV{Key: "script", Scalar: yq(cmd), Line: s.Line})
			}
		case "interval", "timeout":
			if v, _, ok := k.seconds(s); ok {
				sc.kvs = append(sc.kvs, &kaKV{Key: s.Key, Scalar: v, Line: s.Line})
			}
		case "weight":
			v, ok := k.one(s)
			if !ok {
				continue
			}
			if n, err := strconv.Atoi(v); err != nil || n < -253 || n > 253 {
				k.errAt(s.Line, s.Key, "%q: want -253..253", v)
				continue
			}
			sc.kvs = append(sc.kvs, &kaKV{Key: "weight", Scalar: v, Line: s.Line})
		case "rise", "fall":
			if v, ok := k.intIn(s, 1, math.MaxInt32); ok {
				sc.kvs = append(sc.kvs, &kaKV{Key: s.Key, Scalar: v, Line: s.Line})
			}
		case "user":
			sc.kvs = append(sc.kvs, &kaKV{Key: "user", Scalar: yq(strings.Join(s.Args, " ")), Line: s.Line})
		case "init_fail":
			if k.flag(s) {
				sc.kvs = append(sc.kvs, &kaKV{Key: "init_fail", Scalar: "true", Line: s.Line})
			}
		default:
			k.warnAt(s.Line, s.Key, "vrrp_script %s: %s: not converted", sc.name, s.Key)
		}
	}
	k.scripts = append(k.scripts, sc)
}

var notifyKeys = map[string]bool{
	"notify_master": true, "notify_backup": true, "notify_fault": true, "notify_stop": true, "notify": true,
}

// notify converts "notify_master SCRIPT [USER [GROUP]]".
func (k *kaConv) notify(s *kaStmt) *kaKV {
	if len(s.Args) == 0 || s.HasBlock {
		k.errAt(s.Line, s.Key, "needs a script")
		return nil
	}
	args := s.Args
	if w, ok := k.commandWords(s); ok {
		args = w[1:]
	}
	if len(args) > 1 {
		k.warnAt(s.Line, s.Key, "user/group %q not converted: leasehold runs hooks as its own user (quote the command if those words were its arguments)", strings.Join(args[1:], " "))
	}
	cmd, ok := k.absolute(s, args[0])
	if !ok {
		return nil
	}
	return &kaKV{Key: s.Key, Scalar: yq(cmd), Line: s.Line}
}

// commandWords re-reads the line of a script keyword statement as
// keepalived 2.3.2 and later do (comments cut, then script.SplitQuoted):
// '...' quotes and backslashes as well as "...", the escapes left for
// script.Split (keepalived before 2.3.2 decoded them here already, and
// again when running: twice). ok
// is false when the line holds more than the statement (a block on one
// line) or does not split: then the statement's tokens stand.
func (k *kaConv) commandWords(s *kaStmt) ([]string, bool) {
	if s.Line < 1 || s.Line > len(k.lines) {
		return nil, false
	}
	line := strings.TrimSuffix(k.lines[s.Line-1], "\r")
	// keepalived's decomment: '#' and '!' outside "..." start a comment;
	// a backslash keeps the byte after it.
	quoted := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '"':
			quoted = !quoted
		case c == '\\':
			i++
		case !quoted && (c == '#' || c == '!'):
			line = line[:i]
		}
	}
	w, err := script.SplitQuoted(line)
	if err != nil || w[0] != s.Key || len(w) < 2 || slices.Contains(w, "{") || slices.Contains(w, "}") {
		return nil, false
	}
	if strings.Contains(w[1], `\`) {
		// Seen with Debian's 2.2.7: `x\ty` ran as two words x and y.
		k.warnAt(s.Line, s.Key, "backslash escapes converted as keepalived 2.3.2 and later read them (once); older versions decoded them twice: check the arguments")
	}
	return w, true
}

// absolute makes a command's program an absolute path: keepalived looks
// relative ones up on $PATH, leasehold wants them spelled out. The command
// is split as keepalived and leasehold split it (script.Split).
func (k *kaConv) absolute(s *kaStmt, cmd string) (string, bool) {
	argv, err := script.Split(cmd)
	if err != nil {
		k.errAt(s.Line, s.Key, "%q: %v", cmd, err)
		return "", false
	}
	prog := argv[0]
	if strings.HasPrefix(prog, "/") {
		return cmd, true
	}
	if k.lookPath != nil {
		if p, err := k.lookPath(prog); err == nil && strings.HasPrefix(p, "/") {
			k.warnAt(s.Line, s.Key, "%q resolved to %s on this machine: check it is the same on the node", prog, p)
			// Keep the arguments as written when the program was written
			// plainly; re-quote them all otherwise.
			rest, plain := strings.CutPrefix(strings.TrimLeft(cmd, " \t"), prog)
			if plain && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
				return p + rest, true
			}
			return script.Join(append([]string{p}, argv[1:]...)), true
		}
	}
	k.errAt(s.Line, s.Key, "%q is not an absolute path and was not found on $PATH here: write the full path", prog)
	return "", false
}

func (k *kaConv) syncGroup(b *kaStmt) {
	g := &kaNamed{name: b.Args[0], line: b.Line}
	for _, s := range b.Block {
		switch {
		case s.Key == "group":
			kv := &kaKV{Key: "group", IsList: true, Line: s.Line}
			for _, e := range k.entries(s) {
				for _, w := range append([]string{e.Key}, e.Args...) {
					kv.List = append(kv.List, yq(w))
				}
			}
			g.kvs = append(g.kvs, kv)
		case notifyKeys[s.Key]:
			if kv := k.notify(s); kv != nil {
				g.kvs = append(g.kvs, kv)
			}
		default:
			k.warnAt(s.Line, s.Key, "vrrp_sync_group %s: %s: not converted", g.name, s.Key)
		}
	}
	k.groups = append(k.groups, g)
}

// instanceUnsupported are vrrp_instance keywords leasehold does not
// convert, with why.
var instanceUnsupported = map[string]string{
	"mcast_src_ip":               "not converted: leasehold sends from the interface's primary address (multicast) or unicast_src_ip",
	"virtual_ipaddress_excluded": "not converted: these addresses will NOT move with the VIP; list them under virtual_ipaddress if they must",
	"virtual_routes":             "not converted: routes are not managed",
	"virtual_rules":              "not converted: rules are not managed",
	"use_vmac":                   "not converted: virtual MAC interfaces are not supported",
	"vmac_xmit_base":             "not converted: virtual MAC interfaces are not supported",
	"dont_track_primary":         "not converted: leasehold always tracks the instance's interface",
	"lvs_sync_daemon_interface":  "not converted: LVS sync daemon is handled by the lvs package later",
	"smtp_alert":                 "not converted: leasehold sends no mail",
	"debug":                      "not converted",
	"native_ipv6":                "not converted: leasehold picks VRRPv3 for IPv6 itself",
	"garp_master_refresh_repeat": "not converted",
	"garp_lower_prio_delay":      "not converted",
	"garp_lower_prio_repeat":     "not converted",
	"lower_prio_no_advert":       "not converted",
	"higher_prio_send_advert":    "not converted",
	"notify_master_rx_lower_pri": "not converted",
	"track_file":                 "not converted: file tracking is not supported",
	"track_process":              "not converted: process tracking is not supported",
	"track_bfd":                  "not converted: BFD is not supported",
	"unicast_ttl":                "not converted",
	"check_unicast_src":          "not converted",
	"skip_check_adv_addr":        "not converted",
	"kernel_rx_buf_size":         "not converted",
	"vrrp_v3_checksum_as_v2":     "not converted: set v3_checksum_pseudo_header: false by hand if the peers need it",
	"unicast_fault_no_peer":      "not converted",
}

func (k *kaConv) instance(b *kaStmt) {
	name := b.Args[0]
	for _, other := range k.instances {
		if other.name == name {
			k.errAt(b.Line, "vrrp_instance", "instance %s is also defined at line %d", name, other.line)
			return
		}
	}
	in := &kaInstance{name: name, line: b.Line, kvs: map[string]*kaKV{}}
	set := func(kv *kaKV) {
		if old, dup := in.kvs[kv.Key]; dup {
			k.warnAt(kv.Line, kv.Key, "also given at line %d: the last one wins, as in keepalived", old.Line)
		}
		in.kvs[kv.Key] = kv
	}
	strict, strictAt := k.strict, k.strictAt
	for _, s := range b.Block {
		switch s.Key {
		case "state":
			if v, ok := k.one(s); ok {
				v = strings.ToUpper(v)
				if v != "MASTER" && v != "BACKUP" {
					k.errAt(s.Line, s.Key, "%q: want MASTER or BACKUP", s.Args[0])
					continue
				}
				set(&kaKV{Key: "state", Scalar: v, Line: s.Line})
			}
		case "interface":
			if v, ok := k.one(s); ok {
				set(&kaKV{Key: "interface", Scalar: yq(v), Line: s.Line})
			}
		case "virtual_router_id":
			if v, ok := k.intIn(s, 1, 255); ok {
				set(&kaKV{Key: s.Key, Scalar: v, Line: s.Line})
			}
		case "priority":
			if v, ok := k.intIn(s, 1, 255); ok {
				set(&kaKV{Key: s.Key, Scalar: v, Line: s.Line})
			}
		case "advert_int":
			if v, _, ok := k.seconds(s); ok {
				set(&kaKV{Key: s.Key, Scalar: v, Line: s.Line})
			}
		case "version":
			if v, ok := k.intIn(s, 2, 3); ok {
				set(&kaKV{Key: s.Key, Scalar: v, Line: s.Line})
			}
		case "nopreempt":
			if k.flag(s) {
				set(&kaKV{Key: "nopreempt", Scalar: "true", Line: s.Line})
			}
		case "preempt":
			if k.flag(s) {
				set(&kaKV{Key: "nopreempt", Scalar: "false", Line: s.Line})
			}
		case "preempt_delay":
			if v, _, ok := k.seconds(s); ok {
				set(&kaKV{Key: s.Key, Scalar: v, Line: s.Line})
			}
		case "accept":
			if k.flag(s) {
				set(&kaKV{Key: "accept", Scalar: "true", Line: s.Line})
			}
		case "no_accept":
			if k.flag(s) {
				set(&kaKV{Key: "accept", Scalar: "false", Line: s.Line})
			}
		case "strict_mode":
			v := "on"
			if len(s.Args) > 0 {
				v = strings.ToLower(s.Args[0])
			}
			strict, strictAt = v == "on" || v == "true" || v == "yes", s.Line
			k.warnAt(s.Line, s.Key, "not converted: leasehold has no strict mode; its effects on keepalived are carried over")
		case "authentication":
			if !k.needBlock(s) {
				continue
			}
			auth := &kaKV{Key: "authentication", Line: s.Line}
			for _, a := range s.Block {
				switch a.Key {
				case "auth_type":
					v, ok := k.one(a)
					if !ok {
						continue
					}
					v = strings.ToUpper(v)
					if v == "AH" {
						k.errAt(a.Line, a.Key, "AH is not supported by leasehold: switch the pair to PASS (or no authentication) before migrating")
						continue
					}
					if v != "PASS" {
						k.errAt(a.Line, a.Key, "%q: want PASS", a.Args[0])
						continue
					}
					auth.Map = append(auth.Map, &kaKV{Key: "auth_type", Scalar: v, Line: a.Line})
				case "auth_pass":
					if v, ok := k.one(a); ok {
						auth.Map = append(auth.Map, &kaKV{Key: "auth_pass", Scalar: yq(v), Line: a.Line})
					}
				default:
					k.warnAt(a.Line, a.Key, "authentication %s: not converted", a.Key)
				}
			}
			set(auth)
		case "virtual_ipaddress":
			kv := &kaKV{Key: s.Key, IsList: true, Line: s.Line}
			for _, e := range k.entries(s) {
				if v, ok := k.vip(e); ok {
					kv.List = append(kv.List, yq(v))
				}
			}
			set(kv)
		case "unicast_src_ip":
			if v, ok := k.one(s); ok {
				set(&kaKV{Key: s.Key, Scalar: yq(v), Line: s.Line})
			}
		case "unicast_peer":
			kv := &kaKV{Key: s.Key, IsList: true, Line: s.Line}
			for _, e := range k.entries(s) {
				if len(e.Args) > 0 {
					k.warnAt(e.Line, s.Key, "peer %s: options %q not converted", e.Key, strings.Join(e.Args, " "))
				}
				kv.List = append(kv.List, yq(e.Key))
			}
			set(kv)
		case "garp_master_delay", "garp_master_refresh":
			if v, _, ok := k.seconds(s); ok {
				set(&kaKV{Key: s.Key, Scalar: v, Line: s.Line})
			}
		case "garp_master_repeat":
			if v, ok := k.intIn(s, 0, 100); ok {
				set(&kaKV{Key: s.Key, Scalar: v, Line: s.Line})
			}
		case "track_interface", "track_script":
			kv := &kaKV{Key: s.Key, IsList: true, Line: s.Line}
			for _, e := range k.entries(s) {
				if s.Key == "track_interface" {
					kv.List = append(kv.List, yq(e.Words()))
					continue
				}
				if !k.hasScript(e.Key) {
					k.warnAt(e.Line, s.Key, "%s: no vrrp_script of that name: dropped (keepalived ignores it too)", e.Key)
					continue
				}
				if len(e.Args) > 0 {
					k.warnAt(e.Line, s.Key, "%s: per-instance override %q not converted: the vrrp_script's own weight applies", e.Key, strings.Join(e.Args, " "))
				}
				kv.List = append(kv.List, yq(e.Key))
			}
			set(kv)
		default:
			if notifyKeys[s.Key] {
				if kv := k.notify(s); kv != nil {
					set(kv)
				}
				continue
			}
			if msg, ok := instanceUnsupported[s.Key]; ok {
				k.warnAt(s.Line, s.Key, "%s", msg)
				continue
			}
			k.warnAt(s.Line, s.Key, "unknown vrrp_instance keyword (a typo? keepalived ignores it too): not converted")
		}
	}
	k.effective(in, strict, strictAt)
	k.instances = append(k.instances, in)
}

func (k *kaConv) hasScript(name string) bool {
	for _, s := range k.scripts {
		if s.name == name {
			return true
		}
	}
	return false
}

// effective applies keepalived's own adjustments (vrrp_complete_instance)
// so the converted instance behaves as keepalived's did, not as its file
// read.
func (k *kaConv) effective(in *kaInstance, strict bool, strictAt int) {
	kv := in.kvs
	if kv["version"] == nil && k.version != nil {
		v := *k.version
		kv["version"] = &v
	}
	for key, g := range k.garp {
		if kv[key] == nil {
			v := *g
			kv[key] = &v
		}
	}
	state, prio := kv["state"], kv["priority"]
	switch {
	case prio == nil && state != nil && state.Scalar == "MASTER":
		kv["priority"] = &kaKV{Key: "priority", Scalar: "255", Line: state.Line,
			Comment: "keepalived: no priority with state MASTER means 255 (address owner)"}
		k.warnAt(state.Line, "priority", "instance %s: no priority with state MASTER: keepalived uses 255 (address owner); written explicitly", in.name)
	case state == nil && prio != nil && prio.Scalar == "255":
		kv["state"] = &kaKV{Key: "state", Scalar: "MASTER", Line: prio.Line, Comment: "keepalived: priority 255 starts as MASTER"}
	}
	version := "2"
	if v := kv["version"]; v != nil {
		version = v.Scalar
	}
	if vips := kv["virtual_ipaddress"]; vips != nil && kv["version"] == nil {
		for _, v := range vips.List {
			if uq, err := strconv.Unquote(v); err == nil {
				v = uq
			}
			a, _, _ := strings.Cut(v, " ")
			a, _, _ = strings.Cut(a, "/")
			if ip, err := netip.ParseAddr(a); err == nil && ip.Is6() {
				version = "3"
			}
		}
	}
	if a := kv["authentication"]; a != nil {
		switch {
		case strict:
			delete(kv, "authentication")
			k.warnAt(a.Line, "authentication", "instance %s: dropped: keepalived ignores authentication in strict mode (vrrp_strict at line %d), so its adverts carry none", in.name, strictAt)
		case version == "3":
			delete(kv, "authentication")
			k.warnAt(a.Line, "authentication", "instance %s: dropped: VRRPv3 has no authentication (keepalived ignores it too)", in.name)
		case len(a.Map) == 0:
			delete(kv, "authentication")
		}
	}
	if pd := kv["preempt_delay"]; pd != nil {
		switch {
		case strict:
			delete(kv, "preempt_delay")
			k.warnAt(pd.Line, "preempt_delay", "instance %s: dropped: keepalived resets it in strict mode", in.name)
		case kv["nopreempt"] != nil && kv["nopreempt"].Scalar == "true":
			delete(kv, "preempt_delay")
			k.warnAt(pd.Line, "preempt_delay", "instance %s: dropped: keepalived resets it with nopreempt", in.name)
		case kv["state"] != nil && kv["state"].Scalar == "MASTER":
			delete(kv, "preempt_delay")
			k.warnAt(pd.Line, "preempt_delay", "instance %s: dropped: keepalived clears it with state MASTER", in.name)
		}
	}
	if ai := kv["advert_int"]; ai != nil && version == "2" {
		f, _ := strconv.ParseFloat(ai.Scalar, 64)
		if f != math.Trunc(f) || f < 1 {
			r := math.Max(1, math.Round(f))
			k.warnAt(ai.Line, "advert_int", "instance %s: %s s is not whole seconds: VRRPv2 rounds to %v s as keepalived does", in.name, ai.Scalar, r)
			ai.Scalar = strconv.FormatFloat(r, 'f', -1, 64)
		}
	}
	if kv["accept"] == nil && !strict {
		kv["accept"] = &kaKV{Key: "accept", Scalar: "true", Line: in.line, Comment: "keepalived's default without vrrp_strict"}
	}
}

var vipFlags = map[string]bool{"no_track": true, "home": true, "-nodad": true, "nodad": true, "noprefixroute": true, "autojoin": true}

// vip converts "ADDR[/LEN] [dev X] [label Y] [brd B] [scope S] ...".
func (k *kaConv) vip(e *kaStmt) (string, bool) {
	if e.HasBlock {
		return "", false
	}
	out := []string{e.Key}
	a := e.Args
	for i := 0; i < len(a); i++ {
		switch {
		case vipFlags[a[i]]:
			k.warnAt(e.Line, "virtual_ipaddress", "%s: option %q dropped (not supported)", e.Key, a[i])
		case i+1 >= len(a):
			k.errAt(e.Line, "virtual_ipaddress", "%s: option %q needs a value", e.Key, a[i])
			return "", false
		case a[i] == "dev":
			out = append(out, "dev", a[i+1])
			i++
		case a[i] == "label":
			k.warnAt(e.Line, "virtual_ipaddress", "%s: label %s dropped: leasehold labels its addresses itself (the address is still added, without the alias name)", e.Key, a[i+1])
			i++
		default:
			k.warnAt(e.Line, "virtual_ipaddress", "%s: option %s %s dropped (not supported)", e.Key, a[i], a[i+1])
			i++
		}
	}
	return strings.Join(out, " "), true
}

// instanceOrder is the order keys are written in.
var instanceOrder = []string{
	"state", "interface", "virtual_router_id", "priority", "advert_int", "version",
	"nopreempt", "preempt_delay", "accept", "authentication", "virtual_ipaddress",
	"unicast_src_ip", "unicast_peer", "garp_master_delay", "garp_master_repeat",
	"garp_master_refresh", "track_interface", "track_script",
	"notify_master", "notify_backup", "notify_fault", "notify_stop", "notify",
}

var plainScalar = regexp.MustCompile(`^[A-Za-z0-9_/][A-Za-z0-9_./:@+-]*$`)

// yq renders s as a YAML string scalar.
func yq(s string) string {
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~":
		return strconv.Quote(s)
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return strconv.Quote(s) // "1111" stays a string
	}
	if plainScalar.MatchString(s) && !strings.Contains(s, "::") {
		return s
	}
	// Go's quoting is valid YAML double-quoted style for printable text.
	return strconv.Quote(s)
}
