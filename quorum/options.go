package quorum

import (
	"errors"
	"fmt"
	"time"
)

// Options are the lease timings shared by both backends.
type Options struct {
	// Node names this node at the quorum (the value's "node" field).
	Node string
	// Addr is this node's address, recorded for peer-fence hooks.
	Addr string
	// TTL of the session's lease at the quorum.
	TTL time.Duration
	// RenewInterval is how often we renew on our own timer.
	RenewInterval time.Duration
	// Drift bounds how much this node's clock may run slow against the
	// quorum's over one TTL.
	Drift time.Duration
	// Margin is subtracted from the local deadline on top of Drift.
	Margin time.Duration
	// DemoteBudget is the time the demotion pipeline needs: loss is signalled
	// this long before the local deadline.
	DemoteBudget time.Duration
	// RequestTimeout bounds one quorum request.
	RequestTimeout time.Duration
	// HistoryLen bounds the grants kept per group for `lease history`.
	HistoryLen int
}

// DefaultOptions suit etcd with its default minimum TTL (2 s).
func DefaultOptions() Options {
	return Options{
		TTL:            2 * time.Second,
		RenewInterval:  250 * time.Millisecond,
		Drift:          20 * time.Millisecond,
		Margin:         100 * time.Millisecond,
		DemoteBudget:   300 * time.Millisecond,
		RequestTimeout: 500 * time.Millisecond,
		HistoryLen:     20,
	}
}

// ScaledOptions returns defaults proportioned to ttl (renew ttl/8, drift 1 %,
// margin 5 %, demote budget 15 %, request timeout ttl/4).
func ScaledOptions(ttl time.Duration) Options {
	o := DefaultOptions()
	o.TTL = ttl
	o.RenewInterval = ttl / 8
	o.Drift = max(ttl/100, time.Millisecond)
	o.Margin = max(ttl/20, time.Millisecond)
	o.DemoteBudget = ttl * 15 / 100
	o.RequestTimeout = ttl / 4
	return o
}

// Validate checks the options against a backend's minimum TTL.
func (o Options) Validate(minTTL time.Duration) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("quorum: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if o.Node == "" {
		bad("node", "must be set")
	}
	if o.TTL < minTTL {
		bad("ttl", "%v is below the backend minimum %v", o.TTL, minTTL)
	}
	if o.RenewInterval <= 0 || o.RenewInterval >= o.TTL/2 {
		bad("renew_interval", "%v must be > 0 and < ttl/2 (%v)", o.RenewInterval, o.TTL/2)
	}
	if o.Margin <= 0 {
		bad("margin", "must be > 0")
	}
	if o.Drift < 0 {
		bad("drift", "must be >= 0")
	}
	if o.DemoteBudget <= 0 {
		bad("demote_budget", "must be > 0")
	}
	if o.RequestTimeout <= 0 || o.RequestTimeout > o.TTL {
		bad("request_timeout", "%v must be > 0 and <= ttl", o.RequestTimeout)
	}
	if o.Drift+o.Margin+o.DemoteBudget+o.RenewInterval >= o.TTL {
		bad("ttl", "%v leaves no time to renew: drift+margin+demote_budget+renew_interval = %v",
			o.TTL, o.Drift+o.Margin+o.DemoteBudget+o.RenewInterval)
	}
	if o.HistoryLen < 0 || o.HistoryLen > 1000 {
		bad("history_len", "%d must be 0..1000", o.HistoryLen)
	}
	return errors.Join(errs...)
}

// DeadlineAfter is the local deadline for a renewal sent at sent and
// acknowledged with the server-side ttl (the smaller of it and o.TTL counts).
func (o Options) DeadlineAfter(sent time.Time, serverTTL time.Duration) time.Time {
	ttl := o.TTL
	if serverTTL > 0 && serverTTL < ttl {
		ttl = serverTTL
	}
	return sent.Add(ttl - o.Drift - o.Margin)
}
