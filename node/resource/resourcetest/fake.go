// Package resourcetest holds a fake resource.Resource for unit tests, with
// a ledger shared by the fakes of several nodes that records the worst
// safety violation it saw: two nodes active at once.
package resourcetest

import (
	"context"
	"fmt"
	"sync"
)

// Ledger is the shared truth of one resource across nodes (what DRBD's
// peer or MySQL's replication would see): who is active, for which epoch.
type Ledger struct {
	mu      sync.Mutex
	active  map[string]uint64 // node → epoch
	maxSeen int
	calls   []string
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger { return &Ledger{active: map[string]uint64{}} }

// MaxActive is the largest number of nodes that were active at once.
func (l *Ledger) MaxActive() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.maxSeen
}

// Active returns the active nodes and their epochs now.
func (l *Ledger) Active() map[string]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]uint64, len(l.active))
	for k, v := range l.active {
		out[k] = v
	}
	return out
}

// Calls lists every call in order ("n1 promote 7").
func (l *Ledger) Calls() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls...)
}

// Fake is one node's side of the resource.
type Fake struct {
	Node   string
	Ledger *Ledger

	mu sync.Mutex
	// FailPromote, FailDemote make the next calls fail; Hang blocks calls
	// until the call's ctx ends.
	FailPromote, FailDemote error
	Hang                    bool
}

// Name implements resource.Resource.
func (f *Fake) Name() string { return "fake " + f.Node }

// wait blocks until ctx ends when the fake hangs.
func (f *Fake) wait(ctx context.Context) error {
	f.mu.Lock()
	hang := f.Hang
	f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

// Set changes the fake's behaviour (goroutine-safe).
func (f *Fake) Set(failPromote, failDemote error, hang bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.FailPromote, f.FailDemote, f.Hang = failPromote, failDemote, hang
}

// Promote marks the node active for epoch (unless told to fail).
func (f *Fake) Promote(ctx context.Context, epoch uint64) error {
	return f.call(ctx, "promote", epoch)
}

// Demote marks the node passive (unless told to fail: then it stays
// active, as a hung resource would).
func (f *Fake) Demote(ctx context.Context, epoch uint64) error {
	return f.call(ctx, "demote", epoch)
}

func (f *Fake) call(ctx context.Context, verb string, epoch uint64) error {
	if err := f.wait(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	fail := f.FailDemote
	if verb == "promote" {
		fail = f.FailPromote
	}
	f.mu.Unlock()
	l := f.Ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, fmt.Sprintf("%s %s %d", f.Node, verb, epoch))
	switch {
	case fail != nil:
		return fail
	case verb == "promote":
		l.active[f.Node] = epoch
		l.maxSeen = max(l.maxSeen, len(l.active))
	default:
		delete(l.active, f.Node)
	}
	return nil
}
