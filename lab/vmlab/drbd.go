package vmlab

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/leasehold/leasehold/storage/drbd"
)

// With Options.DRBD each VM has a third NIC (eth2, "drbd") on a multicast
// segment of its own, 10.67.0.0/24, that carries only DRBD's replication
// link: cutting it (CutReplication) is a fault of its own. r0 replicates
// the VM's persistent disk (/dev/vda) between n1 and n2 (protocol C,
// fencing resource-and-stonith with leasehold's handlers), and the daemons'
// group has a drbd section that mounts it on /srv.

// DRBD's view of the lab.
const (
	DRBDResource = "r0"
	DRBDDevice   = "/dev/drbd0"
	DRBDMount    = "/srv"
	guestBinary  = "/usr/local/bin/leasehold"
)

// replAddr is node i's address on the replication segment.
func replAddr(i int) string { return fmt.Sprintf("10.67.0.%d", i+1) }

// drbdRes is r0 between the lab's two nodes: the measured timers (a
// dead peer noticed 1-2 s after it stops answering — with ping-int 2 a
// takeover waited about a second longer for DRBD to let go of a peer the
// watchdog had reset —, reconnects every 2 s, a fixed resync rate)
// and leasehold's fence-peer and after-resync-target handlers, by
// absolute path, with the node's own config.
// With keepalived (the seed's setup) there is no fencing and no handler.
func drbdRes(nodes []*node, keepalived bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `resource %s {
	protocol C;
	device %s;
	disk /dev/vda;
	meta-disk internal;
	net { ping-int 1; ping-timeout 10; connect-int 2; }
`, DRBDResource, DRBDDevice)
	if keepalived {
		b.WriteString("\tdisk { c-plan-ahead 0; resync-rate 100M; }\n")
	} else {
		// resource-and-stonith: a Primary that loses the replication link
		// freezes its I/O until the fence-peer handler has answered. With
		// resource-only it went on acknowledging writes that only it had,
		// and when it reset before its handler marked the peer (the seed's
		// partition: 3 s), the peer promoted without them (make
		// bench-drbd: 102 of 125 acknowledged records lost in one run).
		fmt.Fprintf(&b, `	disk { fencing resource-and-stonith; c-plan-ahead 0; resync-rate 100M; }
	handlers {
		fence-peer "%[1]s drbd fence-peer -c %[2]s --timeout 8s";
		after-resync-target "%[1]s drbd unfence-peer -c %[2]s";
		split-brain "%[1]s drbd split-brain -c %[2]s";
	}
`, guestBinary, guestConfig)
	}
	for i, n := range nodes {
		fmt.Fprintf(&b, "\ton %s { address %s:7789; }\n", n.name, replAddr(i))
	}
	b.WriteString("}\n")
	return b.String()
}

// drbdSetup is the part of a guest's setup that brings r0 up: eth2's
// address, r0.res, the metadata on the first boot only (the disk keeps
// it across power cuts and resets), drbdadm up.
func (l *Lab) drbdSetup(i int, first bool) string {
	create := ""
	if first {
		create = "drbdadm create-md --force " + DRBDResource + " >/dev/null 2>&1\n"
	}
	return fmt.Sprintf(`ip addr add %s/24 dev eth2
ip link set eth2 up
mkdir -p %s
cat > /etc/drbd.d/%s.res <<'EOF'
%sEOF
%sdrbdadm up %s
`, replAddr(i), DRBDMount, DRBDResource, drbdRes(l.nodes, l.o.Keepalived), create, DRBDResource)
}

// initDRBD makes r0 usable on a new lab: both sides connected and empty,
// the initial sync skipped (--clear-bitmap new-current-uuid: both are
// zeroes), an ext4 file system made on n1 with the writer's directory,
// and n1 demoted again.
func (l *Lab) initDRBD(ctx context.Context) error {
	for _, n := range l.nodes {
		if err := l.waitProc(ctx, n, "cs:Connected ro:Secondary/Secondary ds:Inconsistent/Inconsistent", 60*time.Second); err != nil {
			return err
		}
	}
	first := l.nodes[0]
	if _, err := l.exec(ctx, first, "drbdadm -- --clear-bitmap new-current-uuid "+DRBDResource); err != nil {
		return err
	}
	for _, n := range l.nodes {
		if err := l.waitProc(ctx, n, "ds:UpToDate/UpToDate", 60*time.Second); err != nil {
			return err
		}
	}
	// An ext4 with a journal, checked. A bare "mke2fs" runs busybox's
	// applet in the guest's shell (it prefers its applets), which makes
	// ext2 without a journal; the ext4 driver mounts that all the same.
	// A Primary reset in the middle of a rename then left the peer a
	// directory entry pointing at a freed inode (make bench-drbd: from
	// the tenth run on, every record write on the new Primary failed and
	// one acknowledged record was lost). jbd2 lists a loaded journal
	// under /proc/fs/jbd2 as <device>-<inode>.
	_, err := l.exec(ctx, first, fmt.Sprintf(`drbdadm primary %[1]s && /usr/sbin/mke2fs -q -t ext4 -j %[2]s && mount -t ext4 %[2]s %[3]s && mkdir %[4]s || exit 1
ls -d /proc/fs/jbd2/%[5]s-* >/dev/null 2>&1 || { echo "%[2]s: the file system has no journal"; umount %[3]s; exit 1; }
umount %[3]s && drbdadm secondary %[1]s`,
		DRBDResource, DRBDDevice, DRBDMount, recordsDir, strings.TrimPrefix(DRBDDevice, "/dev/")))
	return err
}

// exec runs a script in n's VM; a non-zero exit is an error with the
// output.
func (l *Lab) exec(ctx context.Context, n *node, script string) (string, error) {
	v := l.vmOf(n)
	if v == nil || exited(v) {
		return "", fmt.Errorf("vmlab: %s's VM is not running", n.name)
	}
	out, rc, err := v.Exec(ctx, script, 90*time.Second)
	if err != nil || rc != 0 {
		return out, fmt.Errorf("vmlab: %s: %q: rc %d, %v: %s", n.name, firstLine(script), rc, err, out)
	}
	return out, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// waitProc polls n's /proc/drbd (never drbdadm: ~130 ms CPU per call
// under TCG) until it contains pattern.
func (l *Lab) waitProc(ctx context.Context, n *node, pattern string, timeout time.Duration) error {
	tenths := int(timeout / (100 * time.Millisecond))
	_, err := l.exec(ctx, n, fmt.Sprintf("i=0; until grep -q '%s' /proc/drbd; do i=$((i+1)); [ $i -lt %d ] || { cat /proc/drbd; exit 1; }; sleep 0.1; done", pattern, tenths))
	if err != nil {
		return fmt.Errorf("vmlab: %s: /proc/drbd never said %q within %v: %w", n.name, pattern, timeout, err)
	}
	return nil
}

// Exec runs a script in node's VM (the agent's shell) and returns its
// output; a non-zero exit is an error.
func (l *Lab) Exec(ctx context.Context, name, script string) (string, error) {
	n, err := l.node(name)
	if err != nil {
		return "", err
	}
	return l.exec(ctx, n, script)
}

// DRBDState reads r0's state from node's /proc/drbd (one cheap agent
// call, no shell).
func (l *Lab) DRBDState(ctx context.Context, name string) (drbd.State, error) {
	n, err := l.node(name)
	if err != nil {
		return drbd.State{}, err
	}
	v := l.vmOf(n)
	if v == nil || exited(v) {
		return drbd.State{}, fmt.Errorf("vmlab: %s's VM is not running", name)
	}
	b, err := v.ReadFile(ctx, "/proc/drbd")
	if err != nil {
		return drbd.State{}, err
	}
	p, err := drbd.ParseProc(b)
	if err != nil {
		return drbd.State{}, fmt.Errorf("vmlab: %s: %w", name, err)
	}
	return p.Minor(0)
}

// CutReplication cuts node's DRBD replication link (on) or restores it,
// leaving its VRRP and quorum links.
func (l *Lab) CutReplication(ctx context.Context, name string, on bool) error {
	if !l.o.DRBD {
		return fmt.Errorf("vmlab: %s: the lab has no DRBD (Options.DRBD)", name)
	}
	return l.setLink(ctx, name, "drbd", !on)
}
