package node

import (
	"context"
	"log/slog"
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

	mu      sync.Mutex
	session quorum.Session
}

// NewSupervisor builds a supervisor. It starts nothing.
func NewSupervisor(b quorum.Backend, groups []*Group, log *slog.Logger) *Supervisor {
	m := map[string]*Group{}
	for _, g := range groups {
		m[g.Name()] = g
	}
	return &Supervisor{backend: b, groups: m, log: log}
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
		go func() {
			cctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			sess.Close(cctx)
		}()
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
		named := map[string]bool{}
		for ev := range ch {
			if ev.Type == quorum.EventResync && ev.Group == "" {
				// End of a resync batch: groups not named are free.
				for name, g := range s.groups {
					if !named[name] {
						g.Post(KeyDeleted{})
					}
				}
				clear(named)
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
