package vmlab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/leasehold/leasehold/storage/drbd"
)

// Failover faults: what make bench-drbd does to the daemon (leasehold or
// keepalived) on the DRBD Primary's node.
const (
	FailoverKill9  = "kill9"  // kill -9 of the daemon (keepalived: parent and VRRP child)
	FailoverFreeze = "freeze" // SIGSTOP of the daemon, SIGCONT after the window
	// FailoverPartition is seed 002's split-brain scenario: the Primary's
	// network (VRRP/client link and replication link) cut for the window,
	// its quorum link left up, then healed.
	FailoverPartition = "partition"
)

// FailoverResult is one measured failover.
type FailoverResult struct {
	Fault string
	// From is the Primary before the fault; To the node that acknowledged
	// a record after it ("" none within the window).
	From, To string
	// Writable is the fault to the first record acknowledged by another
	// node (the writer: a durable write into the mounted DRBD file system
	// on whichever node /proc/drbd calls Primary); 0 with To "".
	Writable time.Duration
	// Reset is the fault to the old Primary's VM ending by itself (its
	// watchdog); 0 if it did not.
	Reset time.Duration
	// Sampling of both nodes' roles during the run (fault, takeover,
	// recovery).
	Samples          int
	SampleRate       float64
	TwoPrimarySample int
	TwoPrimary       time.Duration
	// SplitBrain: DRBD detected a split brain when the nodes reconnected
	// (the kernel's "Split-Brain detected" or a StandAlone connection).
	SplitBrain bool
	// Acked records, of which Lost were missing or damaged on the
	// Primary after recovery.
	Acked, Lost int
	// Note says what happened when there was no takeover or recovery
	// needed help (the notify log's last lines, a manual split-brain
	// recovery).
	Note string
}

// Failover runs one measured failover: it finds the Primary, starts the
// role sampler and the writer, waits for three acknowledged records,
// applies the fault to the Primary's daemon, waits up to window for
// another node to acknowledge a record, then undoes the fault (boots a
// reset VM again and starts its daemon; starts a killed keepalived;
// continues a frozen one), waits until DRBD is connected and UpToDate on
// both with one Primary (resolving a split brain the way seed 002 does by
// hand, so the next run starts clean: the old Primary's side is
// discarded), and checks every acknowledged record on the Primary.
func (l *Lab) Failover(ctx context.Context, fault string, window time.Duration) (FailoverResult, error) {
	r := FailoverResult{Fault: fault}
	if fault != FailoverKill9 && fault != FailoverFreeze && fault != FailoverPartition {
		return r, fmt.Errorf("vmlab: failover fault %q: want %s, %s or %s", fault, FailoverKill9, FailoverFreeze, FailoverPartition)
	}
	if !l.o.DRBD {
		return r, errors.New("vmlab: Failover needs a DRBD lab")
	}
	if err := l.settle(ctx); err != nil {
		return r, fmt.Errorf("vmlab: before the fault: %w", err)
	}
	r.From = l.primaryNode(ctx)
	if r.From == "" {
		return r, errors.New("vmlab: no Primary before the fault")
	}
	from, _ := l.node(r.From)
	vFrom := l.vmOf(from)
	sbBefore := l.splitBrains(ctx)
	dw, _ := drbdTarget{l}.GuardData(ctx)
	w := dw.(*dataWatch)
	checked := false
	defer func() {
		if !checked {
			w.stop()
			<-w.done
			w.sampler.halt()
		}
	}()
	for t0 := time.Now(); w.ackCount() < 3; time.Sleep(100 * time.Millisecond) {
		if time.Since(t0) > 30*time.Second || ctx.Err() != nil {
			return r, fmt.Errorf("vmlab: the writer got %d records acknowledged on %s in 30 s", w.ackCount(), r.From)
		}
	}
	tFault := time.Now()
	if err := l.faultDaemon(ctx, from, fault); err != nil {
		return r, err
	}
	for time.Since(tFault) < window && ctx.Err() == nil {
		if a, ok := w.firstAckOn(r.From, tFault); ok {
			r.To, r.Writable = a.node, a.at.Sub(tFault)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if vFrom != nil && exited(vFrom) && !l.ResetAt(r.From).IsZero() {
		r.Reset = l.ResetAt(r.From).Sub(tFault)
	}
	if r.To == "" {
		r.Note = "no takeover within " + window.String()
		if l.o.Keepalived {
			r.Note += ": " + l.notifyTail(ctx)
		} else {
			r.Note += l.refusals(ctx, r.From)
		}
	}
	// Undo the fault.
	switch {
	case fault == FailoverPartition && !exited(vFrom):
		if err := l.partition(ctx, from.name, false); err != nil {
			return r, err
		}
	case l.o.Keepalived && fault == FailoverFreeze && !exited(vFrom):
		if _, err := l.exec(ctx, from, keepalivedSignals("thaw")); err != nil {
			return r, err
		}
	default:
		if err := l.Restart(ctx, r.From); err != nil {
			return r, err
		}
	}
	// Another node may have reset too (a guest starved on a loaded host
	// misses its watchdog): boot it again.
	for _, n := range l.nodes {
		if v := l.vmOf(n); v == nil || exited(v) {
			r.Note = strings.TrimPrefix(r.Note+"; "+n.name+" reset too, booted again", "; ")
			if err := l.Restart(ctx, n.name); err != nil {
				return r, err
			}
		}
	}
	if err := l.waitSteadyDRBD(ctx, 60*time.Second); err != nil {
		r.SplitBrain = l.splitBrains(ctx) > sbBefore
		note, rerr := l.recoverSplitBrain(ctx)
		if rerr != nil {
			return r, fmt.Errorf("vmlab: after %s: %w; recovery: %v", fault, err, rerr)
		}
		r.Note = strings.TrimPrefix(r.Note+"; "+note, "; ")
		if err := l.waitSteadyDRBD(ctx, 60*time.Second); err != nil {
			return r, fmt.Errorf("vmlab: after %s and %s: %w", fault, note, err)
		}
	}
	if !l.o.Keepalived {
		if err := l.WaitSteady(ctx, 60*time.Second); err != nil {
			return r, err
		}
	}
	r.SplitBrain = l.splitBrains(ctx) > sbBefore || r.SplitBrain
	checked = true
	rep := w.Check(ctx)
	if rep.Err != "" {
		return r, errors.New(rep.Err)
	}
	r.Samples, r.SampleRate, r.TwoPrimarySample = rep.Samples, rep.SampleRate, rep.TwoPrimary
	r.TwoPrimary = time.Duration(rep.TwoPrimaryUS) * time.Microsecond
	r.Acked, r.Lost = rep.Acked, rep.Lost
	return r, nil
}

// settle brings a lab left unsteady by an earlier run back: every VM
// running with its daemon, DRBD connected and in sync with one Primary
// (a split brain resolved by hand), the daemons steady.
func (l *Lab) settle(ctx context.Context) error {
	for _, n := range l.nodes {
		if v := l.vmOf(n); v == nil || exited(v) {
			if err := l.Restart(ctx, n.name); err != nil {
				return err
			}
		}
	}
	if err := l.waitSteadyDRBD(ctx, 60*time.Second); err != nil {
		if _, rerr := l.recoverSplitBrain(ctx); rerr != nil {
			return fmt.Errorf("%w; recovery: %v", err, rerr)
		}
		if err := l.waitSteadyDRBD(ctx, 60*time.Second); err != nil {
			return err
		}
	}
	if l.o.Keepalived {
		return nil
	}
	return l.WaitSteady(ctx, 60*time.Second)
}

// faultDaemon applies fault to n's daemon (or n's network).
func (l *Lab) faultDaemon(ctx context.Context, n *node, fault string) error {
	if fault == FailoverPartition {
		return l.partition(ctx, n.name, true)
	}
	if l.o.Keepalived {
		_, err := l.exec(ctx, n, keepalivedSignals(fault))
		return err
	}
	sig := syscall.SIGKILL
	if fault == FailoverFreeze {
		sig = syscall.SIGSTOP
	}
	return l.Signal(n.name, sig)
}

// partition cuts (on) or heals node's VRRP/client and replication links.
func (l *Lab) partition(ctx context.Context, name string, on bool) error {
	if err := l.setLink(ctx, name, "l2", !on); err != nil {
		return err
	}
	return l.setLink(ctx, name, "drbd", !on)
}

// splitBrains counts the kernel's "Split-Brain detected" lines in every
// running node's log since its boot plus the nodes whose connection is
// StandAlone.
func (l *Lab) splitBrains(ctx context.Context) int {
	total := 0
	for _, n := range l.nodes {
		v := l.vmOf(n)
		if v == nil || exited(v) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		total += strings.Count(v.Dmesg(cctx), "Split-Brain detected")
		cancel()
		if st, err := l.DRBDState(ctx, n.name); err == nil && st.Conn == drbd.StandAlone {
			total++
		}
	}
	return total
}

// recoverSplitBrain is seed 002's manual recovery, for a lab whose nodes
// no longer connect: the node that is not Primary, or n2 if both are,
// stops the writer there (its gate, and the processes on /srv killed, as
// an operator stops the service), unmounts, becomes Secondary and
// reconnects with --discard-my-data; the other reconnects.
func (l *Lab) recoverSplitBrain(ctx context.Context) (string, error) {
	var primaries []*node
	for _, n := range l.nodes {
		if st, err := l.DRBDState(ctx, n.name); err == nil && st.Role == drbd.Primary {
			primaries = append(primaries, n)
		}
	}
	keep := l.nodes[0]
	if len(primaries) > 0 {
		keep = primaries[0]
	}
	for _, n := range l.nodes {
		if n == keep {
			continue
		}
		// The writer's gate closed first (no new record enters /srv), the
		// records under way killed, then the seed's commands; the gate
		// opens again whatever they did.
		if _, err := l.exec(ctx, n, fmt.Sprintf(`touch %[3]s
for i in 1 2 3 4 5; do fuser -km %[1]s >/dev/null 2>&1; umount %[1]s 2>/dev/null; grep -q ' %[1]s ' /proc/mounts || break; sleep 0.2; done
drbdadm disconnect %[2]s 2>/dev/null
drbdadm secondary %[2]s && drbdadm connect --discard-my-data %[2]s
rc=$?
rm -f %[3]s
exit $rc`, DRBDMount, DRBDResource, writerGateClosed)); err != nil {
			return "", err
		}
	}
	if _, err := l.exec(ctx, keep, "drbdadm connect "+DRBDResource+" 2>/dev/null; true"); err != nil {
		return "", err
	}
	return fmt.Sprintf("split brain resolved by hand as the seed does (%s kept)", keep.name), nil
}

// refusals says why the nodes other than from did not promote: each
// one's last refused promotion, from its daemon's status ("" none).
func (l *Lab) refusals(ctx context.Context, from string) string {
	var parts []string
	for _, n := range l.nodes {
		v := l.vmOf(n)
		if n.name == from || v == nil || exited(v) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		code, body, err := v.HTTP(cctx, statusSocket, "GET", "/status", nil)
		cancel()
		var st struct {
			DRBD []struct {
				LastRefusal string `json:"last_refusal"`
			} `json:"drbd"`
		}
		if err != nil || code != 200 || json.Unmarshal(body, &st) != nil {
			continue
		}
		for _, d := range st.DRBD {
			if d.LastRefusal != "" {
				parts = append(parts, n.name+" refused to promote: "+d.LastRefusal)
			}
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, "; ")
}

// notifyTail is the keepalived notify log's last lines of every node.
func (l *Lab) notifyTail(ctx context.Context) string {
	var parts []string
	for _, n := range l.nodes {
		out, err := l.exec(ctx, n, "tail -n 3 "+keepalivedNotifyLog+" 2>/dev/null | tr '\\n' ' '")
		if err == nil {
			parts = append(parts, n.name+": "+strings.TrimSpace(out))
		}
	}
	return strings.Join(parts, "; ")
}
