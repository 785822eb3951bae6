package mysqlcheck

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"slices"
	"sync"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/leasehold/leasehold/storage/mysql"
)

// Schema is the table the client writes: each row a sequence number, the
// client's send time, the server that accepted it and the epoch that
// server had recorded (leasehold.epoch) when it did.
const Schema = "CREATE TABLE IF NOT EXISTS leasehold_check.writes (seq BIGINT UNSIGNED NOT NULL PRIMARY KEY, " +
	"sent_us BIGINT NOT NULL, server_id INT UNSIGNED NOT NULL, epoch BIGINT UNSIGNED NOT NULL, " +
	"at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB"

const insert = "INSERT INTO leasehold_check.writes (seq, sent_us, server_id, epoch) SELECT ?, ?, @@server_id, " +
	"COALESCE((SELECT epoch FROM leasehold.epoch WHERE server_id = @@server_id), 0)"

// Client writes one row every Interval through Addr (the VIP's
// host:port) as User/Password, on one connection at a time: a failed
// write drops the connection and the next write dials again (as an
// application behind a VIP does). Each write is bounded by Timeout.
type Client struct {
	Addr, User, Password string
	Interval, Timeout    time.Duration
	// First is the first sequence number (default 1): clients writing at
	// once need ranges apart.
	First uint64

	mu     sync.Mutex
	writes []Write
}

// Writes returns the log so far.
func (c *Client) Writes() []Write {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.writes)
}

// Run writes until ctx ends. Failed writes are logged in Writes, not on
// stderr (the driver's own logger is silenced: mysql.QuietDriverLog).
func (c *Client) Run(ctx context.Context) error {
	mysql.QuietDriverLog()
	cfg := gomysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.Passwd = "tcp", c.Addr, c.User, c.Password
	cfg.Timeout, cfg.WriteTimeout = c.Timeout, c.Timeout
	conn, err := gomysql.NewConnector(cfg)
	if err != nil {
		return fmt.Errorf("mysqlcheck: %w", err)
	}
	var cur *sql.Conn
	var server uint32
	db := sql.OpenDB(conn)
	defer db.Close()
	drop := func() {
		if cur != nil {
			cur.Raw(func(any) error { return driver.ErrBadConn }) // not back to the pool
			cur.Close()
			cur, server = nil, 0
		}
	}
	defer drop()
	tick := time.NewTicker(c.Interval)
	defer tick.Stop()
	for seq := max(c.First, 1); ; seq++ {
		w := Write{Seq: seq, Sent: time.Now()}
		err := func() error {
			wctx, cancel := context.WithTimeout(ctx, c.Timeout)
			defer cancel()
			if cur == nil {
				cn, err := db.Conn(wctx)
				if err != nil {
					return err
				}
				if err := cn.QueryRowContext(wctx, "SELECT @@server_id").Scan(&server); err != nil {
					cn.Close()
					return err
				}
				cur = cn
			}
			w.ServerID = server
			_, err := cur.ExecContext(wctx, insert, seq, w.Sent.UnixMicro())
			return err
		}()
		w.Done = time.Now()
		if ctx.Err() != nil {
			return nil // a write cut off by the end of the run is not logged
		}
		if err != nil {
			w.Err = err.Error()
			drop()
		} else {
			w.Acked = true
		}
		c.mu.Lock()
		c.writes = append(c.writes, w)
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Collect reads what a server holds after the drill: its rows and its
// replication errors.
func Collect(ctx context.Context, db *sql.DB) (id uint32, rows []Row, repl Replication, err error) {
	if err := db.QueryRowContext(ctx, "SELECT @@server_id").Scan(&id); err != nil {
		return 0, nil, Replication{}, fmt.Errorf("mysqlcheck: server id: %w", err)
	}
	rs, err := db.QueryContext(ctx, "SELECT seq, server_id, epoch FROM leasehold_check.writes ORDER BY seq")
	if err != nil {
		return id, nil, Replication{}, fmt.Errorf("mysqlcheck: server %d: read the writes: %w", id, err)
	}
	defer rs.Close()
	for rs.Next() {
		var r Row
		if err := rs.Scan(&r.Seq, &r.ServerID, &r.Epoch); err != nil {
			return id, nil, Replication{}, fmt.Errorf("mysqlcheck: server %d: %w", id, err)
		}
		rows = append(rows, r)
	}
	if err := rs.Err(); err != nil {
		return id, nil, Replication{}, err
	}
	r, err := mysql.ReplicaOf(ctx, db)
	if err != nil {
		return id, rows, Replication{ServerID: id}, fmt.Errorf("mysqlcheck: server %d: %w", id, err)
	}
	return id, rows, Replication{ServerID: id, IOError: r.LastIOError, SQLError: r.LastError}, nil
}

// AuditServers collects every server's rows (sequence numbers from first
// on: earlier runs on the same tables are left out) and replication state
// and audits writes against them; final names the server (a key of dbs)
// that is master at the end.
func AuditServers(ctx context.Context, writes []Write, first uint64, dbs map[string]*sql.DB, final string) (Report, error) {
	rows := map[uint32][]Row{}
	var repl []Replication
	var finalID uint32
	for name, db := range dbs {
		id, rs, r, err := Collect(ctx, db)
		if err != nil {
			return Report{}, fmt.Errorf("%s: %w", name, err)
		}
		rows[id] = slices.DeleteFunc(rs, func(r Row) bool { return r.Seq < first })
		repl = append(repl, r)
		if name == final {
			finalID = id
		}
	}
	slices.SortFunc(repl, func(a, b Replication) int { return int(a.ServerID) - int(b.ServerID) })
	return Audit(writes, rows, finalID, repl), nil
}
