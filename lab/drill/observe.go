package drill

import (
	"bufio"
	"context"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/leasehold/leasehold/lab/labctl"
	"github.com/leasehold/leasehold/lab/netlab"
)

// Target is what a drill acts on and observes: a lab of network
// namespaces (labctl.Lab, which also offers Netlab), a lab of VMs, or
// anything with nodes, daemons and a quorum. A target brings its own
// checkers (CheckerSource) unless it is a netns lab, whose checkers the
// drill builds. Faults beyond signals and quorum cuts are optional
// interfaces (VRRPCutter, LinkSetter, Isolator, PowerCutter).
type Target interface {
	// Nodes returns the nodes, highest priority first.
	Nodes() []string
	// VIP is the address the checkers watch; ProbePort the responders' port.
	VIP() netip.Addr
	ProbePort() uint16
	// Status reads a node's daemon (process, role and epoch of the group).
	Status(ctx context.Context, node string) (labctl.NodeStatus, error)
	// Signal signals a node's daemon; Restart starts it again if it is not
	// running and waits until it answers.
	Signal(node string, sig syscall.Signal) error
	Restart(ctx context.Context, node string) error
	// CutQuorum cuts one node from the quorum (both directions);
	// StopQuorum makes the whole quorum unavailable.
	CutQuorum(ctx context.Context, node string, on bool) error
	StopQuorum(ctx context.Context, on bool) error
	// WaitSteady waits until every daemon answers and every group has one owner.
	WaitSteady(ctx context.Context, timeout time.Duration) error
	// LogPath is a node's daemon log file.
	LogPath(node string) string
}

// statusSample is one change seen by polling the nodes' status APIs.
type statusSample struct {
	At    netlab.Stamp
	Node  string
	Up    bool
	Role  string
	Epoch uint64
}

// session runs the checkers and a status poller on a target until stopped.
type session struct {
	t  Target
	tb netlab.Timebase
	c  Checkers

	start  netlab.Stamp
	end    netlab.Stamp
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	samples []statusSample
	errs    []error
	logOff  map[string]int64
}

// observe starts the target's checkers and polls every node's status
// every 100 ms.
func observe(ctx context.Context, t Target) (*session, error) {
	c, err := checkersOf(t)
	if err != nil {
		return nil, err
	}
	if c.ARPInterval <= 0 {
		c.ARPInterval = 100 * time.Millisecond
	}
	if c.ClientInterval <= 0 {
		c.ClientInterval = 20 * time.Millisecond
	}
	s := &session{t: t, tb: c.Timebase, c: c, logOff: map[string]int64{}}
	for _, n := range t.Nodes() {
		if fi, err := os.Stat(t.LogPath(n)); err == nil {
			s.logOff[n] = fi.Size()
		}
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.start = s.tb.Now()
	for _, c := range c.Run {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := c.Run(cctx); err != nil && cctx.Err() == nil {
				s.mu.Lock()
				s.errs = append(s.errs, err)
				s.mu.Unlock()
			}
		}()
		select {
		case <-c.Ready():
		case <-time.After(10 * time.Second):
			s.stop()
			return nil, errNotReady
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.poll(cctx)
	}()
	return s, nil
}

func (s *session) poll(ctx context.Context) {
	last := map[string]statusSample{}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, n := range s.t.Nodes() {
			st, _ := s.t.Status(ctx, n)
			x := statusSample{At: s.tb.Now(), Node: n, Up: st.Up, Role: st.Role, Epoch: st.Epoch}
			if p, ok := last[n]; ok && p.Up == x.Up && p.Role == x.Role && p.Epoch == x.Epoch {
				continue
			}
			if !x.Up {
				// A frozen or dead daemon keeps its last epoch for the timeline.
				x.Epoch = last[n].Epoch
			}
			last[n] = x
			s.mu.Lock()
			s.samples = append(s.samples, x)
			s.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *session) now() netlab.Stamp { return s.tb.Now() }

func (s *session) stop() {
	s.cancel()
	s.wg.Wait()
	s.end = s.tb.Now()
}

// roleOf returns the last polled role of node (fresh read).
func (s *session) status(ctx context.Context, node string) labctl.NodeStatus {
	st, _ := s.t.Status(ctx, node)
	return st
}

// owner returns the node whose daemon reports role owner, or "".
func ownerOf(ctx context.Context, t Target) string {
	for _, n := range t.Nodes() {
		if st, _ := t.Status(ctx, n); st.Up && st.Role == "owner" {
			return n
		}
	}
	return ""
}

// waitFor polls cond every 20 ms until it holds or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// interesting log messages: role changes, lease grants, VIP and fence
// events, quorum sessions, start and stop.
var logKeys = []string{"msg=role", "msg=\"lease acquired\"", "msg=\"vip added\"", "msg=alarm",
	"msg=\"quorum session", "msg=stopped", "msg=running", "msg=\"demotion", "msg=\"release failed", "msg=\"removed orphan"}

// LogLine is one transition logged by a daemon during a run.
type LogLine struct {
	Node string `json:"node"`
	Time string `json:"time"`
	Line string `json:"line"`
}

// transitions reads what each node logged since the session started.
func (s *session) transitions(max int) []LogLine {
	var out []LogLine
	for _, n := range s.t.Nodes() {
		f, err := os.Open(s.t.LogPath(n))
		if err != nil {
			continue
		}
		if off := s.logOff[n]; off > 0 {
			if fi, err := f.Stat(); err == nil && fi.Size() < off {
				off = 0 // truncated or replaced
			}
			f.Seek(s.logOff[n], io.SeekStart)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			keep := false
			for _, k := range logKeys {
				if strings.Contains(line, k) {
					keep = true
					break
				}
			}
			if !keep {
				continue
			}
			ts := ""
			if v, ok := strings.CutPrefix(line, "time="); ok {
				ts, _, _ = strings.Cut(v, " ")
			}
			out = append(out, LogLine{Node: n, Time: ts, Line: line})
		}
		f.Close()
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time < out[j].Time })
	if len(out) > max {
		out = append(out[:max:max], LogLine{Line: "(more in the daemons' logs)"})
	}
	return out
}
