// Package nodetest holds small fakes of the interfaces a node.Group drives
// (VRRPControl, Addresses, Prober, Resources, PeerFencer) for tests. They
// record their calls; a test can make a call hang (Hang) to see that one
// stuck actuator does not hold anything else up. Use fencingtest.Fence for
// the kernel fence and quorumtest.Memory for the quorum.
//
// Guaranteed: every fake is safe for concurrent use, starts no goroutine
// and reads time only through the time package (so it follows a
// testing/synctest bubble's clock). Not guaranteed: any resemblance to the
// kernel's or VRRP's timing.
package nodetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leasehold/leasehold/fencing"
	"github.com/leasehold/leasehold/node"
	"github.com/leasehold/leasehold/vrrp"
)

// Recorder keeps a log of calls.
type Recorder struct {
	mu  sync.Mutex
	log []string
}

func (r *Recorder) record(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, fmt.Sprintf(format, args...))
}

// Log returns the calls so far.
func (r *Recorder) Log() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.log...)
}

// Hang makes a call block until it is released.
type Hang struct {
	mu      sync.Mutex
	release chan struct{} // nil: calls do not hang
	waiting int
}

// Set makes calls hang from now on until Release.
func (h *Hang) Set() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.release == nil {
		h.release = make(chan struct{})
	}
}

// Release lets the hanging calls (and later ones) through.
func (h *Hang) Release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.release != nil {
		close(h.release)
		h.release = nil
	}
}

// Waiting is how many calls hang now.
func (h *Hang) Waiting() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.waiting
}

// wait blocks while calls hang. A nil ctx ignores cancellation, like an
// actuator that does not honour it.
func (h *Hang) wait(ctx context.Context) error {
	h.mu.Lock()
	ch := h.release
	if ch == nil {
		h.mu.Unlock()
		return nil
	}
	h.waiting++
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.waiting--
		h.mu.Unlock()
	}()
	var done <-chan struct{}
	if ctx != nil {
		done = ctx.Done()
	}
	select {
	case <-ch:
		return nil
	case <-done:
		return ctx.Err()
	}
}

// VRRP is a node.VRRPControl. OnClaim, when set, runs on Inject(vrrp.Claim)
// (a real instance becomes master and says so through the group's Effects).
// Higher, when set, answers HigherMember (a member of higher priority
// registered at the quorum).
type VRRP struct {
	Recorder
	OnClaim func()
	Higher  atomic.Bool
}

var _ node.VRRPControl = (*VRRP)(nil)

func (v *VRRP) Inject(ev vrrp.Event) {
	v.record("inject %T", ev)
	if _, ok := ev.(vrrp.Claim); ok && v.OnClaim != nil {
		v.OnClaim()
	}
}
func (v *VRRP) SetFault(source string, on bool) { v.record("fault %s %v", source, on) }
func (v *VRRP) Announce()                       { v.record("announce") }
func (v *VRRP) HigherMember() bool              { return v.Higher.Load() }

// Addrs is a node.Addresses. OnChange, when set, is told whether the VIPs
// are configured after every call that changed it (for a ledger of who
// holds the VIP across nodes). Add hangs (ignoring everything) while Hang
// is set.
type Addrs struct {
	Recorder
	Hang     Hang
	OnChange func(up bool)

	mu sync.Mutex
	up bool
}

var _ node.Addresses = (*Addrs)(nil)

func (a *Addrs) Add(lifetime time.Duration) error {
	a.Hang.wait(nil)
	if lifetime <= 0 {
		return fmt.Errorf("nodetest: lifetime %v: 0 would mean forever", lifetime)
	}
	a.record("add %v", lifetime)
	a.set(true)
	return nil
}

func (a *Addrs) Remove() error {
	a.record("remove")
	a.set(false)
	return nil
}

func (a *Addrs) set(up bool) {
	a.mu.Lock()
	changed := a.up != up
	a.up = up
	a.mu.Unlock()
	if changed && a.OnChange != nil {
		a.OnChange(up)
	}
}

// Up reports whether the VIPs are configured.
func (a *Addrs) Up() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.up
}

// Resources is a node.Resources. Promote hangs (ignoring its context)
// while Hang is set; PromoteErr fails it.
type Resources struct {
	Recorder
	Hang       Hang
	PromoteErr error
}

var _ node.Resources = (*Resources)(nil)

func (r *Resources) Promote(ctx context.Context, epoch uint64) error {
	r.record("promote %d", epoch)
	r.Hang.wait(nil)
	return r.PromoteErr
}

func (r *Resources) Demote(ctx context.Context, epoch uint64) error {
	r.record("demote %d", epoch)
	return nil
}

// Prober is a node.Prober answering Conflict.
type Prober struct {
	Recorder
	Conflict string
}

var _ node.Prober = (*Prober)(nil)

func (p *Prober) Probe(ctx context.Context) (string, error) {
	p.record("probe")
	return p.Conflict, nil
}

// PeerFencer is a node.PeerFencer recording the environment of each run.
type PeerFencer struct {
	Recorder
	Err error
}

var _ node.PeerFencer = (*PeerFencer)(nil)

func (f *PeerFencer) Fence(ctx context.Context, env fencing.FenceEnv) error {
	f.record("fence group=%s epoch=%d prev=%s", env.Group, env.Epoch, env.PrevHolder)
	return f.Err
}
