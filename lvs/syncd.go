package lvs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
)

// SyncState is the role of a kernel IPVS connection-sync daemon
// (IP_VS_STATE_MASTER, IP_VS_STATE_BACKUP).
type SyncState uint32

// The sync daemon's roles.
const (
	SyncMaster SyncState = 1 // sends this director's connections
	SyncBackup SyncState = 2 // receives the master's into the connection table
)

func (s SyncState) String() string {
	switch s {
	case SyncMaster:
		return "master"
	case SyncBackup:
		return "backup"
	}
	return fmt.Sprintf("state(%d)", uint32(s))
}

// SyncConfig is keepalived's `lvs_sync_daemon INTERFACE INSTANCE [id N]
// [maxlen N] [port N] [ttl N] [group IP]`: the sync daemons run on
// Interface; the master follows the lease of Group (the instance's
// group): master on its owner, backup elsewhere.
type SyncConfig struct {
	Interface string
	Group     string // the vrrp_instance, or the vrrp_sync_group it is in
	SyncID    uint8  // the syncid both directors use (default 0)
	MaxLen    uint16 // sync message size limit (0: the kernel's, from the MTU)
	McastAddr netip.Addr
	McastPort uint16 // 0: the kernel's (8848)
	McastTTL  uint8  // 0: the kernel's (1)
}

// SyncDaemon is a sync daemon the kernel runs.
type SyncDaemon struct {
	State SyncState
	SyncConfig
}

// SyncKernel starts, stops and lists the kernel's sync daemons (the
// generic netlink IPVS commands NEW_DAEMON, DEL_DAEMON, GET_DAEMON; IPVS
// implements it, lvstest.Kernel in memory).
type SyncKernel interface {
	StartSync(state SyncState, c SyncConfig) error
	StopSync(state SyncState) error // ErrNoSync if none runs in that role
	SyncDaemons() ([]SyncDaemon, error)
}

// ErrNoSync: no sync daemon runs in the role asked for.
var ErrNoSync = errors.New("lvs: no sync daemon in that role")

// Sync keeps the kernel's sync daemons following a group's lease, as a
// node/resource.Resource in the group's chain: promoted, the backup stops
// and the master starts (this director's connections are sent to the
// other); demoted, the master stops and the backup starts (the owner's
// connections are received into the connection table, so that they go on
// through this director when it takes over). Start runs the backup before
// the group can own; Stop ends both.
type Sync struct {
	k   SyncKernel
	cfg SyncConfig
	log *slog.Logger

	mu      sync.Mutex
	running SyncState // 0: none
	lastErr string
	changes uint64
}

// NewSync makes a group's sync daemons' resource.
func NewSync(k SyncKernel, c SyncConfig, log *slog.Logger) *Sync {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sync{k: k, cfg: c, log: log}
}

// Name implements resource.Resource.
func (s *Sync) Name() string { return "lvs_sync_daemon" }

// Start stops a master an earlier run left and starts the backup.
func (s *Sync) Start() error { return s.become(SyncBackup) }

// Promote implements resource.Resource: master.
func (s *Sync) Promote(context.Context, uint64) error { return s.become(SyncMaster) }

// Demote implements resource.Resource: backup.
func (s *Sync) Demote(context.Context, uint64) error { return s.become(SyncBackup) }

// Stop ends both daemons (on exit).
func (s *Sync) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := errors.Join(s.stop(SyncMaster), s.stop(SyncBackup))
	s.running = 0
	s.note(err)
	return err
}

// become stops the other role's daemon and starts (or restarts, if its
// settings differ) this role's.
func (s *Sync) become(state SyncState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	other := SyncMaster
	if state == SyncMaster {
		other = SyncBackup
	}
	err := s.stop(other)
	if err == nil {
		err = s.ensure(state)
	}
	if err == nil {
		if s.running != state {
			s.changes++
			s.log.Info("lvs sync daemon", "state", state.String(), "interface", s.cfg.Interface, "sync_id", s.cfg.SyncID)
		}
		s.running = state
	} else {
		s.running = 0
	}
	s.note(err)
	return err
}

// ensure runs the daemon of state with this configuration.
func (s *Sync) ensure(state SyncState) error {
	ds, err := s.k.SyncDaemons()
	if err != nil {
		return fmt.Errorf("lvs_sync_daemon: list: %w", err)
	}
	for _, d := range ds {
		if d.State != state {
			continue
		}
		if d.Interface == s.cfg.Interface && d.SyncID == s.cfg.SyncID {
			return nil
		}
		if err := s.stop(state); err != nil { // someone else's settings
			return err
		}
	}
	if err := s.k.StartSync(state, s.cfg); err != nil {
		return fmt.Errorf("lvs_sync_daemon: start %s on %s: %w", state, s.cfg.Interface, err)
	}
	return nil
}

func (s *Sync) stop(state SyncState) error {
	if err := s.k.StopSync(state); err != nil && !errors.Is(err, ErrNoSync) {
		return fmt.Errorf("lvs_sync_daemon: stop %s: %w", state, err)
	}
	return nil
}

func (s *Sync) note(err error) {
	if err != nil {
		s.lastErr = err.Error()
	} else {
		s.lastErr = ""
	}
}

// SyncStatus is the sync daemons' part of the status.
type SyncStatus struct {
	Interface string `json:"interface"`
	Group     string `json:"group"`
	SyncID    uint8  `json:"sync_id"`
	State     string `json:"state"` // master, backup or none
	Changes   uint64 `json:"changes"`
	LastError string `json:"last_error,omitempty"`
}

// Status reports what this node set the sync daemons to.
func (s *Sync) Status() SyncStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := SyncStatus{Interface: s.cfg.Interface, Group: s.cfg.Group, SyncID: s.cfg.SyncID, State: "none", Changes: s.changes, LastError: s.lastErr}
	if s.running != 0 {
		st.State = s.running.String()
	}
	return st
}
