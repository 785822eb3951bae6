// Package fencingtest holds an in-memory fencing.Fence for tests of the
// packages that drive a fence: it keeps armed VIPs with their expiry on an
// injected clock, so a test can freeze or advance time and see exactly
// what the kernel fence would have done.
package fencingtest

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/leasehold/leasehold/fencing"
)

// Fence is an in-memory fencing.Fence. Safe for concurrent use.
type Fence struct {
	now func() time.Time

	mu        sync.Mutex
	installed bool
	managed   map[netip.Addr]bool
	expiry    map[netip.Addr]time.Time
	// ArmErr, when set, is returned by Arm (which then changes nothing).
	ArmErr error
	// OnArm, when set, runs inside Arm after the element is stored: a test
	// advances its clock here to simulate a freeze during the kernel call.
	OnArm     func()
	readBlock chan struct{}
	log       []string
}

var _ fencing.Fence = (*Fence)(nil)

// New returns a fence reading time from now.
func New(now func() time.Time) *Fence {
	return &Fence{now: now, managed: map[netip.Addr]bool{}, expiry: map[netip.Addr]time.Time{}}
}

// Install implements fencing.Fence: armed VIPs are dropped, managed kept.
func (f *Fence) Install(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.installed = true
	clear(f.expiry)
	f.log = append(f.log, "install")
	return ctx.Err()
}

// Manage implements fencing.Fence.
func (f *Fence) Manage(vips []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.managed)
	for _, v := range vips {
		f.managed[v] = true
	}
	f.log = append(f.log, fmt.Sprintf("manage %v", vips))
	return nil
}

// Arm implements fencing.Fence with the kernel's rules: timeouts are
// truncated to 1 ms and must be at least that; the VIP must be managed.
func (f *Fence) Arm(vip netip.Addr, timeout time.Duration) error {
	f.mu.Lock()
	timeout = timeout.Truncate(fencing.Resolution)
	switch {
	case f.ArmErr != nil:
		f.mu.Unlock()
		return f.ArmErr
	case timeout < fencing.Resolution:
		f.mu.Unlock()
		return fmt.Errorf("%w: %v", fencing.ErrTimeout, timeout)
	case !f.managed[vip]:
		f.mu.Unlock()
		return fmt.Errorf("%w: %s", fencing.ErrUnmanaged, vip)
	}
	f.expiry[vip] = f.now().Add(timeout)
	f.log = append(f.log, fmt.Sprintf("arm %s %v", vip, timeout))
	hook := f.OnArm
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	return nil
}

// Disarm implements fencing.Fence.
func (f *Fence) Disarm(vip netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.expiry, vip)
	f.log = append(f.log, fmt.Sprintf("disarm %s", vip))
	return nil
}

// BlockReads makes Armed block until ch is closed: a kernel read that
// hangs (netlink under load). nil ends it.
func (f *Fence) BlockReads(ch chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.readBlock = ch
}

// Armed implements fencing.Fence against the injected clock.
func (f *Fence) Armed(vip netip.Addr) (time.Duration, bool, error) {
	f.mu.Lock()
	block := f.readBlock
	f.mu.Unlock()
	if block != nil {
		<-block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	exp, ok := f.expiry[vip]
	if !ok {
		return 0, false, nil
	}
	left := exp.Sub(f.now())
	if left <= 0 {
		return 0, false, nil
	}
	return left, true, nil
}

// Remove implements fencing.Fence.
func (f *Fence) Remove() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.installed = false
	clear(f.managed)
	clear(f.expiry)
	f.log = append(f.log, "remove")
	return nil
}

// Passes reports whether traffic for vip would pass at the injected now:
// unmanaged VIPs always pass, managed ones only while armed.
func (f *Fence) Passes(vip netip.Addr) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.installed || !f.managed[vip] {
		return true
	}
	exp, ok := f.expiry[vip]
	return ok && f.now().Before(exp)
}

// Log returns the calls made so far ("arm 10.0.0.1 300ms", "disarm …").
func (f *Fence) Log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}
