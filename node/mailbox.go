package node

import "sync"

// mailbox is a group's event queue. Posting never blocks: the supervisor
// fans every renewal, session change and watch event out to all groups
// from one goroutine, so one group whose actuator hangs (an Addresses.Add
// that never returns) must not hold up the others' renewals and fence
// refreshes, nor its own actuators' completions.
//
// Events are delivered in the order they were posted, except:
//   - Renewed coalesces: at most one waits, in the place of the first,
//     carrying the latest deadline, so a stuck group's queue grows only
//     with events that carry news (a renewal only moves the deadline on);
//   - a Renewed is dropped while no session is up (after SessionLost and
//     before the next SessionUp, as posted), and SessionUp and SessionLost
//     drop a waiting one: it can only be the last renewal of a lost
//     session, which must not count after its loss. The supervisor posts
//     SessionUp before it starts renewing the new session.
//
// Nothing else is ever dropped.
type mailbox struct {
	mu      sync.Mutex
	q       []Event
	renewed int  // index in q of the waiting Renewed, -1: none
	live    bool // a session is up (as posted)
	ready   chan struct{}
}

func newMailbox() *mailbox {
	return &mailbox{renewed: -1, ready: make(chan struct{}, 1)}
}

// post queues ev; it never blocks.
func (b *mailbox) post(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case Renewed:
		if !b.live {
			return
		}
		if b.renewed >= 0 {
			if w := b.q[b.renewed].(Renewed); ev.Deadline.After(w.Deadline) {
				b.q[b.renewed] = ev
			}
			return
		}
		b.renewed = len(b.q)
	case SessionUp, SessionLost:
		_, b.live = ev.(SessionUp)
		if b.renewed >= 0 {
			b.q = append(b.q[:b.renewed], b.q[b.renewed+1:]...)
			b.renewed = -1
		}
	}
	b.q = append(b.q, ev)
	b.signal()
}

// take returns the oldest event, if any.
func (b *mailbox) take() (Event, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.q) == 0 {
		return nil, false
	}
	ev := b.q[0]
	b.q[0] = nil
	b.q = b.q[1:]
	b.renewed--
	if b.renewed < -1 {
		b.renewed = -1
	}
	if len(b.q) > 0 {
		b.signal()
	}
	return ev, true
}

// signal marks the mailbox ready (the one slot may already be full).
func (b *mailbox) signal() {
	select {
	case b.ready <- struct{}{}:
	default:
	}
}

// len is the number of waiting events.
func (b *mailbox) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.q)
}
