package quorum

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// RenewFunc sends one renewal of the session's lease and returns the TTL the
// server granted (0 if unknown). An error wrapping ErrLost means the lease is
// gone at the quorum; any other error is retried until the loss point.
type RenewFunc func(ctx context.Context) (serverTTL time.Duration, err error)

// Renewer keeps a session's local deadline and renews on its own timer. Both
// backends embed it. The deadline is computed from the send time of the last
// acknowledged renewal, never from the reply time.
type Renewer struct {
	opts  Options
	renew RenewFunc

	mu       sync.Mutex
	deadline time.Time
	lastRTT  time.Duration
	done     chan struct{}
	err      error
	onRenew  func(rtt time.Duration, deadline time.Time)
}

// NewRenewer starts tracking a lease granted by a request sent at sent.
func NewRenewer(opts Options, renew RenewFunc, sent time.Time, serverTTL time.Duration) *Renewer {
	return &Renewer{
		opts:     opts,
		renew:    renew,
		deadline: opts.DeadlineAfter(sent, serverTTL),
		done:     make(chan struct{}),
	}
}

// OnRenew registers a callback run after every acknowledged renewal (for
// metrics and the kernel fence). Set it before Run.
func (r *Renewer) OnRenew(f func(rtt time.Duration, deadline time.Time)) { r.onRenew = f }

// Deadline is the local deadline, zero after loss.
func (r *Renewer) Deadline() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return time.Time{}
	}
	return r.deadline
}

// LastRTT is the round trip of the last acknowledged renewal.
func (r *Renewer) LastRTT() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastRTT
}

// Done is closed on loss or close.
func (r *Renewer) Done() <-chan struct{} { return r.done }

// Err says why Done was closed.
func (r *Renewer) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Lose ends the session with err (first call wins).
func (r *Renewer) Lose(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return
	}
	r.err = err
	close(r.done)
}

// lossPoint is when loss must be signalled: the deadline minus the demote budget.
func (r *Renewer) lossPoint() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.deadline.Add(-r.opts.DemoteBudget)
}

func (r *Renewer) ack(sent time.Time, serverTTL time.Duration) time.Time {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if d := r.opts.DeadlineAfter(sent, serverTTL); d.After(r.deadline) {
		r.deadline = d
	}
	r.lastRTT = now.Sub(sent)
	return r.deadline
}

// Run renews every RenewInterval until ctx ends or the session is lost. A
// failed renewal is retried at once-per-RenewInterval/4 until the loss point.
func (r *Renewer) Run(ctx context.Context) error {
	next := time.Now().Add(r.opts.RenewInterval)
	for {
		loss := r.lossPoint()
		wake := next
		if loss.Before(wake) {
			wake = loss
		}
		t := time.NewTimer(time.Until(wake))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-r.done:
			t.Stop()
			return r.Err()
		case <-t.C:
		}
		now := time.Now()
		if !now.Before(r.lossPoint()) {
			r.Lose(fmt.Errorf("%w: no acknowledged renewal; local deadline in %v", ErrLost, time.Until(r.Deadline())))
			return r.Err()
		}
		timeout := min(r.opts.RequestTimeout, r.lossPoint().Sub(now))
		rctx, cancel := context.WithTimeout(ctx, timeout)
		sent := time.Now()
		ttl, err := r.renew(rctx)
		cancel()
		switch {
		case err == nil:
			d := r.ack(sent, ttl)
			// A freeze between the reply and here is caught: if the deadline
			// is already past, the ack is worthless.
			if !time.Now().Before(d.Add(-r.opts.DemoteBudget)) {
				r.Lose(fmt.Errorf("%w: renewal acknowledged too late", ErrLost))
				return r.Err()
			}
			if r.onRenew != nil {
				r.onRenew(r.LastRTT(), d)
			}
			next = sent.Add(r.opts.RenewInterval)
		case errors.Is(err, ErrLost):
			r.Lose(err)
			return r.Err()
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			next = time.Now().Add(r.opts.RenewInterval / 4)
		}
	}
}
