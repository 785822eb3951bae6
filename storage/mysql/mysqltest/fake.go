// Package mysqltest holds a fake mysql.Server for unit tests and a
// helper that starts throwaway MariaDB servers (a dual-master pair) for
// tests against the real thing.
package mysqltest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/leasehold/leasehold/storage/mysql"
)

// Fake is an in-memory mysql.Server. Its fields may be set before use;
// Calls records every call in order ("SetReadOnly true", "Kill 7").
type Fake struct {
	mu       sync.Mutex
	ServerID uint32
	RO       bool
	Binlog   string
	Rep      mysql.Replica
	Rows     []mysql.EpochRow
	Conns    []mysql.Session
	// Applied answers WaitApplied.
	Applied bool
	// Fail makes the named method ("Status", "SetReadOnly", ...) fail.
	Fail  map[string]error
	calls []string
}

func (f *Fake) call(name string, args ...any) error {
	f.calls = append(f.calls, fmt.Sprint(append([]any{name}, args...)...))
	if err := f.Fail[name]; err != nil {
		return fmt.Errorf("fake %s: %w", name, err)
	}
	return nil
}

// Calls returns the calls so far.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// ReadOnly says whether the fake is read-only now.
func (f *Fake) ReadOnly() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.RO
}

// Status implements mysql.Server.
func (f *Fake) Status(context.Context) (mysql.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Status"); err != nil {
		return mysql.Status{}, err
	}
	return mysql.Status{ServerID: f.ServerID, ReadOnly: f.RO, BinlogPos: f.Binlog}, nil
}

// SetReadOnly implements mysql.Server.
func (f *Fake) SetReadOnly(_ context.Context, on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("SetReadOnly ", on); err != nil {
		return err
	}
	f.RO = on
	return nil
}

// Replica implements mysql.Server.
func (f *Fake) Replica(context.Context) (mysql.Replica, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Rep, f.call("Replica")
}

// WaitApplied implements mysql.Server.
func (f *Fake) WaitApplied(_ context.Context, pos string, _ time.Duration) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Applied, f.call("WaitApplied ", pos)
}

// Epochs implements mysql.Server.
func (f *Fake) Epochs(context.Context) ([]mysql.EpochRow, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.Rows), f.call("Epochs")
}

// RecordEpoch implements mysql.Server.
func (f *Fake) RecordEpoch(_ context.Context, epoch uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("RecordEpoch ", epoch); err != nil {
		return err
	}
	for i, r := range f.Rows {
		if r.ServerID == f.ServerID {
			f.Rows[i].Epoch = max(r.Epoch, epoch)
			return nil
		}
	}
	f.Rows = append(f.Rows, mysql.EpochRow{ServerID: f.ServerID, Epoch: epoch})
	return nil
}

// Sessions implements mysql.Server.
func (f *Fake) Sessions(context.Context) ([]mysql.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.Conns), f.call("Sessions")
}

// Kill implements mysql.Server.
func (f *Fake) Kill(_ context.Context, id uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Kill ", id); err != nil {
		return err
	}
	f.Conns = slices.DeleteFunc(f.Conns, func(s mysql.Session) bool { return s.ID == id })
	return nil
}

var _ mysql.Server = (*Fake)(nil)

// SetReplica changes the replication state the fake reports.
func (f *Fake) SetReplica(r mysql.Replica) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Rep = r
}

// Broken is a replica whose SQL thread stopped on an error.
func Broken(lastError string) mysql.Replica {
	return mysql.Replica{Configured: true, IORunning: "Yes", SQLRunning: "No", LastError: lastError}
}
