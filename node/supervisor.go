package node

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/leasehold/leasehold/quorum"
)

// Supervisor keeps this node's one quorum session (shared by all groups),
// reopens it after loss, and fans session and watch events out to the
// groups.
type Supervisor struct {
	backend quorum.Backend
	groups  map[string]*Group
	log     *slog.Logger
	// OnRenew, if set, observes every acknowledged renewal (metrics).
	OnRenew func(rtt time.Duration, deadline time.Time)
	// OnSession, if set, observes session up (true) and loss (false).
	OnSession func(up bool, err error)

	rosters map[string]*Roster // by instance
	kick    chan struct{}      // a member key of ours was deleted

	mu      sync.Mutex
	session quorum.Session
}

// AddRoster makes the supervisor register this node as a member of the
// roster's instance with every session, and keep the roster up to date
// from the watch (members.go). Call it before Run.
func (s *Supervisor) AddRoster(r *Roster) {
	if s.rosters == nil {
		s.rosters = map[string]*Roster{}
	}
	s.rosters[r.Instance()] = r
}

// Rosters returns the rosters by instance.
func (s *Supervisor) Rosters() map[string]*Roster { return s.rosters }

// NewSupervisor builds a supervisor. It starts nothing.
func NewSupervisor(b quorum.Backend, groups []*Group, log *slog.Logger) *Supervisor {
	m := map[string]*Group{}
	for _, g := range groups {
		m[g.Name()] = g
	}
	return &Supervisor{backend: b, groups: m, log: log, kick: make(chan struct{}, 1)}
}

// Session returns the current session (nil while there is none).
func (s *Supervisor) Session() quorum.Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.session
}

func (s *Supervisor) each(ev Event) {
	for _, g := range s.groups {
		g.Post(ev)
	}
}

// Run watches the groups' keys and keeps a session until ctx ends; it then
// leaves the session open for the groups' demotion (they release their
// keys) and returns; Close revokes it.
func (s *Supervisor) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { s.watch(ctx) })
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		octx, cancel := context.WithTimeout(ctx, 2*time.Second)
		sess, err := s.backend.Open(octx)
		cancel()
		if err != nil {
			s.log.Warn("quorum session: open failed; retrying", "err", err, "in", backoff)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		// This runs on the renewal path: Post never blocks (a stuck group
		// coalesces its renewals), so one group cannot hold up the others'
		// renewals, nor the renewal loop itself.
		sess.OnRenew(func(rtt time.Duration, d time.Time) {
			s.each(Renewed{Deadline: d})
			if s.OnRenew != nil {
				s.OnRenew(rtt, d)
			}
		})
		s.mu.Lock()
		s.session = sess
		s.mu.Unlock()
		for _, g := range s.groups {
			g.SetLease(sess)
		}
		s.log.Info("quorum session up", "session", sess.ID(), "deadline_in", time.Until(sess.Deadline()).Round(time.Millisecond))
		s.each(SessionUp{Deadline: sess.Deadline()})
		if s.OnSession != nil {
			s.OnSession(true, nil)
		}
		rctx, rcancel := context.WithCancel(context.Background())
		go sess.Run(rctx)
		if len(s.rosters) > 0 {
			wg.Go(func() { s.register(ctx, sess) })
		}
		select {
		case <-ctx.Done():
			// Keep renewing while the groups demote and release; Close
			// revokes the session and so ends its Run.
			go func() { <-sess.Done(); rcancel() }()
			return nil
		case <-sess.Done():
		}
		rcancel()
		err = sess.Err()
		s.log.Error("quorum session lost: demoting every group", "session", sess.ID(), "err", err)
		s.each(SessionLost{Err: err})
		if s.OnSession != nil {
			s.OnSession(false, err)
		}
		for _, g := range s.groups {
			g.SetLease(nil)
		}
		// The lost session is not revoked: it expires at the quorum, after
		// the local deadline, so after the kernel fence of every group it
		// held has run out. A revocation could reach the quorum before a
		// busy group has even disarmed, and hands the keys over at once to
		// the others, racing this node's own new session (a link flap just
		// past the loss point: soak fault 193).
	}
	return nil
}

// Close revokes the session (after the groups have demoted).
func (s *Supervisor) Close(ctx context.Context) error {
	s.mu.Lock()
	sess := s.session
	s.session = nil
	s.mu.Unlock()
	if sess == nil {
		return nil
	}
	return sess.Close(ctx)
}

// register holds this node's member keys for sess: at once, and again
// whenever the watch sees one deleted, until the session or ctx ends.
// A key already held (by an older session of ours about to expire) is
// retried until ours; a failed request after a second.
func (s *Supervisor) register(ctx context.Context, sess quorum.Session) {
	// Every key is acquired by this session itself, whatever the roster
	// shows: after a freeze the roster may still list the key of the lost
	// session (its deletion not yet seen on the watch), and a kick for that
	// deletion may be taken by the lost session's register. A key still
	// held by the lost session is retried every second until it expires.
	held := map[string]bool{} // acquired by sess, not yet seen deleted
	for {
		missing := 0
		for _, r := range s.rosters {
			if held[r.Key()] {
				continue
			}
			actx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := sess.Acquire(actx, r.Key(), r.priority)
			cancel()
			switch {
			case err == nil:
				held[r.Key()] = true
				s.log.Info("registered as a member at the quorum", "group", r.Instance(), "peer", r.self)
			case errors.Is(err, quorum.ErrHeld):
				missing++ // an older session's: registered until it expires
			default:
				missing++
				s.log.Warn("member registration failed; retrying", "group", r.Instance(), "err", err)
			}
		}
		var retry <-chan time.Time
		if missing > 0 {
			retry = time.After(time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-sess.Done():
			return
		case <-s.kick:
			// A key of ours was deleted (or a resync did not name it).
			clear(held)
		case <-retry:
		}
	}
}

// member routes a member key's event to its roster; ok is false for a
// group's key.
func (s *Supervisor) member(ev quorum.Event, named map[string]map[netip.Addr]bool) bool {
	inst, addr, ok := ParseMemberKey(ev.Group)
	if !ok {
		return false
	}
	r := s.rosters[inst]
	if r == nil {
		return true
	}
	switch ev.Type {
	case quorum.EventDelete:
		r.remove(addr)
		if addr.WithZone("") == r.self {
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}
	case quorum.EventPut, quorum.EventResync:
		if ev.Type == quorum.EventResync {
			if named[inst] == nil {
				named[inst] = map[netip.Addr]bool{}
			}
			named[inst][addr.WithZone("")] = true
		}
		r.put(addr, ev.Holder.Node, ev.Holder.Priority)
	}
	return true
}

// readMembers reads the member keys held now (a watch reports changes
// only). Called with the watch established and before its events are
// taken: a change after the read comes as an event after it.
func (s *Supervisor) readMembers(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	hs, err := s.backend.List(lctx)
	cancel()
	if err != nil {
		s.log.Warn("reading the members at the quorum failed; learning them from the watch", "err", err)
		return
	}
	named := map[string]map[netip.Addr]bool{}
	for _, h := range hs {
		s.member(quorum.Event{Type: quorum.EventResync, Group: h.Group, Holder: h}, named)
	}
	for inst, r := range s.rosters {
		r.keep(named[inst])
	}
}

// watch streams key events to the groups, re-establishing the watch.
func (s *Supervisor) watch(ctx context.Context) {
	for ctx.Err() == nil {
		ch, err := s.backend.Watch(ctx, "")
		if err != nil {
			s.log.Warn("quorum watch failed; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		if len(s.rosters) > 0 {
			s.readMembers(ctx)
		}
		named := map[string]bool{}
		namedMembers := map[string]map[netip.Addr]bool{}
		for ev := range ch {
			if ev.Type == quorum.EventResync && ev.Group == "" {
				for inst, r := range s.rosters {
					r.keep(namedMembers[inst])
					if !r.Registered() {
						select {
						case s.kick <- struct{}{}:
						default:
						}
					}
				}
				clear(namedMembers)
				// End of a resync batch: groups not named are free.
				for name, g := range s.groups {
					if !named[name] {
						g.Post(KeyDeleted{})
					}
				}
				clear(named)
				continue
			}
			if s.member(ev, namedMembers) {
				continue
			}
			g := s.groups[ev.Group]
			if g == nil {
				continue
			}
			if ev.Type == quorum.EventResync {
				named[ev.Group] = true
			}
			switch ev.Type {
			case quorum.EventDelete:
				g.Post(KeyDeleted{Epoch: ev.Epoch})
			case quorum.EventPut:
				g.Post(KeyPut{Epoch: ev.Holder.Epoch, Holder: ev.Holder.Node})
			case quorum.EventResync:
				if ev.Holder.Epoch == 0 && ev.Holder.Node == "" && !ev.Holder.Unknown {
					g.Post(KeyDeleted{})
				} else {
					g.Post(KeyPut{Epoch: ev.Holder.Epoch, Holder: ev.Holder.Node})
				}
			}
		}
	}
}
