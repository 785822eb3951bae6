package drill

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/leasehold/leasehold/lab/labctl"
	"github.com/leasehold/leasehold/lab/mariadb"
	"github.com/leasehold/leasehold/lab/mysqlcheck"
	"github.com/leasehold/leasehold/lab/netlab"
)

// WriteTimeout bounds each write (and connect) of the write checker:
// outages are measured to that granularity (a connect to a VIP nobody
// answers waits it out). Benchmarks lower it.
var WriteTimeout = 250 * time.Millisecond

// MySQLWrites is what a drill cost in writes on a lab whose nodes run
// MySQL (`lab up --mysql`): the write checker's audit (package
// lab/mysqlcheck) of a client writing through the VIP every 10 ms from the
// client's namespace during the whole drill, each write (and connect)
// bounded by WriteTimeout (250 ms).
type MySQLWrites struct {
	// SemiSync: the pair replicated semi-synchronously.
	SemiSync  bool `json:"semi_sync,omitempty"`
	Attempted int  `json:"attempted"`
	Acked     int  `json:"acknowledged"`
	// Lost: acknowledged writes missing on the final owner's server
	// after replication settled (a graceful switchover must lose none).
	Lost []uint64 `json:"lost,omitempty"`
	// LostAtTakeover: in drills whose old master is gone during the
	// fault (mysqld crash, isolation), the acknowledged writes the new
	// master did not hold while it served alone: what would be lost had
	// the old master never come back (asynchronous replication can lose
	// these; semi-synchronous must not). Snapshot says whether it was
	// measured.
	LostAtTakeover []uint64 `json:"lost_at_takeover,omitempty"`
	Snapshot       bool     `json:"snapshot,omitempty"`
	// SplitBrain: writes acknowledged by a server after the other had
	// accepted one under a newer epoch. Must be 0.
	SplitBrain []uint64 `json:"split_brain,omitempty"`
	// Diverged: rows one server holds and the other not after replication
	// settled. Must be 0.
	Diverged          []uint64 `json:"diverged,omitempty"`
	ReplicationErrors []string `json:"replication_errors,omitempty"`
	Outages           int      `json:"outages"`
	MaxOutageUS       int64    `json:"max_outage_us"`
	// Unrecovered: no write was acknowledged after the lab was steady
	// again.
	Unrecovered bool `json:"unrecovered,omitempty"`
	// Error: the audit could not be made (a server unreadable).
	Error string `json:"error,omitempty"`
	// AuditRetries: audits repeated (a second apart) because one failed or
	// found rows on one server only; the last one counts.
	AuditRetries int `json:"audit_retries,omitempty"`
}

// Summary is the audit in one line.
func (m *MySQLWrites) Summary() string {
	atTakeover := ""
	if m.Snapshot {
		atTakeover = fmt.Sprintf(" (missing on the new master at takeover %d)", len(m.LostAtTakeover))
	}
	mode := ""
	if m.SemiSync {
		mode = ", semi-sync"
	}
	return fmt.Sprintf("writes %d, acknowledged %d, lost %d%s, split-brain %d, diverged %d, replication errors %d, write outage max %s%s",
		m.Attempted, m.Acked, len(m.Lost), atTakeover, len(m.SplitBrain), len(m.Diverged), len(m.ReplicationErrors), us(m.MaxOutageUS), mode)
}

// mysqlTarget is a target whose nodes run MySQL (a labctl.Lab up with
// --mysql).
type mysqlTarget interface {
	MySQLAddr(node string) string
	MySQLAuditor(node string) (*sql.DB, error)
	Netlab() *netlab.Lab
}

// MySQLCrasher is a target that can crash a node's mysqld (kill -9) and
// start it again (read-only, replicating): the mysqld-crash drill.
type MySQLCrasher interface {
	KillMySQL(node string) error
	StartMySQL(ctx context.Context, node string) error
}

// semiSyncer is a target that says whether its pair replicates
// semi-synchronously.
type semiSyncer interface{ SemiSync() bool }

func runsMySQL(t Target) bool {
	mt, ok := t.(mysqlTarget)
	return ok && len(t.Nodes()) > 0 && mt.MySQLAddr(t.Nodes()[0]) != ""
}

// WriteCheck is the write checker of one drill: a client writing through
// the VIP from the client's namespace (StartWrites), a snapshot of the
// surviving server while the fault lasts (Snapshot), and the audit after
// the drill (Finish).
type WriteCheck struct {
	c        *mysqlcheck.Client
	stop     context.CancelFunc
	done     chan error
	first    uint64
	target   mysqlTarget
	nodes    []string
	semiSync bool

	snapAt   time.Time
	snapRows map[uint64]bool
	snapErr  error
}

// StartWrites starts the write checker in the client's namespace of t, or
// returns nil when t runs no MySQL.
func StartWrites(ctx context.Context, t Target) *WriteCheck {
	if !runsMySQL(t) {
		return nil
	}
	mt := t.(mysqlTarget)
	// Sequence numbers apart from earlier drills on the same lab.
	first := uint64(time.Now().UnixMicro())
	w := &WriteCheck{first: first, target: mt, nodes: t.Nodes(), done: make(chan error, 1),
		c: &mysqlcheck.Client{Addr: net.JoinHostPort(t.VIP().String(), strconv.Itoa(labctl.MySQLPort)), User: labctl.AppUser,
			Password: labctl.AppPassword, Interval: 10 * time.Millisecond, Timeout: WriteTimeout, First: first}}
	if ss, ok := t.(semiSyncer); ok {
		w.semiSync = ss.SemiSync()
	}
	cctx, cancel := context.WithCancel(ctx)
	w.stop = cancel
	go func() {
		w.done <- mt.Netlab().Host(netlab.ClientName).Do(func() error { return w.c.Run(cctx) })
	}()
	return w
}

// ServedBy reports whether node's server acknowledged a write sent after
// since.
func (w *WriteCheck) ServedBy(node string, since time.Time) bool {
	id := w.serverID(node)
	return slices.ContainsFunc(w.c.Writes(), func(x mysqlcheck.Write) bool { return x.Acked && x.ServerID == id && x.Sent.After(since) })
}

// Writes is the client's log so far.
func (w *WriteCheck) Writes() []mysqlcheck.Write { return w.c.Writes() }

// Node is the node whose server has id ("" unknown).
func (w *WriteCheck) Node(id uint32) string {
	if id == 0 || int(id) > len(w.nodes) {
		return ""
	}
	return w.nodes[id-1]
}

// serverID is node's server id (the lab numbers them 1.. in node order).
func (w *WriteCheck) serverID(node string) uint32 {
	return uint32(slices.Index(w.nodes, node) + 1)
}

// Snapshot reads which rows node's server holds now: the new master's,
// while the old one is gone. Finish counts the writes acknowledged before
// the snapshot that it lacks (MySQLWrites.LostAtTakeover).
func (w *WriteCheck) Snapshot(ctx context.Context, node string) {
	w.snapAt = time.Now()
	db, err := w.target.MySQLAuditor(node)
	if err != nil {
		w.snapErr = err
		return
	}
	defer db.Close()
	_, rows, _, err := mysqlcheck.Collect(ctx, db)
	if err != nil {
		w.snapErr = err
		return
	}
	w.snapRows = map[uint64]bool{}
	for _, r := range rows {
		w.snapRows[r.Seq] = true
	}
}

// Finish stops the checker, waits for replication to settle and audits
// the writes against what each server holds, final being the owner at the
// end. Writes count as served again when one was acknowledged after
// steady (the lab steady again after the fault).
func (w *WriteCheck) Finish(ctx context.Context, nodes []string, final string, steady time.Time) *MySQLWrites {
	w.stop()
	out := &MySQLWrites{SemiSync: w.semiSync}
	if err := <-w.done; err != nil {
		out.Error = "write checker: " + err.Error()
		return out
	}
	if w.snapErr != nil {
		out.Error = "snapshot of the new master: " + w.snapErr.Error()
		return out
	}
	if w.snapRows != nil {
		out.Snapshot = true
		for _, x := range w.c.Writes() {
			if x.Acked && x.Seq >= w.first && x.Done.Before(w.snapAt) && !w.snapRows[x.Seq] {
				out.LostAtTakeover = append(out.LostAtTakeover, x.Seq)
			}
		}
	}
	// A row committed late (a commit held up by the demotion) or an
	// audit session ended by a promotion's kill round is not what the
	// audit is after: up to 3 attempts, 1 s apart, while the audit fails
	// or finds rows on one server only.
	var rep mysqlcheck.Report
	var repl []string
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Second)
		}
		rep, repl, err = w.audit(ctx, nodes, final)
		if err == nil && len(rep.Diverged) == 0 {
			break
		}
		if attempt < 2 {
			out.AuditRetries++
		}
	}
	if err != nil {
		out.Error = err.Error()
		return out
	}
	out.ReplicationErrors = repl
	out.Attempted, out.Acked, out.Lost, out.SplitBrain, out.Diverged = rep.Attempted, rep.Acked, rep.Lost, rep.SplitBrain, rep.Diverged
	out.ReplicationErrors = append(out.ReplicationErrors, rep.ReplicationErrors...)
	out.Outages, out.MaxOutageUS = len(rep.Outages), rep.MaxOutage.Microseconds()
	out.Unrecovered = !slices.ContainsFunc(w.c.Writes(), func(x mysqlcheck.Write) bool { return x.Acked && x.Sent.After(steady) })
	return out
}

// audit waits for replication to settle (10 s each way) and audits the
// writes against every server's rows; repl are the settling's failures.
func (w *WriteCheck) audit(ctx context.Context, nodes []string, final string) (rep mysqlcheck.Report, repl []string, err error) {
	dbs := map[string]*sql.DB{}
	for _, n := range nodes {
		db, err := w.target.MySQLAuditor(n)
		if err != nil {
			return rep, nil, err
		}
		defer db.Close()
		dbs[n] = db
	}
	if len(nodes) == 2 {
		if err := mariadb.Sync(ctx, dbs[nodes[0]], dbs[nodes[1]], 10*time.Second); err != nil {
			repl = append(repl, "replication did not settle: "+err.Error())
		}
	}
	rep, err = mysqlcheck.AuditServers(ctx, w.c.Writes(), w.first, dbs, final)
	return rep, repl, err
}

// judgeWrites adds the write checker's verdict to r (after judge): no
// split-brain write, no divergence, no replication error, writes served
// again at the end; nothing acknowledged lost in a graceful switchover,
// nor, with semi-synchronous replication, missing on the new master
// while the old one was gone.
func (r *Result) judgeWrites() {
	m := r.MySQL
	if m == nil {
		return
	}
	switch {
	case m.Error != "":
		r.Reasons = append(r.Reasons, "MySQL write audit: "+m.Error)
	default:
		if len(m.SplitBrain) > 0 {
			r.Reasons = append(r.Reasons, fmt.Sprintf("MySQL SPLIT BRAIN: %d writes acknowledged by a server after the other had accepted one under a newer epoch", len(m.SplitBrain)))
		}
		if len(m.Diverged) > 0 {
			r.Reasons = append(r.Reasons, fmt.Sprintf("MySQL: %d rows on one server only after replication settled", len(m.Diverged)))
		}
		if len(m.ReplicationErrors) > 0 {
			r.Reasons = append(r.Reasons, fmt.Sprintf("MySQL replication errors after heal: %v", m.ReplicationErrors))
		}
		if m.Unrecovered {
			r.Reasons = append(r.Reasons, "MySQL: no write acknowledged after the lab was steady again (through the VIP)")
		}
		if m.Acked == 0 {
			r.Reasons = append(r.Reasons, fmt.Sprintf("MySQL: none of %d writes through the VIP was acknowledged", m.Attempted))
		}
		if len(m.Lost) > 0 {
			switch {
			case r.Scenario == "graceful":
				r.Reasons = append(r.Reasons, fmt.Sprintf("MySQL: %d acknowledged writes lost in a graceful switchover (missing on the final master %s after replication settled)",
					len(m.Lost), r.FinalOwner))
			case m.SemiSync:
				r.Reasons = append(r.Reasons, fmt.Sprintf("MySQL: %d acknowledged writes lost although replication is semi-synchronous (missing on the final master %s after replication settled)",
					len(m.Lost), r.FinalOwner))
			default:
				r.Notes = append(r.Notes, fmt.Sprintf("MySQL: %d acknowledged writes lost (asynchronous replication)", len(m.Lost)))
			}
		}
		if m.AuditRetries > 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("MySQL: the audit was repeated %d times (a failed read, or rows on one server only that replication then brought)", m.AuditRetries))
		}
		switch {
		case len(m.LostAtTakeover) > 0 && m.SemiSync:
			r.Reasons = append(r.Reasons, fmt.Sprintf("MySQL: %d acknowledged writes were not on the new master %s while the old one was gone, "+
				"although replication is semi-synchronous", len(m.LostAtTakeover), r.NewOwner))
		case len(m.LostAtTakeover) > 0:
			r.Notes = append(r.Notes, fmt.Sprintf("MySQL: %d acknowledged writes were not on the new master %s while the old one was gone "+
				"(asynchronous replication: they arrived when it came back; lost had it not)", len(m.LostAtTakeover), r.NewOwner))
		case m.Snapshot:
			r.Notes = append(r.Notes, fmt.Sprintf("MySQL: the new master %s held every acknowledged write while the old one was gone (%s)", r.NewOwner, replicationMode(m)))
		}
	}
	r.Pass = len(r.Reasons) == 0
	r.Verdict = "PASS"
	if !r.Pass {
		r.Verdict = "FAIL"
	}
}

func replicationMode(m *MySQLWrites) string {
	if m.SemiSync {
		return "semi-synchronous replication"
	}
	return "asynchronous replication"
}
