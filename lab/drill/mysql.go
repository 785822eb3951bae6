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

// MySQLWrites is what a drill cost in writes on a lab whose nodes run
// MySQL (`lab up --mysql`): the write checker's audit (package
// lab/mysqlcheck) of a client writing through the VIP every 10 ms from the
// client's namespace during the whole drill, each write (and connect)
// bounded by 250 ms: outages are measured to that granularity (a connect
// to a VIP nobody holds waits out the 250 ms).
type MySQLWrites struct {
	Attempted int `json:"attempted"`
	Acked     int `json:"acknowledged"`
	// Lost: acknowledged writes missing on the final owner's server
	// (asynchronous replication can lose some; a graceful switchover must
	// not).
	Lost []uint64 `json:"lost,omitempty"`
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
}

// mysqlTarget is a target whose nodes run MySQL (a labctl.Lab up with
// --mysql).
type mysqlTarget interface {
	MySQLAddr(node string) string
	MySQLAuditor(node string) (*sql.DB, error)
	Netlab() *netlab.Lab
}

// writes is the write checker of one drill.
type writes struct {
	c      *mysqlcheck.Client
	stop   context.CancelFunc
	done   chan error
	first  uint64
	target mysqlTarget
}

// startWrites starts the write checker in the client's namespace, or
// returns nil when the target runs no MySQL.
func startWrites(ctx context.Context, t Target) *writes {
	mt, ok := t.(mysqlTarget)
	if !ok || len(t.Nodes()) == 0 || mt.MySQLAddr(t.Nodes()[0]) == "" {
		return nil
	}
	// Sequence numbers apart from earlier drills on the same lab.
	first := uint64(time.Now().UnixMicro())
	w := &writes{first: first, target: mt, done: make(chan error, 1),
		c: &mysqlcheck.Client{Addr: net.JoinHostPort(t.VIP().String(), strconv.Itoa(labctl.MySQLPort)), User: labctl.AppUser,
			Password: labctl.AppPassword, Interval: 10 * time.Millisecond, Timeout: 250 * time.Millisecond, First: first}}
	cctx, cancel := context.WithCancel(ctx)
	w.stop = cancel
	go func() {
		w.done <- mt.Netlab().Host(netlab.ClientName).Do(func() error { return w.c.Run(cctx) })
	}()
	return w
}

// finish stops the checker, waits for replication to settle and audits
// the writes against what each server holds, final being the owner at the
// end. Writes count as served again when one was acknowledged after
// steady (the lab steady again after the fault).
func (w *writes) finish(ctx context.Context, nodes []string, final string, steady time.Time) *MySQLWrites {
	w.stop()
	out := &MySQLWrites{}
	if err := <-w.done; err != nil {
		out.Error = "write checker: " + err.Error()
		return out
	}
	dbs := map[string]*sql.DB{}
	for _, n := range nodes {
		db, err := w.target.MySQLAuditor(n)
		if err != nil {
			out.Error = err.Error()
			return out
		}
		defer db.Close()
		dbs[n] = db
	}
	if len(nodes) == 2 {
		if err := mariadb.Sync(ctx, dbs[nodes[0]], dbs[nodes[1]], 10*time.Second); err != nil {
			out.ReplicationErrors = append(out.ReplicationErrors, "replication did not settle: "+err.Error())
		}
	}
	rep, err := mysqlcheck.AuditServers(ctx, w.c.Writes(), w.first, dbs, final)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	out.Attempted, out.Acked, out.Lost, out.SplitBrain, out.Diverged = rep.Attempted, rep.Acked, rep.Lost, rep.SplitBrain, rep.Diverged
	out.ReplicationErrors = append(out.ReplicationErrors, rep.ReplicationErrors...)
	out.Outages, out.MaxOutageUS = len(rep.Outages), rep.MaxOutage.Microseconds()
	out.Unrecovered = !slices.ContainsFunc(w.c.Writes(), func(x mysqlcheck.Write) bool { return x.Acked && x.Sent.After(steady) })
	return out
}

// judgeWrites adds the write checker's verdict to r (after judge): no
// split-brain write, no divergence, no replication error, writes served
// again at the end; nothing acknowledged lost in a graceful switchover.
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
			r.Reasons = append(r.Reasons, fmt.Sprintf("MySQL replication errors: %v", m.ReplicationErrors))
		}
		if m.Unrecovered {
			r.Reasons = append(r.Reasons, "MySQL: no write acknowledged after the lab was steady again")
		}
		if len(m.Lost) > 0 {
			if r.Scenario == "graceful" {
				r.Reasons = append(r.Reasons, fmt.Sprintf("MySQL: %d acknowledged writes lost in a graceful switchover", len(m.Lost)))
			} else {
				r.Notes = append(r.Notes, fmt.Sprintf("MySQL: %d acknowledged writes lost (asynchronous replication)", len(m.Lost)))
			}
		}
	}
	r.Pass = len(r.Reasons) == 0
	r.Verdict = "PASS"
	if !r.Pass {
		r.Verdict = "FAIL"
	}
}
