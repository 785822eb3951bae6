package vmlab

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/leasehold/leasehold/lab/drill"
	"github.com/leasehold/leasehold/storage/drbd"
)

// DrillTarget is the lab as drill.Run takes it: with Options.DRBD it is
// also a drill.DataGuard (a role sampler and a record writer per drill).
func (l *Lab) DrillTarget() drill.Target {
	if l.o.DRBD {
		return drbdTarget{l}
	}
	return l
}

// drbdTarget is a DRBD lab: the Lab's faults, and the data guard.
type drbdTarget struct{ *Lab }

var _ drill.DataGuard = drbdTarget{}

// recordsDir holds the writer's records on the DRBD file system (made
// with it, so it never exists on a guest's root).
const recordsDir = DRBDMount + "/w"

// GuardData starts sampling both nodes' roles and writing records on
// the Primary.
func (t drbdTarget) GuardData(ctx context.Context) (drill.DataWatch, error) {
	nonce := make([]byte, 8)
	rand.Read(nonce)
	w := &dataWatch{l: t.Lab, nonce: hex.EncodeToString(nonce), sampler: samplePrimaries(t.Lab)}
	wctx, cancel := context.WithCancel(context.Background())
	w.stop, w.done = cancel, make(chan struct{})
	go w.write(wctx)
	return w, nil
}

// dataWatch is one drill's sampler and writer.
type dataWatch struct {
	l       *Lab
	nonce   string
	sampler *primarySampler
	stop    context.CancelFunc
	done    chan struct{}

	mu      sync.Mutex
	acked   []ack
	lastAck time.Time
	maxGap  time.Duration
}

// ack is one acknowledged record: where and when the guest said ok.
type ack struct {
	seq  int
	node string
	at   time.Time
}

// firstAckOn is the first record acknowledged by a node other than
// not at or after t (ok false: none yet).
func (w *dataWatch) firstAckOn(not string, t time.Time) (ack, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.acked {
		if a.node != not && !a.at.Before(t) {
			return a, true
		}
	}
	return ack{}, false
}

// ackCount is the number of records acknowledged so far.
func (w *dataWatch) ackCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// record is seq's content: the sequence number and a checksum that
// depends on the drill's nonce.
func (w *dataWatch) record(seq int) string {
	sum := sha256.Sum256([]byte(w.nonce + "/" + strconv.Itoa(seq)))
	return fmt.Sprintf("%d %s", seq, hex.EncodeToString(sum[:8]))
}

// writerGate is the writer's service script in a guest, named in the
// daemon's drbd services: "stop" closes the gate (no new record is
// started on that node), "start" opens it. A graceful demotion stops it
// before the unmount, so the writer yields and kill_holders only meets a
// record already under way (which is then not acknowledged). Without it
// the writer re-entered /srv every ~100 ms, faster than the holders were
// killed, and each graceful handback escalated and reset the node.
const (
	writerGate       = "/etc/leasehold/lab-writer.sh"
	writerGateClosed = "/run/lab-writer.stopped"
)

// writerGateSetup installs writerGate in a guest (root's, 0755: the
// daemon refuses a world-writable script).
const writerGateSetup = `cat > ` + writerGate + ` <<'EOF'
#!/bin/sh
case "$1" in
start) rm -f ` + writerGateClosed + ` ;;
stop) touch ` + writerGateClosed + ` ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
EOF
chmod 0755 ` + writerGate + `
`

// writeScript writes one record durably on node, only into the DRBD file
// system and only while the writer's gate is open: the shell's working
// directory holds the file system (so it cannot be unmounted under the
// write) and the mount is checked after that.
func (w *dataWatch) writeScript(seq int) string {
	mounted := fmt.Sprintf("grep -q '^%s %s ' /proc/mounts || exit 3", DRBDDevice, DRBDMount)
	return fmt.Sprintf("[ ! -e %[5]s ] || exit 3\n%[1]s\ncd %[2]s || exit 3\n%[1]s\necho '%[3]s' > %[4]d.tmp && mv %[4]d.tmp %[4]d && sync && echo ok",
		mounted, recordsDir, w.record(seq), seq, writerGateClosed)
}

// write writes records 1, 2, ... on whichever node is Primary, one at a
// time; a record counts as acknowledged when the guest said ok (after
// sync: protocol C has it on both disks).
func (w *dataWatch) write(ctx context.Context) {
	defer close(w.done)
	target := ""
	for seq := 1; ctx.Err() == nil; {
		if target == "" {
			if target = w.l.primaryNode(ctx); target == "" {
				sleepCtx(ctx, 100*time.Millisecond)
				continue
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		out, err := w.l.Exec(cctx, target, w.writeScript(seq))
		cancel()
		if err != nil || strings.TrimSpace(out) != "ok" {
			target = ""
			continue
		}
		now := time.Now()
		w.mu.Lock()
		if !w.lastAck.IsZero() {
			w.maxGap = max(w.maxGap, now.Sub(w.lastAck))
		}
		w.acked, w.lastAck = append(w.acked, ack{seq: seq, node: target, at: now}), now
		w.mu.Unlock()
		seq++
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// primaryNode is the node whose /proc/drbd says Primary ("" none).
func (l *Lab) primaryNode(ctx context.Context) string {
	for _, n := range l.nodes {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := l.DRBDState(cctx, n.name)
		cancel()
		if err == nil && st.Role == drbd.Primary {
			return n.name
		}
	}
	return ""
}

// Check stops the writer and the sampler, waits (30 s at most) for a
// Primary with the file system mounted, and reads every acknowledged
// record back from it.
func (w *dataWatch) Check(ctx context.Context) drill.DataReport {
	w.stop()
	<-w.done
	sr := w.sampler.halt()
	w.mu.Lock()
	acked, gap := w.acked, w.maxGap
	w.mu.Unlock()
	rep := drill.DataReport{Samples: sr.samples, SampleRate: sr.rate, TwoPrimary: sr.both, TwoPrimaryUS: sr.overlap.Microseconds(),
		Acked: len(acked), WriterGapUS: gap.Microseconds()}
	read := fmt.Sprintf("grep -q '^%s %s ' /proc/mounts && cd %s && cat -- *[0-9] 2>/dev/null; true", DRBDDevice, DRBDMount, recordsDir)
	var out string
	deadline := time.Now().Add(30 * time.Second)
	for {
		if rep.Primary = w.l.primaryNode(ctx); rep.Primary != "" {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			o, err := w.l.Exec(cctx, rep.Primary, read)
			cancel()
			if out = o; err == nil && (out != "" || len(acked) == 0) {
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			rep.Err = fmt.Sprintf("no Primary with %s mounted and its records readable 30 s after the drill (Primary %q)", DRBDMount, rep.Primary)
			return rep
		}
		time.Sleep(200 * time.Millisecond)
	}
	have := map[string]bool{}
	for line := range strings.SplitSeq(out, "\n") {
		have[strings.TrimSpace(line)] = true
	}
	for _, a := range acked {
		if !have[w.record(a.seq)] {
			rep.Lost++
		}
	}
	return rep
}

// primarySampler samples each node's /proc/drbd on its own every 80 ms
// (the agent reads the file itself: one cheap call). A node is presumed
// Primary from a sample that says so until a sample says otherwise or its
// VM ends (a node that cannot be read, frozen or busy, stays presumed
// Primary: the check errs towards reporting a split brain). Two
// Primaries: a sample saying Primary while the other node is presumed
// Primary; their overlap is timed too.
type primarySampler struct {
	l       *Lab
	stop    context.CancelFunc
	wg      sync.WaitGroup
	started time.Time

	mu    sync.Mutex
	nodes map[string]*nodeSamples
	both  int
}

// nodeSamples is one node's record.
type nodeSamples struct {
	primary      bool      // presumed Primary now
	since        time.Time // presumed Primary since
	spans        [][2]time.Time
	samples      int
	intervals    []time.Duration // between consecutive readable samples
	last         time.Time
	primaryCount int
}

func samplePrimaries(l *Lab) *primarySampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &primarySampler{l: l, stop: cancel, started: time.Now(), nodes: map[string]*nodeSamples{}}
	for _, n := range l.nodes {
		s.nodes[n.name] = &nodeSamples{}
		s.wg.Go(func() { s.sample(ctx, n) })
	}
	return s
}

func (s *primarySampler) sample(ctx context.Context, n *node) {
	tick := time.NewTicker(80 * time.Millisecond)
	defer tick.Stop()
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		st, err := s.l.DRBDState(cctx, n.name)
		cancel()
		now := time.Now()
		v := s.l.vmOf(n)
		down := v == nil || exited(v)
		s.mu.Lock()
		ns := s.nodes[n.name]
		switch {
		case err == nil:
			if !ns.last.IsZero() {
				ns.intervals = append(ns.intervals, now.Sub(ns.last))
			}
			ns.samples, ns.last = ns.samples+1, now
			s.set(n.name, ns, st.Role == drbd.Primary, now)
			if st.Role == drbd.Primary {
				ns.primaryCount++
				for other, o := range s.nodes {
					if other != n.name && o.primary {
						s.both++
					}
				}
			}
		case down:
			// Not Primary since the VM ended (reset, power cut).
			ns.last = time.Time{}
			at := now
			if v != nil && !v.ExitedAt().IsZero() && v.ExitedAt().Before(now) {
				at = v.ExitedAt()
			}
			s.set(n.name, ns, false, at)
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// set records node's presumed role from now on.
func (s *primarySampler) set(name string, ns *nodeSamples, primary bool, now time.Time) {
	switch {
	case primary && !ns.primary:
		ns.primary, ns.since = true, now
	case !primary && ns.primary:
		ns.primary = false
		ns.spans = append(ns.spans, [2]time.Time{ns.since, now})
	}
}

// sampleReport is what the sampler saw.
type sampleReport struct {
	samples, both int
	// rate is the slowest node's sampling rate while it could be read
	// (one over its median interval between readable samples).
	rate    float64
	overlap time.Duration // both presumed Primary
	primary map[string]int
}

func (s *primarySampler) halt() sampleReport {
	s.stop()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	r := sampleReport{both: s.both, primary: map[string]int{}}
	var spans [][][2]time.Time
	for name, ns := range s.nodes {
		r.samples += ns.samples
		r.primary[name] = ns.primaryCount
		sp := ns.spans
		if ns.primary {
			sp = append(sp, [2]time.Time{ns.since, now})
		}
		spans = append(spans, sp)
		rate := 0.0
		if len(ns.intervals) > 0 {
			iv := slices.Clone(ns.intervals)
			slices.Sort(iv)
			rate = float64(time.Second) / float64(iv[len(iv)/2])
		}
		if r.rate == 0 || rate < r.rate {
			r.rate = rate
		}
	}
	if len(spans) == 2 {
		for _, a := range spans[0] {
			for _, b := range spans[1] {
				end, start := a[1], a[0]
				if b[1].Before(end) {
					end = b[1]
				}
				if b[0].After(start) {
					start = b[0]
				}
				if d := end.Sub(start); d > 0 {
					r.overlap += d
				}
			}
		}
	}
	return r
}
