package mysql

import (
	"context"
	"errors"
	"syscall"
	"time"
)

// Server is the OS edge of a Resource: the statements it sends to one
// MySQL/MariaDB server. SQL (go-sql-driver/mysql) is the real one;
// mysqltest.Fake a fake for unit tests. Every call is bounded by ctx.
type Server interface {
	// Status connects if needed and reads the server's identity and
	// read_only (a SELECT: the health check's SELECT 1).
	Status(ctx context.Context) (Status, error)
	// SetReadOnly sets the global read_only (and super_read_only where
	// the server has it, MySQL; MariaDB 10.11 has not).
	SetReadOnly(ctx context.Context, on bool) error
	// Replica reads the replication state (SHOW SLAVE STATUS).
	Replica(ctx context.Context) (Replica, error)
	// WaitApplied waits until the GTID position pos is applied
	// (MASTER_GTID_WAIT), at most timeout; false when it timed out.
	WaitApplied(ctx context.Context, pos string, timeout time.Duration) (bool, error)
	// Epochs reads the epoch table (no table: none).
	Epochs(ctx context.Context) ([]EpochRow, error)
	// RecordEpoch raises this server's row of the epoch table to epoch
	// (creating the table if needed); a lower epoch never replaces a
	// higher one.
	RecordEpoch(ctx context.Context, epoch uint64) error
	// Sessions lists the server's connections (the processlist), ours
	// and the bypassing accounts marked.
	Sessions(ctx context.Context) ([]Session, error)
	// Kill ends a connection (KILL CONNECTION id).
	Kill(ctx context.Context, id uint64) error
}

// Status is what a server says about itself.
type Status struct {
	ServerID uint32
	ReadOnly bool
	// SuperReadOnly: the server has super_read_only (MySQL 5.7+) and it
	// is on; HasSuperReadOnly: the variable exists.
	SuperReadOnly, HasSuperReadOnly bool
	// BinlogPos is @@gtid_binlog_pos (MariaDB; "" elsewhere).
	BinlogPos string
	Version   string
	// HasSemiSync: the server has semi-synchronous replication (MariaDB
	// 10.3+ built in: rpl_semi_sync_master_enabled); SemiSyncEnabled:
	// it is on for this server as a master; SemiSyncActive: commits
	// currently wait for the peer (Rpl_semi_sync_master_status ON; OFF
	// after a timeout without the peer's answer).
	HasSemiSync, SemiSyncEnabled, SemiSyncActive bool
}

// Replica is a server's replication state (SHOW SLAVE STATUS). The zero
// Replica is a server that replicates from nobody.
type Replica struct {
	Configured bool
	// IORunning and SQLRunning are Slave_IO_Running ("Yes", "No",
	// "Connecting") and Slave_SQL_Running ("Yes", "No").
	IORunning, SQLRunning string
	// Lag is Seconds_Behind_Master; LagKnown false when it is NULL.
	Lag      time.Duration
	LagKnown bool
	// IOPos is Gtid_IO_Pos: the GTIDs received into the relay log.
	IOPos                  string
	LastIOError, LastError string
	MasterHost             string
}

// EpochRow is one server's row of the epoch table: the highest epoch it
// was promoted under. Rows replicate, so a server also holds its peer's.
type EpochRow struct {
	ServerID uint32
	Epoch    uint64
}

// Session is one connection of the processlist.
type Session struct {
	ID                  uint64
	User, Host, Command string
	// Own: one of this Resource's connections.
	Own bool
	// Bypass: the account holds a privilege that ignores read_only
	// (MariaDB: READ_ONLY ADMIN; MySQL: SUPER or CONNECTION_ADMIN).
	Bypass bool
}

// IsDown reports whether err says the server is not running: the
// connection was refused or the socket does not exist. A timeout is not
// "down" (a hung server may still commit).
func IsDown(err error) bool {
	return err != nil && (errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) || errors.Is(err, ErrDown))
}

// ErrDown is what a fake Server returns for a server that is not running.
var ErrDown = errors.New("mysql: server not running")
