package fencing

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrLate: the clock passed the fence's expiry point while a refresh
	// was being applied (the process froze between computing and applying
	// the timeout). The element has been deleted; the VIP is fenced off.
	ErrLate = errors.New("fencing: late refresh")
	// ErrExpired: the deadline (minus margin) had already passed when a
	// refresh was asked; the element has been deleted.
	ErrExpired = errors.New("fencing: deadline passed")
	// ErrTimeout: a timeout below the kernel's resolution (1 ms) was asked.
	// A zero timeout would make the element permanent, so it is refused.
	ErrTimeout = errors.New("fencing: timeout below 1ms")
	// ErrUnmanaged: the VIP is not in the managed set, so arming it would
	// have no effect.
	ErrUnmanaged = errors.New("fencing: vip not managed")
	// ErrUnavailable: the kernel facility (nftables, watchdog) is missing.
	ErrUnavailable = errors.New("fencing: unavailable")
)

// Resolution is the granularity of the nftables element timeout.
const Resolution = time.Millisecond

// Fence is the kernel fence for this node's VIPs: traffic and ARP/ND for a
// managed VIP pass only while the VIP is armed, and an arming lapses by
// itself after its timeout, whether or not this process is still alive.
type Fence interface {
	// Install creates the fence's kernel state, replacing atomically any
	// state left by an earlier run (its armed VIPs are dropped, its
	// managed VIPs are kept so they stay fenced until Manage).
	Install(ctx context.Context) error
	// Manage sets the VIPs the fence applies to; others are never touched.
	Manage(vips []netip.Addr) error
	// Arm lets traffic for vip pass for timeout (truncated to 1 ms); a
	// repeated Arm replaces the remaining time with timeout.
	Arm(vip netip.Addr, timeout time.Duration) error
	// Disarm fences vip off at once. Disarming a disarmed VIP is no error.
	Disarm(vip netip.Addr) error
	// Armed reads back how long vip stays armed (ok false: not armed).
	Armed(vip netip.Addr) (left time.Duration, ok bool, err error)
	// Remove deletes the fence's kernel state: managed VIPs are no longer
	// fenced at all.
	Remove() error
}

// Refresh arms vip on f so that the arming lapses no later than
// deadline−margin+(time spent applying), and never after deadline:
//
//   - timeout = deadline − now() − margin; if it is below 1 ms, vip is
//     disarmed and ErrExpired returned;
//   - after the kernel call the clock is read again: if deadline−margin has
//     passed, or applying took longer than margin (the kernel may have
//     started the timer late, so the element could outlive the deadline),
//     vip is disarmed at once and ErrLate returned.
//
// margin must therefore exceed the cost of one Arm (~35 µs measured for
// NFT) plus scheduling noise; with margin 0 every real refresh is late.
// Any failure to arm also disarms (unknown means fenced). now is usually
// time.Now; deadline should carry a monotonic reading.
func Refresh(f Fence, vip netip.Addr, deadline time.Time, margin time.Duration, now func() time.Time) error {
	if margin < 0 {
		return fmt.Errorf("fencing: refresh %s: negative margin %v", vip, margin)
	}
	limit := deadline.Add(-margin)
	t0 := now()
	timeout := limit.Sub(t0).Truncate(Resolution)
	if timeout < Resolution {
		return errors.Join(fmt.Errorf("%w: %s %v past", ErrExpired, vip, t0.Sub(limit)), disarm(f, vip))
	}
	if err := f.Arm(vip, timeout); err != nil {
		return errors.Join(fmt.Errorf("fencing: refresh %s: %w", vip, err), disarm(f, vip))
	}
	t1 := now()
	if !t1.Before(limit) || t1.Sub(t0) > margin {
		return errors.Join(fmt.Errorf("%w: %s applied after %v (timeout %v, margin %v)", ErrLate, vip, t1.Sub(t0), timeout, margin),
			disarm(f, vip))
	}
	return nil
}

func disarm(f Fence, vip netip.Addr) error {
	if err := f.Disarm(vip); err != nil {
		return fmt.Errorf("fencing: disarm %s: %w", vip, err)
	}
	return nil
}

// AddrLifetimeSlack is how long after an address's valid lifetime the
// kernel may still keep it (its lifetime worker runs on whole-second
// rounded timers): measured 0–1.25 s.
const AddrLifetimeSlack = 1250 * time.Millisecond

// LifetimeFor returns the address lifetime (valid and preferred) to give a
// VIP so that the kernel removes it before deadline−margin: whole seconds,
// lifetime + AddrLifetimeSlack ≤ deadline − now − margin.
//
// The result is never zero (zero means "forever" to the kernel): when no
// whole second fits, it returns 1 s and ok false, meaning the address layer
// cannot expire in time and the caller must remove the address instead.
func LifetimeFor(deadline, now time.Time, margin time.Duration) (time.Duration, bool) {
	left := deadline.Sub(now) - margin - AddrLifetimeSlack
	secs := left.Truncate(time.Second)
	if secs < time.Second {
		return time.Second, false
	}
	return secs, true
}
