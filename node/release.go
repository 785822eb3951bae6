package node

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leasehold/leasehold/quorum"
)

// releaser releases grants and retries a release that failed while the
// session lives. A key left under a live session never expires at the
// quorum (the session keeps renewing it), so one failed release (a leader
// change, a timeout) would lock every other node out of the group until
// this node restarts.
//
// An acquire of the same group cancels a pending retry first (Cancel), and
// waits for an attempt in flight: the holder's acquire returns the grant it
// still holds, and a late release must not delete it under the new owner's
// feet.
type releaser struct {
	log      *slog.Logger
	interval time.Duration // between retries (doubling, up to maxRetryGap)
	timeout  time.Duration // per retry

	mu sync.Mutex // held across each attempt and by Cancel
	// pending is the epoch a retry loop is working on (0: none); written
	// under mu, read without it (Pending must not wait for an attempt).
	pending atomic.Uint64
	// calls counts release requests sent to the quorum (retries included).
	calls atomic.Uint64
}

const maxRetryGap = 2 * time.Second

// Release releases g through l, now (within ctx); if that fails for a
// reason a retry can fix, it keeps trying in the background while live(l)
// says the session is still the group's (and until Cancel, success, or an
// answer that the key is no longer g's).
func (r *releaser) Release(ctx context.Context, l Lease, g quorum.Grant, live func(Lease) bool) error {
	r.mu.Lock()
	r.calls.Add(1)
	err := l.Release(ctx, g)
	retry := retryable(err)
	if retry {
		r.pending.Store(g.Epoch)
	}
	r.mu.Unlock()
	if retry {
		go r.loop(l, g, live)
	}
	return err
}

// Cancel stops a pending retry (and waits for an attempt in flight).
func (r *releaser) Cancel() {
	r.mu.Lock()
	r.pending.Store(0)
	r.mu.Unlock()
}

// Pending is the epoch still to release (0: none).
func (r *releaser) Pending() uint64 { return r.pending.Load() }

func (r *releaser) loop(l Lease, g quorum.Grant, live func(Lease) bool) {
	gap := r.interval
	for tries := 1; ; tries++ {
		time.Sleep(gap)
		gap = min(2*gap, maxRetryGap)
		r.mu.Lock()
		if r.pending.Load() != g.Epoch || !live(l) {
			// Cancelled, replaced, or the session is gone (its keys go with it).
			r.pending.CompareAndSwap(g.Epoch, 0)
			r.mu.Unlock()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
		r.calls.Add(1)
		err := l.Release(ctx, g)
		cancel()
		if !retryable(err) {
			r.pending.Store(0)
			r.mu.Unlock()
			r.log.Info("release retried", "epoch", g.Epoch, "tries", tries+1, "result", errText(err))
			return
		}
		r.mu.Unlock()
		r.log.Warn("release failed again; the key stays under our live session until it succeeds",
			"epoch", g.Epoch, "tries", tries+1, "err", err)
	}
}

// retryable: the release may not have happened and trying again can help.
// Done, "not owner" (the key is no longer this grant's) and a lost or closed
// session (its keys go with it) are final.
func retryable(err error) bool {
	return err != nil && !errors.Is(err, quorum.ErrNotOwner) && !errors.Is(err, quorum.ErrLost) &&
		!errors.Is(err, quorum.ErrClosed)
}

func errText(err error) string {
	if err == nil {
		return "released"
	}
	return err.Error()
}
