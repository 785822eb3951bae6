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
	lastSent time.Time // send time of the attempt lastRTT was taken from
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

// LastRTT is the round trip of the newest acknowledged renewal (by send
// time: an older attempt answered later does not count).
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
	// A hedged attempt answered late (it waited out an outage in TCP's
	// backoff) says nothing about the path now: the round trip is taken
	// from the newest attempt answered so far.
	if sent.After(r.lastSent) {
		r.lastSent = sent
		r.lastRTT = now.Sub(sent)
	}
	return r.deadline
}

// Run renews every RenewInterval until ctx ends or the session is lost.
//
// An attempt not answered within the hedge delay (RenewInterval/4, or four
// round trips of the last acknowledged renewal if longer) is joined by
// another, until one is acknowledged; each is bounded by RequestTimeout and
// the loss point. After a short network outage (a link flap), the attempt
// sent during it waits in TCP's retransmission backoff, or times out, while
// a fresh one gets through as soon as the path is back: a blip that ends
// before the loss point keeps the session. At most maxInFlight attempts run
// at once, so a slow quorum sees a few more requests, not a storm. A
// failed attempt is retried after the hedge delay. Every acknowledgement
// moves the deadline from its own attempt's send time.
func (r *Renewer) Run(ctx context.Context) error {
	type result struct {
		sent time.Time
		ttl  time.Duration
		err  error
	}
	results := make(chan result, maxInFlight) // never blocks an attempt
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	inFlight := 0
	var newest time.Time // send time of the newest acknowledged attempt
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
		case res := <-results:
			t.Stop()
			inFlight--
			switch {
			case res.err == nil:
				d := r.ack(res.sent, res.ttl)
				// A freeze between the reply and here is caught: if the
				// deadline is already past, the ack is worthless.
				if !time.Now().Before(d.Add(-r.opts.DemoteBudget)) {
					r.Lose(fmt.Errorf("%w: renewal acknowledged too late", ErrLost))
					return r.Err()
				}
				if r.onRenew != nil {
					r.onRenew(r.LastRTT(), d)
				}
				if res.sent.After(newest) {
					newest = res.sent
					next = newest.Add(r.opts.RenewInterval)
				}
			case errors.Is(res.err, ErrLost):
				r.Lose(res.err)
				return r.Err()
			case ctx.Err() != nil:
				return ctx.Err()
			default:
				if retry := time.Now().Add(r.hedgeDelay()); retry.Before(next) {
					next = retry
				}
			}
			continue
		case <-t.C:
		}
		now := time.Now()
		if !now.Before(r.lossPoint()) {
			r.Lose(fmt.Errorf("%w: no acknowledged renewal; local deadline in %v", ErrLost, time.Until(r.Deadline())))
			return r.Err()
		}
		next = now.Add(r.hedgeDelay())
		if inFlight == maxInFlight {
			continue
		}
		inFlight++
		timeout := min(r.opts.RequestTimeout, r.lossPoint().Sub(now))
		go func() {
			rctx, cancel := context.WithTimeout(actx, timeout)
			defer cancel()
			sent := time.Now()
			ttl, err := r.renew(rctx)
			results <- result{sent, ttl, err}
		}()
	}
}

// maxInFlight bounds the renewal attempts running at once (Run).
const maxInFlight = 4

// hedgeDelay is how long an unanswered attempt runs alone, and the pace of
// retries after a failed one: RenewInterval/4, or four round trips of the
// last acknowledged renewal on a slow quorum, at most RenewInterval.
func (r *Renewer) hedgeDelay() time.Duration {
	return min(max(r.opts.RenewInterval/4, 4*r.LastRTT()), r.opts.RenewInterval)
}
