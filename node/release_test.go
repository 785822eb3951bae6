package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/quorum"
)

// flakyLease fails the first fails releases with a timeout, then answers
// with final (nil: released).
type flakyLease struct {
	mu       sync.Mutex
	fails    int
	final    error
	releases []time.Time
}

func (l *flakyLease) Acquire(context.Context, string, int) (quorum.Grant, error) {
	return quorum.Grant{}, errors.New("unused")
}

func (l *flakyLease) Release(ctx context.Context, g quorum.Grant) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.releases = append(l.releases, time.Now())
	if len(l.releases) <= l.fails {
		return fmt.Errorf("release: %w", context.DeadlineExceeded)
	}
	return l.final
}

func (l *flakyLease) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.releases)
}

func newReleaser() *releaser {
	return &releaser{log: slog.New(slog.DiscardHandler), interval: 100 * time.Millisecond, timeout: time.Second}
}

var always = func(Lease) bool { return true }

func TestReleaserRetriesUntilReleased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, l := newReleaser(), &flakyLease{fails: 4}
		g := quorum.Grant{Group: "g", Epoch: 7}
		if err := r.Release(context.Background(), l, g, always); err == nil {
			t.Fatal("first attempt: want its error")
		}
		if r.Pending() != 7 {
			t.Fatalf("pending %d, want 7", r.Pending())
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n := l.count(); n != 5 || r.Pending() != 0 {
			t.Fatalf("%d attempts, pending %d; want 5 attempts and nothing pending", n, r.Pending())
		}
		// Backoff: 100, 200, 400, 800 ms between attempts.
		for i, want := range []time.Duration{100, 200, 400, 800} {
			if gap := l.releases[i+1].Sub(l.releases[i]); gap != want*time.Millisecond {
				t.Errorf("gap %d: %v, want %v", i, gap, want*time.Millisecond)
			}
		}
	})
}

func TestReleaserStops(t *testing.T) {
	for _, c := range []struct {
		name  string
		final error
		live  bool
		stop  func(r *releaser)
		calls int
	}{
		{"not owner is final", fmt.Errorf("x: %w", quorum.ErrNotOwner), true, nil, 2},
		{"a lost session is final", fmt.Errorf("x: %w", quorum.ErrLost), true, nil, 2},
		{"a replaced session stops it", nil, false, nil, 1},
		{"an acquire cancels it", nil, true, func(r *releaser) { r.Cancel() }, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r, l := newReleaser(), &flakyLease{fails: 1, final: c.final}
				live := func(Lease) bool { return c.live }
				r.Release(context.Background(), l, quorum.Grant{Group: "g", Epoch: 3}, live)
				if c.stop != nil {
					c.stop(r)
				}
				time.Sleep(10 * time.Second)
				synctest.Wait()
				if n := l.count(); n != c.calls || r.Pending() != 0 {
					t.Fatalf("%d attempts, pending %d; want %d and none", n, r.Pending(), c.calls)
				}
			})
		})
	}
}

func TestReleaserDoesNotRetryFinalAnswers(t *testing.T) {
	r, l := newReleaser(), &flakyLease{final: fmt.Errorf("x: %w", quorum.ErrNotOwner)}
	if err := r.Release(context.Background(), l, quorum.Grant{Group: "g", Epoch: 3}, always); !errors.Is(err, quorum.ErrNotOwner) {
		t.Fatalf("err %v", err)
	}
	if r.Pending() != 0 {
		t.Fatal("a final answer left a retry pending")
	}
}
