// Command mysqlbench is `make bench-mysql`: a MariaDB dual-master pair
// behind the VIP of the netns lab (lab/labctl, --mysql), driven by
// leasehold (raft, etcd) and by keepalived 2.2.7 configured as seed 002
// (both servers writable, nopreempt, a check that stops keepalived when
// mysqld stops answering), through the same faults with the same write
// checker (lab/drill's WriteCheck: a client writing through the VIP every
// 10 ms), with asynchronous and with semi-synchronous replication, N runs
// per cell. It prints a table and records it in docs/benchmarks.md.
// Needs root.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/leasehold/leasehold/lab/drill"
	"github.com/leasehold/leasehold/lab/labctl"
	"github.com/leasehold/leasehold/lab/mariadb"
	"github.com/leasehold/leasehold/lab/mysqlcheck"
	"github.com/leasehold/leasehold/lab/netlab"
	"github.com/leasehold/leasehold/storage/mysql"
	"github.com/leasehold/leasehold/test/benchdoc"
	"github.com/leasehold/leasehold/test/keepalivedtest"
)

// stack is one contender.
type stack struct {
	name, short, quorum string
	keepalived          bool
}

var stacks = []stack{
	{"leasehold raft (TTL 1 s)", "lh-raft", "raft", false},
	{"leasehold etcd (TTL 1 s)", "lh-etcd", "etcd", false},
	{"keepalived 2.2.7 (seed 002)", "ka", "raft", true},
}

// cell is one fault under one replication mode.
type cell struct {
	scenario string
	semiSync bool
}

// cells: every fault with asynchronous replication; those whose old
// master may hold writes the new one lacks also with semi-sync.
var cells = []cell{
	{"graceful", false}, {"kill9", false}, {"mysqld-crash", false}, {"vrrp-partition", false},
	{"graceful", true}, {"kill9", true}, {"mysqld-crash", true},
}

// ttl is the lab's lease TTL (labctl's default).
const ttl = time.Second

// sample is one run's figures.
type sample struct {
	outage                 time.Duration
	split, lost, atTakeOvr int
	snapshot               bool
	diverged, replErrs     int
	pass                   bool
	reasons                []string
}

func main() {
	bin := flag.String("bin", "bin/leasehold", "leasehold binary")
	runs := flag.Int("runs", 5, "runs per cell")
	record := flag.String("record", "", "markdown file to record the table in (docs/benchmarks.md)")
	only := flag.String("only", "", "comma-separated stacks (lh-raft,lh-etcd,ka) to run; default all")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "mysqlbench: needs root (network namespaces)")
		os.Exit(1)
	}
	abs, err := filepath.Abs(*bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mysqlbench:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	mysql.QuietDriverLog()
	// Outages to 50 ms (a connect to a VIP nobody answers waits it out).
	drill.WriteTimeout = 50 * time.Millisecond
	start := time.Now()
	loadBefore := loadavg()
	res := map[string]map[cell][]sample{}
	for _, st := range stacks {
		if *only != "" && !slices.Contains(strings.Split(*only, ","), st.short) {
			continue
		}
		res[st.name] = map[cell][]sample{}
		for _, semi := range []bool{false, true} {
			if err := runStack(ctx, abs, st, semi, *runs, res[st.name]); err != nil {
				fmt.Fprintf(os.Stderr, "mysqlbench: %s (semi-sync %v): %v\n", st.name, semi, err)
			}
			if ctx.Err() != nil {
				os.Exit(1)
			}
		}
	}
	body := table(res, *runs) + fmt.Sprintf("\nThe whole run took %v; load average (1, 5, 15 min) %s at the start, %s at the end "+
		"(other work on the machine slows the lab's processes and widens outages).\n", time.Since(start).Round(time.Second), loadBefore, loadavg())
	fmt.Println(body)
	if *record != "" {
		if err := benchdoc.Record(*record, "mysql", "MySQL/MariaDB dual master against keepalived (make bench-mysql)", body); err != nil {
			fmt.Fprintln(os.Stderr, "mysqlbench:", err)
			os.Exit(1)
		}
	}
}

// loadavg is /proc/loadavg's first three fields.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

func say(format string, args ...any) {
	fmt.Printf("%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// runStack brings a lab up for st, runs every cell of the replication
// mode runs times and takes the lab down.
func runStack(ctx context.Context, bin string, st stack, semi bool, runs int, out map[cell][]sample) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	name := fmt.Sprintf("mb%d%s", os.Getpid()%10000, strings.ReplaceAll(st.short, "-", ""))
	if semi {
		name += "s"
	}
	o := labctl.Options{Nodes: 2, Quorum: st.quorum, Binary: bin, Name: name, MySQL: true, SemiSync: semi, TTL: ttl}
	l, err := labctl.Up(ctx, o, log)
	if err != nil && ctx.Err() == nil {
		// Once more under another name (a loaded machine can miss a start
		// deadline); the failure is reported either way.
		say("%s: lab up failed, once more: %v", st.short, err)
		o.Name += "r"
		l, err = labctl.Up(ctx, o, log)
	}
	if err != nil {
		return fmt.Errorf("lab up: %w", err)
	}
	defer l.Down(context.Background())
	var ka *kaPair
	if st.keepalived {
		if ka, err = upKeepalived(ctx, l); err != nil {
			return fmt.Errorf("keepalived: %w", err)
		}
		defer ka.stop()
	}
	for _, c := range cells {
		if c.semiSync != semi {
			continue
		}
		for i := 1; i <= runs && ctx.Err() == nil; i++ {
			var s sample
			var err error
			if ka != nil {
				s, err = ka.run(ctx, c.scenario)
			} else {
				s, err = runLeasehold(ctx, l, c.scenario)
			}
			if err != nil {
				say("%s %s semi-sync %v run %d: ERROR %v", st.short, c.scenario, semi, i, err)
				continue
			}
			out[c] = append(out[c], s)
			say("%s %-14s semi-sync %-5v run %d: write outage %v, split-brain %d, lost %d, missing at takeover %s %s",
				st.short, c.scenario, semi, i, s.outage.Round(time.Millisecond), s.split, s.lost, takeover(s), strings.Join(s.reasons, "; "))
		}
	}
	return nil
}

func takeover(s sample) string {
	if !s.snapshot {
		return "-"
	}
	return strconv.Itoa(s.atTakeOvr)
}

// runLeasehold is one drill on a leasehold lab: its verdict and its write
// audit (split-brain writes by the epochs the servers recorded).
func runLeasehold(ctx context.Context, l *labctl.Lab, scenario string) (sample, error) {
	r, err := drill.Run(ctx, l, drill.Scenario{Name: scenario})
	if err != nil {
		return sample{}, err
	}
	m := r.MySQL
	if m == nil {
		return sample{}, fmt.Errorf("no write audit")
	}
	if m.Error != "" {
		return sample{}, fmt.Errorf("write audit: %s", m.Error)
	}
	return sample{outage: time.Duration(m.MaxOutageUS) * time.Microsecond, split: len(m.SplitBrain), lost: len(m.Lost),
		atTakeOvr: len(m.LostAtTakeover), snapshot: m.Snapshot, diverged: len(m.Diverged), replErrs: len(m.ReplicationErrors),
		pass: r.Pass, reasons: r.Reasons}, nil
}

// kaPair is keepalived on both nodes of a lab, as seed 002 runs it.
type kaPair struct {
	l     *labctl.Lab
	nodes []string
	ka    map[string]*keepalivedtest.Keepalived
	// lastErr is served's last error (for the reports).
	lastErr error
}

// upKeepalived stops the lab's leasehold daemons, makes both servers
// writable (seed 002 manages no read_only) and starts keepalived on both
// nodes: the first one's first, until it serves the VIP.
func upKeepalived(ctx context.Context, l *labctl.Lab) (*kaPair, error) {
	p := &kaPair{l: l, nodes: l.Nodes(), ka: map[string]*keepalivedtest.Keepalived{}}
	for _, n := range p.nodes {
		if err := l.Signal(n, syscall.SIGTERM); err != nil {
			return nil, err
		}
		if err := l.WaitExit(ctx, n, 15*time.Second); err != nil {
			return nil, err
		}
	}
	for _, n := range p.nodes {
		// A stopped leasehold leaves its nftables fence (the VIP stays
		// fenced on a node that does not own it): gone with leasehold.
		if err := unfence(ctx, p.l.Netlab().Host(n)); err != nil {
			return nil, err
		}
		if err := p.writable(ctx, n); err != nil {
			return nil, err
		}
	}
	for _, n := range p.nodes {
		if err := p.start(ctx, n); err != nil {
			return nil, err
		}
		if n == p.nodes[0] && !waitFor(ctx, 20*time.Second, func() bool { return p.served(ctx) == n }) {
			return nil, fmt.Errorf("keepalived on %s does not serve the VIP within 20 s (%v); its log:\n%s", n, p.lastErr, tail(p.ka[n].Log(), 3000))
		}
	}
	time.Sleep(4 * time.Second)
	return p, nil
}

// unfence deletes leasehold's nftables tables in h's namespace.
func unfence(ctx context.Context, h *netlab.Host) error {
	out, err := h.Command(ctx, "nft", "list", "tables").CombinedOutput()
	if err != nil {
		return fmt.Errorf("nft list tables in %s: %w: %s", h.Name, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "table" && f[2] == "leasehold" {
			if out, err := h.Command(ctx, "nft", "delete", "table", f[1], "leasehold").CombinedOutput(); err != nil {
				return fmt.Errorf("nft delete table %s leasehold in %s: %w: %s", f[1], h.Name, err, out)
			}
		}
	}
	return nil
}

// writable sets node's server read_only OFF.
func (p *kaPair) writable(ctx context.Context, node string) error {
	db, err := p.l.MySQLRoot(node)
	if err != nil {
		return err
	}
	defer db.Close()
	return mariadb.Exec(ctx, db, "SET GLOBAL read_only = OFF")
}

// config is node's keepalived.conf and its check script: seed 002's
// instance (both BACKUP, priority 100 with nopreempt on the first node,
// 90 on the second, advert_int 1, PASS authentication) and its check of
// the local mysqld (TCP_CHECK, 3 retries, notify_down stopping
// keepalived), as a vrrp_script: a TCP connect to the server, 3 tries a
// second apart, and on failure SIGTERM to keepalived (what `pkill
// keepalived` does). The seed's retry delay is 3 s; 1 s here favours
// keepalived.
func (p *kaPair) config(node, dir string) (conf, script string) {
	h := p.l.Netlab().Host(node)
	script = fmt.Sprintf(`#!/bin/bash
# seed 002: TCP_CHECK of the local mysqld; notify_down stops keepalived
for i in 1 2 3; do
	if timeout 1 bash -c '</dev/tcp/%s/%d' 2>/dev/null; then exit 0; fi
	sleep 1
done
kill -TERM "$(cat %s)"
exit 1
`, h.IPv4, labctl.MySQLPort, filepath.Join(dir, "keepalived.pid"))
	prio, preempt := 90, ""
	if node == p.nodes[0] {
		prio, preempt = 100, "\tnopreempt\n"
	}
	conf = fmt.Sprintf(`global_defs {
	router_id MYSQL_HA
	script_user root
	enable_script_security
}
vrrp_script chk_mysql {
	script "%s"
	interval 2
	timeout 5
}
vrrp_instance VI_1 {
	state BACKUP
	interface %s
	virtual_router_id 51
	priority %d
	advert_int 1
%s	authentication {
		auth_type PASS
		auth_pass 1111
	}
	virtual_ipaddress {
		%s/24 dev %s
	}
	track_script {
		chk_mysql
	}
}
`, filepath.Join(dir, "check_mysql.sh"), h.Iface, prio, preempt, p.l.VIP(), h.Iface)
	return conf, script
}

// start (re)starts keepalived on node.
func (p *kaPair) start(ctx context.Context, node string) error {
	dir := filepath.Join(p.l.Dir(), "keepalived-"+node)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	conf, script := p.config(node, dir)
	if err := os.WriteFile(filepath.Join(dir, "check_mysql.sh"), []byte(script), 0o755); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	k, err := keepalivedtest.Run(sctx, p.l.Netlab().Host(node), keepalivedtest.Config{Raw: conf}, keepalivedtest.Options{Dir: dir, KeepDir: true})
	if err != nil {
		return err
	}
	p.ka[node] = k
	return nil
}

func (p *kaPair) stop() {
	for _, k := range p.ka {
		k.Kill9()
	}
}

// served is the node whose server answers through the VIP ("" none),
// asked from the client's namespace.
func (p *kaPair) served(ctx context.Context) string {
	var id uint32
	p.lastErr = p.l.Netlab().Host(netlab.ClientName).Do(func() error {
		c := gomysql.NewConfig()
		c.Net, c.Addr, c.User, c.Passwd = "tcp", net.JoinHostPort(p.l.VIP().String(), strconv.Itoa(labctl.MySQLPort)), labctl.AppUser, labctl.AppPassword
		c.Timeout, c.ReadTimeout = 300*time.Millisecond, 300*time.Millisecond
		conn, err := gomysql.NewConnector(c)
		if err != nil {
			return err
		}
		db := sql.OpenDB(conn)
		defer db.Close()
		return db.QueryRowContext(ctx, "SELECT @@server_id").Scan(&id)
	})
	if id == 0 || int(id) > len(p.nodes) {
		return ""
	}
	return p.nodes[id-1]
}

// run is one fault on the keepalived pair, injected into the node whose
// server serves the VIP, with the write checker: split-brain writes are
// the old master's acknowledgements of writes sent after the new master
// acknowledged its first, until the fault was repaired (keepalived
// records no epochs).
func (p *kaPair) run(ctx context.Context, scenario string) (sample, error) {
	victim := p.served(ctx)
	if victim == "" {
		return sample{}, fmt.Errorf("no server answers through the VIP before the fault")
	}
	other := p.nodes[0]
	if other == victim {
		other = p.nodes[1]
	}
	w := drill.StartWrites(ctx, p.l)
	time.Sleep(time.Second)
	fault := time.Now()
	var s sample
	switch scenario {
	case "graceful":
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := p.ka[victim].Stop(sctx)
		cancel()
		if err != nil {
			return s, err
		}
	case "kill9":
		if err := p.ka[victim].Kill9(); err != nil {
			return s, err
		}
	case "mysqld-crash":
		if err := p.l.KillMySQL(victim); err != nil {
			return s, err
		}
	case "vrrp-partition":
		if err := p.l.Netlab().Host(victim).DropVRRP(ctx, true); err != nil {
			return s, err
		}
	}
	tookOver := waitFor(ctx, 30*time.Second, func() bool { return w.ServedBy(other, fault) })
	if !tookOver {
		s.reasons = append(s.reasons, fmt.Sprintf("%s's server acknowledged no write within 30 s of the fault on %s", other, victim))
	}
	switch scenario {
	case "mysqld-crash":
		if tookOver {
			w.Snapshot(ctx, other)
		}
		time.Sleep(time.Second)
	case "vrrp-partition":
		time.Sleep(time.Until(fault.Add(drill.DefaultDuration(scenario))))
	default:
		time.Sleep(2 * time.Second)
	}
	repaired := time.Now()
	switch scenario {
	case "graceful", "kill9":
		if err := p.start(ctx, victim); err != nil {
			return s, err
		}
	case "mysqld-crash":
		if err := p.l.StartMySQL(ctx, victim); err != nil {
			return s, err
		}
		if err := p.writable(ctx, victim); err != nil {
			return s, err
		}
		<-p.ka[victim].Done() // stopped by its check script
		if err := p.start(ctx, victim); err != nil {
			return s, err
		}
	case "vrrp-partition":
		if err := p.l.Netlab().Host(victim).DropVRRP(context.WithoutCancel(ctx), false); err != nil {
			return s, err
		}
	}
	time.Sleep(4 * time.Second) // 3 adverts and the skew: settled
	steady := time.Now()
	time.Sleep(time.Second)
	final := p.served(ctx)
	m := w.Finish(ctx, p.nodes, final, steady)
	if m.Error != "" {
		return s, fmt.Errorf("write audit: %s", m.Error)
	}
	s.outage, s.lost, s.atTakeOvr, s.snapshot = time.Duration(m.MaxOutageUS)*time.Microsecond, len(m.Lost), len(m.LostAtTakeover), m.Snapshot
	s.diverged, s.replErrs = len(m.Diverged), len(m.ReplicationErrors)
	s.split = splitAfterTakeover(w.Writes(), w.Node, victim, other, fault, repaired)
	s.pass = true
	return s, nil
}

// splitAfterTakeover counts the writes victim's server acknowledged that
// were sent after other's server acknowledged its first write after the
// fault, and before the fault was repaired; node names a server id.
func splitAfterTakeover(ws []mysqlcheck.Write, node func(uint32) string, victim, other string, fault, repaired time.Time) int {
	var first time.Time
	for _, x := range ws {
		if x.Acked && x.Sent.After(fault) && node(x.ServerID) == other && (first.IsZero() || x.Done.Before(first)) {
			first = x.Done
		}
	}
	if first.IsZero() {
		return 0
	}
	n := 0
	for _, x := range ws {
		if x.Acked && node(x.ServerID) == victim && x.Sent.After(first) && x.Sent.Before(repaired) {
			n++
		}
	}
	return n
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func waitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) || ctx.Err() != nil {
			return false
		}
	}
	return true
}

func stats(ss []sample) (median, maxv time.Duration) {
	if len(ss) == 0 {
		return 0, 0
	}
	ds := make([]time.Duration, len(ss))
	for i, s := range ss {
		ds[i] = s.outage
	}
	slices.Sort(ds)
	return ds[len(ds)/2], ds[len(ds)-1]
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + " ms" }

// table renders the results and checks the targets.
func table(res map[string]map[cell][]sample, runs int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "A MariaDB 10.11 dual-master pair (GTID, auto_increment 2/1 and 2/2, log_slave_updates) in the netns lab; a client writes one row through the VIP every 10 ms, "+
		"each write bounded by %v. %d runs per cell. leasehold: lease TTL %v, VRRPv3 0.1 s, the native mysql resource (read_only follows the lease, peer fence, catch-up). "+
		"keepalived 2.2.7 as seed 002: both servers writable, advert_int 1, nopreempt, a check stopping keepalived when mysqld stops answering (3 tries 1 s apart, every 2 s). "+
		"Semi-sync: rpl_semi_sync_master/slave enabled both ways, wait point AFTER_SYNC, timeout %v.\n\n", drill.WriteTimeout, runs, ttl, mariadb.SemiSyncTimeout)
	b.WriteString("| fault | replication | system | runs | write outage median | max | split-brain writes | lost acknowledged | missing on the new master at takeover | diverged / replication errors | verdicts |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	var missed []string
	for _, c := range cells {
		mode := "async"
		if c.semiSync {
			mode = "semi-sync"
		}
		for _, st := range stacks {
			ss, ok := res[st.name][c]
			if !ok {
				continue
			}
			med, mx := stats(ss)
			split, lost, at, div, snaps, pass := 0, 0, 0, 0, 0, 0
			for _, s := range ss {
				split, lost, at, div = split+s.split, lost+s.lost, at+s.atTakeOvr, div+s.diverged+s.replErrs
				if s.snapshot {
					snaps++
				}
				if s.pass {
					pass++
				}
			}
			atS := "-"
			if snaps > 0 {
				atS = strconv.Itoa(at)
			}
			verdict := fmt.Sprintf("%d/%d PASS", pass, len(ss))
			if st.keepalived {
				verdict = "(no verdict)"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %d | %s | %s | %d | %d | %s | %d | %s |\n", c.scenario, mode, st.name, len(ss), ms(med), ms(mx), split, lost, atS, div, verdict)
			if st.keepalived || len(ss) == 0 {
				continue
			}
			if split > 0 {
				missed = append(missed, fmt.Sprintf("%s %s %s: %d split-brain writes (target 0)", st.name, c.scenario, mode, split))
			}
			switch c.scenario {
			case "graceful":
				if mx > 100*time.Millisecond || lost > 0 {
					missed = append(missed, fmt.Sprintf("%s graceful %s: write outage max %s, %d lost (target ≤ 100 ms, 0 lost)", st.name, mode, ms(mx), lost))
				}
			case "kill9":
				if mx > ttl+500*time.Millisecond {
					missed = append(missed, fmt.Sprintf("%s kill -9 %s: write outage max %s (target ≤ TTL + 0.5 s = %s)", st.name, mode, ms(mx), ms(ttl+500*time.Millisecond)))
				}
			}
			if c.semiSync && (lost > 0 || at > 0) {
				missed = append(missed, fmt.Sprintf("%s %s semi-sync: %d lost, %d missing at takeover (target 0)", st.name, c.scenario, lost, at))
			}
		}
	}
	b.WriteString("\nReading the table: the write outage runs from the first failed write to the next acknowledged one (sent times; at most one write per 10 ms, a failed connect counts its timeout). " +
		"Split-brain writes: leasehold — writes acknowledged by a server after the other had accepted one under a newer epoch (the epoch table the resource keeps); " +
		"keepalived, which records no epochs — writes the old master acknowledged that were sent after the new master had acknowledged its first, until the fault was repaired. " +
		"Lost acknowledged: missing on the final master after replication settled (the old master came back in every run). " +
		"Missing at takeover (mysqld-crash only): acknowledged writes the new master did not hold while the old one was down — what asynchronous replication loses when the old master never comes back. " +
		"A cell's diverged / replication errors counts rows on one server only and replication errors after heal.\n")
	if len(missed) == 0 {
		b.WriteString("\nTargets (leasehold): split-brain writes 0; graceful switchover write outage ≤ 100 ms with 0 lost; kill -9 write outage ≤ TTL + 0.5 s; semi-sync 0 lost — all met.\n")
	} else {
		b.WriteString("\nTargets missed (leasehold):\n")
		for _, m := range missed {
			b.WriteString("- " + m + "\n")
		}
	}
	return b.String()
}
