package resource

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrStaleEpoch: a call for an epoch older than one the chain has seen.
var ErrStaleEpoch = errors.New("resource: stale epoch")

// Resource is one thing a group's owner holds besides its VIPs. Both calls
// are idempotent for an epoch and bounded by ctx.
type Resource interface {
	// Name says what it is in logs and errors ("hooks", "drbd r0").
	Name() string
	// Promote makes this node the resource's active side for the grant of
	// epoch (DRBD Primary, MySQL writable).
	Promote(ctx context.Context, epoch uint64) error
	// Demote makes it passive again (the grant of epoch ends).
	Demote(ctx context.Context, epoch uint64) error
}

// Starter is a Resource with something to do before its group runs: a
// node that starts holds no lease, so whatever an earlier run left active
// (a DRBD Primary, a mounted filesystem) is demoted before the group joins
// VRRP. Start is idempotent and bounded by ctx.
type Starter interface {
	Start(ctx context.Context) error
}

// Guard is a Resource that protects the ones after it in a chain (the
// watchdog: armed while they are active, so a node that cannot demote
// them resets). A chain does not demote a Guard when a resource after it
// failed to demote: it calls Escalate instead, and the guard stays armed
// while something may still be active and makes sure it acts (the
// watchdog stops being fed, so the machine resets).
type Guard interface {
	Resource
	Escalate(epoch uint64, cause error)
}

// Chain runs resources in order under an epoch guard; it implements
// node.Resources. The zero Chain has no resources.
type Chain struct {
	rs []Resource
	// call is held through a Promote, Demote or Start: a demotion that
	// starts while a promotion is in flight (its step timed out, the
	// lease was lost, the daemon stops) waits for it and then undoes it,
	// instead of racing it (DRBD made Primary after the demotion ran).
	call chan struct{}

	mu       sync.Mutex
	seen     uint64 // highest epoch promoted or demoted
	promoted uint64 // epoch of the current promotion, 0 when none
}

// NewChain returns a chain of rs (promoted in this order).
func NewChain(rs ...Resource) *Chain { return &Chain{rs: rs, call: make(chan struct{}, 1)} }

// enter waits for the calls before this one, at most until ctx ends.
func (c *Chain) enter(ctx context.Context, what string, epoch uint64) error {
	select {
	case c.call <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("resource: %s (epoch %d): waiting for the call in flight: %w", what, epoch, ctx.Err())
	}
}

func (c *Chain) leave() { <-c.call }

// Promoted is the epoch the chain is promoted for (0: none).
func (c *Chain) Promoted() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.promoted
}

// Len is the number of resources.
func (c *Chain) Len() int { return len(c.rs) }

// Promote promotes every resource in order for epoch. On a failure it
// demotes, in reverse, the failed one and the ones already promoted, and
// returns the failure.
func (c *Chain) Promote(ctx context.Context, epoch uint64) error {
	if err := c.enter(ctx, "promote", epoch); err != nil {
		return err
	}
	defer c.leave()
	c.mu.Lock()
	if epoch == 0 || epoch < c.seen {
		c.mu.Unlock()
		return fmt.Errorf("%w: promote for epoch %d after epoch %d", ErrStaleEpoch, epoch, c.seen)
	}
	c.seen = epoch
	c.mu.Unlock()
	for i, r := range c.rs {
		if err := r.Promote(ctx, epoch); err != nil {
			err = fmt.Errorf("resource %s: promote (epoch %d): %w", r.Name(), epoch, err)
			// The failed one too: it may have got halfway (DRBD Primary,
			// the mount failed), and Demote is idempotent.
			undo := demoteAll(ctx, c.rs[:i+1], epoch)
			return errors.Join(err, undo)
		}
	}
	c.mu.Lock()
	c.promoted = epoch
	c.mu.Unlock()
	return nil
}

// Demote demotes every resource in reverse order for epoch, even after a
// failure (a Guard excepted: it stays active when a resource after it
// failed), and returns every error. It waits for a call in flight (a
// promotion) first, within ctx. A demotion for an epoch older than one
// already seen is refused: that grant ended before the newer one began.
func (c *Chain) Demote(ctx context.Context, epoch uint64) error {
	if err := c.enter(ctx, "demote", epoch); err != nil {
		return err
	}
	defer c.leave()
	c.mu.Lock()
	if epoch < c.seen {
		c.mu.Unlock()
		return fmt.Errorf("%w: demote for epoch %d after epoch %d", ErrStaleEpoch, epoch, c.seen)
	}
	c.seen = epoch
	c.promoted = 0
	c.mu.Unlock()
	return demoteAll(ctx, c.rs, epoch)
}

// Start calls Start on every resource that is a Starter, in reverse
// order (as a demotion), even after a failure, and returns every error.
// The daemon calls it before the group runs; an error keeps the node from
// starting (a leftover it cannot demote is not safe to run beside).
func (c *Chain) Start(ctx context.Context) error {
	if err := c.enter(ctx, "start", 0); err != nil {
		return err
	}
	defer c.leave()
	var errs []error
	for i := len(c.rs) - 1; i >= 0; i-- {
		if s, ok := c.rs[i].(Starter); ok {
			if err := s.Start(ctx); err != nil {
				errs = append(errs, fmt.Errorf("resource %s: start: %w", c.rs[i].Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}

func demoteAll(ctx context.Context, rs []Resource, epoch uint64) error {
	var errs []error
	for i := len(rs) - 1; i >= 0; i-- {
		if g, guard := rs[i].(Guard); guard && len(errs) > 0 {
			g.Escalate(epoch, errors.Join(errs...))
			errs = append(errs, fmt.Errorf("resource %s: left active and escalated (epoch %d): a resource it guards failed to demote", rs[i].Name(), epoch))
			continue
		}
		if err := rs[i].Demote(ctx, epoch); err != nil {
			errs = append(errs, fmt.Errorf("resource %s: demote (epoch %d): %w", rs[i].Name(), epoch, err))
		}
	}
	return errors.Join(errs...)
}
