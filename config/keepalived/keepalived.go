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
	// ConfigID is the node's keepalived config id (keepalived -i; its
	// default is the short hostname): it selects the "@ID ..." lines. A
	// file with such lines is refused without it.
	ConfigID string
	// OutName names the generated file in config.Parse's messages (default
	// "leasehold.yaml").
	OutName string
	// LookPath resolves a script or notify command that keepalived would
	// find on $PATH (leasehold needs an absolute path); the command passes
	// exec.LookPath. nil: such commands are errors.
	LookPath func(string) (string, error)
	// ReadFile and Glob read the files an include names (the command
	// passes os.ReadFile and filepath.Glob). nil: includes are errors.
	ReadFile func(string) ([]byte, error)
	Glob     func(string) ([]string, error)
}

// Imported is a keepalived.conf converted to leasehold's YAML.
type Imported struct {
	YAML []byte
	// Config is YAML as config.Parse read and validated it.
	Config *config.Config
	// Warnings name the keepalived file and line of everything that was
	// not converted or whose meaning changed, then config.Parse's own warnings.
	Warnings []*config.Error
	// LVS counts the virtual servers converted (a virtual_server block
	// keepalived ignores, and so the import, is not counted).
	LVS int
}

// Import converts keepalived.conf data (file names it in messages, and
// includes are found relative to it) to leasehold's YAML. Every statement
// is converted, kept as a comment with a warning, or reported: nothing is
// dropped silently. The result has been checked by config.Parse; its
// errors are mapped back to the keepalived lines they came from. Text
// quoted from the input in messages has its control bytes escaped.
func Import(file string, data []byte, opt Options) (*Imported, error) {
	im, err := doImport(file, data, opt)
	if err != nil {
		return nil, printableErr(err)
	}
	for i, w := range im.Warnings {
		im.Warnings[i] = &config.Error{File: printable(w.File), Line: w.Line, Key: printable(w.Key), Msg: printable(w.Msg)}
	}
	return im, nil
}

func doImport(file string, data []byte, opt Options) (*Imported, error) {
	if opt.OutName == "" {
		opt.OutName = "leasehold.yaml"
	}
	switch opt.Quorum {
	case "":
		opt.Quorum = config.BackendNone
	case config.BackendNone, config.BackendEtcd, config.BackendRaft:
	default:
		return nil, fmt.Errorf("keepalived: quorum %q: want none, etcd or raft", opt.Quorum)
	}
	k := &kaConv{file: file, src: &kaSources{}, garp: map[string]*kaKV{}, lookPath: opt.LookPath,
		scriptByName: map[string]*kaNamed{}, instByName: map[string]*kaInstance{}, groupByName: map[string]*kaNamed{}, quorum: opt.Quorum}
	stmts := kaParse(file, data, readOptions{configID: opt.ConfigID, readFile: opt.ReadFile, glob: opt.Glob},
		k.src, k.errAt, k.warnAt)
	if len(k.errs) == 0 {
		k.top(stmts)
	}
	if len(k.instances) == 0 && len(k.errs) == 0 {
		if k.lvs > 0 {
			k.errAt(k.lvsLine, "(file)", "no vrrp_instance found, only %d LVS block(s) (the first here): leasehold runs virtual servers beside "+
				"a vrrp_instance (its VIP); add the director's vrrp_instance, or keep this checker-only keepalived", k.lvs)
		} else {
			k.errAt(0, "(file)", "no vrrp_instance found: nothing to convert")
		}
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
	yml := out.bytes()
	cfg, err := config.Parse(opt.OutName, yml)
	if err != nil {
		return nil, out.mapErrors(k.src, opt.OutName, err)
	}
	sort.SliceStable(k.warns, func(i, j int) bool { return k.warnLine[k.warns[i]] < k.warnLine[k.warns[j]] })
	if n := len(k.warns); n > maxWarnings {
		last := k.warns[maxWarnings-1]
		k.warns = append(k.warns[:maxWarnings], &config.Error{File: last.File, Line: last.Line, Key: "(file)",
			Msg: fmt.Sprintf("%d more warnings after this line, not shown: fix these and import again", n-maxWarnings)})
	}
	im := &Imported{YAML: yml, Config: cfg, Warnings: k.warns, LVS: len(k.lvsItems)}
	for _, w := range cfg.Warnings {
		im.Warnings = append(im.Warnings, out.mapWarning(k.src, opt.OutName, w))
	}
	return im, nil
}

// kaKV is one converted key: a rendered YAML scalar, a list of them, or a
// mapping; Line is its keepalived line. The emitter writes it as YAML when
// config.Config has the key, and as a comment with a warning until it does.
type kaKV struct {
	Key    string
	Scalar string
	List   []string
	IsList bool
	Map    []*kaKV
	// IsMap: Map is written even when empty ("key: {}").
	IsMap bool
	// Items: a list of mappings (each an IsMap kaKV).
	Items   []*kaKV
	Line    int
	Comment string
}

type kaInstance struct {
	name string
	line int
	kvs  map[string]*kaKV

	strict       bool
	strictAt     int
	group        *kaNamed // its sync group, if any
	mcastDst     string   // mcast_dst_ip
	mcastDstAt   int
	trackScripts []kaTrack
	trackIfaces  []kaTrack
	tracked      map[string]bool // track_script names
	peers        map[string]bool // unicast_peer addresses
}

type kaNamed struct {
	name   string
	line   int
	kvs    []*kaKV
	weight int // vrrp_script: its weight (0 by default)
	// vrrp_sync_group: sync_group_tracking_weight (members keep weighted tracking).
	trackingWeight bool
	copyOf         *kaNamed // vrrp_script: the script this is a weighted copy of
	// vrrp_sync_group: its instances and tracking, resolved by resolveGroups.
	members []kaMember
	tracks  []*kaStmt
}

// kaMember is a sync group's instance name and where it was given.
type kaMember struct {
	name string
	line int
}

type kaConv struct {
	file      string
	src       *kaSources
	errs      []error
	warns     []*config.Error
	warnLine  map[*config.Error]int // a warning's line in the importer's numbering, for sorting
	nodeName  string
	nodeLine  int
	version   *kaKV
	strict    bool
	strictAt  int
	mcast4    string // global_defs vrrp_mcast_group4/6
	mcast4At  int
	mcast6    string
	mcast6At  int
	garp      map[string]*kaKV // global garp_master_* defaults
	scripts   []*kaNamed
	groups    []*kaNamed
	instances []*kaInstance
	lvs       int // LVS blocks, the first at lvsLine
	lvsLine   int
	// LVS: the virtual_server blocks read, the groups by name (in order)
	// and which are used, and the virtual servers' YAML items.
	vss          []*kaVS
	vsGroups     map[string]*kaKV
	vsGroupOrder []string
	vsGroupUsed  map[string]bool
	vsGroupInfo  map[string]*kaGroupInfo
	vipHolders   map[netip.Addr][]string // instances by virtual_ipaddress
	lvsItems     []*kaKV
	// lvsSync is lvs_sync_daemon, following lvsSyncInstance.
	lvsSync         *kaKV
	lvsSyncInstance string
	// quorum is Options.Quorum; mysql the proposals of mysql sections by
	// instance name.
	quorum   string
	mysql    map[string]*kaMySQL
	lookPath func(string) (string, error)

	scriptByName map[string]*kaNamed
	instByName   map[string]*kaInstance
	groupByName  map[string]*kaNamed
}

// pos names the file and line behind the importer's line n.
func (k *kaConv) pos(n int) (string, int) {
	if f, l := k.src.at(n); f != "" {
		return f, l
	}
	return k.file, 0
}

func (k *kaConv) warnAt(line int, key, format string, args ...any) {
	f, l := k.pos(line)
	e := &config.Error{File: f, Line: l, Key: key, Msg: fmt.Sprintf(format, args...)}
	if k.warnLine == nil {
		k.warnLine = map[*config.Error]int{}
	}
	k.warnLine[e] = line
	k.warns = append(k.warns, e)
}

// errAt records an error; after maxErrors, one more says the rest is not
// shown.
func (k *kaConv) errAt(line int, key, format string, args ...any) {
	f, l := k.pos(line)
	switch {
	case len(k.errs) < maxErrors:
		k.errs = append(k.errs, &config.Error{File: f, Line: l, Key: key, Msg: fmt.Sprintf(format, args...)})
	case len(k.errs) == maxErrors:
		k.errs = append(k.errs, &config.Error{File: f, Line: l, Key: "(file)", Msg: fmt.Sprintf("more errors from here on: only the first %d are shown", maxErrors)})
	}
}

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
	// vrrp_script first: instances may track scripts defined below them;
	// sync groups last: they may name instances defined below them.
	k.vsGroupUsed = map[string]bool{}
	for _, s := range stmts {
		switch {
		case s.Key == "vrrp_script" && k.needName(s) && k.needBlock(s):
			k.script(s)
		case s.Key == "virtual_server_group" && k.needBlock(s):
			k.virtualServerGroup(s)
		}
	}
	var groups []*kaStmt
	for _, s := range stmts {
		switch s.Key {
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
				groups = append(groups, s)
			}
		case "virtual_server", "virtual_server_group":
			if k.lvs++; k.lvs == 1 {
				k.lvsLine = s.Line
			}
			if s.Key == "virtual_server" {
				k.virtualServer(s)
			}
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
	for _, s := range groups {
		k.syncGroup(s)
	}
	k.resolveGroups()
	for _, in := range k.instances {
		k.effective(in)
	}
	k.groupStartStates()
	if len(k.instances) > 0 {
		k.finishVirtualServers()
	}
	k.mysqlProposals()
}

// groupStartStates starts a sync group's MASTER members as BACKUP unless
// every member is an address owner starting as MASTER, as keepalived does
// (vrrp_complete_init: "if any sync group has member wanting to start in
// master state, then all can start in master state", else none).
func (k *kaConv) groupStartStates() {
	members := map[*kaNamed][]*kaInstance{}
	for _, in := range k.instances {
		if in.group != nil {
			members[in.group] = append(members[in.group], in)
		}
	}
	for _, g := range k.groups {
		master, backup := false, false
		for _, in := range members[g] {
			st, prio := in.kvs["state"], in.kvs["priority"]
			isMaster := st != nil && st.Scalar == "MASTER"
			master = master || isMaster
			backup = backup || !isMaster || prio == nil || prio.Scalar != "255"
		}
		if !master || !backup {
			continue
		}
		for _, in := range members[g] {
			if st := in.kvs["state"]; st != nil && st.Scalar == "MASTER" {
				k.warnAt(st.Line, "state", "instance %s: state MASTER in sync group %s: keepalived starts it as BACKUP "+
					"(only a group of address owners starts as MASTER); written as BACKUP", in.name, g.name)
				in.kvs["state"] = &kaKV{Key: "state", Scalar: "BACKUP", Line: st.Line, Comment: "keepalived: sync group " + g.name + " starts as BACKUP"}
			}
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
	"lvs_sync_daemon_interface": "not converted: without an instance it says nothing leasehold can follow; " +
		"write lvs_sync_daemon INTERFACE VRRP_INSTANCE (keepalived 2's form) and import again",
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
		case "vrrp_mcast_group4":
			if v, ok := k.one(s); ok {
				k.mcast4, k.mcast4At = v, s.Line
			}
		case "vrrp_mcast_group6":
			if v, ok := k.one(s); ok {
				k.mcast6, k.mcast6At = v, s.Line
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
		case "lvs_sync_daemon":
			k.lvsSyncDaemon(s)
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
			if w, ok := k.weight(s, s.Args, "vrrp_script "+sc.name); ok {
				sc.weight = w
				sc.kvs = append(sc.kvs, &kaKV{Key: "weight", Scalar: strconv.Itoa(w), Line: s.Line})
			}
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
	if other := k.scriptByName[sc.name]; other != nil {
		k.errAt(b.Line, "vrrp_script", "vrrp_script %s is also defined at line %d", sc.name, k.line(other.line))
		return
	}
	k.scriptByName[sc.name] = sc
	k.scripts = append(k.scripts, sc)
}

// line is the file line of the importer's line n (for "also at line N").
func (k *kaConv) line(n int) int {
	_, l := k.pos(n)
	return l
}

// weight reads "N [reverse|noreverse]" (args after the keyword weight) of
// a vrrp_script or a track_script entry.
func (k *kaConv) weight(s *kaStmt, args []string, what string) (int, bool) {
	if len(args) == 0 || len(args) > 2 || s.HasBlock {
		k.errAt(s.Line, "weight", "%s: want weight N (-253..253), got %q", what, strings.Join(args, " "))
		return 0, false
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < -254 || n > 254 {
		k.errAt(s.Line, "weight", "%s: weight %q: want -253..253", what, args[0])
		return 0, false
	}
	if n == 254 || n == -254 {
		n = n / 254 * 253
		k.warnAt(s.Line, "weight", "%s: weight %s: keepalived uses %d", what, args[0], n)
	}
	if len(args) == 2 {
		switch args[1] {
		case "noreverse":
		case "reverse":
			how := fmt.Sprintf("make the check exit 0 where it failed and the other way round, and write weight %d", -n)
			if strings.Contains(what, "track_interface") {
				how = "track the interface without reverse, or with a vrrp_script that tests it"
			}
			k.errAt(s.Line, "weight", "%s: weight %d reverse: leasehold has no reverse weights: %s", what, n, how)
			return 0, false
		default:
			k.errAt(s.Line, "weight", "%s: weight %d %q: want reverse or nothing after the number", what, n, args[1])
			return 0, false
		}
	}
	return n, true
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
// keepalived 2.3.2 and later do (script.SplitQuoted on the line with its
// comment cut): '...' quotes and backslashes as well as "...", the escapes
// left for script.Split (keepalived before 2.3.2 decoded them here
// already, and again when running: twice). ok is false when the line holds
// more than the statement (a block on one line) or does not split: then
// the statement's tokens stand.
func (k *kaConv) commandWords(s *kaStmt) ([]string, bool) {
	w, err := script.SplitQuoted(s.Raw)
	if err != nil || len(w) < 2 || w[0] != s.Key || slices.Contains(w, "{") || slices.Contains(w, "}") {
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
	if strings.ContainsAny(prog[:min(1, len(prog))], "<>|&;($`") {
		k.errAt(s.Line, s.Key, "%q is shell syntax, but keepalived runs the command without a shell: it finds no such program "+
			"and disables the check (a notify script never runs); write /bin/sh -c '...' (/bin/bash -c for /dev/tcp) if it should run, or remove it", cmd)
		return "", false
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
	name := b.Args[0]
	if other := k.groupByName[name]; other != nil {
		k.errAt(b.Line, "vrrp_sync_group", "vrrp_sync_group %s is also defined at line %d", name, k.line(other.line))
		return
	}
	g := &kaNamed{name: name, line: b.Line}
	k.groupByName[name] = g
	hasGroup := false
	var bare []*kaStmt // instance names without group { }
	for _, s := range b.Block {
		switch {
		case s.Key == "group":
			if hasGroup {
				k.warnAt(s.Line, s.Key, "vrrp_sync_group %s: a second group block: ignored, as keepalived does (\"Group list already specified\")", name)
				continue
			}
			hasGroup = true
			for _, e := range k.entries(s) {
				for _, w := range append([]string{e.Key}, e.Args...) {
					g.members = append(g.members, kaMember{name: w, line: e.Line})
				}
			}
		case notifyKeys[s.Key]:
			if kv := k.notify(s); kv != nil {
				g.kvs = append(g.kvs, kv)
			}
		case s.Key == "track_script" || s.Key == "track_interface" || s.Key == "track_file" || s.Key == "track_process" || s.Key == "track_bfd":
			k.errAt(s.Line, s.Key, "vrrp_sync_group %s: %s of a sync group is not converted: list the entries under each member instance's %s "+
				"(with sync groups keepalived ignores weighted scripts and takes weighted interfaces as weight 0: write them that way)", name, s.Key, s.Key)
		case s.Key == "sync_group_tracking_weight":
			if k.flag(s) {
				g.trackingWeight = true
			}
		case !s.HasBlock && len(s.Args) == 0 && !syncKnown[s.Key]:
			bare = append(bare, s)
		default:
			k.warnAt(s.Line, s.Key, "vrrp_sync_group %s: %s: not converted", name, s.Key)
		}
	}
	for _, s := range bare {
		if hasGroup {
			k.warnAt(s.Line, s.Key, "vrrp_sync_group %s: %s outside group { }: keepalived ignores it (\"Unknown keyword\"): not a member", name, s.Key)
			continue
		}
		k.warnAt(s.Line, s.Key, "vrrp_sync_group %s: instance %s named without group { } (the old syntax): keepalived 2.x ignores such lines "+
			"(\"Unknown keyword\") and removes the empty group, so the instances fail over independently; converted the same way "+
			"(write group { ... } if they should move together)", name, s.Key)
	}
	k.groups = append(k.groups, g)
}

// syncKnown are vrrp_sync_group keywords other than instance names.
var syncKnown = map[string]bool{"smtp_alert": true, "global_tracking": true, "notify_priority_changes": true}

// resolveGroups keeps the sync groups' members that exist and are in no
// earlier group, and the groups left with members, as keepalived does
// (vrrp_sync_set_group): each one dropped is warned about.
func (k *kaConv) resolveGroups() {
	inGroup := map[string]string{}
	kept := k.groups[:0]
	for _, g := range k.groups {
		kv := &kaKV{Key: "group", IsList: true, Line: g.line}
		for _, m := range g.members {
			switch other, dup := inGroup[m.name]; {
			case k.instByName[m.name] == nil:
				k.warnAt(m.line, "group", "vrrp_sync_group %s: no vrrp_instance %s: left out, as keepalived does", g.name, m.name)
			case dup:
				k.warnAt(m.line, "group", "vrrp_sync_group %s: %s is already in sync group %s: left out of this one, as keepalived does", g.name, m.name, other)
			default:
				inGroup[m.name] = g.name
				kv.List = append(kv.List, yq(m.name))
				k.instByName[m.name].group = g
			}
		}
		if len(kv.List) == 0 {
			what := "the group's notify scripts never run"
			if len(g.kvs) == 0 {
				what = "nothing moves together"
			}
			k.warnAt(g.line, "vrrp_sync_group", "vrrp_sync_group %s has no instances: removed, as keepalived does (%s)", g.name, what)
			continue
		}
		g.kvs = append([]*kaKV{kv}, g.kvs...)
		kept = append(kept, g)
	}
	k.groups = kept
}

// instanceUnsupported are vrrp_instance keywords leasehold does not
// convert, with why: they change nothing leasehold's peer or the network
// sees during failover.
var instanceUnsupported = map[string]string{
	"smtp_alert":                 "not converted: leasehold sends no mail",
	"debug":                      "not converted",
	"native_ipv6":                "not converted: leasehold picks VRRPv3 for IPv6 itself",
	"garp_master_refresh_repeat": "not converted",
	"garp_lower_prio_delay":      "not converted",
	"garp_lower_prio_repeat":     "not converted",
	"lower_prio_no_advert":       "not converted",
	"higher_prio_send_advert":    "not converted",
	"unicast_ttl":                "not converted",
	"check_unicast_src":          "not converted",
	"skip_check_adv_addr":        "not converted",
	"kernel_rx_buf_size":         "not converted",
	"notify_priority_changes":    "not converted",
	"notify_deleted":             "not converted: leasehold runs notify_stop when it stops",
}

// instanceRefused are vrrp_instance keywords whose meaning leasehold cannot
// keep: converting without them would change failover.
var instanceRefused = map[string]string{
	"virtual_ipaddress_excluded": "not supported: leasehold would not add these addresses on takeover; list them under virtual_ipaddress " +
		"on every node (VRRPv2 adverts carry at most 20), or keep them with a notify_master script",
	"use_vmac":              "not supported: leasehold has no virtual MAC interfaces; peers and switches would see the MAC change on failover: remove it on all nodes first",
	"vmac_xmit_base":        "not supported: leasehold has no virtual MAC interfaces",
	"use_ipvlan":            "not supported: leasehold has no ipvlan interfaces",
	"track_file":            "not supported: leasehold has no file tracking; replace it with a vrrp_script that tests the file",
	"track_process":         "not supported: leasehold has no process tracking; replace it with a vrrp_script (e.g. /usr/bin/pgrep -x NAME)",
	"track_bfd":             "not supported: leasehold has no BFD",
	"dont_track_primary":    "not supported: leasehold always tracks the instance's interface; remove it (a down interface then faults the instance)",
	"auth_hmac":             "not supported with keepalived peers: leasehold's HMAC is its own; remove it on the keepalived nodes or migrate all nodes at once",
	"unicast_fault_no_peer": "not supported: leasehold does not fault an instance without unicast peers",
	"virtual_routes": "not supported: leasehold would not add these routes on takeover nor remove them on release; " +
		"add and delete them in notify_master and notify_backup/notify_fault scripts (ip route ...), then import",
	"virtual_rules": "not supported: leasehold would not add these rules on takeover nor remove them on release; " +
		"add and delete them in notify_master and notify_backup/notify_fault scripts (ip rule ...), then import",
	"notify_master_rx_lower_pri": "not supported: leasehold runs no script when a lower priority advert reaches the master " +
		"(keepalived runs it to reclaim cloud addresses): do that in notify_master",
}

// kaTrack is a track_script or track_interface entry of an instance.
type kaTrack struct {
	name   string
	weight *int // nil: the script's own (scripts) or none (interfaces)
	line   int
}

func (k *kaConv) instance(b *kaStmt) {
	name := b.Args[0]
	if other := k.instByName[name]; other != nil {
		k.errAt(b.Line, "vrrp_instance", "instance %s is also defined at line %d", name, k.line(other.line))
		return
	}
	in := &kaInstance{name: name, line: b.Line, kvs: map[string]*kaKV{}, strict: k.strict, strictAt: k.strictAt}
	set := func(kv *kaKV) {
		if old, dup := in.kvs[kv.Key]; dup {
			k.warnAt(kv.Line, kv.Key, "also given at line %d: the last one wins, as in keepalived", k.line(old.Line))
		}
		in.kvs[kv.Key] = kv
	}
	// list returns the instance's list for key: repeated blocks append,
	// as keepalived reads them.
	list := func(key string, line int) *kaKV {
		if kv := in.kvs[key]; kv != nil {
			return kv
		}
		kv := &kaKV{Key: key, IsList: true, Line: line}
		in.kvs[key] = kv
		return kv
	}
	for _, s := range b.Block {
		switch s.Key {
		case "state":
			// keepalived compares exactly: anything but MASTER is BACKUP,
			// and a BACKUP after a MASTER is ignored.
			if v, ok := k.one(s); ok {
				if v != "MASTER" && v != "BACKUP" {
					k.warnAt(s.Line, s.Key, "instance %s: state %q: keepalived knows only MASTER and BACKUP (in capitals) and takes BACKUP; written as BACKUP", name, v)
					v = "BACKUP"
				}
				if old := in.kvs["state"]; old != nil && old.Scalar == "MASTER" && v == "BACKUP" {
					k.warnAt(s.Line, s.Key, "instance %s: state BACKUP after MASTER (line %d): keepalived ignores it and stays MASTER", name, k.line(old.Line))
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
			in.strict, in.strictAt = v == "on" || v == "true" || v == "yes", s.Line
			k.warnAt(s.Line, s.Key, "not converted: leasehold has no strict mode; its effects on keepalived are carried over")
		case "authentication":
			if k.needBlock(s) {
				set(k.authentication(s))
			}
		case "virtual_ipaddress":
			kv := list(s.Key, s.Line)
			for _, e := range k.entries(s) {
				if v, ok := k.vip(e); ok {
					kv.List = append(kv.List, yq(v))
				}
			}
		case "unicast_src_ip", "mcast_src_ip":
			// keepalived: both set the instance's source address.
			if v, ok := k.one(s); ok {
				set(&kaKV{Key: "unicast_src_ip", Scalar: yq(hostPart(v)), Line: s.Line, Comment: commentIf(s.Key == "mcast_src_ip", "keepalived mcast_src_ip")})
			}
		case "mcast_dst_ip":
			if v, ok := k.one(s); ok {
				in.mcastDst, in.mcastDstAt = hostPart(v), s.Line
			}
		case "unicast_peer":
			kv := list(s.Key, s.Line)
			for _, e := range k.entries(s) {
				k.peer(in, kv, e)
			}
		case "garp_master_delay", "garp_master_refresh":
			if v, _, ok := k.seconds(s); ok {
				set(&kaKV{Key: s.Key, Scalar: v, Line: s.Line})
			}
		case "garp_master_repeat":
			if v, ok := k.intIn(s, 0, 100); ok {
				set(&kaKV{Key: s.Key, Scalar: v, Line: s.Line})
			}
		case "track_interface":
			for _, e := range k.entries(s) {
				k.trackInterface(in, e)
			}
		case "track_script":
			for _, e := range k.entries(s) {
				k.trackScript(in, e)
			}
		case "lvs_sync_daemon_interface":
			k.lvsSyncInterface(s, name)
		case "vrrp_v3_checksum_as_v2", "v3_checksum_as_v2":
			v := "true"
			if len(s.Args) > 0 {
				v = strings.ToLower(s.Args[0])
			}
			pseudo := "true"
			if v == "true" || v == "on" || v == "yes" {
				pseudo = "false"
			}
			set(&kaKV{Key: "v3_checksum_pseudo_header", Scalar: pseudo, Line: s.Line, Comment: "keepalived " + s.Key})
		default:
			if notifyKeys[s.Key] {
				if kv := k.notify(s); kv != nil {
					set(kv)
				}
				continue
			}
			if msg, ok := instanceRefused[s.Key]; ok {
				k.errAt(s.Line, s.Key, "instance %s: %s", name, msg)
				continue
			}
			if msg, ok := instanceUnsupported[s.Key]; ok {
				k.warnAt(s.Line, s.Key, "%s", msg)
				continue
			}
			k.warnAt(s.Line, s.Key, "unknown vrrp_instance keyword (a typo? keepalived ignores it too): not converted")
		}
	}
	k.instByName[name] = in
	k.instances = append(k.instances, in)
}

func commentIf(cond bool, c string) string {
	if cond {
		return c
	}
	return ""
}

// hostPart cuts a /prefix or -range off an address, as keepalived's
// inet_stosockaddr does for source and peer addresses.
func hostPart(a string) string {
	if i := strings.IndexAny(a, "/-"); i > 0 {
		return a[:i]
	}
	return a
}

func (k *kaConv) authentication(s *kaStmt) *kaKV {
	auth := &kaKV{Key: "authentication", Line: s.Line}
	unknown := false // an auth_type keepalived does not know
	for _, a := range s.Block {
		switch a.Key {
		case "auth_type":
			v, ok := k.one(a)
			if !ok {
				continue
			}
			switch v {
			case "AH":
				k.errAt(a.Line, a.Key, "AH is not supported by leasehold: switch the pair to PASS (or no authentication) before migrating")
			case "PASS":
				auth.Map = append(auth.Map, &kaKV{Key: "auth_type", Scalar: v, Line: a.Line})
			default:
				// keepalived compares exactly ("pass" is unknown) and
				// then sends no authentication at all.
				k.warnAt(a.Line, a.Key, "%q: keepalived knows only PASS and AH (in capitals) and sends no authentication: the block is dropped", v)
				unknown = true
			}
		case "auth_pass":
			// keepalived takes the first word (the line's comment cut).
			if len(a.Args) == 0 || a.HasBlock {
				k.errAt(a.Line, a.Key, "needs a password")
				continue
			}
			if len(a.Args) > 1 {
				k.warnAt(a.Line, a.Key, "%q: keepalived uses the first word only, %q", strings.Join(a.Args, " "), a.Args[0])
			}
			auth.Map = append(auth.Map, &kaKV{Key: "auth_pass", Scalar: yq(a.Args[0]), Line: a.Line})
		default:
			k.warnAt(a.Line, a.Key, "authentication %s: not converted", a.Key)
		}
	}
	if unknown {
		auth.Map = nil // effective drops it
	}
	return auth
}

// peer converts a unicast_peer entry: "ADDR[/LEN] [min_ttl N] [max_ttl N]".
func (k *kaConv) peer(in *kaInstance, kv *kaKV, e *kaStmt) {
	a := hostPart(e.Key)
	if in.peers == nil {
		in.peers = map[string]bool{}
	}
	if in.peers[a] {
		k.warnAt(e.Line, "unicast_peer", "instance %s: peer %s given twice: converted once (keepalived 2.3.3 and later ignore the second too; older ones send it every advert twice)", in.name, a)
		return
	}
	if len(e.Args) > 0 {
		k.warnAt(e.Line, "unicast_peer", "peer %s: options %q not converted", e.Key, strings.Join(e.Args, " "))
	}
	in.peers[a] = true
	kv.List = append(kv.List, yq(a))
}

// trackInterface records "IFACE [weight N [reverse]]".
func (k *kaConv) trackInterface(in *kaInstance, e *kaStmt) {
	t := kaTrack{name: e.Key, line: e.Line}
	if len(e.Args) > 0 {
		if e.Args[0] != "weight" {
			k.errAt(e.Line, "track_interface", "instance %s: %s: want IFACE or IFACE weight N, got %q", in.name, e.Key, e.Words())
			return
		}
		w, ok := k.weight(e, e.Args[1:], "instance "+in.name+": track_interface "+e.Key)
		if !ok {
			return
		}
		t.weight = &w
	}
	in.trackIfaces = append(in.trackIfaces, t)
}

// trackScript records "NAME [weight N [reverse|noreverse]]".
func (k *kaConv) trackScript(in *kaInstance, e *kaStmt) {
	if k.scriptByName[e.Key] == nil {
		k.warnAt(e.Line, "track_script", "%s: no vrrp_script of that name: dropped (keepalived ignores it too)", e.Key)
		return
	}
	if in.tracked == nil {
		in.tracked = map[string]bool{}
	}
	if in.tracked[e.Key] {
		k.warnAt(e.Line, "track_script", "instance %s: %s tracked twice: the second is ignored, as keepalived does", in.name, e.Key)
		return
	}
	in.tracked[e.Key] = true
	t := kaTrack{name: e.Key, line: e.Line}
	if len(e.Args) > 0 {
		if e.Args[0] != "weight" {
			k.warnAt(e.Line, "track_script", "instance %s: %s: option %q ignored, as keepalived does", in.name, e.Key, e.Args[0])
		} else {
			w, ok := k.weight(e, e.Args[1:], "instance "+in.name+": track_script "+e.Key)
			if !ok {
				return
			}
			t.weight = &w
		}
	}
	in.trackScripts = append(in.trackScripts, t)
}

// effective applies keepalived's own adjustments (vrrp_complete_instance,
// vrrp_sync_set_group) so the converted instance behaves as keepalived's
// did, not as its file read.
func (k *kaConv) effective(in *kaInstance) {
	kv := in.kvs
	strict, strictAt := in.strict, in.strictAt
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
		prio = &kaKV{Key: "priority", Scalar: "255", Line: state.Line,
			Comment: "keepalived: no priority with state MASTER means 255 (address owner)"}
		kv["priority"] = prio
		k.warnAt(state.Line, "priority", "instance %s: no priority with state MASTER: keepalived uses 255 (address owner); written explicitly", in.name)
	case state == nil && prio != nil && prio.Scalar == "255":
		state = &kaKV{Key: "state", Scalar: "MASTER", Line: prio.Line, Comment: "keepalived: priority 255 starts as MASTER"}
		kv["state"] = state
	case strict && state != nil && (state.Scalar == "MASTER") != (prio != nil && prio.Scalar == "255"):
		want := "BACKUP"
		if prio != nil && prio.Scalar == "255" {
			want = "MASTER"
		}
		k.warnAt(state.Line, "state", "instance %s: state %s: keepalived in strict mode (line %d) starts as %s: only the address owner (priority 255) starts as MASTER; written as %s",
			in.name, state.Scalar, k.line(strictAt), want, want)
		state = &kaKV{Key: "state", Scalar: want, Line: state.Line, Comment: "keepalived strict mode: state follows priority 255"}
		kv["state"] = state
	}
	owner := prio != nil && prio.Scalar == "255"
	switch np := kv["nopreempt"]; {
	case np == nil || np.Scalar != "true":
	case owner:
		delete(kv, "nopreempt")
		k.warnAt(np.Line, "nopreempt", "instance %s: dropped: keepalived resets nopreempt with priority 255", in.name)
	case state != nil && state.Scalar == "MASTER":
		delete(kv, "nopreempt")
		k.warnAt(np.Line, "nopreempt", "instance %s: dropped: keepalived clears nopreempt with state MASTER (\"nopreempt will not work with initial state MASTER\"): this node preempts", in.name)
	}
	version := "2"
	if v := kv["version"]; v != nil {
		version = v.Scalar
	}
	six := false
	if vips := kv["virtual_ipaddress"]; vips != nil {
		for _, v := range vips.List {
			if uq, err := strconv.Unquote(v); err == nil {
				v = uq
			}
			a, _, _ := strings.Cut(v, " ")
			a, _, _ = strings.Cut(a, "/")
			if ip, err := netip.ParseAddr(a); err == nil && ip.Is6() {
				six = true
			}
		}
	}
	if six && kv["version"] == nil {
		version = "3"
	}
	if a := kv["authentication"]; a != nil {
		switch {
		case strict:
			delete(kv, "authentication")
			k.warnAt(a.Line, "authentication", "instance %s: dropped: keepalived ignores authentication in strict mode (vrrp_strict at line %d), so its adverts carry none", in.name, k.line(strictAt))
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
	// keepalived: accept unless strict, always for the address owner; in
	// strict mode with VRRPv2 a non-owner's accept is reset.
	switch acc := kv["accept"]; {
	case acc == nil && (owner || !strict):
		why := "keepalived's default without vrrp_strict"
		if owner {
			why = "keepalived's default for the address owner"
		}
		kv["accept"] = &kaKV{Key: "accept", Scalar: "true", Line: in.line, Comment: why}
	case acc != nil && acc.Scalar == "true" && strict && !owner && version == "2":
		delete(kv, "accept")
		k.warnAt(acc.Line, "accept", "instance %s: dropped: keepalived resets accept for VRRPv2 in strict mode", in.name)
	}
	if vips := kv["virtual_ipaddress"]; vips == nil || len(vips.List) == 0 {
		k.errAt(in.line, "virtual_ipaddress", "instance %s: no virtual_ipaddress: keepalived runs it (then its notify scripts do the "+
			"failover, e.g. of a cloud address), leasehold needs the address it moves: list it, or keep this instance on keepalived", in.name)
	}
	peers := kv["unicast_peer"]
	if strict && peers != nil && len(peers.List) > 0 {
		// keepalived's check (vrrp_complete_instance) depends on the
		// interface's state at start: 2.2.7 runs such an instance as unicast.
		k.warnAt(peers.Line, "unicast_peer", "instance %s: unicast peers in strict mode (vrrp_strict at line %d): keepalived refuses them "+
			"when it sees the interface's multicast flag at start, and runs them (2.2.7 does) otherwise; converted as unicast", in.name, k.line(strictAt))
	}
	if peers == nil || len(peers.List) == 0 {
		k.multicastGroup(in, six)
	}
	k.tracks(in, owner)
}

// multicastGroup refuses a multicast group other than VRRP's own:
// leasehold sends and listens on 224.0.0.18 and ff02::12 only, so a
// keepalived peer on another group and a leasehold node would not hear
// each other and both be master.
func (k *kaConv) multicastGroup(in *kaInstance, six bool) {
	group, at, what := k.mcast4, k.mcast4At, "global_defs vrrp_mcast_group4"
	def := "224.0.0.18"
	if six {
		group, at, what, def = k.mcast6, k.mcast6At, "global_defs vrrp_mcast_group6", "ff02::12"
	}
	if in.mcastDst != "" {
		group, at, what = in.mcastDst, in.mcastDstAt, "mcast_dst_ip"
	}
	if group == "" {
		return
	}
	if a, err := netip.ParseAddr(group); err == nil && a == netip.MustParseAddr(def) {
		return
	}
	k.errAt(at, "mcast_dst_ip", "instance %s: %s %s: leasehold sends and listens on %s only: it and a keepalived node "+
		"would not hear each other and both be master; move the keepalived nodes to %s (or to unicast_peer) first", in.name, what, group, def, def)
}

// tracks writes the instance's track_script and track_interface as
// keepalived applies them: an address owner or a member of a sync group
// (without sync_group_tracking_weight) ignores weighted scripts and takes
// weighted interfaces as unweighted (an owner drops them); a per-instance
// script weight becomes a copy of the vrrp_script with that weight.
func (k *kaConv) tracks(in *kaInstance, owner bool) {
	noWeights := owner || in.group != nil && !in.group.trackingWeight
	why := "the address owner (priority 255)"
	if !owner && in.group != nil {
		why = "a member of sync group " + in.group.name + " (without sync_group_tracking_weight)"
	}
	if len(in.trackIfaces) > 0 {
		kv := &kaKV{Key: "track_interface", IsList: true, Line: in.trackIfaces[0].line}
		for _, t := range in.trackIfaces {
			switch {
			case t.weight == nil || *t.weight == 0:
				kv.List = append(kv.List, yq(t.name))
			case noWeights && owner:
				k.warnAt(t.line, "track_interface", "instance %s: %s weight %d: dropped: keepalived does not track weighted interfaces of %s", in.name, t.name, *t.weight, why)
			case noWeights:
				k.warnAt(t.line, "track_interface", "instance %s: %s weight %d: keepalived ignores the weight of %s: a down %s faults the instance; written without the weight", in.name, t.name, *t.weight, why, t.name)
				kv.List = append(kv.List, yq(t.name))
			default:
				kv.List = append(kv.List, yq(fmt.Sprintf("%s weight %d", t.name, *t.weight)))
			}
		}
		if len(kv.List) > 0 {
			in.kvs["track_interface"] = kv
		}
	}
	if len(in.trackScripts) > 0 {
		kv := &kaKV{Key: "track_script", IsList: true, Line: in.trackScripts[0].line}
		for _, t := range in.trackScripts {
			sc := k.scriptByName[t.name]
			w := sc.weight
			if t.weight != nil {
				w = *t.weight
			}
			if w != 0 && noWeights {
				k.warnAt(t.line, "track_script", "instance %s: %s (weight %d): dropped: keepalived ignores weighted scripts of %s", in.name, t.name, w, why)
				continue
			}
			name := t.name
			if w != sc.weight {
				name = k.weighted(sc, w)
				k.warnAt(t.line, "track_script", "instance %s: %s weight %d: converted as vrrp_script %s, a copy of %s with that weight "+
					"(leasehold has no per-instance weights; the check runs once per copy)", in.name, t.name, w, name, t.name)
			}
			kv.List = append(kv.List, yq(name))
		}
		if len(kv.List) > 0 {
			in.kvs["track_script"] = kv
		}
	}
}

// weighted returns the name of a copy of sc with weight w, made once.
func (k *kaConv) weighted(sc *kaNamed, w int) string {
	base := fmt.Sprintf("%s_w%d", sc.name, w)
	name := base
	for i := 2; ; i++ {
		other := k.scriptByName[name]
		if other == nil {
			break
		}
		if other.copyOf == sc && other.weight == w {
			return name
		}
		name = fmt.Sprintf("%s_%d", base, i)
	}
	cp := &kaNamed{name: name, line: sc.line, weight: w, copyOf: sc}
	for _, kv := range sc.kvs {
		if kv.Key == "weight" {
			continue
		}
		cp.kvs = append(cp.kvs, kv)
	}
	cp.kvs = append(cp.kvs, &kaKV{Key: "weight", Scalar: strconv.Itoa(w), Line: sc.line, Comment: "a track_script's weight"})
	k.scriptByName[name] = cp
	k.scripts = append(k.scripts, cp)
	return name
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
