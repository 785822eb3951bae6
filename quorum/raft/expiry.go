package raft

import (
	"sync"
	"time"
)

// expirer holds the leader's per-session timers. They are not replicated:
// only the leader's clock decides expiry. A timer is (re)armed with the full
// TTL whenever the leader applies a touch (open or renew) and, for every
// session, when this voter becomes leader, so a leader change never shortens
// a lease. When a timer fires, expire applies an "expire" command that names
// the touch the timer was armed for; the FSM ignores it if the session was
// touched since.
type expirer struct {
	mu     sync.Mutex
	leader bool
	timers map[string]*sessionTimer
	expire func(id string, touched uint64)
}

type sessionTimer struct {
	t       *time.Timer
	touched uint64
	at      time.Time // when it fires
}

func newExpirer(expire func(id string, touched uint64)) *expirer {
	return &expirer{timers: map[string]*sessionTimer{}, expire: expire}
}

// touch rearms id's timer with the full ttl if we lead.
func (e *expirer) touch(id string, touched uint64, ttl time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.leader {
		return
	}
	e.armLocked(id, touched, ttl)
}

func (e *expirer) armLocked(id string, touched uint64, ttl time.Duration) {
	st, ok := e.timers[id]
	if ok {
		st.t.Stop()
		touched = max(touched, st.touched)
	}
	st = &sessionTimer{touched: touched, at: time.Now().Add(ttl)}
	st.t = time.AfterFunc(ttl, func() { e.expire(id, touched) })
	e.timers[id] = st
}

// retry rearms id's timer after delay if we still lead and it was not
// touched since (an expire that failed to commit).
func (e *expirer) retry(id string, touched uint64, delay time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st, ok := e.timers[id]
	if !e.leader || !ok || st.touched != touched {
		return
	}
	st.t.Stop()
	st.at = time.Now().Add(delay)
	st.t = time.AfterFunc(delay, func() { e.expire(id, touched) })
}

// drop forgets id (closed or expired).
func (e *expirer) drop(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if st, ok := e.timers[id]; ok {
		st.t.Stop()
		delete(e.timers, id)
	}
}

// lead makes this voter the expiry authority and starts a timer with the
// full TTL for every session list returns. list is read after the leader flag
// is set, so a touch applied concurrently is either in the list or rearms
// its timer itself.
func (e *expirer) lead(list func() []session) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.leader = true
	for _, s := range list() {
		e.armLocked(s.ID, s.Touched, s.TTL)
	}
}

// stale handles an expire the FSM ignored because the session was touched
// after base: if no later touch rearmed the timer, rearm it with the full
// ttl, so the session cannot outlive a dead holder.
func (e *expirer) stale(id string, base, touched uint64, ttl time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if st, ok := e.timers[id]; e.leader && (!ok || st.touched <= base) {
		e.armLocked(id, touched, ttl)
	}
}

// follow stops every timer: a follower never expires anything.
func (e *expirer) follow() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.leader = false
	for id, st := range e.timers {
		st.t.Stop()
		delete(e.timers, id)
	}
}

// left is the time until id's timer fires; -1 if unknown.
func (e *expirer) left(id string) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	st, ok := e.timers[id]
	if !ok || !e.leader {
		return -1
	}
	return max(time.Until(st.at), 0)
}
