package fencing

import (
	"context"
	"net/netip"
	"time"
)

// LifetimeOnly is the Fence used when nftables is off or unusable: it
// drops nothing, and the VIP's address lifetime (set by the caller on
// every renewal) is the only layer that withdraws the VIP if the daemon
// dies. The lease TTL must then exceed the lifetime + 2 s (DESIGN.md).
type LifetimeOnly struct{}

func (LifetimeOnly) Install(context.Context) error                 { return nil }
func (LifetimeOnly) Manage([]netip.Addr) error                     { return nil }
func (LifetimeOnly) Arm(netip.Addr, time.Duration) error           { return nil }
func (LifetimeOnly) Disarm(netip.Addr) error                       { return nil }
func (LifetimeOnly) Armed(netip.Addr) (time.Duration, bool, error) { return 0, false, nil }
func (LifetimeOnly) Remove() error                                 { return nil }
