package quorum

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func testOpts() Options {
	o := ScaledOptions(time.Second)
	o.Node = "n1"
	return o
}

func TestOptionsValidate(t *testing.T) {
	if err := testOpts().Validate(time.Second); err != nil {
		t.Fatalf("scaled options: %v", err)
	}
	o := testOpts()
	o.RenewInterval = 600 * time.Millisecond
	o.Margin = 0
	err := o.Validate(2 * time.Second)
	for _, want := range []string{"renew_interval", "margin", "below the backend minimum"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to mention %q", err, want)
		}
	}
}

// The deadline counts from the send time of the renewal, never the reply,
// and uses the smaller of our TTL and the server's.
func TestDeadlineFromSendTime(t *testing.T) {
	o := testOpts()
	sent := time.Unix(100, 0)
	if got, want := o.DeadlineAfter(sent, 0), sent.Add(o.TTL-o.Drift-o.Margin); !got.Equal(want) {
		t.Fatalf("DeadlineAfter = %v, want %v", got, want)
	}
	if got, want := o.DeadlineAfter(sent, 500*time.Millisecond), sent.Add(500*time.Millisecond-o.Drift-o.Margin); !got.Equal(want) {
		t.Fatalf("with a shorter server TTL: %v, want %v", got, want)
	}
}

func TestRenewerExtendsAndSignalsLossBeforeDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := testOpts()
		rtt := 5 * time.Millisecond
		var fail atomic.Bool
		renew := func(ctx context.Context) (time.Duration, error) {
			if fail.Load() {
				<-ctx.Done() // the quorum is unreachable: every request times out
				return 0, ctx.Err()
			}
			time.Sleep(rtt)
			return 0, nil
		}
		start := time.Now()
		r := NewRenewer(o, renew, start, 0)
		var renewals atomic.Int32
		var lastDeadline atomic.Int64 // the deadline of the last acknowledged renewal
		r.OnRenew(func(_ time.Duration, d time.Time) {
			renewals.Add(1)
			lastDeadline.Store(d.UnixNano())
		})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		time.Sleep(2 * time.Second)
		if n := renewals.Load(); n < 10 {
			t.Fatalf("%d renewals in 2 s, want one per %v", n, o.RenewInterval)
		}
		d := r.Deadline()
		if left := time.Until(d); left < o.TTL-o.Drift-o.Margin-o.RenewInterval-rtt || left > o.TTL {
			t.Fatalf("deadline %v ahead after steady renewals", left)
		}
		// The quorum goes away: loss comes DemoteBudget before the deadline
		// of the last renewal acknowledged (one in flight when the quorum
		// went away may still land and move it).
		fail.Store(true)
		err := <-done
		lostAt := time.Now()
		if !errors.Is(err, ErrLost) || !errors.Is(r.Err(), ErrLost) {
			t.Fatalf("Run = %v, want ErrLost", err)
		}
		if margin := time.Unix(0, lastDeadline.Load()).Sub(lostAt); margin < o.DemoteBudget {
			t.Fatalf("loss signalled %v before the deadline, want at least the demote budget %v", margin, o.DemoteBudget)
		}
		select {
		case <-r.Done():
		default:
			t.Fatal("Done not closed after loss")
		}
		if !r.Deadline().IsZero() {
			t.Fatal("Deadline not zero after loss")
		}
	})
}

func TestRenewerLostAtQuorum(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := testOpts()
		r := NewRenewer(o, func(context.Context) (time.Duration, error) {
			return 0, errors.New("lease not found: " + ErrLost.Error())
		}, time.Now(), 0)
		lost := NewRenewer(o, func(context.Context) (time.Duration, error) {
			return 0, ErrLost
		}, time.Now(), 0)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if err := lost.Run(ctx); !errors.Is(err, ErrLost) {
			t.Fatalf("Run = %v, want ErrLost at once", err)
		}
		// A plain error is retried until the loss point, not treated as lost.
		go r.Run(ctx)
		time.Sleep(o.RenewInterval * 2)
		select {
		case <-r.Done():
			t.Fatal("a transient error ended the session early")
		default:
		}
	})
}

// A link flap shorter than the time left to the loss point: the attempts
// sent into the outage stay stuck until their timeout (a connection in
// TCP's retransmission backoff), but another is sent every hedge delay, and
// the first one after the outage is acknowledged before the loss point.
// Attempts are not hedged while the quorum answers within the delay, and
// never more than 4 run at once.
func TestRenewerHedgesThroughALinkFlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := testOpts() // TTL 1 s, renew 125 ms: loss 790 ms after the last acknowledged send
		var down atomic.Bool
		var cur, most atomic.Int32
		renew := func(ctx context.Context) (time.Duration, error) {
			n := cur.Add(1)
			defer cur.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			if down.Load() {
				<-ctx.Done()
				return 0, ctx.Err()
			}
			time.Sleep(2 * time.Millisecond)
			return 0, nil
		}
		r := NewRenewer(o, renew, time.Now(), 0)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		time.Sleep(990 * time.Millisecond)
		if m := most.Load(); m != 1 {
			t.Fatalf("%d attempts at once while the quorum answered in 2 ms, want 1", m)
		}
		down.Store(true)
		time.Sleep(600 * time.Millisecond)
		down.Store(false)
		time.Sleep(time.Second)
		select {
		case err := <-done:
			t.Fatalf("session lost over a 600 ms outage that ended before the loss point: %v", err)
		default:
		}
		if m := most.Load(); m < 2 || m > maxInFlight {
			t.Errorf("at most %d attempts at once during the outage, want 2..%d", m, maxInFlight)
		}
		if left := time.Until(r.Deadline()); left < o.TTL-o.Drift-o.Margin-o.RenewInterval-10*time.Millisecond {
			t.Errorf("deadline only %v ahead a second after the outage", left)
		}
	})
}

// An attempt answered late, after a newer one, does not set the round trip
// that paces hedging: the path is as fast as the newest answer says.
func TestRenewerRTTFromNewestAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := testOpts()
		var calls atomic.Int32
		release := make(chan struct{})
		renew := func(ctx context.Context) (time.Duration, error) {
			if calls.Add(1) == 1 {
				<-release // the first attempt waits out an outage
				return 0, nil
			}
			time.Sleep(2 * time.Millisecond)
			return 0, nil
		}
		r := NewRenewer(o, renew, time.Now(), 0)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go r.Run(ctx)
		time.Sleep(o.RenewInterval + o.RenewInterval/4 + 10*time.Millisecond)
		synctest.Wait()
		if calls.Load() < 2 || r.LastRTT() != 2*time.Millisecond {
			t.Fatalf("after the hedge: %d attempts, last RTT %v, want 2 and 2ms", calls.Load(), r.LastRTT())
		}
		close(release)
		synctest.Wait()
		if rtt := r.LastRTT(); rtt != 2*time.Millisecond {
			t.Errorf("last RTT %v after the stale attempt's answer, want 2ms", rtt)
		}
	})
}
