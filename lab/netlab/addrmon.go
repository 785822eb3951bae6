package netlab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// AddrEvent is one netlink notification about the VIP in one namespace.
type AddrEvent struct {
	At    Stamp  `json:"at"`
	Host  string `json:"host"`
	Added bool   `json:"added"`
}

// AddrMonitor records when the VIP is added to and removed from each
// host's namespace, from netlink address notifications.
type AddrMonitor struct {
	tb    Timebase
	vip   netip.Addr
	hosts []*Host

	mu      sync.Mutex
	events  []AddrEvent
	start   Stamp
	end     Stamp // last instant observed (end of Run, or zero while running)
	running bool
	ready   chan struct{}
	errs    []error
}

// NewAddrMonitor watches vip in the namespaces of hosts.
func NewAddrMonitor(tb Timebase, vip netip.Addr, hosts ...*Host) *AddrMonitor {
	return &AddrMonitor{tb: tb, vip: vip.Unmap(), hosts: hosts, ready: make(chan struct{})}
}

// Ready is closed once every subscription is established: changes after
// that are recorded.
func (m *AddrMonitor) Ready() <-chan struct{} { return m.ready }

// Run subscribes to address notifications in every host's namespace and
// records events until ctx ends. It returns nil when ctx ends, or the
// error that broke a subscription (events up to then are kept).
func (m *AddrMonitor) Run(ctx context.Context) error {
	done := make(chan struct{})
	var chans []chan netlink.AddrUpdate
	defer func() {
		close(done)
		// Drain: the library's reader goroutine blocks on send until it
		// sees its socket closed and closes the channel.
		for _, ch := range chans {
			for range ch {
			}
		}
		m.mu.Lock()
		m.end = m.tb.Now()
		m.running = false
		m.mu.Unlock()
	}()
	var cbMu sync.Mutex
	var cbErr error
	for _, h := range m.hosts {
		ns, err := netns.GetFromPath(h.NSPath())
		if err != nil {
			return fmt.Errorf("netlab: addr monitor %s: %w", h.Name, err)
		}
		ch := make(chan netlink.AddrUpdate, 256)
		err = netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{
			Namespace:         &ns,
			ListExisting:      true,
			ReceiveBufferSize: 1 << 20,
			ErrorCallback: func(err error) {
				cbMu.Lock()
				cbErr = errors.Join(cbErr, err)
				cbMu.Unlock()
			},
		})
		ns.Close()
		if err != nil {
			return fmt.Errorf("netlab: addr monitor %s: subscribe: %w", h.Name, err)
		}
		chans = append(chans, ch)
	}
	m.mu.Lock()
	m.start = m.tb.Now()
	m.running = true
	m.mu.Unlock()
	close(m.ready)

	cases := make([]reflect.SelectCase, 0, len(chans)+1)
	cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())})
	for _, ch := range chans {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
	}
	// The listing of existing addresses arrives first, stamped at about
	// the start of Run.
	open := len(chans)
	for open > 0 {
		i, v, ok := reflect.Select(cases)
		if i == 0 {
			return nil
		}
		if !ok {
			cases[i].Chan = reflect.Value{}
			open--
			cbMu.Lock()
			err := cbErr
			cbMu.Unlock()
			return fmt.Errorf("netlab: addr monitor %s: subscription ended: %w", m.hosts[i-1].Name, err)
		}
		u := v.Interface().(netlink.AddrUpdate)
		ip, okIP := netip.AddrFromSlice(u.LinkAddress.IP)
		if !okIP || ip.Unmap() != m.vip {
			continue
		}
		ev := AddrEvent{At: m.tb.Now(), Host: m.hosts[i-1].Name, Added: u.NewAddr}
		m.mu.Lock()
		m.events = append(m.events, ev)
		m.mu.Unlock()
	}
	return nil
}

// Events returns the recorded events in order.
func (m *AddrMonitor) Events() []AddrEvent {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.events)
}

// span returns the observation window [start, end]; end is now while Run
// is running.
func (m *AddrMonitor) span() (Stamp, Stamp) {
	m.mu.Lock()
	defer m.mu.Unlock()
	end := m.end
	if m.running || end.IsZero() {
		end = m.tb.Now()
	}
	return m.start, end
}

// Holders returns the hosts that had the VIP configured at instant at.
func (m *AddrMonitor) Holders(at Stamp) []string {
	set := map[string]bool{}
	for _, ev := range m.Events() {
		if at.Before(ev.At) {
			break
		}
		set[ev.Host] = ev.Added
	}
	return sortedTrue(set)
}

func sortedTrue(set map[string]bool) []string {
	var out []string
	for h, on := range set {
		if on {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out
}

// HolderIntervals returns the spans during which the set of holders was
// constant, with the holders in Who (empty Who: nobody held the VIP).
func (m *AddrMonitor) HolderIntervals() []Interval {
	start, end := m.span()
	events := m.Events()
	var out []Interval
	set := map[string]bool{}
	cur := start
	who := []string(nil)
	flush := func(to Stamp, open bool) {
		if to.MonoUS > cur.MonoUS || open {
			out = append(out, newInterval(cur, to, open, who))
		}
	}
	for _, ev := range events {
		set[ev.Host] = ev.Added
		next := sortedTrue(set)
		if slices.Equal(next, who) {
			continue
		}
		flush(ev.At, false)
		cur, who = ev.At, next
	}
	flush(end, true)
	return out
}

// DualIntervals returns the spans during which two or more namespaces had
// the VIP configured (adjacent spans with different holder sets merged).
func (m *AddrMonitor) DualIntervals() []Interval {
	var out []Interval
	for _, iv := range m.HolderIntervals() {
		if len(iv.Who) < 2 {
			continue
		}
		if n := len(out); n > 0 && out[n-1].End == iv.Start {
			prev := out[n-1]
			who := slices.Clone(prev.Who)
			for _, w := range iv.Who {
				if !slices.Contains(who, w) {
					who = append(who, w)
				}
			}
			slices.Sort(who)
			out[n-1] = newInterval(prev.Start, iv.End, iv.Open, who)
			continue
		}
		out = append(out, iv)
	}
	return out
}
