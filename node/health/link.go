package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ErrNetNS: the network namespace for the link watch could not be opened.
var ErrNetNS = errors.New("health: network namespace")

// resubscribeDelay is the pause before a lost link subscription is opened again.
const resubscribeDelay = time.Second

// linkState is one observation of a tracked link.
type linkState struct {
	state  State
	index  int    // ifindex, 0 when missing
	detail string // why (flags, missing, watch lost)
}

// linkWatch follows the tracked links of one namespace. Every update is
// only a hint: the link is queried again by name, so a stale or reordered
// update can never leave a wrong state behind (level-triggered).
type linkWatch struct {
	ns     netns.NsHandle
	h      *netlink.Handle
	ifaces []Interface
	index  []int
	log    *slog.Logger
}

// newLinkWatch opens the namespace at nsPath, or the calling thread's
// namespace when nsPath is "".
func newLinkWatch(nsPath string, ifaces []Interface, log *slog.Logger) (*linkWatch, error) {
	var ns netns.NsHandle
	var err error
	if nsPath == "" {
		ns, err = netns.Get()
	} else {
		ns, err = netns.GetFromPath(nsPath)
	}
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrNetNS, nsPath, err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("%w %q: netlink: %w", ErrNetNS, nsPath, err)
	}
	return &linkWatch{ns: ns, h: h, ifaces: ifaces, index: make([]int, len(ifaces)), log: log}, nil
}

func (w *linkWatch) close() {
	w.h.Close()
	w.ns.Close()
}

// query reads link i's current state.
func (w *linkWatch) query(i int) linkState {
	l, err := w.h.LinkByName(w.ifaces[i].Name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
			w.index[i] = 0
			return linkState{state: Down, detail: "missing"}
		}
		return linkState{state: Unknown, detail: "query: " + err.Error()}
	}
	a := l.Attrs()
	w.index[i] = a.Index
	return linkState{state: flagsState(a.RawFlags), index: a.Index, detail: fmt.Sprintf("flags %#x", a.RawFlags)}
}

// flagsState is keepalived's IF_FLAGS_UP: IFF_UP and IFF_RUNNING both set.
func flagsState(raw uint32) State {
	if raw&(unix.IFF_UP|unix.IFF_RUNNING) == unix.IFF_UP|unix.IFF_RUNNING {
		return Up
	}
	return Down
}

func (w *linkWatch) snapshot() []linkState {
	out := make([]linkState, len(w.ifaces))
	for i := range w.ifaces {
		out[i] = w.query(i)
	}
	return out
}

// run subscribes to link updates, re-queries the links an update may
// concern and sends their state, until ctx ends. When the subscription is
// lost (socket error, overrun) every link is reported Unknown, and it
// subscribes again after resubscribeDelay, then re-reads every link.
func (w *linkWatch) run(ctx context.Context, events chan<- event) {
	defer w.close()
	send := func(i int, ls linkState) bool {
		select {
		case events <- event{script: -1, link: i, ls: ls}:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for ctx.Err() == nil {
		err := w.follow(ctx, send)
		if ctx.Err() != nil {
			return
		}
		w.log.Error("health: link watch lost; tracked links unknown until it is back", "err", err)
		for i := range w.ifaces {
			if !send(i, linkState{state: Unknown, detail: "link watch lost"}) {
				return
			}
		}
		t := time.NewTimer(resubscribeDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// follow runs one subscription until it fails or ctx ends.
func (w *linkWatch) follow(ctx context.Context, send func(int, linkState) bool) error {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	var subErr error
	errc := make(chan error, 1)
	err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		Namespace: &w.ns,
		ErrorCallback: func(err error) {
			select {
			case errc <- err:
			default:
			}
		},
	})
	if err != nil {
		close(done)
		return fmt.Errorf("health: link subscribe: %w", err)
	}
	defer func() {
		close(done)
		for range updates { // the library's reader blocks on us until its socket closes
		}
	}()
	// Read every link after subscribing: nothing that happens from here on
	// can be missed.
	for i := range w.ifaces {
		if !send(i, w.query(i)) {
			return nil
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-updates:
			if !ok {
				select {
				case subErr = <-errc:
				default:
					subErr = errors.New("subscription closed")
				}
				return fmt.Errorf("health: link watch: %w", subErr)
			}
			name, idx := u.Attrs().Name, int(u.Index)
			for i, ifc := range w.ifaces {
				if ifc.Name == name || (w.index[i] != 0 && w.index[i] == idx) {
					if !send(i, w.query(i)) {
						return nil
					}
				}
			}
		}
	}
}
