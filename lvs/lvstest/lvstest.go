// Package lvstest has in-memory fakes of package lvs's edges for tests: a
// Kernel (an IPVS table in a map, with failure injection and a log of
// changes) and a Prober whose outcome per target the test sets.
//
// They model the contract (Table lists every service; changing a missing
// service or real server is an error; adding an existing one is an
// error), not IPVS: no scheduler modules, no connections.
package lvstest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/leasehold/leasehold/lvs"
)

// ErrInjected is returned by an operation Fail selected.
var ErrInjected = errors.New("lvstest: injected failure")

// Kernel is an in-memory IPVS table; it implements lvs.Kernel.
type Kernel struct {
	mu  sync.Mutex
	tab map[lvs.Key]*lvs.Virtual
	// Fail, if set, is asked before each change ("add service TCP
	// 10.0.0.1:80", "add real server 10.0.1.1:80 to ..."): true makes it
	// fail with ErrInjected.
	Fail func(op string) bool
	ops  []string
	sync map[lvs.SyncState]lvs.SyncConfig // the sync daemons running
}

var (
	_ lvs.Kernel     = (*Kernel)(nil)
	_ lvs.SyncKernel = (*Kernel)(nil)
)

// NewKernel returns an empty table.
func NewKernel() *Kernel {
	return &Kernel{tab: map[lvs.Key]*lvs.Virtual{}, sync: map[lvs.SyncState]lvs.SyncConfig{}}
}

// Ops returns the changes made so far and forgets them.
func (k *Kernel) Ops() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := k.ops
	k.ops = nil
	return out
}

// Service returns the service of key and whether it exists.
func (k *Kernel) Service(key lvs.Key) (lvs.Virtual, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.tab[key]
	if !ok {
		return lvs.Virtual{}, false
	}
	c := *v
	c.Dests = slices.Clone(v.Dests)
	return c, true
}

// Weights maps the real servers of key to their weights (nil: no such
// service).
func (k *Kernel) Weights(key lvs.Key) map[netip.AddrPort]int {
	v, ok := k.Service(key)
	if !ok {
		return nil
	}
	m := map[netip.AddrPort]int{}
	for _, d := range v.Dests {
		m[d.Addr] = d.Weight
	}
	return m
}

// Len is the number of services.
func (k *Kernel) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.tab)
}

func (k *Kernel) change(op string, f func() error) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.Fail != nil && k.Fail(op) {
		return ErrInjected
	}
	if err := f(); err != nil {
		return err
	}
	k.ops = append(k.ops, op)
	return nil
}

// Table implements lvs.Kernel.
func (k *Kernel) Table() ([]lvs.Virtual, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]lvs.Virtual, 0, len(k.tab))
	for _, v := range k.tab {
		c := *v
		c.Dests = slices.Clone(v.Dests)
		out = append(out, c)
	}
	return out, nil
}

// AddService implements lvs.Kernel.
func (k *Kernel) AddService(v lvs.Virtual) error {
	return k.change("add service "+v.Key.String(), func() error {
		if _, ok := k.tab[v.Key]; ok {
			return fmt.Errorf("%s: file exists", v.Key)
		}
		v.Dests = nil
		k.tab[v.Key] = &v
		return nil
	})
}

// UpdateService implements lvs.Kernel.
func (k *Kernel) UpdateService(v lvs.Virtual) error {
	return k.change("update service "+v.Key.String(), func() error {
		cur, ok := k.tab[v.Key]
		if !ok {
			return fmt.Errorf("%s: no such service", v.Key)
		}
		cur.Scheduler, cur.Timeout, cur.Netmask = v.Scheduler, v.Timeout, v.Netmask
		return nil
	})
}

// DelService implements lvs.Kernel.
func (k *Kernel) DelService(key lvs.Key) error {
	return k.change("delete service "+key.String(), func() error {
		if _, ok := k.tab[key]; !ok {
			return fmt.Errorf("%s: no such service", key)
		}
		delete(k.tab, key)
		return nil
	})
}

func (k *Kernel) dest(key lvs.Key, a netip.AddrPort) (*lvs.Virtual, int, error) {
	v, ok := k.tab[key]
	if !ok {
		return nil, -1, fmt.Errorf("%s: no such service", key)
	}
	return v, slices.IndexFunc(v.Dests, func(d lvs.Dest) bool { return d.Addr == a }), nil
}

// AddDest implements lvs.Kernel.
func (k *Kernel) AddDest(key lvs.Key, d lvs.Dest) error {
	return k.change(fmt.Sprintf("add real server %s weight %d to %s", d.Addr, d.Weight, key), func() error {
		v, i, err := k.dest(key, d.Addr)
		if err == nil && i >= 0 {
			err = fmt.Errorf("%s in %s: file exists", d.Addr, key)
		}
		if err == nil {
			v.Dests = append(v.Dests, d)
		}
		return err
	})
}

// UpdateDest implements lvs.Kernel.
func (k *Kernel) UpdateDest(key lvs.Key, d lvs.Dest) error {
	return k.change(fmt.Sprintf("set real server %s weight %d in %s", d.Addr, d.Weight, key), func() error {
		v, i, err := k.dest(key, d.Addr)
		if err == nil && i < 0 {
			err = fmt.Errorf("%s in %s: no such real server", d.Addr, key)
		}
		if err == nil {
			v.Dests[i] = d
		}
		return err
	})
}

// DelDest implements lvs.Kernel.
func (k *Kernel) DelDest(key lvs.Key, d lvs.Dest) error {
	return k.change(fmt.Sprintf("delete real server %s from %s", d.Addr, key), func() error {
		v, i, err := k.dest(key, d.Addr)
		if err == nil && i < 0 {
			err = fmt.Errorf("%s in %s: no such real server", d.Addr, key)
		}
		if err == nil {
			v.Dests = slices.Delete(v.Dests, i, i+1)
		}
		return err
	})
}

// Prober answers checks from a table of outcomes by target; it
// implements lvs.Prober. Unset targets succeed.
type Prober struct {
	mu      sync.Mutex
	fail    map[netip.AddrPort]string
	running atomic.Int64
	// MaxRunning is the most checks seen running at once.
	MaxRunning atomic.Int64
	// Runs counts the checks run.
	Runs atomic.Int64
	// Hold, if set, is called inside each check (to keep it running).
	Hold func(ctx context.Context)
}

var _ lvs.Prober = (*Prober)(nil)

// NewProber returns a prober under which every check succeeds.
func NewProber() *Prober { return &Prober{fail: map[netip.AddrPort]string{}} }

// SetFailing makes checks of target fail with reason (or succeed: "").
func (p *Prober) SetFailing(target netip.AddrPort, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if reason == "" {
		delete(p.fail, target)
		return
	}
	p.fail[target] = reason
}

// Probe implements lvs.Prober.
func (p *Prober) Probe(ctx context.Context, c lvs.Check) lvs.Outcome {
	n := p.running.Add(1)
	defer p.running.Add(-1)
	for {
		m := p.MaxRunning.Load()
		if n <= m || p.MaxRunning.CompareAndSwap(m, n) {
			break
		}
	}
	p.Runs.Add(1)
	if p.Hold != nil {
		p.Hold(ctx)
	}
	p.mu.Lock()
	reason, failing := p.fail[c.Target]
	p.mu.Unlock()
	if failing {
		return lvs.Outcome{Dynamic: -1, Err: reason}
	}
	return lvs.Outcome{OK: true, Dynamic: -1}
}

// StartSync implements lvs.SyncKernel: one daemon a role, as the kernel
// keeps them (a second start of a role is an error).
func (k *Kernel) StartSync(state lvs.SyncState, c lvs.SyncConfig) error {
	return k.change(fmt.Sprintf("start sync %s on %s id %d", state, c.Interface, c.SyncID), func() error {
		if _, ok := k.sync[state]; ok {
			return fmt.Errorf("sync daemon %s: already running", state)
		}
		c.Group = "" // the kernel knows no groups
		k.sync[state] = c
		return nil
	})
}

// StopSync implements lvs.SyncKernel.
func (k *Kernel) StopSync(state lvs.SyncState) error {
	return k.change(fmt.Sprintf("stop sync %s", state), func() error {
		if _, ok := k.sync[state]; !ok {
			return lvs.ErrNoSync
		}
		delete(k.sync, state)
		return nil
	})
}

// SyncDaemons implements lvs.SyncKernel.
func (k *Kernel) SyncDaemons() ([]lvs.SyncDaemon, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []lvs.SyncDaemon
	for _, st := range []lvs.SyncState{lvs.SyncMaster, lvs.SyncBackup} {
		if c, ok := k.sync[st]; ok {
			out = append(out, lvs.SyncDaemon{State: st, SyncConfig: c})
		}
	}
	return out, nil
}
